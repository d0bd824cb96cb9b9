/**
 * The compiled Rust binding (`crates/lapce_ai_ipc_binding`), loaded by napi-rs's generated
 * loader, which picks the prebuilt `.node` for this platform. Typed by `index.d.ts`.
 * @internal
 * @packageDocumentation
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
import binding = require('../index.js');

export = binding;
