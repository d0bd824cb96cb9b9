#!/usr/bin/env node
/**
 * The `lapce-ai-ipc` executable (`bin` of the package); the commands live in `src/cli/`, one file each.
 * @packageDocumentation
 */
import { main } from './cli/program';

export { main };

if (require.main === module) void main();
