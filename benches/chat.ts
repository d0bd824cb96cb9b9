/**
 * Chat streaming benchmark: what the IPC hop costs a chat reply.
 *
 * A mock OpenAI server floods a reply of 10,000 one-character chunks as fast as the socket
 * takes them. The same chat backend (real AI SDK parsing, real router) consumes it two ways:
 *
 * - **in-process** (the baseline): the consumer is in the router's own process;
 * - **IPC**: the router runs behind an IpcServer, and the consumer is an IpcClient in another
 *   process.
 *
 * ```text
 *   child 1: mock provider ──HTTP──▶ child 2: router ─┬─ in-process consumer (baseline)
 *                                                      └─ IpcServer ══IPC══▶ this process: IpcClient
 * ```
 *
 * The mock has a process of its own because a real provider is elsewhere, and because it
 * writes its flood in synchronous bursts of tens of milliseconds that would stall whatever
 * shared its event loop.
 *
 * Measured, for each mode:
 * - **chunks/s**: deltas received by the consumer ÷ time from sending the request to `finish`;
 * - **per-chunk delay**: from the moment the router hands a delta over (stamped in the router's
 *   process) to the moment the consumer has it (stamped by the consumer). Stamps come from
 *   `process.hrtime`, i.e. CLOCK_MONOTONIC, one clock for every process of the machine.
 *   In-process this is the async-generator hand-off; over IPC it is encoding, the ring, the
 *   wake-up, decoding and the client's queue. Under the flood it also holds time queued behind
 *   earlier chunks, so a paced stream (a chunk every 5 ms, as a model streams) is measured as
 *   well: there each chunk pays the bare hop, wake-up included; and once more with a client
 *   that never sleeps (`idle: 'poll'`), to separate the wake-up from the rest of the path.
 *
 * CPU per row: `parent` is the consumer's process (this one, for IPC; none in-process), `child`
 * the router's. The mock's CPU is the same in both modes and is left out.
 *
 * Run alone: `node --import=tsx benches/chat.ts [--quick]`; in the suite runner as `chat`.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { type ChatEvent, loadConfig } from '../dist/ai';
import { CHAT_METHOD, createChatBackend } from '../dist/backend';
import { IpcClient } from '../dist/ipc/client';
import { IpcServer } from '../dist/ipc/server';
import type { MockScript } from '../__test__/ai/mocks/harness';
import { startOpenAIMock } from '../__test__/ai/mocks/openai';
import { type BenchContext, type CpuReport, formatTable, percentile, type Row, type Suite } from './lib/report';

const FLOOD_CHUNKS = 10_000;
const PACE_MS = 5;
const ROLE_ENV = 'LAPCE_CHAT_BENCH_ROLE';
const PAYLOAD = { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'flood me' }] };

/** Nanoseconds on CLOCK_MONOTONIC: comparable between the processes of one machine. */
const nowNs = (): number => Number(process.hrtime.bigint());
const cpuMsSince = (start: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
};

/** Messages from this process to a child. */
type Command =
  | { cmd: 'inproc' } // router: consume one chat in-process
  | { cmd: 'stamps' } // router: hand-off stamps and CPU time of the last chat
  | { cmd: 'enqueue'; script: MockScript } // mock: script the next request
  | { cmd: 'stop' };

/** One chat as its consumer saw it. */
interface Run {
  chunks: number;
  wallMs: number;
  /** Per-chunk delay, µs, router hand-off → consumer. */
  delaysUs: number[];
  cpu: CpuReport;
}

// ─── child: the router ───────────────────────────────────────────────────────

/**
 * The chat backend on the mock, served on `socketPath` and callable in-process. Every delta is
 * stamped as the router hands it over; the stamps of the last chat wait for the parent.
 */
