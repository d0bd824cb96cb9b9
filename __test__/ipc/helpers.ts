/**
 * Shared helpers of the IPC tests: temp socket paths, fd counting, polling with a deadline,
 * servers and clients in this process or in children driven by JSON lines, and metric lookups.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { Writable } from 'node:stream';
import type { ExecutionContext } from 'ava';
import pino, { type Logger } from 'pino';
import { IpcError } from '../../src/errors';
import { IpcClient, type IpcClientOptions } from '../../src/ipc/client';
import { ControlConnection } from '../../src/ipc/control-connection';
import { clientHandshake, type Connected } from '../../src/ipc/handshake';
import { controlPath } from '../../src/ipc/paths';
import { IpcServer, type IpcServerOptions } from '../../src/ipc/server';
import { installHandlers, type ProbeEvent } from './fixtures/handlers';
import { decodeFrame, type Frame } from '../../src/protocol/frame';

export const SERVER_SCRIPT = path.join(__dirname, 'fixtures', 'server.ts');
export const CLIENT_SCRIPT = path.join(__dirname, 'fixtures', 'client.ts');

/** Whatever can run cleanups: a test's ExecutionContext, or a {@link Scope} for hooks. */
export interface Owner {
  teardown(fn: () => unknown): void;
}

/** Cleanups for resources made in `test.before`: call `run()` from `test.after.always`. */
export class Scope implements Owner {
  private readonly fns: Array<() => unknown> = [];
  teardown(fn: () => unknown): void {
    this.fns.push(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.fns.splice(0).reverse()) await fn();
  }
}

export const silent = (): Logger => pino({ level: 'silent' });

/** A logger whose lines (parsed JSON) are kept in `lines`. */
export function captureLogger(level = 'debug'): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level }, sink), lines };
}

/** A fresh socket path in its own temp directory, removed when the test ends. */
export function sockPath(t: Owner, name = 'ai.sock'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lipc-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, name);
}

/** Entries of /proc/self/fd. */
export function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** Entries of /dev/shm. */
export function shmList(): string[] {
  try {
    return fs.readdirSync('/dev/shm').sort();
  } catch {
    return [];
  }
}

/** Polls `pred` every few ms until it is true; rejects after `timeoutMs` saying `what`. */
export async function waitFor(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Rejects if `p` has not settled within `ms` (a guard against hangs, not a timing assertion). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
    }),
  ]);
}

/** Awaits `p` expecting an IpcError, and returns it (fails the test on success or another error). */
export async function ipcError(t: ExecutionContext, p: Promise<unknown>, ms = 10_000): Promise<IpcError> {
  const err = await t.throwsAsync(within(p, ms, 'call'), { instanceOf: IpcError });
  if (!err) throw new Error('expected an IpcError');
  return err as IpcError;
}

/** A server in this process with the standard handlers; its probe events land in `events`. */
export async function startServer(
  t: ExecutionContext,
  options: IpcServerOptions = {},
): Promise<{ server: IpcServer; socketPath: string; events: ProbeEvent[]; probes: EventEmitter }> {
  const socketPath = options.socketPath ?? sockPath(t);
  const server = new IpcServer({ logger: silent(), ...options, socketPath });
  const events: ProbeEvent[] = [];
  const probes = new EventEmitter();
  installHandlers(server, (e) => {
    events.push(e);
    probes.emit('probe', e);
  });
  await server.listen();
  t.teardown(() => server.close({ deadlineMs: 0 }));
  return { server, socketPath, events, probes };
}

/** Connects a client, closed when the test ends. */
export async function connect(t: Owner, socketPath: string, options: IpcClientOptions = {}): Promise<IpcClient> {
  const c = await IpcClient.connect(socketPath, options);
  t.teardown(() => c.close());
  return c;
}

