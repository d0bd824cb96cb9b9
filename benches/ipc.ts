/**
 * IPC protocol benchmarks: IpcClient/IpcServer in separate processes.
 *
 * - handshake time (connect + handshake complete), p50/p99;
 * - request/response round trip (64 B JSON and bytes), p50/p99, against the bare transport's
 *   round trip (Channel ping-pong between two processes, same setup) so the protocol layer's
 *   cost shows;
 * - pipelined requests per second with 64 in flight, against the bare transport doing the same;
 * - the server's RSS growth per idle connection with 1000 connections from 4 client processes.
 *
 * In every measurement the client is this process and the server a child (`lib/ipc-server.ts`),
 * except the 1000 connections, which come from 4 children (`lib/ipc-client.ts`). Rows carry the
 * CPU time both processes spent.
 *
 * Run: `npm run bench -- --suite ipc` (once registered in `benches/run.ts`), or standalone:
 * `node --import=tsx benches/ipc.ts [--quick]`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { IpcClient } from '../dist/ipc/client';
import type { IpcServerOptions } from '../dist/ipc/server';
import { spawnBarePair } from './lib/bare-pair';
import { cpuSince, JsonChild, markCpu, procCpuMicros } from './lib/ipc-proc';
import { channelPingPong } from './lib/pingpong';
import { type BenchContext, type CpuReport, formatTable, percentile, type Row, type Suite } from './lib/report';
import { benchScript } from './lib/script';

const SERVER = benchScript('lib/ipc-server');
const CLIENT = benchScript('lib/ipc-client');
const BARE_CHILD = benchScript('lib/transport-child');

/** A 64-byte JSON payload (its UTF-8 JSON text is exactly 64 bytes). */
const JSON64 = { m: 'x'.repeat(56) };
if (Buffer.byteLength(JSON.stringify(JSON64)) !== 64) throw new Error('JSON64 is not 64 bytes');
const BYTES64 = Buffer.alloc(64, 0xab);

// ---- processes and CPU ------------------------------------------------------------------

let dirCounter = 0;

