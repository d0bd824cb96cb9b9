/**
 * A bare channel between two real processes, for tests and benchmarks (there is no handshake
 * protocol yet).
 *
 * Parent: binds a control socket, spawns `node --import=tsx <script>`, accepts the child's
 * connection, sends an `init` line with the channel's four fds attached (SCM_RIGHTS) and opens
 * the server side. Child: connects, receives `init` and the fds, opens the client side.
 *
 * The control socket stays open as an out-of-band {@link ControlLink} carrying JSON lines
 * (commands, results, CPU readings), and tells each side when the other dies (EOF).
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { EventEmitter } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import native = require('../../src/native');
import type { NativeControlStream, NativeFds } from '../../index';
import { Channel, type ChannelOptions, DEFAULT_CAPACITY } from '../../src/transport/channel';
import { LOADER_ARGS } from './script';

/** Environment variable through which the child learns the control socket path. */
export const SOCKET_ENV = 'LAPCE_BARE_PAIR_SOCKET';

/** A JSON message on the control link. */
export type LinkMessage = { type: string; [key: string]: unknown };

/**
 * JSON lines over a {@link NativeControlStream}. Emits `message` (a parsed line) and `close`
 * (EOF or error). The first line received may carry fds: see {@link ControlLink.takeFds}.
 */