async function routerProcess(origin: string, socketPath: string): Promise<void> {
  const logger = pino({ level: 'silent' });
  const config = loadConfig({
    env: {},
    overrides: { default: 'openai', providers: { openai: { baseURL: `${origin}/v1`, apiKey: 'sk-bench' } }, retry: { maxAttempts: 1 } },
  });
  const server = new IpcServer({ socketPath, logger });
  const backend = createChatBackend({ config, logger, registry: server.registry });
  let stamps: number[] = [];
  let cpuMs = 0;

  async function* stamped(payload: unknown, signal: AbortSignal): AsyncGenerator<ChatEvent> {
    stamps = [];
    const cpu = process.cpuUsage();
    try {
      for await (const ev of backend.chat(payload, { signal })) {
        if (ev.type === 'delta') stamps.push(nowNs());
        yield ev;
      }
    } finally {
      cpuMs = cpuMsSince(cpu);
    }
  }
  server.handleStream(CHAT_METHOD, (payload, ctx) => stamped(payload, ctx.signal));
  await server.listen();

  process.on('message', async (m: Command & { id: number }) => {
    if (m.cmd === 'inproc') {
      const received: number[] = [];
      const t0 = nowNs();
      for await (const ev of stamped(PAYLOAD, new AbortController().signal)) if (ev.type === 'delta') received.push(nowNs());
      const wallMs = (nowNs() - t0) / 1e6;
      const run: Run = {
        chunks: received.length,
        wallMs,
        delaysUs: received.map((t, i) => (t - stamps[i]) / 1000),
        cpu: { parentMs: 0, childMs: cpuMs, wallMs },
      };
      process.send!({ id: m.id, run });
    } else if (m.cmd === 'stamps') {
      process.send!({ id: m.id, stamps, cpuMs });
    } else if (m.cmd === 'stop') {
      await server.close({ deadlineMs: 1000 });
      process.send!({ id: m.id });
      process.disconnect();
    }
  });
  process.send!({ ready: true });
}

// ─── child: the mock provider ────────────────────────────────────────────────

/** The mock OpenAI API: floods by default, scripted by `enqueue`. */
async function mockProcess(): Promise<void> {
  const mock = await startOpenAIMock({ apiKey: 'sk-bench', defaultScript: { kind: 'flood', count: FLOOD_CHUNKS } });
  process.on('message', async (m: Command & { id: number }) => {
    if (m.cmd === 'enqueue') mock.enqueue(m.script);
    if (m.cmd === 'stop') await mock.close();
    process.send!({ id: m.id });
    if (m.cmd === 'stop') process.disconnect();
  });
  process.send!({ ready: true, origin: mock.origin });
}

// ─── parent ──────────────────────────────────────────────────────────────────

/** A child process of this benchmark, called over the fork channel. */
class Child {
  private nextId = 1;
  private readonly waiting = new Map<number, (m: any) => void>();
  private constructor(
    readonly child: ChildProcess,
    /** What the child said when it was ready. */
    readonly hello: Record<string, unknown>,
  ) {
    child.on('message', (m: any) => {
      const w = this.waiting.get(m.id);
      if (w) {
        this.waiting.delete(m.id);
        w(m);
      }
    });
  }

  /** Fork this file in `role`; resolves once the child says it is ready. */
  static async start(role: 'router' | 'mock', env: Record<string, string> = {}): Promise<Child> {
    // Same node flags as ours (tsx's loader when we run from source), so the child runs this file as we do.
    const child = fork(__filename, [], {
      env: { ...process.env, ...env, [ROLE_ENV]: role },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const hello = await new Promise<Record<string, unknown>>((resolve, reject) => {
      child.once('message', (m: Record<string, unknown>) => resolve(m));
      child.once('exit', (code) => reject(new Error(`${role} process exited (${code}) before it was ready`)));
    });
    return new Child(child, hello);
  }

  call<T = unknown>(command: Command): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, resolve);
      this.child.send({ ...command, id }, (err) => err && reject(err));
    });
  }
}

