// Compiles the benchmarks to JavaScript in .bench/js/ (see benches/lib/script.ts for why they
// run compiled), then gives that tree's src/ and dist/ one forwarding module per module of the
// built package: a benchmark, and any test harness it borrows, loads the one build a user
// would (dist/), never a second copy of src/. Forwarding modules rather than a symlink: the
// CJS loader's realpath cache was seen handing back the link's own path after a suite had run,
// which loaded the package a second time from the wrong place.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');
const dist = path.join(root, 'dist');
const out = path.join(root, '.bench', 'js');
fs.rmSync(out, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.bench.json')], { stdio: 'inherit' });
for (const name of ['src', 'dist']) {
  fs.rmSync(path.join(out, name), { recursive: true, force: true });
  for (const rel of fs.readdirSync(dist, { recursive: true })) {
    if (!rel.endsWith('.js')) continue;
    const file = path.join(out, name, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, `module.exports = require(${JSON.stringify(path.join(dist, rel))});\n`);
  }
}
