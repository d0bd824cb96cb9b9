/**
 * The benchmark a user would run to choose a local IPC for Node: lapce-ai-ipc against `net`,
 * child_process, zeromq, gRPC and vscode-jsonrpc, each server in its own process, the same
 * payloads, clients written as users write them (`await client.request()` in 64 concurrent
 * loops; `for await` over a stream of 50k chat-delta chunks).
 *
 * Measured per peer, in rounds that interleave the peers (so a burst of load from elsewhere
 * hits all of them, not one): 64 B round trip p50/p99/p99.9, pipelined req/s, stream chunks/s,
 * 64 KiB and 1 MiB messages/s and GB/s, and the CPU time per message of both processes (the
 * server's from /proc/<pid>/stat: a side that spins shows what the spinning costs). Every
 * figure is the median over rounds; the minimum is in the note (and, for streams, a row).
 *
 * Also: lapce-ai-ipc with `idle: 'sleep'` on both sides against the machine's floor (a C
 * eventfd/socketpair ping-pong between two processes, `benches/floor/floor.c`, same run), and
 * the Rust client's row once `crates/lapce_ai_client/examples/bench.rs` exists.
 *
 * Run: `npm run bench -- --suite peers [--quick]`.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { measureFloor, type Floor } from './lib/floor';
import { canPin, pin, type Placement, unpin } from './lib/placement';
import { cpuSince as cpuSinceOf, markCpu as markCpuOf, procCpuMicros } from './lib/ipc-proc';
import { type BenchContext, type CpuReport, percentile, type Row, type Suite } from './lib/report';
import { LAPCE_SLEEP, PEERS, type PeerClient, type PeerDef, type PeerHandle } from './peers/clients';
import { LARGE_SIZES, STREAM_CHUNKS } from './peers/workload';
import { ROOT } from './lib/script';

/** Peers whose stream figure is gated and reported over >= 10 repetitions (issue 7). */
const STREAM_GATED = new Set(['lapce.bytes', 'lapce.json', 'net']);
const DEPTH = 64;
const LARGE_DEPTH = 4;

interface Plan {
  rounds: number;
  rttN: number;
  rttBudgetMs: number;
  pipeBudgetMs: number;
  largeBudgetMs: number;
  /** Streams per round for gated peers, and in how many rounds the others stream once. */
  gatedStreamsPerRound: number;
  otherStreamRounds: number;
  sleepRounds: number;
  floorN: number;
}

const FULL: Plan = {
  rounds: 5,
  rttN: 20_000,
  rttBudgetMs: 2000,
  pipeBudgetMs: 1500,
  largeBudgetMs: 700,
  gatedStreamsPerRound: 2,
  otherStreamRounds: 3,
  sleepRounds: 5,
  floorN: 20_000,
};
const QUICK: Plan = {
  rounds: 3,
  rttN: 2000,
  rttBudgetMs: 300,
  pipeBudgetMs: 400,
  largeBudgetMs: 250,
  gatedStreamsPerRound: 2,
  otherStreamRounds: 1,
  sleepRounds: 3,
  floorN: 5000,
};

// ---- CPU --------------------------------------------------------------------------------

const proc = (pid: number) => ({ cpuMicros: () => procCpuMicros(pid) });
const markCpu = (pid: number) => markCpuOf(proc(pid));
const cpuSince = (a: ReturnType<typeof markCpu>, pid: number): CpuReport => cpuSinceOf(a, proc(pid));

/** One timed measurement: a rate and the CPU both processes spent on it. */
interface Sample {
  rate: number;
  count: number;
  cpu: CpuReport;
  /** Server counter increments during the measurement, per message (lapce-ai-ipc only). */
  perMsgCounters?: Record<string, number>;
}

// ---- measurements -----------------------------------------------------------------------

/** Sequential round trips until `n` or the budget; returns each in µs. */
async function rtt(c: PeerClient, n: number, budgetMs: number): Promise<Float64Array> {
  const out = new Float64Array(n);
  const end = performance.now() + budgetMs;
  let i = 0;
  for (; i < n; i++) {
    const t0 = performance.now();
    await c.echo();
    const t1 = performance.now();
    out[i] = (t1 - t0) * 1000;
    if (t1 > end && i >= 100) break;
  }
  return out.subarray(0, i + (i < n ? 1 : 0)).sort();
}

