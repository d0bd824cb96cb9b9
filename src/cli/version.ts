/**
 * This package's version, read from its package.json (two levels up from both `src/cli` and `dist/cli`).
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The package version (`lapce-ai-ipc --version`). */
export const version: string = (JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string })
  .version;
