/**
 * The server process of one peer in the `peers` suite: `node --import=tsx server.ts <peer> <path>`.
 * Every peer serves the same three calls (echo, a stream of chat-delta chunks, a sink for large
 * messages) the way a user of that library would write them. Prints `{"type":"listening"}` on
 * stdout when ready (child_process: sends it over the IPC channel) and exits when stdin closes.
 */
import fs from 'node:fs';
import net from 'node:net';
import pino from 'pino';
import { IpcServer } from '../../dist';
import { FrameParser } from '../lib/frames';
import { DELTA_BYTES, DELTA_JSON, DELTA_TEXT, Kind, netFrame, u32 } from './workload';
import { loadJsonRpc } from './jsonrpc';

type Starter = (path: string) => Promise<() => Promise<void>>;

/** lapce-ai-ipc; `sleep` parks both sides on the doorbell between messages (never polls). */
function lapce(idle?: 'sleep'): Starter {
  return async (socketPath) => {
    const server = new IpcServer({ socketPath, logger: pino({ level: 'silent' }), ...(idle ? { channel: { idle } } : {}) });
    server.handle('echo', (p) => p);
    // Like the socket peers' parsers, which hand over a view of their receive buffer, the sink
    // looks at the payload where it lies (HandlerOptions.borrow) instead of copying it first.
    server.handle('sink', (p: Uint8Array) => p.length, { borrow: true });
    server.handleStream('stream', async function* (p: { n: number; json: boolean }) {
      const chunk = p.json ? DELTA_JSON : DELTA_BYTES;
      for (let i = 0; i < p.n; i++) yield chunk;
    });
    await server.listen();
    return () => server.close({ deadlineMs: 500 });
  };
}

/** `net` over a Unix socket, length-prefixed frames, one `write()` per frame. */
const netServer: Starter = async (socketPath) => {
  const server = net.createServer((sock) => {
    sock.setNoDelay?.(true);
    const parser = new FrameParser((f) => {
      const kind = f![0];
      const id = f!.readUInt32LE(1);
      const payload = f!.subarray(5);
      if (kind === Kind.Echo) sock.write(netFrame(Kind.Reply, id, payload));
      else if (kind === Kind.Sink) sock.write(netFrame(Kind.Reply, id, u32(payload.length)));
      else if (kind === Kind.Stream) void netStream(sock, id, payload.readUInt32LE(0));
    }, true);
    sock.on('data', (chunk: Buffer) => parser.push(chunk));
    sock.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return () => new Promise((resolve) => server.close(() => resolve()));
};

async function netStream(sock: net.Socket, id: number, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    if (!sock.write(netFrame(Kind.StreamChunk, id, DELTA_BYTES))) await new Promise((r) => sock.once('drain', r));
  }
  sock.write(netFrame(Kind.StreamEnd, id, u32(n)));
}

/** child_process IPC (advanced serialization): this process was forked by the client. */
const childProcess: Starter = async () => {
  process.on('message', (m: { k: Kind; i: number; p: Uint8Array | number }) => {
    if (m.k === Kind.Echo) process.send!({ k: Kind.Reply, i: m.i, p: m.p });
    else if (m.k === Kind.Sink) process.send!({ k: Kind.Reply, i: m.i, p: (m.p as Uint8Array).length });
    else if (m.k === Kind.Stream) {
      for (let j = 0; j < (m.p as number); j++) process.send!({ k: Kind.StreamChunk, i: m.i, p: DELTA_BYTES });
      process.send!({ k: Kind.StreamEnd, i: m.i, p: m.p });
    }
  });
  return async () => undefined;
};

/** zeromq 6: a Router on ipc://; frames [routing id, u32 request id, u8 kind, payload]. */
const zeromq: Starter = async (socketPath) => {
  const zmq = await import('zeromq');
  const router = new zmq.Router({ sendHighWaterMark: 0, receiveHighWaterMark: 0 });
  await router.bind(`ipc://${socketPath}`);
  void (async () => {
    for await (const [peer, id, kind, payload] of router) {
      const k = kind[0];
      if (k === Kind.Echo) await router.send([peer, id, payload]);
      else if (k === Kind.Sink) await router.send([peer, id, u32(payload.length)]);
      else if (k === Kind.Stream) {
        const n = payload.readUInt32LE(0);
        const chunk = Buffer.from([Kind.StreamChunk]);
        for (let i = 0; i < n; i++) await router.send([peer, id, chunk, DELTA_BYTES]);
        await router.send([peer, id, Buffer.from([Kind.StreamEnd]), payload]);
      }
    }
  })().catch(() => undefined);
  return async () => router.close();
};

/** @grpc/grpc-js over a Unix socket; raw-bytes methods (no protobuf: the payload is the message). */
const grpc: Starter = async (socketPath) => {
  const g = await import('@grpc/grpc-js');
  const { GRPC_SERVICE } = await import('./grpc-service');
  const server = new g.Server();
  server.addService(GRPC_SERVICE, {
    echo: (call: { request: Buffer }, cb: (e: null, r: Buffer) => void) => cb(null, call.request),
    sink: (call: { request: Buffer }, cb: (e: null, r: Buffer) => void) => cb(null, u32(call.request.length)),
    stream: async (call: { request: Buffer; write(b: Buffer): boolean; end(): void; once(e: string, f: () => void): void }) => {
      const n = call.request.readUInt32LE(0);
      for (let i = 0; i < n; i++) {
        if (!call.write(DELTA_BYTES)) await new Promise<void>((r) => call.once('drain', r));
      }
      call.end();
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socketPath}`, g.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
  );
  return () => new Promise((resolve) => server.tryShutdown(() => resolve()));
};

/** vscode-jsonrpc over a Unix socket (LSP-style framing); streams are notifications + a reply. */
const jsonrpc: Starter = async (socketPath) => {
  const rpc = loadJsonRpc();
  const server = net.createServer((sock) => {
    const conn = rpc.createMessageConnection(new rpc.SocketMessageReader(sock), new rpc.SocketMessageWriter(sock));
    conn.onRequest('echo', (p: unknown) => p);
    conn.onRequest('sink', (p: { b64: string }) => Buffer.byteLength(p.b64, 'base64'));
    conn.onRequest('stream', async (p: { n: number; id: number }) => {
      for (let i = 0; i < p.n; i++) void conn.sendNotification('chunk', { id: p.id, d: DELTA_TEXT });
      return p.n;
    });
    conn.listen();
    sock.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return () => new Promise((resolve) => server.close(() => resolve()));
};

const STARTERS: Record<string, Starter> = {
  lapce: lapce(),
  'lapce-sleep': lapce('sleep'),
  net: netServer,
  child_process: childProcess,
  zeromq,
  grpc,
  jsonrpc,
};

async function main(): Promise<void> {
  const [peer, socketPath] = process.argv.slice(2);
  const start = STARTERS[peer];
  if (!start) throw new Error(`unknown peer ${peer}`);
  if (socketPath && fs.existsSync(socketPath)) fs.rmSync(socketPath);
  const stop = await start(socketPath);
  const ready = { type: 'listening', pid: process.pid };
  if (process.send) process.send(ready);
  else process.stdout.write(JSON.stringify(ready) + '\n');
  // Exit when the parent goes: stdin closes (spawned) or the IPC channel disconnects (forked).
  const quit = (): void => {
    void stop()
      .catch(() => undefined)
      .finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  if (process.send) process.on('disconnect', quit);
  else process.stdin.on('end', quit).on('error', quit).resume();
}

main().catch((e) => {
  console.error(`peers server failed:`, e);
  process.exit(1);
});