/** `depth` loops of `await call()` until the budget runs out. */
async function loops(pid: number, depth: number, budgetMs: number, call: () => Promise<unknown>): Promise<Sample> {
  let count = 0;
  const a = markCpu(pid);
  const end = a.t + budgetMs;
  await Promise.all(
    Array.from({ length: depth }, async () => {
      while (performance.now() < end) {
        await call();
        count++;
      }
    }),
  );
  const cpu = cpuSince(a, pid);
  return { rate: count / (cpu.wallMs / 1000), count, cpu };
}

async function stream(pid: number, c: PeerClient, chunks: number): Promise<Sample> {
  const before = await c.counters?.();
  const a = markCpu(pid);
  let n = 0;
  for await (const _ of c.stream(chunks)) n++;
  const cpu = cpuSince(a, pid);
  if (n !== chunks) throw new Error(`stream delivered ${n} of ${chunks} chunks`);
  const after = await c.counters?.();
  const perMsgCounters = before && after ? Object.fromEntries(Object.keys(after).map((k) => [k, (after[k] - before[k]) / n])) : undefined;
  return { rate: n / (cpu.wallMs / 1000), count: n, cpu, perMsgCounters };
}

// ---- per-peer results -------------------------------------------------------------------

interface PeerResult {
  id: string;
  label: string;
  rtt: Array<{ p50: number; p99: number; p999: number; n: number }>;
  /** All round-trip samples of all rounds (µs, sorted), for the CDF. */
  rttSamples: number[];
  pipe: Sample[];
  stream: Sample[];
  large: Record<string, Sample[]>;
}

/** What the suite hands to the plot and the results page (`results.json` → `suites.peers.data`). */
export interface PeersData {
  plan: Plan;
  loadavg: { start: number[]; end: number[] };
  peers: Array<{
    id: string;
    label: string;
    rtt: { p50: Stat; p99: Stat; p999: Stat };
    /** Round-trip CDF: [µs, fraction] at fixed quantiles. */
    cdf: Array<[number, number]>;
    pipe: Stat & PerMsg;
    stream: Stat & PerMsg & { reps: number };
    /** Each stream: chunks/s and the server's counters per chunk (lapce-ai-ipc), to explain a slow one. */
    streamRuns: Array<{ rate: number; counters?: Record<string, number> }>;
    large: Record<string, Stat & PerMsg & { gbps: Stat }>;
    /** CPU of the median round (shown in the table's CPU column). */
    medianCpu: { pipe: CpuReport; stream: CpuReport };
  }>;
  sleep: SleepResult[];
  rust: Record<string, number> | { skipped: string };
}

/** lapce-ai-ipc with `idle: 'sleep'` both sides, and the floor measured with the same placement. */
interface SleepResult {
  placement: Placement;
  p50: Stat;
  p99: Stat;
  cdf: Array<[number, number]>;
  floor: Floor | { skipped: string };
}

/** Median and minimum over rounds (for latencies the minimum is the best round). */
interface Stat {
  median: number;
  min: number;
  max: number;
  all: number[];
}
/** CPU per message of the client (this process) and the server process, µs. */
interface PerMsg {
  clientUsPerMsg: number;
  serverUsPerMsg: number;
}

function stat(values: number[]): Stat {
  const s = [...values].sort((a, b) => a - b);
  return { median: s.length ? s[Math.floor((s.length - 1) / 2)] : NaN, min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN, all: values };
}

/** The sample whose rate is the median (its CPU goes with the figure). */
function medianSample(xs: Sample[]): Sample {
  return [...xs].sort((a, b) => a.rate - b.rate)[Math.floor((xs.length - 1) / 2)];
}

function perMsg(xs: Sample[]): PerMsg {
  let parent = 0;
  let child = 0;
  let n = 0;
  for (const x of xs) {
    parent += x.cpu.parentMs;
    child += x.cpu.childMs;
    n += x.count;
  }
  return { clientUsPerMsg: (parent * 1000) / n, serverUsPerMsg: (child * 1000) / n };
}

const CDF_QUANTILES = [
  0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95,
  0.965, 0.975, 0.985, 0.99, 0.995, 0.998, 0.999,
];
function cdf(sorted: ArrayLike<number>): Array<[number, number]> {
  return CDF_QUANTILES.map((q) => [percentile(sorted, q * 100), q]);
}

