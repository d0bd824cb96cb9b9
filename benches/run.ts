/**
 * `npm run bench` — runs the registered benchmark suites in sequence, prints one table per
 * suite, and writes every row to `.bench/results.json`.
 *
 *   npm run bench                          # every suite
 *   npm run bench -- --suite transport     # one suite (repeatable, or comma-separated)
 *   npm run bench -- --quick               # ~10x fewer iterations (CI smoke)
 *   npm run bench -- --out path.json       # results elsewhere
 *   npm run bench -- --docs / --no-docs    # write docs/bench (RESULTS.md, SVG plots) or not;
 *                                          # default: on for full runs that include `peers`
 *
 * When the `peers` suite ran, the CI gate (`lib/gate.ts`) checks lapce-ai-ipc's ratios against
 * `net` from the same run and the process exits 1 if one falls below its floor.
 *
 * A suite is a module exporting `suite: Suite` (see `benches/lib/report.ts`); add it to
 * `SUITES` below.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkGate, type GateResult } from './lib/gate';
import { writePlots } from './lib/plot';
import { type BenchContext, formatTable, meets, ratio, type Row, type Suite } from './lib/report';
import { resultsMarkdown, type RunResults } from './lib/results-md';
import type { PeersData } from './peers';
import { ROOT } from './lib/script';

const DOCS_DIR = path.join(ROOT, 'docs', 'bench');

/** Registered suites, loaded on demand so one suite's imports do not slow another. */
const SUITES: Record<string, () => Promise<Suite>> = {
  peers: async () => (await import('./peers')).suite,
  transport: async () => (await import('./transport')).suite,
  ipc: async () => (await import('./ipc')).suite,
  chat: async () => (await import('./chat')).suite,
  attacks: async () => (await import('./attacks-suite')).suite,
};

/** Suites a plain `--quick` run leaves out (they take minutes; name them with --suite to run them). */
const NOT_IN_QUICK = new Set(['attacks']);

interface Args {
  suites: string[];
  quick: boolean;
  out: string;
  docs: boolean | null;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { suites: [], quick: false, out: path.join(process.cwd(), '.bench', 'results.json'), docs: null };
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
    else if (a === '--docs') args.docs = true;
    else if (a === '--no-docs') args.docs = false;
    else if (a === '--help' || a === '-h') {
      console.log(`usage: npm run bench -- [--suite ${Object.keys(SUITES).join('|')}] [--quick] [--out file] [--docs|--no-docs]`);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const s of args.suites) {
    if (!SUITES[s]) throw new Error(`unknown suite ${s}; known: ${Object.keys(SUITES).join(', ')}`);
  }
  if (args.suites.length === 0) args.suites = Object.keys(SUITES).filter((s) => !args.quick || !NOT_IN_QUICK.has(s));
  return args;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const cpus = os.cpus();
  const results: RunResults = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpu: `${cpus.length} x ${cpus[0]?.model ?? 'unknown'}`,
    loadavg: os.loadavg(),
    quick: args.quick,
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    suites: {},
  };
  console.log(
    `lapce-ai-ipc benchmarks — ${results.node}, ${results.cpu}, load ${results.loadavg.map((l) => l.toFixed(2)).join(' ')}${args.quick ? ' (quick)' : ''}\n`,
  );
  let failed = false;
  for (const name of args.suites) {
    const suite = await SUITES[name]();
    process.stderr.write(`suite ${name}: ${suite.description}\n`);
    let rows: Row[];
    let data: unknown;
    const ctx: BenchContext = { quick: args.quick, log: (m) => process.stderr.write(`  … ${m}\n`), attach: (d) => (data = d) };
    try {
      rows = await suite.run(ctx);
    } catch (e) {
      failed = true;
      console.error(`suite ${name} failed:`, e);
      continue;
    }
    console.log(formatTable(`${name}: ${suite.description}`, rows) + '\n');
    results.suites[name] = {
      description: suite.description,
      rows: rows.map((r) => ({ ...r, ratio: ratio(r, rows), met: meets(r) })),
      data,
    };
  }
  const peers = results.suites.peers?.data as PeersData | undefined;
  let gate: GateResult[] | null = null;
  if (peers) {
    gate = checkGate(peers);
    console.log('## CI gate: lapce-ai-ipc against net in this run (floors in benches/lib/gate.ts)\n');
    for (const g of gate) console.log(`${g.pass ? 'pass' : 'FAIL'}  ${g.what}: ${g.ratio.toFixed(2)}x (floor ${g.floor}x)`);
    console.log('');
    if (gate.some((g) => !g.pass)) failed = true;
  } else if (args.suites.includes('peers')) {
    console.log('CI gate not checked: the peers suite failed');
  }
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.writeFileSync(args.out, JSON.stringify(results, null, 2) + '\n');
  console.log(`results written to ${path.relative(process.cwd(), args.out) || args.out}`);
  if (args.docs ?? (!args.quick && !!peers)) {
    fs.mkdirSync(DOCS_DIR, { recursive: true });
    const md = path.join(DOCS_DIR, 'RESULTS.md');
    fs.writeFileSync(md, resultsMarkdown(results, gate));
    const written = [md];
    if (peers) {
      const title = `${results.date.slice(0, 16).replace('T', ' ')} UTC, ${results.cpu}, load ${peers.loadavg.start[0].toFixed(2)}`;
      written.push(...(await writePlots(peers, DOCS_DIR, title)));
    }
    console.log(`docs written: ${written.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
  }
  // Missed targets are reported, not failed; the gate (ratios against net) and a failed suite fail.
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
