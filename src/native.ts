/**
 * The compiled Rust binding (`crates/lapce_ai_ipc_binding`), typed by the generated `index.d.ts`.
 * Loaded once, at the first `require` of this package; on a platform without a build the error says
 * which platform was detected, which are supported and what to do (see `native-loader.ts`).
 * @internal
 * @packageDocumentation
 */
import path from 'node:path';
import { existsSync } from 'node:fs';
import type * as Binding from '../index';
import { detectHost, loadNative, readPackageFacts } from './native-loader';

// Both `src/` (run from source) and `dist/` (compiled) sit one level below the package root.
const root = path.join(__dirname, '..');

const binding = loadNative(detectHost(), readPackageFacts(root), { env: process.env, root, require, exists: existsSync }) as typeof Binding;

export = binding;