/** One chat through an IpcClient in this process. */
async function ipcRun(client: IpcClient, router: Child): Promise<Run> {
  const received: number[] = [];
  const cpu = process.cpuUsage();
  const t0 = nowNs();
  for await (const ev of client.stream<ChatEvent>(CHAT_METHOD, PAYLOAD)) if (ev.type === 'delta') received.push(nowNs());
  const wallMs = (nowNs() - t0) / 1e6;
  const parentMs = cpuMsSince(cpu);
  const { stamps, cpuMs } = await router.call<{ stamps: number[]; cpuMs: number }>({ cmd: 'stamps' });
  if (stamps.length !== received.length) throw new Error(`the router sent ${stamps.length} deltas, the client got ${received.length}`);
  return {
    chunks: received.length,
    wallMs,
    delaysUs: received.map((t, i) => (t - stamps[i]) / 1000),
    cpu: { parentMs, childMs: cpuMs, wallMs },
  };
}

/** Several runs pooled: median throughput, delay percentiles over every chunk, mean CPU. */
interface Pooled {
  chunksPerSec: number;
  p50: number;
  p99: number;
  min: number;
  cpu: CpuReport;
  n: number;
}

function pool(runs: Run[]): Pooled {
  const cps = runs.map((r) => r.chunks / (r.wallMs / 1000)).sort((a, b) => a - b);
  const delays = runs.flatMap((r) => r.delaysUs).sort((a, b) => a - b);
  const mean = (f: (c: CpuReport) => number) => runs.reduce((n, r) => n + f(r.cpu), 0) / runs.length;
  return {
    chunksPerSec: cps[Math.floor(cps.length / 2)],
    p50: percentile(delays, 50),
    p99: percentile(delays, 99),
    min: delays[0],
    cpu: { parentMs: mean((c) => c.parentMs), childMs: mean((c) => c.childMs), wallMs: mean((c) => c.wallMs) },
    n: delays.length,
  };
}

/** Rows for one scenario: in-process baselines, then the IPC figures against them. */
function rowsFor(id: string, name: string, r: { inproc: Pooled; ipc: Pooled }, opts: { throughput: boolean; note: string }): Row[] {
  const rows: Row[] = [];
  if (opts.throughput) {
    rows.push(
      {
        id: `chat.${id}.inproc.rate`,
        what: `${name}: chunks/s, in-process (baseline)`,
        value: r.inproc.chunksPerSec,
        unit: 'chunks/s',
        better: 'higher',
        cpu: r.inproc.cpu,
      },
      {
        id: `chat.${id}.ipc.rate`,
        what: `${name}: chunks/s, IPC client in another process`,
        value: r.ipc.chunksPerSec,
        unit: 'chunks/s',
        better: 'higher',
        baseline: `chat.${id}.inproc.rate`,
        cpu: r.ipc.cpu,
        note: 'median run',
      },
    );
  }
  for (const p of ['p50', 'p99'] as const) {
    rows.push(
      {
        id: `chat.${id}.inproc.${p}`,
        what: `${name}: per-chunk delay, in-process (baseline), ${p}`,
        value: r.inproc[p],
        unit: 'µs',
        better: 'lower',
      },
      {
        id: `chat.${id}.ipc.${p}`,
        what: `${name}: per-chunk delay, IPC client, ${p}`,
        value: r.ipc[p],
        unit: 'µs',
        better: 'lower',
        baseline: `chat.${id}.inproc.${p}`,
        note: `added by IPC ${(r.ipc[p] - r.inproc[p]).toFixed(1)} µs; ${opts.note}; ${r.ipc.n} chunks`,
      },
    );
  }
  return rows;
}

/**
 * Run the benchmark: a warm-up, then `quick` ? 1 : 5 runs of each scenario, alternating the
 * modes so that drift (other load, frequency) hits both alike.
 */
