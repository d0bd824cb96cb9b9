/**
 * Transport benchmarks: two Node processes connected by a bare channel (`lib/bare-pair.ts`),
 * against the baselines a user would otherwise pick, measured in the same run: `net` over a
 * Unix socket with 4-byte length-prefixed frames, and child_process IPC.
 *
 * Every row carries the CPU time (user+sys) both processes spent during the measurement, since
 * polling trades CPU for latency.
 */
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { type BarePair, socketPath, spawnBarePair } from './lib/bare-pair';
import { type BenchContext, type CpuReport, percentile, type Row, type Suite } from './lib/report';
import { FrameParser } from './lib/frames';
import { canPin, pin, type Placement, unpin } from './lib/placement';
import { channelPingPong } from './lib/pingpong';
import type { ChannelOptions } from '../src/transport/channel';
import { benchScript } from './lib/script';

const CHILD = benchScript('lib/transport-child');

// ---- CPU accounting ---------------------------------------------------------------------

interface CpuSnap {
  parent: NodeJS.CpuUsage;
  child: { user: number; system: number };
  t: number;
}

async function snapBefore(p: BarePair): Promise<CpuSnap> {
  const child = await p.childCpu();
  return { parent: process.cpuUsage(), child, t: performance.now() };
}

async function snapAfter(p: BarePair): Promise<CpuSnap> {
  const t = performance.now();
  const parent = process.cpuUsage();
  return { parent, child: await p.childCpu(), t };
}

function cpuBetween(a: CpuSnap, b: CpuSnap): CpuReport {
  return {
    parentMs: (b.parent.user + b.parent.system - a.parent.user - a.parent.system) / 1000,
    childMs: (b.child.user + b.child.system - a.child.user - a.child.system) / 1000,
    wallMs: b.t - a.t,
  };
}

// ---- CPU placement ----------------------------------------------------------------------

/** Spawns the bench child (optionally pinned), runs `f`, and always closes the pair. */
async function withChild<T>(
  options: Parameters<typeof spawnBarePair>[1],
  f: (p: BarePair) => Promise<T>,
  placement: Placement = 'free',
): Promise<T> {
  let restore: string | null = null;
  if (placement !== 'free') restore = pin(process.pid, 0);
  try {
    const p = await spawnBarePair(CHILD, options);
    try {
      if (placement !== 'free') pin(p.child.pid!, placement === 'same-cpu' ? 0 : 1);
      return await f(p);
    } finally {
      await p.close();
    }
  } finally {
    if (restore) unpin(process.pid, restore);
  }
}

/** A Unix-socket server at a fresh path, and the child's connection to it (made by `connect`). */
async function unixServer(connect: (sockPath: string) => Promise<unknown>): Promise<{ sock: net.Socket; close: () => void }> {
  const file = socketPath('net');
  const server = net.createServer();
  server.listen(file);
  await once(server, 'listening');
  const conn = once(server, 'connection') as Promise<[net.Socket]>;
  await connect(file);
  const [sock] = await conn;
  return {
    sock,
    close: () => {
      sock.destroy();
      server.close();
      fs.rmSync(file, { force: true });
    },
  };
}

// ---- round trips ------------------------------------------------------------------------

interface Latency {
  p50: number;
  p99: number;
  /** Round trips measured. */
  n: number;
  cpu: CpuReport;
  /** p50 of every round, when several were run (the reported one is the median). */
  rounds?: number[];
}

function summarize(samplesMs: Float64Array, cpu: CpuReport): Latency {
  const sorted = Float64Array.from(samplesMs).sort();
  return { p50: percentile(sorted, 50) * 1000, p99: percentile(sorted, 99) * 1000, n: sorted.length, cpu };
}

/** The round with the median p50, remembering every round's p50. */
function medianRound(results: Latency[]): Latency {
  const byP50 = [...results].sort((x, y) => x.p50 - y.p50);
  return { ...byP50[Math.floor(byP50.length / 2)], rounds: results.map((r) => r.p50) };
}

/**
 * One measured round of ping-pong with 64-byte messages, after a warm-up; `run(n)` drives `n`
 * round trips and returns their times. The next ping goes out from the handler of the previous
 * pong, so messages flow continuously.
 */
async function pingPong(p: BarePair, n: number, warm: number, run: (n: number) => Promise<Float64Array>): Promise<Latency> {
  await run(warm);
  const a = await snapBefore(p);
  const samples = await run(n);
  const b = await snapAfter(p);
  return summarize(samples, cpuBetween(a, b));
}