/** The next probe event matching `pred`, including those already recorded. */
export function probeEvent(
  src: { events: ProbeEvent[]; probes: EventEmitter },
  pred: (e: ProbeEvent) => boolean,
  what: string,
  ms = 10_000,
): Promise<ProbeEvent> {
  const found = src.events.find(pred);
  if (found) return Promise.resolve(found);
  return within(
    new Promise<ProbeEvent>((resolve) => {
      const on = (e: ProbeEvent): void => {
        if (!pred(e)) return;
        src.probes.off('probe', on);
        resolve(e);
      };
      src.probes.on('probe', on);
    }),
    ms,
    what,
  );
}

/**
 * Runs the real client side of the handshake with `mutate` applied to the first frame it
 * sends (the HELLO): return other bytes to send instead, or null to send nothing. Resolves with
 * the session (closed by the caller) or rejects with the client-side error.
 */
export async function mutatedHandshake(
  socketPath: string,
  mutate: (hello: Buffer) => Buffer | null,
  timeoutMs = 5000,
): Promise<Connected & { conn: ControlConnection }> {
  const conn = ControlConnection.connect(controlPath(socketPath));
  const send = conn.send.bind(conn);
  let first = true;
  conn.send = (frame, fds) => {
    if (!first) return send(frame, fds);
    first = false;
    const m = mutate(frame);
    if (m !== null) send(m, fds);
  };
  const r = await clientHandshake(conn, { name: 'raw-test', timeoutMs, channel: {} });
  return { ...r, conn };
}

/** The value of metric `name` in a prom-client JSON snapshot, summed over series matching `labels`. */
export function metricValue(snapshot: unknown, name: string, labels: Record<string, string> = {}, metricName?: string): number {
  const m = (
    snapshot as Array<{ name: string; values: Array<{ value: number; labels: Record<string, unknown>; metricName?: string }> }>
  ).find((x) => x.name === name);
  if (!m) return 0;
  let sum = 0;
  for (const v of m.values) {
    if (metricName && v.metricName !== metricName) continue;
    if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
  }
  return sum;
}

/** A child process speaking JSON lines on stdin/stdout. */
export class LineChild extends EventEmitter {
  readonly messages: Array<Record<string, unknown>> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once stdout and stderr are closed and the process has exited. */
  readonly closed: Promise<void>;
  private nextId = 1;
  stderr = '';

  constructor(readonly proc: ChildProcess) {
    super();
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    this.closed = new Promise((resolve) => proc.once('close', () => resolve()));
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      let m: Record<string, unknown>;
      try {
        m = JSON.parse(line);
      } catch {
        return;
      }
      this.messages.push(m);
      this.emit('message', m);
    });
    proc.stderr?.on('data', (d: Buffer) => {
      if (this.stderr.length < 20_000) this.stderr += d.toString();
    });
    proc.stdin?.on('error', () => undefined);
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  /** The next message matching `pred` (including those already received). */
  next(pred: (m: Record<string, unknown>) => boolean, what: string, ms = 30_000): Promise<Record<string, unknown>> {
    const found = this.messages.find(pred);
    if (found) return Promise.resolve(found);
    return within(
      new Promise((resolve, reject) => {
        const on = (m: Record<string, unknown>): void => {
          if (!pred(m)) return;
          this.off('message', on);
          resolve(m);
        };
        this.on('message', on);
        void this.exited.then((r) => {
          this.off('message', on);
          reject(new Error(`child exited (${JSON.stringify(r)}) while waiting for ${what}; stderr: ${this.stderr.slice(-2000)}`));
        });
      }),
      ms,
      what,
    );
  }

  /** Sends a command and resolves with its reply. */
  cmd(cmd: string, extra: Record<string, unknown> = {}, ms = 30_000): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const reply = this.next((m) => m.re === id, `reply to ${cmd}`, ms);
    this.proc.stdin!.write(JSON.stringify({ id, cmd, ...extra }) + '\n');
    return reply;
  }

  /** Sends a line without waiting for a reply. */
  send(msg: Record<string, unknown>): void {
    this.proc.stdin!.write(JSON.stringify(msg) + '\n');
  }

  kill9(): void {
    this.proc.kill('SIGKILL');
  }
}

