/**
 * The client side of each peer in the `peers` suite, written the way a user of that library
 * writes a client: a `request()` that returns a promise (an id map where the library has none)
 * and a stream to iterate with `for await`. Every server runs in its own process
 * (`./server.ts`).
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { IpcClient } from '../../dist';
import { FrameParser } from '../lib/frames';
import { BYTES64, JSON64, Kind, netFrame, u32 } from './workload';
import { loadJsonRpc } from './jsonrpc';
import { benchScript, LOADER_ARGS } from '../lib/script';

const SERVER = benchScript('peers/server');

/** One connected client of one peer. */
export interface PeerClient {
  /** One 64 B round trip. */
  echo(): Promise<unknown>;
  /** Sends one large message; resolves when the server acknowledges it. */
  sink(payload: Buffer): Promise<unknown>;
  /** A stream of `n` chat-delta chunks. */
  stream(n: number): AsyncIterable<unknown>;
  /** The server's transport counters (lapce-ai-ipc only: doorbells rung, wake-ups, ring-full waits). */
  counters?(): Promise<Record<string, number>>;
}

/** The server counters read around lapce-ai-ipc measurements (from `$metrics`, summed over labels). */
export const COUNTERS = {
  doorbellsRung: 'lapce_ipc_doorbells_rung_total',
  doorbellsSuppressed: 'lapce_ipc_doorbells_suppressed_total',
  wakeups: 'lapce_ipc_wakeups_total',
  ringFullWaits: 'lapce_ipc_ring_full_waits_total',
} as const;

async function serverCounters(c: IpcClient): Promise<Record<string, number>> {
  const m = (await c.serverMetrics('json')) as Array<{ name: string; values: Array<{ value: number }> }>;
  return Object.fromEntries(
    Object.entries(COUNTERS).map(([k, name]) => [k, m.find((x) => x.name === name)?.values.reduce((a, v) => a + v.value, 0) ?? NaN]),
  );
}

/** A running server process with a connected client. */
export interface PeerHandle {
  client: PeerClient;
  /** Pid of the server process (its CPU is read from /proc). */
  serverPid: number;
  /** The server's socket path (lapce-ai-ipc peers: the Rust client row connects to it). */
  socketPath?: string;
  /** Closes the client and ends the server process. */
  stop(): Promise<void>;
}

/** How to start a peer. */
export interface StartOptions {
  /** Extra node arguments for the server process (e.g. `--cpu-prof`). */
  serverNodeArgs?: string[];
}

/** A transport to compare. */
export interface PeerDef {
  id: string;
  label: string;
  start(options?: StartOptions): Promise<PeerHandle>;
}

// ---- helpers ----------------------------------------------------------------------------

let dirCounter = 0;
function freshDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `lapce-bench-peers-${process.pid}-${++dirCounter}-`));
}