function sortedPool(rounds: Float64Array[]): Float64Array {
  const all = new Float64Array(rounds.reduce((s, r) => s + r.length, 0));
  let o = 0;
  for (const r of rounds) {
    all.set(r, o);
    o += r.length;
  }
  return all.sort();
}

// ---- the Rust client row ----------------------------------------------------------------

const RUST_EXAMPLE = path.join(ROOT, 'crates', 'lapce_ai_client', 'examples', 'bench.rs');

/**
 * Runs the Rust client's bench example (`crates/lapce_ai_client/examples/bench.rs`, by
 * rust-client) against this suite's lapce-ai-ipc bytes server, if the crate has one. Contract:
 * `--socket PATH --rtt N --pipelined N --depth 64 --stream-chunks N --reps R`, methods `echo`
 * (64 B bytes) and `stream` (`{n, json: false}`); the last stdout line is one JSON object with
 * `rtt_p50_us`, `rtt_p99_us`, `rtt_p999_us`, `pipelined_rps`, `stream_chunks_per_s`,
 * `handshake_p50_us` (medians over reps). Returns those figures, or why the row is missing.
 */
function rustRow(socketPath: string, plan: Plan, quick: boolean, log: (m: string) => void): Record<string, number> | { skipped: string } {
  if (!fs.existsSync(RUST_EXAMPLE)) {
    const msg = `Rust client row skipped: ${path.relative(ROOT, RUST_EXAMPLE)} does not exist (the lapce_ai_client crate is not built)`;
    console.log(msg);
    return { skipped: msg };
  }
  const bin = path.join(ROOT, 'target', 'release', 'examples', 'bench');
  const built = fs.existsSync(bin) && fs.statSync(bin).mtimeMs >= fs.statSync(RUST_EXAMPLE).mtimeMs;
  if (quick && !built) {
    // A cold cargo build would take most of the CI run's few minutes.
    const msg =
      'Rust client row skipped in --quick: target/release/examples/bench is not built (cargo build --release -p lapce_ai_client --example bench)';
    console.log(msg);
    return { skipped: msg };
  }
  try {
    log('building the Rust client bench (cargo build --release -p lapce_ai_client --example bench)');
    execFileSync('cargo', ['build', '--release', '-q', '-p', 'lapce_ai_client', '--example', 'bench'], { cwd: ROOT, stdio: 'inherit' });
    const args = ['--socket', socketPath, '--rtt', String(plan.rttN), '--pipelined', String(plan.rttN * 10), '--depth', String(DEPTH)];
    args.push('--stream-chunks', String(STREAM_CHUNKS), '--reps', String(plan.rounds));
    const out = execFileSync(bin, args, { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
    const j = JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
    const keys = ['rtt_p50_us', 'rtt_p99_us', 'rtt_p999_us', 'pipelined_rps', 'stream_chunks_per_s', 'handshake_p50_us'];
    const figures = Object.fromEntries(keys.filter((k) => typeof j[k] === 'number').map((k) => [k, j[k] as number]));
    if (Object.keys(figures).length === 0) throw new Error(`no figures in its output: ${out.slice(0, 200)}`);
    return figures;
  } catch (e) {
    const msg = `Rust client row failed: ${(e as Error).message.split('\n')[0]}`;
    console.log(msg);
    return { skipped: msg };
  }
}

// ---- the suite --------------------------------------------------------------------------

async function warmUp(c: PeerClient): Promise<void> {
  for (let i = 0; i < 300; i++) await c.echo();
  await Promise.all(Array.from({ length: DEPTH }, () => c.echo()));
  for await (const _ of c.stream(2000));
  for (const size of LARGE_SIZES) await c.sink(Buffer.alloc(size, 1));
}

const sizeLabel = (size: number): string => (size >= 1 << 20 ? `${size >> 20} MiB` : `${size >> 10} KiB`);
const sizeKey = (size: number): string => (size >= 1 << 20 ? `${size >> 20}m` : `${size >> 10}k`);

async function run(ctx: BenchContext): Promise<Row[]> {
  const plan = ctx.quick ? QUICK : FULL;
  const loadStart = os.loadavg();
  const results: PeerResult[] = [];
  const handles: Array<{ def: PeerDef; h: PeerHandle; res: PeerResult; rtts: Float64Array[] }> = [];
  let rust: PeersData['rust'] = { skipped: 'not run' };
  try {
    for (const def of PEERS) {
      ctx.log(`starting ${def.label}`);
      const h = await def.start();
      await warmUp(h.client);
      const res: PeerResult = { id: def.id, label: def.label, rtt: [], rttSamples: [], pipe: [], stream: [], large: {} };
      results.push(res);
      handles.push({ def, h, res, rtts: [] });
    }
    const larges = LARGE_SIZES.map((size) => ({ size, buf: Buffer.alloc(size, 0x5a) }));
    for (let r = 0; r < plan.rounds; r++) {
      ctx.log(`round ${r + 1}/${plan.rounds}, load ${os.loadavg()[0].toFixed(2)}`);
      // Rotate the order so no peer always runs first (or right after the heaviest).
      for (let k = 0; k < handles.length; k++) {
        const { def, h, res, rtts } = handles[(k + r) % handles.length];
        const c = h.client;
        const pid = h.serverPid;
        const s = await rtt(c, plan.rttN, plan.rttBudgetMs);
        rtts.push(s);
        res.rtt.push({ p50: percentile(s, 50), p99: percentile(s, 99), p999: percentile(s, 99.9), n: s.length });
        res.pipe.push(await loops(pid, DEPTH, plan.pipeBudgetMs, () => c.echo()));
        for (const { size, buf } of larges) {
          (res.large[sizeKey(size)] ??= []).push(await loops(pid, LARGE_DEPTH, plan.largeBudgetMs, () => c.sink(buf)));
        }
        const streams = STREAM_GATED.has(def.id) ? plan.gatedStreamsPerRound : r < plan.otherStreamRounds ? 1 : 0;
        for (let i = 0; i < streams; i++) res.stream.push(await stream(pid, c, STREAM_CHUNKS));
      }
    }
    for (const x of handles) x.res.rttSamples = Array.from(sortedPool(x.rtts));
    const lapceBytes = handles.find((x) => x.def.id === 'lapce.bytes');
    rust = rustRow(lapceBytes!.h.socketPath!, plan, ctx.quick, ctx.log);
  } finally {
    for (const { h } of handles) await h.stop().catch(() => undefined);
  }

  // Sleep mode against the floor, measured back to back in each placement.
  const placements: Placement[] = canPin() ? ['cross-cpu', 'same-cpu'] : ['free'];
  const sleep: SleepResult[] = [];
  for (const placement of placements) {
    ctx.log(`lapce-ai-ipc idle 'sleep' round trips (${placement}), ${plan.sleepRounds} rounds, then the floor (C ping-pong)`);
    sleep.push(await sleepVsFloor(placement, plan));
  }
  const data = summarize(plan, results, sleep, rust, loadStart);
  ctx.attach?.(data);
  return rows(data);
}

/** lapce-ai-ipc never polling, and the machine's floor, with the processes placed alike. */
async function sleepVsFloor(placement: Placement, plan: Plan): Promise<SleepResult> {
  let restore: string | null = null;
  const h = await LAPCE_SLEEP.start();
  const rounds: Float64Array[] = [];
  try {
    if (placement !== 'free') {
      restore = pin(process.pid, 0);
      pin(h.serverPid, placement === 'same-cpu' ? 0 : 1);
    }
    await warmUp(h.client);
    for (let r = 0; r < plan.sleepRounds; r++) rounds.push(await rtt(h.client, plan.rttN, plan.rttBudgetMs));
  } finally {
    if (restore) unpin(process.pid, restore);
    await h.stop();
  }
  const cpus: [number, number] | undefined = placement === 'free' ? undefined : [0, placement === 'same-cpu' ? 0 : 1];
  const floor = measureFloor(plan.floorN, path.join(ROOT, '.bench'), cpus);
  if ('skipped' in floor) console.log(`floor skipped: ${floor.skipped}`);
  return {
    placement,
    p50: stat(rounds.map((s) => percentile(s, 50))),
    p99: stat(rounds.map((s) => percentile(s, 99))),
    cdf: cdf(sortedPool(rounds)),
    floor,
  };
}

function summarize(plan: Plan, results: PeerResult[], sleep: SleepResult[], rust: PeersData['rust'], loadStart: number[]): PeersData {
  return {
    plan,
    loadavg: { start: loadStart, end: os.loadavg() },
    peers: results.map((r) => ({
      id: r.id,
      label: r.label,
      rtt: { p50: stat(r.rtt.map((x) => x.p50)), p99: stat(r.rtt.map((x) => x.p99)), p999: stat(r.rtt.map((x) => x.p999)) },
      cdf: cdf(r.rttSamples),
      pipe: { ...stat(r.pipe.map((x) => x.rate)), ...perMsg(r.pipe) },
      stream: { ...stat(r.stream.map((x) => x.rate)), ...perMsg(r.stream), reps: r.stream.length },
      streamRuns: r.stream.map((x) => ({ rate: x.rate, counters: x.perMsgCounters })),
      large: Object.fromEntries(
        LARGE_SIZES.map((size) => {
          const xs = r.large[sizeKey(size)];
          return [sizeKey(size), { ...stat(xs.map((x) => x.rate)), ...perMsg(xs), gbps: stat(xs.map((x) => (x.rate * size) / 1e9)) }];
        }),
      ),
      medianCpu: {
        pipe: medianSample(r.pipe).cpu,
        stream: medianSample(r.stream).cpu,
      },
    })),
    sleep,
    rust,
  };
}

const f1 = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const cpuNote = (p: PerMsg, unit: string): string =>
  `CPU per ${unit}: client ${f1(p.clientUsPerMsg)} µs, server ${f1(p.serverUsPerMsg)} µs`;

/** Turns the summary into table rows (every peer compared against `net`). */
function rows(d: PeersData): Row[] {
  const out: Row[] = [];
  for (const p of d.peers) {
    const mc = p.medianCpu;
    const n = p.rtt.p50.all.length;
    out.push({
      id: `peers.${p.id}.rtt.p50`,
      what: `${p.label}: 64 B round trip p50`,
      value: p.rtt.p50.median,
      unit: 'µs',
      better: 'lower',
      baseline: p.id === 'net' ? undefined : 'peers.net.rtt.p50',
      note: `median of ${n} rounds; best round ${f1(p.rtt.p50.min)}`,
    });
    out.push({
      id: `peers.${p.id}.rtt.p99`,
      what: `${p.label}: 64 B round trip p99`,
      value: p.rtt.p99.median,
      unit: 'µs',
      better: 'lower',
      baseline: p.id === 'net' ? undefined : 'peers.net.rtt.p99',
      note: `p99.9 ${f1(p.rtt.p999.median)} µs (best round ${f1(p.rtt.p999.min)})`,
    });
    out.push({
      id: `peers.${p.id}.pipe`,
      what: `${p.label}: requests/s, ${DEPTH} loops of await request()`,
      value: p.pipe.median / 1e6,
      unit: 'M req/s',
      better: 'higher',
      baseline: p.id === 'net' ? undefined : 'peers.net.pipe',
      cpu: mc.pipe,
      note: `min ${f1(p.pipe.min / 1e3)} k; ${cpuNote(p.pipe, 'request')}`,
    });
    out.push({
      id: `peers.${p.id}.stream`,
      what: `${p.label}: stream of ${STREAM_CHUNKS / 1000}k chat deltas, chunks/s (median)`,
      value: p.stream.median / 1e6,
      unit: 'M chunks/s',
      better: 'higher',
      baseline: p.id === 'net' ? undefined : 'peers.net.stream',
      cpu: mc.stream,
      note: `${p.stream.reps} streams, min ${f1(p.stream.min / 1e3)} k; ${cpuNote(p.stream, 'chunk')}`,
    });
    if (STREAM_GATED.has(p.id)) {
      out.push({
        id: `peers.${p.id}.stream.min`,
        what: `${p.label}: stream chunks/s, minimum of ${p.stream.reps}`,
        value: p.stream.min / 1e6,
        unit: 'M chunks/s',
        better: 'higher',
        baseline: p.id === 'net' ? undefined : 'peers.net.stream.min',
        target: p.id === 'lapce.bytes' ? { op: '>=', value: 0.5 } : p.id === 'lapce.json' ? { op: '>=', value: 0.3 } : undefined,
      });
    }
    for (const size of LARGE_SIZES) {
      const l = p.large[sizeKey(size)];
      out.push({
        id: `peers.${p.id}.large.${sizeKey(size)}`,
        what: `${p.label}: ${sizeLabel(size)} messages, ${LARGE_DEPTH} in flight`,
        value: l.gbps.median,
        unit: 'GB/s',
        better: 'higher',
        baseline: p.id === 'net' ? undefined : `peers.net.large.${sizeKey(size)}`,
        note: `${f1(l.median / 1e3)} k msg/s (min ${f1(l.min / 1e3)} k); ${cpuNote(l, 'message')}`,
      });
    }
  }
  for (const sl of d.sleep) {
    const where = sl.placement === 'free' ? '' : `, ${sl.placement}`;
    const key = sl.placement === 'free' ? '' : `.${sl.placement}`;
    out.push({
      id: `peers.sleep${key}.rtt.p50`,
      what: `lapce-ai-ipc, JSON, idle 'sleep' both sides${where}: round trip p50`,
      value: sl.p50.median,
      unit: 'µs',
      better: 'lower',
      note: `p99 ${f1(sl.p99.median)} µs; every hop is a doorbell wake-up`,
    });
    if ('skipped' in sl.floor) continue;
    const fl = sl.floor;
    out.push({
      id: `peers.floor${key}.eventfd`,
      what: `machine floor${where}: C eventfd ping-pong between two processes, round trip p50 (= two wake-ups)`,
      value: fl.eventfd.p50,
      unit: 'µs',
      better: 'lower',
      note: `p99 ${f1(fl.eventfd.p99)} µs; socketpair (v2 doorbell) p50 ${f1(fl.socketpair.p50)} µs, p99 ${f1(fl.socketpair.p99)} µs`,
    });
    out.push({
      id: `peers.sleep${key}.floor_ratio`,
      what: `idle 'sleep' round trip p50 / two wake-ups${where} (eventfd floor p50)`,
      value: sl.p50.median / fl.eventfd.p50,
      unit: 'x',
      better: 'lower',
      target: sl.placement === 'same-cpu' ? undefined : { op: '<=', value: 1.3 },
      note: `against the socketpair floor: ${(sl.p50.median / fl.socketpair.p50).toFixed(2)}x`,
    });
  }
  if (!('skipped' in d.rust)) {
    const r = d.rust;
    const push = (key: string, what: string, unit: string, better: 'lower' | 'higher', scale = 1, baseline?: string) => {
      if (typeof r[key] === 'number') out.push({ id: `peers.rust.${key}`, what, value: r[key] * scale, unit, better, baseline });
    };
    push('rtt_p50_us', 'Rust client (lapce_ai_client): 64 B round trip p50', 'µs', 'lower', 1, 'peers.net.rtt.p50');
    push('rtt_p99_us', 'Rust client: 64 B round trip p99', 'µs', 'lower', 1, 'peers.net.rtt.p99');
    push('rtt_p999_us', 'Rust client: 64 B round trip p99.9', 'µs', 'lower');
    push('pipelined_rps', `Rust client: requests/s, ${DEPTH} in flight`, 'M req/s', 'higher', 1e-6, 'peers.net.pipe');
    push(
      'stream_chunks_per_s',
      `Rust client: stream of ${STREAM_CHUNKS / 1000}k chat deltas, chunks/s`,
      'M chunks/s',
      'higher',
      1e-6,
      'peers.net.stream',
    );
    push('handshake_p50_us', 'Rust client: handshake (connect to READY) p50', 'µs', 'lower');
  }
  out.push({
    id: 'peers.loadavg',
    what: '1-minute load average at start / end of this suite',
    value: d.loadavg.end[0],
    unit: '',
    better: 'lower',
    note: `start ${d.loadavg.start.map((x) => x.toFixed(2)).join(' ')}, end ${d.loadavg.end.map((x) => x.toFixed(2)).join(' ')}, ${os.availableParallelism()} CPUs`,
  });
  return out;
}

export const suite: Suite = {
  name: 'peers',
  description: 'lapce-ai-ipc against net, child_process, zeromq, gRPC and vscode-jsonrpc (each server in its own process)',
  run,
};
