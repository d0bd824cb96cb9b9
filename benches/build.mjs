// Compiles the benchmarks to JavaScript in .bench/js/ (see benches/lib/script.ts for why they
// run compiled), then points that tree's src/ and dist/ at the built package: a benchmark, and
// any test harness it borrows, loads the one build a user would, never a second copy of src/.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');
const out = path.join(root, '.bench', 'js');
fs.rmSync(out, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.bench.json')], { stdio: 'inherit' });
for (const name of ['src', 'dist']) {
  fs.rmSync(path.join(out, name), { recursive: true, force: true });
  fs.symlinkSync(path.join('..', '..', 'dist'), path.join(out, name));
}