export async function run(ctx: Pick<BenchContext, 'quick'> & Partial<Pick<BenchContext, 'log'>>): Promise<Row[]> {
  const log = ctx.log ?? (() => {});
  const runs = ctx.quick ? 1 : 5;
  const pacedCount = ctx.quick ? 50 : 200;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lapce-chat-bench-'));
  const socketPath = path.join(dir, 'ai.sock');
  const mock = await Child.start('mock');
  const router = await Child.start('router', { BENCH_ORIGIN: String(mock.hello.origin), BENCH_SOCKET: socketPath });
  const client = await IpcClient.connect(socketPath, { name: 'chat-bench' });
  try {
    const measure = async (script: MockScript | undefined, n: number, ipcClient = client) => {
      const inproc: Run[] = [];
      const ipc: Run[] = [];
      for (let i = 0; i < n; i++) {
        if (script) await mock.call({ cmd: 'enqueue', script });
        inproc.push((await router.call<{ run: Run }>({ cmd: 'inproc' })).run);
        if (script) await mock.call({ cmd: 'enqueue', script });
        ipc.push(await ipcRun(ipcClient, router));
      }
      return { inproc: pool(inproc), ipc: pool(ipc) };
    };

    log('chat: warm-up');
    await measure({ kind: 'flood', count: 2000 }, 1);
    log(`chat: flood of ${FLOOD_CHUNKS} chunks × ${runs} per mode`);
    const flood = await measure(undefined, runs);
    const paced: MockScript = { kind: 'stream', chunks: Array.from({ length: pacedCount }, () => 'x'), delayMs: PACE_MS };
    log(`chat: paced stream of ${pacedCount} chunks × ${runs} per mode`);
    const slow = await measure(paced, runs);
    // A client that never sleeps keeps a core busy while it is open: connect it only for this.
    const polling = await IpcClient.connect(socketPath, { name: 'chat-bench-poll', channel: { idle: 'poll' } });
    const slowPolling = await measure(paced, runs, polling).finally(() => polling.close());
    if (Math.min(flood.ipc.min, slow.ipc.min, slowPolling.ipc.min) < 0)
      throw new Error('negative delay: the processes do not share a clock');

    const pacedName = `paced, 1 chunk/${PACE_MS} ms`;
    return [
      ...rowsFor('flood', `flood of ${FLOOD_CHUNKS / 1000}k`, flood, {
        throughput: true,
        // With few CPUs, mock, router and client contend while the mock is still writing: the
        // tail is then the scheduler's time slice as much as the IPC path.
        note: `includes time queued behind earlier chunks, and descheduled (${os.cpus().length} CPUs for 3 busy processes)`,
      }),
      ...rowsFor('paced', pacedName, slow, {
        throughput: false,
        note: 'no queueing; the client (default idle mode) sleeps between chunks and is woken by its doorbell',
      }),
      ...rowsFor('paced-poll', `${pacedName}, polling client`, slowPolling, {
        throughput: false,
        note: "client with idle: 'poll', never sleeps: the path without the wake-up",
      }),
    ];
  } finally {
    client.close();
    await router.call({ cmd: 'stop' });
    await mock.call({ cmd: 'stop' });
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The suite, for `benches/run.ts`. */
export const suite: Suite = {
  name: 'chat',
  description:
    "chat reply streamed from a mock provider through the router: IPC client in another process vs consumer in the router's process; delay = router hand-off → consumer",
  run,
};

// ─── entry points ────────────────────────────────────────────────────────────

const role = process.env[ROLE_ENV];
if (role === 'router' || role === 'mock') {
  (role === 'router' ? routerProcess(process.env.BENCH_ORIGIN!, process.env.BENCH_SOCKET!) : mockProcess()).catch((e) => {
    console.error(`chat bench ${role} process failed:`, e);
    process.exitCode = 1;
    process.disconnect?.();
  });
} else if (require.main === module) {
  const quick = process.argv.includes('--quick');
  console.log(
    `chat benchmark — ${process.version}, ${os.cpus().length} CPUs, load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}${quick ? ' (quick)' : ''}\n`,
  );
  run({ quick, log: (m) => process.stderr.write(`  … ${m}\n`) }).then(
    (rows) => console.log(formatTable(`chat: ${suite.description}`, rows)),
    (e) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