/** A fresh socket path in a fresh directory. */
function freshSocket(): { socketPath: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lapce-bench-ipc-${++dirCounter}-`));
  return { socketPath: path.join(dir, 'ai.sock'), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

async function withServer<T>(
  options: Omit<IpcServerOptions, 'socketPath' | 'logger'>,
  nodeArgs: string[],
  f: (server: JsonChild, socketPath: string) => Promise<T>,
): Promise<T> {
  const { socketPath, cleanup } = freshSocket();
  const server = JsonChild.spawn(SERVER, { LAPCE_BENCH_IPC_SERVER: JSON.stringify({ ...options, socketPath }) }, nodeArgs);
  try {
    await server.next((m) => m.type === 'listening', 'server listening', 60_000);
    return await f(server, socketPath);
  } finally {
    await server.close();
    cleanup();
  }
}

interface Latency {
  p50: number;
  p99: number;
  n: number;
  cpu: CpuReport;
}

function summarize(samplesMs: Float64Array, cpu: CpuReport): Latency {
  const sorted = Float64Array.from(samplesMs).sort();
  return { p50: percentile(sorted, 50) * 1000, p99: percentile(sorted, 99) * 1000, n: sorted.length, cpu };
}

/** The round with the median p50 (of an odd number of rounds). */
function medianRound(rounds: Latency[]): Latency {
  return [...rounds].sort((x, y) => x.p50 - y.p50)[rounds.length >> 1];
}

function p50s(rounds: Latency[]): string {
  return rounds.map((r) => r.p50.toFixed(1)).join(' / ');
}

type Pipelined = { rate: number; cpu: CpuReport };

function medianRate(rounds: Pipelined[]): Pipelined {
  return [...rounds].sort((x, y) => x.rate - y.rate)[rounds.length >> 1];
}

function rates(rounds: Pipelined[]): string {
  return rounds.map((r) => (r.rate / 1e6).toFixed(2)).join(' / ');
}

// ---- measurements -----------------------------------------------------------------------

/**
 * Sequential connect + close, timed to the session being ready. With `gapMs`, the client waits
 * that long before each connect (untimed), so the server is idle in epoll when it arrives, as
 * for an editor that connects once; back to back, each connect also finds the server tearing
 * down the session before it.
 */
async function handshakes(
  server: JsonChild,
  socketPath: string,
  n: number,
  warm: number,
  gapMs = 0,
): Promise<Latency & { serverMeanUs: number }> {
  const once = async (): Promise<number> => {
    if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
    const t0 = performance.now();
    const c = await IpcClient.connect(socketPath);
    const dt = performance.now() - t0;
    c.close();
    return dt;
  };
  for (let i = 0; i < warm; i++) await once();
  const a = markCpu(server);
  const samples = new Float64Array(n);
  for (let i = 0; i < n; i++) samples[i] = await once();
  const cpu = cpuSince(a, server);
  // The server's own view (accept → READY), from its histogram.
  const c = await IpcClient.connect(socketPath);
  const m = (await c.serverMetrics()) as Array<{ name: string; values: Array<{ value: number; metricName?: string }> }>;
  c.close();
  const h = m.find((x) => x.name === 'lapce_ipc_handshake_seconds')!;
  const sum = h.values.find((v) => v.metricName === 'lapce_ipc_handshake_seconds_sum')!.value;
  const count = h.values.find((v) => v.metricName === 'lapce_ipc_handshake_seconds_count')!.value;
  return { ...summarize(samples, cpu), serverMeanUs: (sum / count) * 1e6 };
}

/** Sequential request round trips. */
async function requestRtt(server: JsonChild, client: IpcClient, payload: unknown, n: number, warm: number): Promise<Latency> {
  for (let i = 0; i < warm; i++) await client.request('echo', payload);
  const a = markCpu(server);
  const samples = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await client.request('echo', payload);
    samples[i] = performance.now() - t0;
  }
  return summarize(samples, cpuSince(a, server));
}

/** Requests with `depth` in flight at all times; returns requests per second. */
async function pipelined(server: JsonChild, client: IpcClient, payload: unknown, n: number, depth: number): Promise<Pipelined> {
  const run = (count: number): Promise<void> =>
    new Promise((resolve, reject) => {
      let sent = 0;
      let done = 0;
      const one = (): void => {
        sent++;
        client.request('echo', payload).then(() => {
          if (++done === count) resolve();
          else if (sent < count) one();
        }, reject);
      };
      for (let i = 0; i < Math.min(depth, count); i++) one();
    });
  await run(Math.max(1000, n / 10));
  const a = markCpu(server);
  const t0 = performance.now();
  await run(n);
  const ms = performance.now() - t0;
  return { rate: n / (ms / 1000), cpu: cpuSince(a, server) };
}

/** The bare transport: Channel ping-pong and pipelined echo of 64 B with a child echoing. */
async function bare(
  n: number,
  warm: number,
  pipeN: number,
  depth: number,
): Promise<{ rtt: Latency; pipe: { rate: number; cpu: CpuReport } }> {
  const p = await spawnBarePair(BARE_CHILD, { stdio: 'inherit' });
  const child = { cpuMicros: () => procCpuMicros(p.child.pid!) };
  try {
    await p.link.request({ type: 'pong' });
    const ch = p.channel!;
    const msg = new Uint8Array(64);
    const pingPong = (count: number): Promise<Float64Array> => channelPingPong(ch, count, msg);
    // Warmed as the request round trips are (see there): cold code doubles the round trip.
    await pingPong(Math.max(warm, 5000));
    let a = markCpu(child);
    const rtt = summarize(await pingPong(n), cpuSince(a, child));
    // Pipelined: `depth` messages in flight, each echo answered by one more send.
    const pipe = (count: number): Promise<void> =>
      new Promise((resolve, reject) => {
        let sent = 0;
        let got = 0;
        ch.onMessage(() => {
          if (++got === count) {
            ch.onMessage(null);
            resolve();
          } else if (sent < count) {
            sent++;
            ch.send(msg).catch(reject);
          }
        });
        for (; sent < Math.min(depth, count); sent++) ch.send(msg).catch(reject);
      });
    await pipe(Math.max(1000, pipeN / 10));
    a = markCpu(child);
    const t0 = performance.now();
    await pipe(pipeN);
    const ms = performance.now() - t0;
    return { rtt, pipe: { rate: pipeN / (ms / 1000), cpu: cpuSince(a, child) } };
  } finally {
    await p.close();
  }
}

/** Server VmRSS before and after `conns` idle connections from `procs` client processes. */
async function rssPerConnection(
  conns: number,
  procs: number,
  log: (m: string) => void,
): Promise<{ perConnKb: number; beforeKb: number; afterKb: number; closedKb: number; clientPerConnKb: number }> {
  return withServer({}, ['--expose-gc'], async (server, socketPath) => {
    // Warm up: one session opened and closed, so one-time costs are not counted per connection.
    const warm = await IpcClient.connect(socketPath);
    for (let i = 0; i < 100; i++) await warm.request('echo', JSON64);
    warm.close();
    await waitFor(async () => (await server.cmd('state')).connections === 0);
    const clients = Array.from({ length: procs }, () => JsonChild.spawn(CLIENT, {}));
    try {
      await Promise.all(clients.map((c) => c.next((m) => m.type === 'ready', 'client ready', 60_000)));
      const clientBefore = clients.reduce((s, c) => s + c.rssKb(), 0);
      const beforeKb = (await server.cmd('gc')).rssKb as number;
      log(`rss: server ${beforeKb} kB before; opening ${conns} connections from ${procs} processes`);
      const per = Math.ceil(conns / procs);
      await Promise.all(clients.map((c, i) => c.cmd('open', { socketPath, count: Math.min(per, conns - i * per), batch: 50 })));
      await waitFor(async () => (await server.cmd('state')).connections === conns);
      await new Promise((r) => setTimeout(r, 200));
      const afterKb = (await server.cmd('gc')).rssKb as number;
      const clientAfter = clients.reduce((s, c) => s + c.rssKb(), 0);
      await Promise.all(clients.map((c) => c.cmd('close')));
      await waitFor(async () => (await server.cmd('state')).connections === 0);
      const closedKb = (await server.cmd('gc')).rssKb as number;
      return {
        perConnKb: (afterKb - beforeKb) / conns,
        beforeKb,
        afterKb,
        closedKb,
        clientPerConnKb: (clientAfter - clientBefore) / conns,
      };
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
}

async function waitFor(pred: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** CPU per request of each side, from a measurement's CPU report. */
function perReq(cpu: CpuReport, n: number): string {
  return `CPU per request: client ${((cpu.parentMs * 1000) / n).toFixed(2)} µs, server ${((cpu.childMs * 1000) / n).toFixed(2)} µs`;
}

const load = (): string => os.loadavg()[0].toFixed(2);

// ---- the suite --------------------------------------------------------------------------

async function run(ctx: BenchContext): Promise<Row[]> {
  const q = ctx.quick ? 0.1 : 1;
  const rows: Row[] = [];
  const hsN = Math.round(2000 * q);
  const rttN = Math.round(20_000 * q);
  const rttWarm = Math.round(2000 * q);
  const pipeN = Math.round(200_000 * q);
  const DEPTH = 64;

  const loadStart = load();
  ctx.log(`bare transport: ping-pong x ${rttN}, pipelined x ${pipeN} (${DEPTH} in flight); load ${loadStart}`);
  const b = await bare(rttN, rttWarm, pipeN, DEPTH);

  await withServer({}, [], async (server, socketPath) => {
    ctx.log(`handshakes x ${hsN}`);
    const hs = await handshakes(server, socketPath, hsN, Math.round(200 * q));
    rows.push({
      id: 'ipc.handshake.p50',
      what: 'handshake: connect + HELLO/WELCOME/READY, p50 (client side)',
      value: hs.p50,
      unit: 'µs',
      better: 'lower',
      target: { op: '<=', value: 200 },
      cpu: hs.cpu,
      note: `${hs.n} sequential connections; original design claimed ~500 µs; server-side mean accept→READY ${hs.serverMeanUs.toFixed(0)} µs`,
    });
    rows.push({ id: 'ipc.handshake.p99', what: 'handshake, p99', value: hs.p99, unit: 'µs', better: 'lower', cpu: hs.cpu });
    const gapN = Math.round(1000 * q);
    ctx.log(`handshakes x ${gapN}, 2 ms apart`);
    const hsGap = await handshakes(server, socketPath, gapN, Math.round(100 * q), 2);
    rows.push({
      id: 'ipc.handshake.idle.p50',
      what: 'handshake with the server idle 2 ms before each connect, p50',
      value: hsGap.p50,
      unit: 'µs',
      better: 'lower',
      baseline: 'ipc.handshake.p50',
      note: `${hsGap.n} connections; p99 ${hsGap.p99.toFixed(0)} µs; what a client that connects once meets`,
    });

    const client = await IpcClient.connect(socketPath);
    try {
      ctx.log(`request round trips x ${rttN} (64 B JSON, 64 B bytes)`);
      // Warmed until both processes run the request path optimised (a few thousand calls: with
      // a few hundred, p50s of 45 µs, cold code, then 5 µs), then three rounds, JSON and bytes
      // interleaved, each reported by its median round.
      for (const p of [JSON64, BYTES64]) await requestRtt(server, client, p, 10, Math.max(rttWarm, 5000));
      const rounds = { json: [] as Latency[], bytes: [] as Latency[] };
      for (let r = 0; r < 3; r++) {
        rounds.json.push(await requestRtt(server, client, JSON64, Math.round(rttN / 3), rttWarm));
        rounds.bytes.push(await requestRtt(server, client, BYTES64, Math.round(rttN / 3), rttWarm));
      }
      const rj = medianRound(rounds.json);
      const rb = medianRound(rounds.bytes);
      rows.push({
        id: 'rtt.bare.p50',
        what: '64 B round trip, bare Channel ping-pong (baseline), p50',
        value: b.rtt.p50,
        unit: 'µs',
        better: 'lower',
        cpu: b.rtt.cpu,
        note: `${b.rtt.n} round trips`,
      });
      rows.push({
        id: 'rtt.bare.p99',
        what: '64 B round trip, bare Channel ping-pong (baseline), p99',
        value: b.rtt.p99,
        unit: 'µs',
        better: 'lower',
        cpu: b.rtt.cpu,
      });
      rows.push({
        id: 'rtt.ipc.json.p50',
        what: 'request/response 64 B JSON, IpcClient↔IpcServer, p50',
        value: rj.p50,
        unit: 'µs',
        better: 'lower',
        baseline: 'rtt.bare.p50',
        cpu: rj.cpu,
        note: `protocol layer adds ${(rj.p50 - b.rtt.p50).toFixed(1)} µs at p50; median of 3 rounds (p50s ${p50s(rounds.json)})`,
      });
      rows.push({
        id: 'rtt.ipc.json.p99',
        what: 'request/response 64 B JSON, p99',
        value: rj.p99,
        unit: 'µs',
        better: 'lower',
        baseline: 'rtt.bare.p99',
        cpu: rj.cpu,
      });
      rows.push({
        id: 'rtt.ipc.bytes.p50',
        what: 'request/response 64 B bytes, IpcClient↔IpcServer, p50',
        value: rb.p50,
        unit: 'µs',
        better: 'lower',
        baseline: 'rtt.bare.p50',
        cpu: rb.cpu,
        note: `protocol layer adds ${(rb.p50 - b.rtt.p50).toFixed(1)} µs at p50; median of 3 rounds (p50s ${p50s(rounds.bytes)})`,
      });
      rows.push({
        id: 'rtt.ipc.bytes.p99',
        what: 'request/response 64 B bytes, p99',
        value: rb.p99,
        unit: 'µs',
        better: 'lower',
        baseline: 'rtt.bare.p99',
        cpu: rb.cpu,
      });

      ctx.log(`pipelined requests, 3 rounds x ${pipeN}, ${DEPTH} in flight (JSON, bytes interleaved)`);
      // Rounds of a fifth of a second each: one round alone moved by 1.5x between full runs.
      const pipeRounds = { json: [] as Pipelined[], bytes: [] as Pipelined[] };
      for (let r = 0; r < 3; r++) {
        pipeRounds.json.push(await pipelined(server, client, JSON64, pipeN, DEPTH));
        pipeRounds.bytes.push(await pipelined(server, client, BYTES64, pipeN, DEPTH));
      }
      const pj = medianRate(pipeRounds.json);
      const pb = medianRate(pipeRounds.bytes);
      const M = (r: number) => r / 1e6;
      rows.push({
        id: 'pipe.bare',
        what: `64 B echo, bare Channel, ${DEPTH} in flight (baseline)`,
        value: M(b.pipe.rate),
        unit: 'M msg/s',
        better: 'higher',
        cpu: b.pipe.cpu,
        note: `round trips per second; ${perReq(b.pipe.cpu, pipeN)}`,
      });
      rows.push({
        id: 'pipe.ipc.json',
        what: `requests/s, 64 B JSON, ${DEPTH} in flight`,
        value: M(pj.rate),
        unit: 'M req/s',
        better: 'higher',
        baseline: 'pipe.bare',
        // JSON pays its coding on both sides (about 1 µs a request in all), so its bar is lower.
        target: { op: '>=', value: 0.6 },
        cpu: pj.cpu,
        note: `median of 3 rounds of ${pipeN} (M req/s ${rates(pipeRounds.json)}); ${perReq(pj.cpu, pipeN)}`,
      });
      rows.push({
        id: 'pipe.ipc.bytes',
        what: `requests/s, 64 B bytes, ${DEPTH} in flight`,
        value: M(pb.rate),
        unit: 'M req/s',
        better: 'higher',
        baseline: 'pipe.bare',
        target: { op: '>=', value: 1 },
        cpu: pb.cpu,
        note: `median of 3 rounds of ${pipeN} (M req/s ${rates(pipeRounds.bytes)}); ${perReq(pb.cpu, pipeN)}`,
      });
    } finally {
      client.close();
    }
  });

  // The same round trip with both sides sleeping between messages (no polling window): every
  // hop pays a doorbell wake-up, but the figure does not depend on both processes having a core.
  await withServer({ channel: { idle: 'sleep' } }, [], async (server, socketPath) => {
    const client = await IpcClient.connect(socketPath, { channel: { idle: 'sleep' } });
    try {
      ctx.log(`request round trips x ${rttN}, idle 'sleep' on both sides`);
      const rs = await requestRtt(server, client, JSON64, rttN, rttWarm);
      rows.push({
        id: 'rtt.ipc.sleep.p50',
        what: "request/response 64 B JSON, idle 'sleep' both sides, p50",
        value: rs.p50,
        unit: 'µs',
        better: 'lower',
        cpu: rs.cpu,
        note: 'every hop is a doorbell wake-up',
      });
      rows.push({
        id: 'rtt.ipc.sleep.p99',
        what: "request/response 64 B JSON, idle 'sleep' both sides, p99",
        value: rs.p99,
        unit: 'µs',
        better: 'lower',
        cpu: rs.cpu,
      });
    } finally {
      client.close();
    }
  });

  const conns = ctx.quick ? 200 : 1000;
  ctx.log(`server RSS with ${conns} idle connections`);
  const rss = await rssPerConnection(conns, 4, ctx.log);
  rows.push({
    id: 'rss.per_conn',
    what: `server RSS growth per idle connection (${conns} connections, 4 client processes)`,
    value: rss.perConnKb,
    unit: 'KB',
    better: 'lower',
    target: { op: '<=', value: 64 },
    note: `VmRSS ${rss.beforeKb} → ${rss.afterKb} kB, ${rss.closedKb} kB after all closed; clients grow ${rss.clientPerConnKb.toFixed(1)} KB per connection; original claimed < 3 MB`,
  });
  // Polling needs a core per process: on a machine busy with other work the figures above
  // degrade (each hop can cost a whole polling window), so say how busy it was.
  rows.push({
    id: 'ipc.loadavg',
    what: '1-minute load average at start / end of this suite',
    value: Number(load()),
    unit: '',
    better: 'lower',
    note: `start ${loadStart}, end ${load()}, ${os.availableParallelism()} CPUs`,
  });
  return rows;
}

export const suite: Suite = {
  name: 'ipc',
  description: 'IpcClient/IpcServer in separate processes: handshake, round trip vs bare transport, pipelined requests, RSS per connection',
  run,
};

export { run };

if (require.main === module) {
  const quick = process.argv.includes('--quick');
  run({ quick, log: (m) => process.stderr.write(`  … ${m}\n`) })
    .then((rows) => {
      console.log(formatTable(`ipc: ${suite.description}`, rows));
      process.exit(0);
    })
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}
