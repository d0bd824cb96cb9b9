/**
 * Where the benchmark's files are, and how to start one of its scripts in a child process.
 *
 * `npm run bench` compiles the benchmarks to JavaScript (`tsconfig.bench.json`, into
 * `.bench/js/`) and runs them with plain `node`, as a user's application runs. A process with
 * tsx's loader differs from that: its export getters cost time on every call into the package
 * (`profile.js pipe-bytes`: 0.52–0.53 M req/s under tsx against 0.54–0.58 M compiled), and the
 * code it loads makes the heap bigger, which is what exposed the `Map` problem `IdTable`
 * describes (`src/util/id-table.ts`).
 * Run from source (`node --import=tsx benches/….ts`, for profiling while editing), the same
 * scripts start their children from source too.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** True when this file runs compiled (`.bench/js/benches/lib/script.js`). */
export const COMPILED = __filename.endsWith('.js');

/** The benches folder this process runs from: `benches/` or its compiled copy. */
export const BENCHES = path.join(__dirname, '..');

/** The repository root (the nearest folder up with a package.json), for docs and C sources. */
export const ROOT = ((): string => {
  for (let d = BENCHES; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json'))) return d;
    if (path.dirname(d) === d) throw new Error(`no package.json above ${BENCHES}`);
  }
})();

/** A benchmark script by its path under `benches/` without extension, e.g. `lib/ipc-server`. */
export function benchScript(rel: string): string {
  return path.join(BENCHES, `${rel}.${COMPILED ? 'js' : 'ts'}`);
}

/** tsx's loader by absolute URL, so children start whatever the working directory. */
export const TSX_ARGS: readonly string[] = [`--import=${pathToFileURL(require.resolve('tsx')).href}`];

/** Node arguments a child needs to run a {@link benchScript}: tsx's loader when running from source. */
export const LOADER_ARGS: readonly string[] = COMPILED ? [] : TSX_ARGS;

/**
 * A script under `benches/` that always runs from source with {@link TSX_ARGS}: the attacks
 * suite, whose harness lives with the tests and spawns `.ts` fixtures. It measures whether
 * hostile peers get through, not speed.
 */
export function sourceScript(rel: string): string {
  return path.join(ROOT, 'benches', `${rel}.ts`);
}
