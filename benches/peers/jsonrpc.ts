/** Loads vscode-jsonrpc's Node entry for the `peers` suite. */
import type * as JsonRpc from 'vscode-jsonrpc/lib/node/main';

/** `vscode-jsonrpc/node` (its `exports` map is invisible to this tsconfig's node10 resolution, so typed by path). */
export const loadJsonRpc = (): typeof JsonRpc => require('vscode-jsonrpc/node') as typeof JsonRpc;