export function rttChannel(opts: ChannelOptions, n: number, warm: number, placement: Placement = 'free'): Promise<Latency> {
  return withChild(
    { channel: opts },
    async (p) => {
      await p.link.request({ type: 'pong' });
      const ch = p.channel!;
      return pingPong(p, n, warm, (count) => channelPingPong(ch, count));
    },
    placement,
  );
}

export function rttNet(n: number, warm: number, placement: Placement = 'free'): Promise<Latency> {
  return withChild(
    { server: 'none' },
    async (p) => {
      const { sock, close } = await unixServer((file) => p.link.request({ type: 'net-pong', path: file }));
      try {
        const frame = Buffer.alloc(4 + 64);
        frame.writeUInt32LE(64, 0);
        let onFrame: () => void = () => undefined;
        const parser = new FrameParser(() => onFrame(), true);
        sock.on('data', (d: Buffer) => parser.push(d));
        return await pingPong(p, n, warm, (count) => {
          return new Promise<Float64Array>((resolve) => {
            const samples = new Float64Array(count);
            let i = 0;
            let t0 = 0;
            onFrame = () => {
              samples[i++] = performance.now() - t0;
              if (i === count) return resolve(samples);
              t0 = performance.now();
              sock.write(frame);
            };
            t0 = performance.now();
            sock.write(frame);
          });
        });
      } finally {
        close();
      }
    },
    placement,
  );
}

export function rttIpc(n: number, warm: number, placement: Placement = 'free'): Promise<Latency> {
  return withChild(
    { server: 'none', ipc: 'json' },
    async (p) => {
      await p.link.request({ type: 'ipc-pong' });
      const payload = 'x'.repeat(64);
      let onMsg: () => void = () => undefined;
      p.child.on('message', () => onMsg());
      return pingPong(p, n, warm, (count) => {
        return new Promise<Float64Array>((resolve) => {
          const samples = new Float64Array(count);
          let i = 0;
          let t0 = 0;
          onMsg = () => {
            samples[i++] = performance.now() - t0;
            if (i === count) return resolve(samples);
            t0 = performance.now();
            p.child.send(payload);
          };
          t0 = performance.now();
          p.child.send(payload);
        });
      });
    },
    placement,
  );
}

// ---- one-way streams --------------------------------------------------------------------

interface Stream {
  /** Messages per second. */
  rate: number;
  /** Bytes per second. */
  bytesPerSec: number;
  cpu: CpuReport;
}

/** How the sender calls `send()`. */
type SendStyle = 'batched-await' | 'await-each' | 'try-send';

/** One-way stream of `count` messages of `size` bytes, measured until the child has them all. */
export function streamChannel(opts: ChannelOptions, size: number, count: number, warm: number, style: SendStyle): Promise<Stream> {
  return withChild({ channel: opts }, async (p) => {
    const ch = p.channel!;
    const msg = new Uint8Array(size).fill(0xab);
    const run = async (n: number): Promise<number> => {
      await p.link.request({ type: 'sink', count: n });
      const sunk = p.link.next('sunk', 300_000);
      const t0 = performance.now();
      if (style === 'await-each') {
        for (let i = 0; i < n; i++) await ch.send(msg);
      } else if (style === 'try-send') {
        for (let i = 0; i < n; i++) if (!ch.trySend(msg)) await ch.send(msg);
      } else {
        // One send() per message; wait for the ring only once per 1024 (backpressure kept,
        // the queue never holds more than 1024 messages).
        let last: Promise<void> = Promise.resolve();
        for (let i = 0; i < n; i++) {
          last = ch.send(msg);
          if ((i & 1023) === 1023) await last;
        }
        await last;
      }
      await sunk;
      return performance.now() - t0;
    };
    await run(warm);
    const a = await snapBefore(p);
    const ms = await run(count);
    const b = await snapAfter(p);
    return { rate: count / (ms / 1000), bytesPerSec: (count * size) / (ms / 1000), cpu: cpuBetween(a, b) };
  });
}

/** The same over a Unix socket: one `write()` per message, waiting for `drain` when told to. */
export function streamNet(size: number, count: number, warm: number): Promise<Stream> {
  return withChild({ server: 'none' }, async (p) => {
    const frame = Buffer.alloc(4 + size, 0xab);
    frame.writeUInt32LE(size, 0);
    let result: Stream | null = null;
    for (const n of [warm, count]) {
      const { sock, close } = await unixServer((file) => p.link.request({ type: 'net-sink', path: file, count: n }));
      try {
        const sunk = p.link.next('sunk', 300_000);
        const a = await snapBefore(p);
        const t0 = performance.now();
        for (let i = 0; i < n; i++) {
          if (!sock.write(frame)) await once(sock, 'drain');
        }
        await sunk;
        const ms = performance.now() - t0;
        const b = await snapAfter(p);
        result = { rate: n / (ms / 1000), bytesPerSec: (n * size) / (ms / 1000), cpu: cpuBetween(a, b) };
      } finally {
        await p.link.request({ type: 'net-close' });
        close();
      }
    }
    return result!;
  });
}