/** Spawns the server of `peer` on `sockPath` and waits for its `listening` line. */
async function spawnServer(
  peer: string,
  sockPath: string,
  options: StartOptions = {},
): Promise<{ proc: ChildProcess; stop: () => Promise<void> }> {
  const args = [...(options.serverNodeArgs ?? []), ...LOADER_ARGS, SERVER, peer, sockPath];
  const proc = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    const rl = readline.createInterface({ input: proc.stdout! });
    const timer = setTimeout(() => reject(new Error(`${peer} server did not start`)), 60_000);
    rl.on('line', (line) => {
      if (line.includes('"listening"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code) => reject(new Error(`${peer} server exited with ${code}`)));
  });
  return { proc, stop: () => endProcess(proc, () => proc.stdin!.end()) };
}

async function endProcess(proc: ChildProcess, ask: () => void): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  ask();
  const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

/** Spawns `peer`'s server on a socket in a fresh directory and connects a client with `connect`. */
async function socketPeer(
  peer: string,
  options: StartOptions | undefined,
  connect: (sockPath: string) => Promise<{ client: PeerClient; disconnect: () => void }>,
): Promise<PeerHandle> {
  const dir = freshDir();
  const sockPath = path.join(dir, `${peer}.sock`);
  const server = await spawnServer(peer, sockPath, options);
  const { client, disconnect } = await connect(sockPath);
  return {
    client,
    serverPid: server.proc.pid!,
    socketPath: sockPath,
    async stop() {
      disconnect();
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A FIFO of chunks exposed as an async iterator, for libraries that deliver a stream as
 * callbacks. Unbounded: the bench's own servers send a known number of chunks. Index-based
 * (a JS array used with `shift` degrades on long backlogs).
 */
class ChunkQueue implements AsyncIterableIterator<unknown> {
  private items: unknown[] = [];
  private head = 0;
  private done = false;
  private error: Error | null = null;
  private waiter: ((r: IteratorResult<unknown>) => void) | null = null;
  private failer: ((e: Error) => void) | null = null;

  push(v: unknown): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = this.failer = null;
      w({ value: v, done: false });
    } else this.items.push(v);
  }

  end(e?: Error): void {
    this.done = true;
    this.error = e ?? null;
    if (this.waiter) {
      const w = this.waiter;
      const f = this.failer!;
      this.waiter = this.failer = null;
      if (e) f(e);
      else w({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<unknown>> {
    if (this.head < this.items.length) {
      const value = this.items[this.head++];
      if (this.head === this.items.length) {
        this.items = [];
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.done) return this.error ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failer = reject;
    });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** Pending calls by id, as a hand-written RPC client keeps them. */
class Calls {
  private nextId = 1;
  readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly streams = new Map<number, ChunkQueue>();

  id(): number {
    const id = this.nextId;
    this.nextId = this.nextId === 0xffffffff ? 1 : this.nextId + 1;
    return id;
  }

  call(id: number): Promise<unknown> {
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  reply(id: number, v: unknown): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.resolve(v);
  }

  /** Routes one incoming message of the hand-written framings (net, child_process, zeromq). */
  route(kind: Kind, id: number, payload: unknown): void {
    if (kind === Kind.Reply) this.reply(id, payload);
    else if (kind === Kind.StreamChunk) this.streams.get(id)?.push(payload);
    else if (kind === Kind.StreamEnd) {
      this.streams.get(id)?.end();
      this.streams.delete(id);
    }
  }

  /** The client of a transport that sends `(kind, id, payload)` messages with `send`. */
  client<P>(send: (kind: Kind, id: number, payload: P) => void, bytes: (b: Buffer) => P, count: (n: number) => P): PeerClient {
    const request = (kind: Kind, payload: P): Promise<unknown> => {
      const id = this.id();
      const reply = this.call(id);
      send(kind, id, payload);
      return reply;
    };
    return {
      echo: () => request(Kind.Echo, bytes(BYTES64)),
      sink: (b) => request(Kind.Sink, bytes(b)),
      stream: (n) => {
        const id = this.id();
        const q = new ChunkQueue();
        this.streams.set(id, q);
        send(Kind.Stream, id, count(n));
        return q;
      },
    };
  }

  failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    for (const q of this.streams.values()) q.end(e);
    this.pending.clear();
    this.streams.clear();
  }
}

// ---- lapce-ai-ipc -----------------------------------------------------------------------

function lapcePeer(id: string, label: string, json: boolean, sleep = false): PeerDef {
  return {
    id,
    label,
    async start(options) {
      return socketPeer(sleep ? 'lapce-sleep' : 'lapce', options, async (sockPath) => {
        const c = await IpcClient.connect(sockPath, sleep ? { channel: { idle: 'sleep' } } : {});
        const payload = json ? JSON64 : BYTES64;
        const client: PeerClient = {
          echo: () => c.request('echo', payload),
          sink: (b) => c.request('sink', b),
          stream: (n) => c.stream('stream', { n, json }),
          counters: () => serverCounters(c),
        };
        return { client, disconnect: () => c.close() };
      });
    },
  };
}

// ---- net --------------------------------------------------------------------------------

const netPeer: PeerDef = {
  id: 'net',
  label: 'net Unix socket, length-prefixed',
  async start(options) {
    return socketPeer('net', options, async (sockPath) => {
      const sock = net.connect(sockPath);
      await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
      const calls = new Calls();
      // Copied: a user's client hands out buffers it does not share with the parser.
      const parser = new FrameParser((f) => calls.route(f![0], f!.readUInt32LE(1), Buffer.from(f!.subarray(5))), true);
      sock.on('data', (chunk: Buffer) => parser.push(chunk));
      sock.on('close', () => calls.failAll(new Error('net: closed')));
      sock.on('error', () => undefined);
      const client = calls.client<Uint8Array>(
        (kind, id, p) => sock.write(netFrame(kind, id, p)),
        (b) => b,
        u32,
      );
      return { client, disconnect: () => sock.destroy() };
    });
  },
};

// ---- child_process ----------------------------------------------------------------------

const childProcessPeer: PeerDef = {
  id: 'child_process',
  label: 'child_process IPC (advanced)',
  async start() {
    const child = fork(SERVER, ['child_process'], {
      execArgv: [...LOADER_ARGS],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`child_process server exited with ${code}`)));
    });
    const calls = new Calls();
    child.on('message', (m: { k: Kind; i: number; p: unknown }) => calls.route(m.k, m.i, m.p));
    child.on('exit', () => calls.failAll(new Error('child_process: exited')));
    const client = calls.client<unknown>(
      (k, i, p) => child.send({ k, i, p }),
      (b) => b,
      (n) => n,
    );
    return { client, serverPid: child.pid!, stop: () => endProcess(child, () => child.disconnect()) };
  },
};

// ---- zeromq -----------------------------------------------------------------------------

const zeromqPeer: PeerDef = {
  id: 'zeromq',
  label: 'zeromq 6 (ipc://, dealer/router)',
  async start(options) {
    const zmq = await import('zeromq');
    return socketPeer('zeromq', options, async (sockPath) => {
      const dealer = new zmq.Dealer({ sendHighWaterMark: 0, receiveHighWaterMark: 0 });
      dealer.connect(`ipc://${sockPath}`);
      const calls = new Calls();
      void (async () => {
        // Replies are [id, payload]; stream frames [id, kind, payload].
        for await (const [idb, a, b] of dealer) calls.route(b === undefined ? Kind.Reply : a[0], idb.readUInt32LE(0), b ?? a);
      })().catch((e: Error) => calls.failAll(e));
      // zeromq.js allows one send in progress per socket: queue sends, as its users must.
      let tail: Promise<void> = Promise.resolve();
      const client = calls.client<Buffer>(
        (kind, id, payload) => {
          tail = tail.then(() => dealer.send([u32(id), Buffer.from([kind]), payload])).catch((e: Error) => calls.failAll(e));
        },
        (b) => b,
        u32,
      );
      return { client, disconnect: () => dealer.close() };
    });
  },
};

// ---- gRPC -------------------------------------------------------------------------------

const grpcPeer: PeerDef = {
  id: 'grpc',
  label: '@grpc/grpc-js over a Unix socket',
  async start(options) {
    const g = await import('@grpc/grpc-js');
    const { GRPC_SERVICE } = await import('./grpc-service');
    return socketPeer('grpc', options, async (sockPath) => {
      const Ctor = g.makeGenericClientConstructor(GRPC_SERVICE, 'Bench');
      const c = new Ctor(`unix:${sockPath}`, g.credentials.createInsecure()) as unknown as {
        echo(b: Buffer, cb: (e: Error | null, r?: Buffer) => void): void;
        sink(b: Buffer, cb: (e: Error | null, r?: Buffer) => void): void;
        stream(b: Buffer): AsyncIterable<Buffer>;
        close(): void;
      };
      const unary = (m: 'echo' | 'sink', b: Buffer): Promise<unknown> =>
        new Promise((resolve, reject) => c[m](b, (e, r) => (e ? reject(e) : resolve(r))));
      const client: PeerClient = {
        echo: () => unary('echo', BYTES64),
        sink: (b) => unary('sink', b),
        stream: (n) => c.stream(u32(n)),
      };
      return { client, disconnect: () => c.close() };
    });
  },
};

// ---- vscode-jsonrpc ---------------------------------------------------------------------

const jsonrpcPeer: PeerDef = {
  id: 'jsonrpc',
  label: 'vscode-jsonrpc over a Unix socket',
  async start(options) {
    const rpc = loadJsonRpc();
    return socketPeer('jsonrpc', options, async (sockPath) => {
      const sock = net.connect(sockPath);
      await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
      const conn = rpc.createMessageConnection(new rpc.SocketMessageReader(sock), new rpc.SocketMessageWriter(sock));
      const streams = new Map<number, ChunkQueue>();
      let nextStream = 1;
      conn.onNotification('chunk', (p: { id: number; d: string }) => streams.get(p.id)?.push(p.d));
      conn.listen();
      const client: PeerClient = {
        echo: () => conn.sendRequest('echo', JSON64),
        // JSON-RPC carries text: a user sends bytes as base64.
        sink: (b) => conn.sendRequest('sink', { b64: b.toString('base64') }),
        stream: (n) => {
          const id = nextStream++;
          const q = new ChunkQueue();
          streams.set(id, q);
          // Notifications sent before the reply arrive before it (one ordered socket).
          conn.sendRequest('stream', { n, id }).then(
            () => {
              streams.delete(id);
              q.end();
            },
            (e: Error) => q.end(e),
          );
          return q;
        },
      };
      return {
        client,
        disconnect: () => {
          conn.dispose();
          sock.destroy();
        },
      };
    });
  },
};

/** Every peer, in table order. */
export const PEERS: PeerDef[] = [
  lapcePeer('lapce.bytes', 'lapce-ai-ipc, bytes', false),
  lapcePeer('lapce.json', 'lapce-ai-ipc, JSON', true),
  netPeer,
  childProcessPeer,
  zeromqPeer,
  grpcPeer,
  jsonrpcPeer,
];

/** lapce-ai-ipc with `idle: 'sleep'` on both sides (never polls): every hop is a wake-up. */
export const LAPCE_SLEEP = lapcePeer('lapce.sleep', "lapce-ai-ipc, JSON, idle 'sleep'", true, true);
