#!/usr/bin/env node
/**
 * The `lapce-ai-ipc` executable (`bin` of the package); the commands live in `src/cli/`, one file each.
 * @packageDocumentation
 */
import { main } from './cli/program';

export { main };
// TODO(merge): remove once __test__/chat/ipc.test.ts imports from './cli/metrics-summary' (requested).
export { summarizeMetrics } from './cli/metrics-summary';

if (require.main === module) void main();
