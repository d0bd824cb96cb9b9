/**
 * `npm run bench` — runs the registered benchmark suites in sequence, prints one table per
 * suite, and writes every row to `.bench/results.json`.
 *
 *   npm run bench                          # every suite
 *   npm run bench -- --suite transport     # one suite (repeatable, or comma-separated)
 *   npm run bench -- --quick               # ~10x fewer iterations (CI smoke)
 *   npm run bench -- --out path.json       # results elsewhere
 *
 * A suite is a module exporting `suite: Suite` (see `benches/lib/report.ts`); add it to
 * `SUITES` below.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type BenchContext, formatTable, meets, ratio, type Row, type Suite } from './lib/report';

/** Registered suites, loaded on demand so one suite's imports do not slow another. */
const SUITES: Record<string, () => Promise<Suite>> = {
  transport: async () => (await import('./transport')).suite,
  ipc: async () => (await import('./ipc')).suite,
  chat: async () => (await import('./chat')).suite,
};

interface Args {
  suites: string[];
  quick: boolean;
  out: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { suites: [], quick: false, out: path.join(process.cwd(), '.bench', 'results.json') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') args.quick = true;
    else if (a === '--suite' || a.startsWith('--suite=')) args.suites.push(...value().split(','));
    else if (a === '--out' || a.startsWith('--out=')) args.out = value();
    else if (a === '--help' || a === '-h') {
      console.log(`usage: npm run bench -- [--suite ${Object.keys(SUITES).join('|')}] [--quick] [--out file]`);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const s of args.suites) {
    if (!SUITES[s]) throw new Error(`unknown suite ${s}; known: ${Object.keys(SUITES).join(', ')}`);
  }
  if (args.suites.length === 0) args.suites = Object.keys(SUITES);
  return args;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const ctx: BenchContext = { quick: args.quick, log: (m) => process.stderr.write(`  … ${m}\n`) };
  const cpus = os.cpus();
  const results = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpu: `${cpus.length} x ${cpus[0]?.model ?? 'unknown'}`,
    loadavg: os.loadavg(),
    quick: args.quick,
    suites: {} as Record<string, { description: string; rows: Array<Row & { ratio: number | null; met: boolean | null }> }>,
  };
  console.log(
    `lapce-ai-ipc benchmarks — ${results.node}, ${results.cpu}, load ${results.loadavg.map((l) => l.toFixed(2)).join(' ')}${args.quick ? ' (quick)' : ''}\n`,
  );
  let failed = false;
  for (const name of args.suites) {
    const suite = await SUITES[name]();
    process.stderr.write(`suite ${name}: ${suite.description}\n`);
    let rows: Row[];
    try {
      rows = await suite.run(ctx);
    } catch (e) {
      failed = true;
      console.error(`suite ${name} failed:`, e);
      continue;
    }
    console.log(formatTable(`${name}: ${suite.description}`, rows) + '\n');
    results.suites[name] = { description: suite.description, rows: rows.map((r) => ({ ...r, ratio: ratio(r, rows), met: meets(r) })) };
  }
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.writeFileSync(args.out, JSON.stringify(results, null, 2) + '\n');
  console.log(`results written to ${path.relative(process.cwd(), args.out) || args.out}`);
  // Benchmarks report; they do not fail on a missed target (CI runs --quick as a smoke test).
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