export class ControlLink extends EventEmitter {
  private readonly decoder = new StringDecoder('utf8');
  private readonly buf = Buffer.alloc(64 * 1024);
  private partial = '';
  private fds: NativeFds | null = null;
  private held = false;
  private readonly backlog: LinkMessage[] = [];
  private outbox: Buffer[] = [];
  private flushScheduled = false;
  private isClosed = false;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (m: LinkMessage) => void; reject: (e: Error) => void }>();

  constructor(readonly stream: NativeControlStream) {
    super();
    stream.watch(() => this.onReadable());
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Sends one message, optionally with fds attached to its first byte. */
  send(msg: LinkMessage, fds?: NativeFds): void {
    if (this.isClosed) throw new Error('control link closed');
    const bytes = Buffer.from(JSON.stringify(msg) + '\n');
    if (fds) {
      if (this.outbox.length > 0) throw new Error('fds must go out on an empty outbox');
      const n = this.stream.send(bytes, fds);
      if (n <= 0) throw new Error('control socket did not take the fds');
      if (n < bytes.length) this.queue(bytes.subarray(n));
      return;
    }
    this.queue(bytes);
  }

  private queue(bytes: Buffer): void {
    this.outbox.push(bytes);
    this.flush();
  }

  private flush(): void {
    while (this.outbox.length > 0 && !this.isClosed) {
      const b = this.outbox[0];
      const n = this.stream.send(b, null);
      if (n === b.length) {
        this.outbox.shift();
      } else {
        this.outbox[0] = b.subarray(Math.max(n, 0));
        if (!this.flushScheduled) {
          this.flushScheduled = true;
          setTimeout(() => {
            this.flushScheduled = false;
            this.flush();
          }, 1);
        }
        return;
      }
    }
  }

  /** Sends a request and resolves with the reply carrying the same `re`. */
  request(msg: LinkMessage, timeoutMs = 60_000): Promise<LinkMessage> {
    const id = this.nextId++;
    return new Promise<LinkMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`control link: no reply to ${msg.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      try {
        this.send({ ...msg, id });
      } catch (e) {
        this.pending.get(id)?.reject(e as Error);
        this.pending.delete(id);
      }
    });
  }

  /** Replies to a request received with `id`. */
  reply(req: LinkMessage, msg: LinkMessage): void {
    this.send({ ...msg, re: req.id });
  }

  /** The next message of `type` (or rejects when the link closes first). */
  next(type: string, timeoutMs = 60_000): Promise<LinkMessage> {
    return new Promise<LinkMessage>((resolve, reject) => {
      if (this.isClosed) return reject(new Error(`control link closed while waiting for ${type}`));
      const onMsg = (m: LinkMessage) => {
        if (m.type !== type) return;
        cleanup();
        resolve(m);
      };
      const onClose = () => {
        cleanup();
        reject(new Error(`control link closed while waiting for ${type}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`control link: no ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.off('message', onMsg);
        this.off('close', onClose);
      };
      this.on('message', onMsg);
      this.once('close', onClose);
    });
  }

  /** Fds that arrived so far (with the `init` line). */
  takeFds(): NativeFds | null {
    const f = this.fds;
    this.fds = null;
    return f;
  }

  /** Whether the link keeps the process alive. */
  setRef(keepAlive: boolean): void {
    if (!this.isClosed) this.stream.setRef(keepAlive);
  }

  private onReadable(): void {
    if (this.isClosed) return;
    for (;;) {
      let n: number;
      try {
        n = this.stream.recv(this.buf);
      } catch (e) {
        this.close(e as Error);
        return;
      }
      if (n < 0) return;
      if (n === 0) {
        this.close();
        return;
      }
      // Take fds at once: closing the stream (say, on EOF right after) would close them.
      const fds = this.stream.takeFds();
      if (fds) {
        if (this.fds) fds.close();
        else this.fds = fds;
      }
      const text = this.partial + this.decoder.write(this.buf.subarray(0, n));
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line) continue;
        const msg = JSON.parse(line) as LinkMessage;
        if (this.held) this.backlog.push(msg);
        else this.dispatch(msg);
        if (this.isClosed) return;
      }
    }
  }

  private dispatch(msg: LinkMessage): void {
    if (typeof msg.re === 'number') {
      const p = this.pending.get(msg.re);
      if (p) {
        this.pending.delete(msg.re);
        p.resolve(msg);
        return;
      }
    }
    this.emit('message', msg);
  }

  /** Holds incoming messages back (queued, in order) until {@link ControlLink.release}. */
  hold(): void {
    this.held = true;
  }

  /** Delivers the messages held back, then new ones as they come. */
  release(): void {
    this.held = false;
    while (this.backlog.length > 0 && !this.held) this.dispatch(this.backlog.shift()!);
  }

  /** Closes the link (the peer sees EOF). Idempotent. */
  close(err?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    // Fds not taken yet stay takeable (init and EOF may arrive together); NativeFds closes
    // them when collected otherwise.
    this.stream.close();
    const e = err ?? new Error('control link closed');
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.emit('close', err);
  }
}

/** CPU time of one process, in microseconds. */
export interface CpuTime {
  user: number;
  system: number;
}

let counter = 0;

/** A fresh control socket path (short enough for `sun_path`). */
export function socketPath(tag = 'bare'): string {
  return path.join(os.tmpdir(), `lapce-${tag}-${process.pid}-${++counter}-${Date.now().toString(36)}.sock`);
}

/** Options of {@link spawnBarePair}. */
export interface SpawnOptions {
  /** Channel options for both sides (the child receives them in `init`). */
  channel?: ChannelOptions;
  /** Channel options for the child only (merged over `channel`). */
  childChannel?: ChannelOptions;
  /**
   * `channel` (default): open the server side as a {@link Channel}.
   * `raw`: hand back the fds instead (the caller opens a `NativeEndpoint`).
   * `none`: no channel at all (baselines that only want the link).
   */
  server?: 'channel' | 'raw' | 'none';
  /** Extra arguments for the child script. */
  args?: string[];
  /** Anything else the child should see in `init.params`. */
  params?: Record<string, unknown>;
  /** Adds an IPC channel to the child (for the child_process baseline). */
  ipc?: 'json' | 'advanced';
  /** Give up if the child has not connected after this long. Default 30 s. */
  connectTimeoutMs?: number;
  /** stdio of stdout/stderr. Default inherit. */
  stdio?: 'inherit' | 'pipe' | 'ignore';
}

/** The parent's side of a bare pair. */
export interface BarePair {
  child: ChildProcess;
  link: ControlLink;
  /** The server side, unless `server` was `raw` or `none`. */
  channel: Channel | null;
  /** The fds, when `server` is `raw`. */
  fds: NativeFds | null;
  /** The channel capacity in use. */
  capacity: number;
  /** Resolves when the child exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The child's CPU time so far (a request over the link). */
  childCpu(): Promise<CpuTime>;
  /** Closes the channel and the link, waits for the child to exit (kills it after `graceMs`). */
  close(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns `node --import=tsx script` and connects a bare channel to it. See the module comment.
 */
export async function spawnBarePair(script: string, options: SpawnOptions = {}): Promise<BarePair> {
  const sock = socketPath();
  const listener = native.NativeListener.bind(sock);
  const stdio: StdioOptions = ['ignore', options.stdio ?? 'inherit', options.stdio ?? 'inherit'];
  if (options.ipc) (stdio as unknown[]).push('ipc');
  const child = spawn(process.execPath, [...LOADER_ARGS, script, ...(options.args ?? [])], {
    stdio,
    env: { ...process.env, [SOCKET_ENV]: sock },
    ...(options.ipc ? { serialization: options.ipc } : {}),
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  let stream: NativeControlStream;
  try {
    stream = await new Promise<NativeControlStream>((resolve, reject) => {
      let done = false;
      const finish = (err: Error | null, s?: NativeControlStream) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(s as NativeControlStream);
      };
      const timer = setTimeout(() => finish(new Error(`child ${script} did not connect`)), options.connectTimeoutMs ?? 30_000);
      void exited.then((r) => finish(new Error(`child ${script} exited before connecting (${JSON.stringify(r)})`)));
      child.once('error', (e) => finish(e));
      listener.watch(() => {
        try {
          const s = listener.accept();
          if (s) finish(null, s);
        } catch (e) {
          finish(e as Error);
        }
      });
    });
  } catch (e) {
    listener.close(true);
    child.kill('SIGKILL');
    throw e;
  } finally {
    listener.close(true);
  }
  const link = new ControlLink(stream);
  const capacity = options.channel?.capacity ?? DEFAULT_CAPACITY;
  const mode = options.server ?? 'channel';
  let channel: Channel | null = null;
  let fds: NativeFds | null = null;
  const init: LinkMessage = {
    type: 'init',
    channel: mode === 'none' ? null : { ...options.channel, ...options.childChannel },
    params: options.params ?? {},
  };
  if (mode === 'none') {
    link.send(init);
  } else {
    fds = native.createChannelFds(capacity);
    link.send(init, fds);
    if (mode === 'channel') {
      channel = new Channel(fds, 'server', options.channel);
      fds = null;
    }
  }
  return {
    child,
    link,
    channel,
    fds,
    capacity,
    exited,
    async childCpu() {
      const r = await link.request({ type: 'cpu' });
      return { user: r.user as number, system: r.system as number };
    },
    async close(graceMs = 5000) {
      channel?.close();
      fds?.close();
      link.close();
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  };
}

/** What the child gets from {@link connectToParent}. */
export interface ChildSide {
  link: ControlLink;
  /** Channel options the parent asked for, or null when it sent no channel. */
  channelOptions: ChannelOptions | null;
  params: Record<string, unknown>;
  /** The four fds, or null when the parent sent no channel. */
  fds: NativeFds | null;
}

/**
 * Child side: connects to the parent named in the environment and waits for `init` (and the
 * fds). Answers `cpu` requests, and exits when the parent goes away (so no orphan survives a
 * failed test).
 */
export async function connectToParent(): Promise<ChildSide> {
  const sock = process.env[SOCKET_ENV];
  if (!sock) throw new Error(`${SOCKET_ENV} is not set: run this script through spawnBarePair()`);
  const link = new ControlLink(native.NativeControlStream.connect(sock));
  link.on('message', (m: LinkMessage) => {
    if (m.type === 'cpu') {
      const u = process.cpuUsage();
      link.reply(m, { type: 'cpu', user: u.user, system: u.system });
    }
  });
  link.once('close', () => {
    // The parent is gone (or closed the link on purpose after the work): give the child a
    // moment to finish cleanly, then make sure it does not linger.
    setTimeout(() => process.exit(0), 2000).unref();
  });
  // Commands may arrive right behind `init`, in the same read, before the caller has had a
  // chance to listen for them: hold them back until the caller's continuation (a microtask) has
  // run, that is until the next macrotask.
  const init = await new Promise<LinkMessage>((resolve, reject) => {
    const onMsg = (m: LinkMessage) => {
      if (m.type !== 'init') return;
      link.off('message', onMsg);
      link.hold();
      setImmediate(() => link.release());
      resolve(m);
    };
    link.on('message', onMsg);
    link.once('close', () => reject(new Error('control link closed before init')));
  });
  const fds = init.channel ? link.takeFds() : null;
  if (init.channel && (!fds || fds.count !== 3)) throw new Error(`expected 3 fds with init, got ${fds?.count ?? 0}`);
  return {
    link,
    channelOptions: (init.channel as ChannelOptions | null) ?? null,
    params: (init.params as Record<string, unknown>) ?? {},
    fds,
  };
}

/** Child side: {@link connectToParent} and open the client side of the channel. */
export async function openChildChannel(): Promise<ChildSide & { channel: Channel }> {
  const side = await connectToParent();
  if (!side.fds) throw new Error('the parent sent no channel');
  const channel = new Channel(side.fds, 'client', side.channelOptions ?? {});
  return { ...side, channel };
}