function spawnLineChild(t: Owner, script: string, env: Record<string, string>, nodeArgs: string[] = []): LineChild {
  const proc = spawn(process.execPath, [...nodeArgs, '--import=tsx', script], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const child = new LineChild(proc);
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await child.exited;
  });
  return child;
}

/** An IpcServer (standard handlers) in a child process; resolves once it listens. */
export async function spawnServer(
  t: Owner,
  options: IpcServerOptions & { socketPath: string },
  nodeArgs: string[] = [],
): Promise<LineChild> {
  const child = spawnLineChild(t, SERVER_SCRIPT, { IPC_TEST_SERVER: JSON.stringify(options) }, nodeArgs);
  await child.next((m) => m.type === 'listening' || m.type === 'listen-failed', 'server listening');
  return child;
}

/** Server-side state as the server child reports it. */
export interface ServerState {
  connections: number;
  fds: number;
  pending: number;
  reservedSlots: number;
  rssKb: number;
}

export async function serverState(server: LineChild): Promise<ServerState> {
  return (await server.cmd('state')) as unknown as ServerState;
}

/** IpcClients in a child process (see `fixtures/client.ts`). */
export function spawnClient(t: Owner, config: Record<string, unknown>): LineChild {
  return spawnLineChild(t, CLIENT_SCRIPT, { IPC_TEST_CLIENT: JSON.stringify(config) });
}

/** Spawns and reaps a trivial child once, so libuv's one-time child-process fds exist before a baseline is taken. */
export async function warmUpSpawn(): Promise<void> {
  await new Promise<void>((resolve) => spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' }).once('close', () => resolve()));
}

/** A frame built byte by byte (for frames the encoder refuses to make). */
export function rawFrame(kind: number, flags: number, id: number, method: string | Buffer, payload: Buffer = Buffer.alloc(0)): Buffer {
  const m = typeof method === 'string' ? Buffer.from(method) : method;
  const h = Buffer.alloc(8);
  h[0] = kind;
  h[1] = flags;
  h.writeUInt16LE(m.length, 2);
  h.writeUInt32LE(id >>> 0, 4);
  return Buffer.concat([h, m, payload]);
}

/** A received frame with its payload copied out of the ring. */
export type RawFrame = Frame & { payload: Buffer };

/**
 * A raw session: the real client handshake, then frames written and read by hand on the
 * channel, and the control connection for control-level tricks.
 */
export async function rawSession(t: Owner, socketPath: string) {
  const { channel, conn, welcome } = await mutatedHandshake(socketPath, (h) => h);
  t.teardown(() => {
    channel.close();
    conn.close();
  });
  const frames: RawFrame[] = [];
  const waiters: Array<() => void> = [];
  let closed = false;
  const wakeAll = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  channel.onMessage((m) => {
    const f = decodeFrame(m);
    frames.push({ ...f, payload: Buffer.from(f.payload) });
    wakeAll();
  });
  channel.onClose(() => {
    closed = true;
    wakeAll();
  });
  const frameFor = (id: number, what: string, nth = 0, ms = 10_000): Promise<RawFrame> =>
    within(
      (async () => {
        for (;;) {
          const f = frames.filter((x) => x.id === id)[nth];
          if (f) return f;
          if (closed) throw new Error(`${what}: channel closed first`);
          await new Promise<void>((r) => waiters.push(r));
        }
      })(),
      ms,
      what,
    );
  /** Resolves once the server closed the session (control socket EOF and channel closed). */
  const ended = (what = 'the server to end the session'): Promise<void> => waitFor(() => conn.closed && (closed || channel.closed), what);
  return { channel, conn, welcome, frameFor, frames: () => frames, ended, send: (b: Uint8Array) => channel.send(b) };
}