// ---- idle -------------------------------------------------------------------------------

/** CPU both processes spend over ~1 s on an open, idle channel (after some traffic). */
export function idleCpu(opts: ChannelOptions, windowMs: number): Promise<CpuReport> {
  return withChild({ channel: opts }, async (p) => {
    await p.link.request({ type: 'pong' });
    const ch = p.channel!;
    await new Promise<void>((resolve) => {
      let n = 0;
      ch.onMessage(() => {
        if (++n === 1000) return resolve();
        ch.trySend(new Uint8Array(64));
      });
      void ch.send(new Uint8Array(64));
    });
    // Let the adaptive window run out and both sides go to sleep.
    await new Promise((r) => setTimeout(r, 300));
    const a = await snapBefore(p);
    await new Promise((r) => setTimeout(r, windowMs));
    const b = await snapAfter(p);
    return cpuBetween(a, b);
  });
}

// ---- the suite --------------------------------------------------------------------------

const us = (v: number) => `${v.toFixed(1)} µs`;

/** Rounds of each round-trip configuration. */
const RTT_ROUNDS = 3;

async function run(ctx: BenchContext): Promise<Row[]> {
  const q = ctx.quick ? 0.1 : 1;
  const rttN = Math.round(20_000 * q);
  const rttWarm = Math.round(2_000 * q);
  const rows: Row[] = [];
  const addLatency = (id: string, what: string, l: Latency, extra: Partial<Row> = {}, p99Note = '') => {
    const spread =
      l.rounds && l.rounds.length > 1
        ? `median of ${l.rounds.length} rounds of ${l.n} (p50s ${l.rounds.map((r) => r.toFixed(1)).join(' / ')})`
        : `${l.n} round trips`;
    rows.push({
      id: `${id}.p50`,
      what: `${what}, p50`,
      value: l.p50,
      unit: 'µs',
      better: 'lower',
      cpu: l.cpu,
      ...extra,
      note: [spread, extra.note].filter(Boolean).join('; '),
    });
    rows.push({
      id: `${id}.p99`,
      what: `${what}, p99`,
      value: l.p99,
      unit: 'µs',
      better: 'lower',
      cpu: l.cpu,
      baseline: extra.baseline?.replace('.p50', '.p99'),
      note: p99Note,
    });
  };

  // 1. Round trips. The configurations take turns, round after round, so that each samples the
  // same stretches of time on a machine that other work shares; each is reported by its median
  // round.
  const configs: Array<{ id: string; measure: () => Promise<Latency> }> = [
    { id: 'net', measure: () => rttNet(rttN, rttWarm) },
    { id: 'ipc', measure: () => rttIpc(rttN, rttWarm) },
    { id: 'adaptive', measure: () => rttChannel({}, rttN, rttWarm) },
    { id: 'poll', measure: () => rttChannel({ idle: 'poll' }, rttN, rttWarm) },
    { id: 'sleep', measure: () => rttChannel({ idle: 'sleep' }, rttN, rttWarm) },
    { id: 'thread', measure: () => rttChannel({ idle: 'sleep', wake: 'thread' }, rttN, rttWarm) },
  ];
  const results = new Map<string, Latency[]>(configs.map((c) => [c.id, []]));
  for (let r = 0; r < RTT_ROUNDS; r++) {
    ctx.log(`round trips, round ${r + 1} of ${RTT_ROUNDS}: ${configs.map((c) => c.id).join(', ')} (${rttN} each)`);
    for (const c of configs) results.get(c.id)!.push(await c.measure());
  }
  const rtt = (id: string) => medianRound(results.get(id)!);
  const [netRtt, ipcRtt, adaptive, poll, sleep, thread] = ['net', 'ipc', 'adaptive', 'poll', 'sleep', 'thread'].map(rtt);

  addLatency('rtt.net', '64 B round trip, net Unix socket (baseline)', netRtt);
  addLatency('rtt.ipc', '64 B round trip, child_process IPC json', ipcRtt, { baseline: 'rtt.net.p50' });
  // Both sides poll while messages flow, so this should keep two cores busy. Much less means
  // the processes shared one CPU: each side then has to yield (after 20 µs idle) or park before
  // the other runs, and a round trip costs tens of µs.
  const adaptiveCores = (adaptive.cpu.parentMs + adaptive.cpu.childMs) / adaptive.cpu.wallMs;
  addLatency('rtt.adaptive', '64 B round trip, channel adaptive (default)', adaptive, {
    baseline: 'rtt.net.p50',
    target: { op: '<=', value: 5 },
    note:
      adaptiveCores < 1.4
        ? `only ${adaptiveCores.toFixed(2)} cores busy: the processes shared a CPU, so each polled out its 200 µs window before yielding`
        : '',
  });
  addLatency('rtt.poll', '64 B round trip, channel poll', poll, { baseline: 'rtt.net.p50' });
  addLatency(
    'rtt.sleep',
    '64 B round trip, channel sleep (from sleep)',
    sleep,
    { baseline: 'rtt.net.p50', target: { op: '<=', value: 25 } },
    'every hop pays a wake-up',
  );
  addLatency(
    'rtt.thread',
    "64 B round trip, channel sleep, wake 'thread'",
    thread,
    { baseline: 'rtt.net.p50' },
    `${us(thread.p50 - sleep.p50)} more than uv_poll at p50`,
  );

  // 1b. Where the two processes run decides what a wake-up costs (same CPU: a context switch;
  // another CPU: waking an idle CPU, which in a VM is an inter-processor interrupt and a VM
  // exit) and whether polling can work at all (on one CPU the poller keeps its peer off it).
  if (canPin()) {
    const n = Math.round(5_000 * q);
    const warm = Math.round(500 * q);
    ctx.log(`round trips with pinned processes (${n} each)`);
    const placed: Array<[string, string, () => Promise<Latency>, Partial<Row>?]> = [
      ['pin.net.same', 'net Unix socket, both on one CPU', () => rttNet(n, warm, 'same-cpu')],
      ['pin.net.cross', 'net Unix socket, on two CPUs', () => rttNet(n, warm, 'cross-cpu')],
      [
        'pin.sleep.same',
        'channel sleep, both on one CPU',
        () => rttChannel({ idle: 'sleep' }, n, warm, 'same-cpu'),
        { baseline: 'pin.net.same.p50', target: { op: '<=', value: 25 } },
      ],
      [
        'pin.sleep.cross',
        'channel sleep, on two CPUs',
        () => rttChannel({ idle: 'sleep' }, n, warm, 'cross-cpu'),
        { baseline: 'pin.net.cross.p50', target: { op: '<=', value: 25 } },
      ],
      [
        'pin.adaptive.same',
        'channel adaptive, both on one CPU',
        () => rttChannel({}, Math.round(n / 5), warm, 'same-cpu'),
        { baseline: 'pin.net.same.p50', note: 'while polling idle, each side yields the CPU after 20 µs so the other can run' },
      ],
      [
        'pin.adaptive.cross',
        'channel adaptive, on two CPUs',
        () => rttChannel({}, n, warm, 'cross-cpu'),
        { baseline: 'pin.net.cross.p50', target: { op: '<=', value: 5 } },
      ],
    ];
    for (const [id, what, measure, extra] of placed) addLatency(id, `64 B round trip, ${what}`, await measure(), extra);
  }

  // 2. One-way throughput of 64-byte messages.
  const tputN = Math.round(5_000_000 * q);
  const tputWarm = Math.round(200_000 * q);
  const netN = Math.round(400_000 * q);
  ctx.log(`throughput: net, 64 B x ${netN}`);
  const netTput = await streamNet(64, netN, Math.round(20_000 * q));
  ctx.log(`throughput: channel, 64 B x ${tputN}, send() per message, await every 1024th`);
  const tput = await streamChannel({}, 64, tputN, tputWarm, 'batched-await');
  ctx.log(`throughput: channel, 64 B x ${tputN}, await send() per message`);
  const tputAwait = await streamChannel({}, 64, tputN, tputWarm, 'await-each');
  ctx.log(`throughput: channel, 64 B x ${tputN}, trySend() per message`);
  const tputTry = await streamChannel({}, 64, tputN, tputWarm, 'try-send');
  const mps = (s: Stream) => s.rate / 1e6;
  rows.push({
    id: 'tput.net',
    what: '64 B one way, net Unix socket, write() per msg (baseline)',
    value: mps(netTput),
    unit: 'M msg/s',
    better: 'higher',
    cpu: netTput.cpu,
    note: `${netN} msgs`,
  });
  rows.push({
    id: 'tput.channel',
    what: '64 B one way, channel default, send() per msg',
    value: mps(tput),
    unit: 'M msg/s',
    better: 'higher',
    baseline: 'tput.net',
    target: { op: '>=', value: 5 },
    cpu: tput.cpu,
    note: `${tputN} msgs; the sender awaits every 1024th promise`,
  });
  rows.push({
    id: 'tput.await',
    what: '64 B one way, channel default, await send() per msg',
    value: mps(tputAwait),
    unit: 'M msg/s',
    better: 'higher',
    baseline: 'tput.net',
    cpu: tputAwait.cpu,
    note: 'one await (microtask) per message',
  });
  rows.push({
    id: 'tput.try',
    what: '64 B one way, channel default, trySend() per msg',
    value: mps(tputTry),
    unit: 'M msg/s',
    better: 'higher',
    baseline: 'tput.net',
    cpu: tputTry.cpu,
    note: 'await send() only when the ring is full',
  });

  // 3. Bandwidth.
  const gbps = (s: Stream) => s.bytesPerSec / 1e9;
  const KiB64 = 64 * 1024;
  const MiB = 1024 * 1024;
  const bwPlan = [
    { id: 'bw.64k', label: '64 KiB', size: KiB64, n: Math.round(100_000 * q), netN: Math.round(20_000 * q), target: 20 },
    { id: 'bw.1m', label: '1 MiB', size: MiB, n: Math.round(6_000 * q), netN: Math.round(2_000 * q), target: 8 },
  ];
  for (const b of bwPlan) {
    ctx.log(`bandwidth: net, ${b.label} x ${b.netN}`);
    const netBw = await streamNet(b.size, b.netN, Math.max(10, Math.round(b.netN / 10)));
    ctx.log(`bandwidth: channel, ${b.label} x ${b.n}`);
    const bw = await streamChannel({}, b.size, b.n, Math.max(10, Math.round(b.n / 10)), 'batched-await');
    rows.push({
      id: `${b.id}.net`,
      what: `${b.label} one way, net Unix socket (baseline)`,
      value: gbps(netBw),
      unit: 'GB/s',
      better: 'higher',
      cpu: netBw.cpu,
      note: `${b.netN} msgs`,
    });
    rows.push({
      id: `${b.id}.channel`,
      what: `${b.label} one way, channel default (1 MiB ring)`,
      value: gbps(bw),
      unit: 'GB/s',
      better: 'higher',
      baseline: `${b.id}.net`,
      target: { op: '>=', value: b.target },
      cpu: bw.cpu,
      note: `${b.n} msgs; consumer touches first+last byte${b.size > MiB / 4 - 8 ? '; > ring/4, so fragmented and reassembled' : ''}`,
    });
  }
  ctx.log(`bandwidth: channel, 1 MiB x ${bwPlan[1].n}, 8 MiB ring`);
  const bwBig = await streamChannel({ capacity: 8 * MiB }, MiB, bwPlan[1].n, Math.max(10, Math.round(bwPlan[1].n / 10)), 'batched-await');
  rows.push({
    id: 'bw.1m.ring8m',
    what: '1 MiB one way, channel with an 8 MiB ring',
    value: gbps(bwBig),
    unit: 'GB/s',
    better: 'higher',
    baseline: 'bw.1m.net',
    cpu: bwBig.cpu,
    note: 'messages fit in one record: read in place',
  });

  // 4. Idle.
  const idleMs = ctx.quick ? 300 : 1000;
  ctx.log(`idle CPU over ${idleMs} ms: default and poll`);
  const idle = await idleCpu({}, idleMs);
  const idlePoll = await idleCpu({ idle: 'poll' }, idleMs);
  const perSec = (c: CpuReport) => ((c.parentMs + c.childMs) / c.wallMs) * 1000;
  rows.push({
    id: 'idle.default',
    what: 'idle connection, default mode: CPU of both processes',
    value: perSec(idle),
    unit: 'ms CPU/s',
    better: 'lower',
    cpu: idle,
    target: { op: '<=', value: 5 },
    note: 'target "none": both sleep in epoll',
  });
  rows.push({
    id: 'idle.poll',
    what: 'idle connection, poll mode: CPU of both processes',
    value: perSec(idlePoll),
    unit: 'ms CPU/s',
    better: 'lower',
    cpu: idlePoll,
    note: 'for contrast: a core per side',
  });
  return rows;
}

export const suite: Suite = {
  name: 'transport',
  description: 'shared-memory channel between two Node processes vs Unix socket and child_process IPC',
  run,
};
