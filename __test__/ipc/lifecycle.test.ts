/**
 * Connection lifecycle with real processes: kill -9 of a client and of the server, a second
 * server on a live path, a stale socket, socket permissions and the default path, graceful
 * shutdown, the idle timeout, and the per-connection stream limit.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { buildSync } from 'esbuild';
import { IpcError } from '../../src/errors';
import { IpcClient } from '../../src/ipc/client';
import type { ControlConnection } from '../../src/ipc/control-connection';
import { encodeGoAway } from '../../src/protocol/control';
import { controlPath, defaultSocketPath } from '../../src/ipc/paths';
import { IpcServer } from '../../src/ipc/server';
import {
  connect,
  ipcError,
  probeEvent,
  serverState,
  shmList,
  silent,
  sockPath,
  spawnClient,
  spawnServer,
  startServer,
  waitFor,
  within,
} from './helpers';

/** Reads a stream in the background, keeping chunks and how it ended. */
function consume<T>(it: AsyncIterable<T>): { chunks: T[]; ended: Promise<IpcError | null> } {
  const chunks: T[] = [];
  const ended = (async () => {
    try {
      for await (const c of it) chunks.push(c);
      return null;
    } catch (e) {
      return e as IpcError;
    }
  })();
  return { chunks, ended };
}

test('kill -9 of a client in mid-stream: the server aborts the handler, frees the slot and fds, leaves nothing in /dev/shm', async (t) => {
  const socketPath = sockPath(t);
  const server = await spawnServer(t, { socketPath });
  // One session first, so that whatever the server creates once exists before the baseline.
  const warm = await IpcClient.connect(socketPath);
  await warm.request('echo', 1);
  warm.close();
  await waitFor(async () => (await serverState(server)).connections === 0, 'warm-up session to close');
  const before = await serverState(server);
  const shmBefore = shmList();

  const tag = `victim-${process.pid}`;
  const victim = spawnClient(t, { socketPath, mode: 'stream', payload: { tag, intervalMs: 5 } });
  const streaming = await victim.next((m) => m.type === 'streaming', 'client child streaming');
  await server.next((m) => m.type === 'probe' && m.event === 'started' && m.tag === tag, 'stream handler started');
  const during = await serverState(server);
  t.is(during.connections, 1);
  t.is(during.reservedSlots, 1);
  t.true(during.fds > before.fds, `a session holds fds (${during.fds} vs ${before.fds})`);

  victim.kill9();
  t.is((await victim.exited).signal, 'SIGKILL');
  const aborted = await server.next((m) => m.type === 'probe' && m.event === 'aborted' && m.tag === tag, 'handler signal to abort');
  t.is(aborted.reason, 'CONNECTION_LOST');
  await waitFor(async () => (await serverState(server)).connections === 0, 'server to notice the dead client');
  await waitFor(async () => (await serverState(server)).fds <= before.fds, 'server fds back to the baseline');
  const after = await serverState(server);
  t.is(after.fds, before.fds);
  t.is(after.reservedSlots, 0);
  t.is(after.pending, 0);
  t.deepEqual(shmList(), shmBefore);

  // The freed slot is reused, with a new generation.
  const next = await connect(t, socketPath);
  t.is(next.session!.slot, streaming.slot as number);
  t.true(next.session!.generation > 1);
  const m = (await server.cmd('metrics')).metrics;
  t.truthy(m);
});

test('kill -9 of the server fails in-flight calls with a retryable CONNECTION_LOST; with reconnect the client comes back to a new server on the same path', async (t) => {
  const socketPath = sockPath(t);
  const first = await spawnServer(t, { socketPath });
  const client = await connect(t, socketPath, { reconnect: { initialDelayMs: 10, maxDelayMs: 100 } });
  const plain = await connect(t, socketPath);
  const disconnected = new Promise<IpcError>((r) => client.once('disconnect', r));
  const reconnected = new Promise<void>((r) => client.once('reconnect', r));

  const tag = `srv-${process.pid}`;
  const hang = client.request('hang', { tag });
  const slow = plain.request('slow', { ms: 60_000, tag: `${tag}-plain` });
  const stream = consume(client.stream('ticker', { tag: `${tag}-s`, intervalMs: 5 }));
  await first.next((m) => m.type === 'probe' && m.event === 'started' && m.tag === tag, 'request started');
  await first.next((m) => m.type === 'probe' && m.event === 'started' && m.tag === `${tag}-plain`, 'plain request started');
  await waitFor(() => stream.chunks.length > 0, 'stream flowing');

  // Handlers attached before the kill: both calls fail in the same turn.
  const failures = [hang, slow].map((p) => ipcError(t, p, 15_000));
  first.kill9();
  for (const f of failures) {
    const err = await f;
    t.is(err.code, 'CONNECTION_LOST');
    t.true(err.retryable);
  }
  const streamErr = await within(stream.ended, 10_000, 'stream to fail');
  t.is(streamErr?.code, 'CONNECTION_LOST');
  t.true(streamErr?.retryable);
  t.is((await within(disconnected, 10_000, 'disconnect event')).code, 'CONNECTION_LOST');

  // Without reconnect, new calls fail at once with the same retryable error.
  const later = await ipcError(t, plain.request('echo', 1));
  t.is(later.code, 'CONNECTION_LOST');
  t.true(later.retryable);

  // The dead server left its socket file; a new server replaces it and the client returns.
  t.true(fs.existsSync(controlPath(socketPath)), 'stale socket file left by the killed server');
  await first.exited;
  const second = await spawnServer(t, { socketPath });
  t.is(second.messages[0].type, 'listening');
  await within(reconnected, 15_000, 'reconnect event');
  t.deepEqual(await client.request('echo', { back: true }), { back: true });
  t.is(client.session!.serverPid, second.pid);
});

test('a second server on a live path is refused with ADDRESS_IN_USE and does not displace the first', async (t) => {
  const socketPath = sockPath(t);
  const live = await spawnServer(t, { socketPath });
  const intruder = new IpcServer({ socketPath, logger: silent() });
  const err = await ipcError(t, intruder.listen());
  t.is(err.code, 'ADDRESS_IN_USE');
  t.true(err.message.includes(socketPath), err.message);
  t.regex(err.message, /already listening/);
  // And a second child server fails the same way.
  const other = await spawnServer(t, { socketPath });
  t.like(other.messages[0], { type: 'listen-failed', code: 'ADDRESS_IN_USE' });
  // The live server is untouched: its socket file is there and it serves.
  t.true(fs.existsSync(controlPath(socketPath)));
  const c = await connect(t, socketPath);
  t.is(await c.request('echo', 'still mine'), 'still mine');
  t.is(c.session!.serverPid, live.pid);
  // Same in one process.
  const p2 = sockPath(t);
  const a = new IpcServer({ socketPath: p2, logger: silent() });
  await a.listen();
  t.teardown(() => a.close({ deadlineMs: 0 }));
  t.is((await ipcError(t, new IpcServer({ socketPath: p2, logger: silent() }).listen())).code, 'ADDRESS_IN_USE');
});

test('a stale socket file from a SIGKILLed server is replaced by the next server', async (t) => {
  const socketPath = sockPath(t);
  const dead = await spawnServer(t, { socketPath });
  dead.kill9();
  await dead.exited;
  t.true(fs.statSync(controlPath(socketPath)).isSocket(), 'the dead server left its socket');
  const { server } = await startServer(t, { socketPath });
  const c = await connect(t, socketPath);
  t.is(await c.request('echo', 'new'), 'new');
  t.is(c.session!.serverPid, process.pid);
  t.is(server.connections >= 0, true);
});

test('the control socket is created 0600; a stale non-socket file is not clobbered', async (t) => {
  const { socketPath } = await startServer(t);
  const st = fs.statSync(controlPath(socketPath));
  t.true(st.isSocket());
  t.is(st.mode & 0o777, 0o600);
  // A regular file at the path is not a server's leftover: it is not deleted.
  const p = sockPath(t);
  fs.writeFileSync(controlPath(p), 'precious');
  const s = new IpcServer({ socketPath: p, logger: silent() });
  await t.throwsAsync(s.listen());
  t.is(fs.readFileSync(controlPath(p), 'utf8'), 'precious');
});

test('default socket path: $XDG_RUNTIME_DIR/lapce-ai/ai.sock, else /tmp/lapce-ai-<uid>/ai.sock', (t) => {
  const uid = os.userInfo().uid;
  t.is(defaultSocketPath({ XDG_RUNTIME_DIR: '/run/user/1234' }), '/run/user/1234/lapce-ai/ai.sock');
  t.is(defaultSocketPath({}), `/tmp/lapce-ai-${uid}/ai.sock`);
  t.is(defaultSocketPath({ XDG_RUNTIME_DIR: '' }), `/tmp/lapce-ai-${uid}/ai.sock`);
  // TMPDIR does not move it: a client in another language computes the same path.
  t.is(defaultSocketPath({ TMPDIR: '/var/tmp/elsewhere' }), `/tmp/lapce-ai-${uid}/ai.sock`);
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = '/var/tmp/elsewhere';
  try {
    t.is(defaultSocketPath({}), `/tmp/lapce-ai-${uid}/ai.sock`);
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
});

test.serial('a server on the default path makes an owner-only directory and an 0600 socket', async (t) => {
  const runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'lipc-xdg-'));
  t.teardown(() => fs.rmSync(runtime, { recursive: true, force: true }));
  // A pre-existing directory that others may enter is tightened.
  fs.mkdirSync(path.join(runtime, 'lapce-ai'), { mode: 0o755 });
  fs.chmodSync(path.join(runtime, 'lapce-ai'), 0o755);
  const saved = process.env.XDG_RUNTIME_DIR;
  process.env.XDG_RUNTIME_DIR = runtime;
  try {
    const server = new IpcServer({ logger: silent() });
    t.is(server.socketPath, path.join(runtime, 'lapce-ai', 'ai.sock'));
    await server.listen();
    t.teardown(() => server.close({ deadlineMs: 0 }));
    t.is(fs.statSync(path.join(runtime, 'lapce-ai')).mode & 0o777, 0o700);
    t.is(fs.statSync(path.join(runtime, 'lapce-ai', 'ai.sock.ctl')).mode & 0o777, 0o600);
    const c = await IpcClient.connect();
    t.teardown(() => c.close());
    t.true(Array.isArray(await c.request('$metrics')));
  } finally {
    if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = saved;
  }
});

test('graceful shutdown: GOAWAY, in-flight calls finish, a stream past the deadline is cancelled, the socket file goes, newcomers are refused', async (t) => {
  const srv = await startServer(t);
  const { server, socketPath } = srv;
  const client = await connect(t, socketPath);
  const goaway = new Promise<string>((r) => client.once('goaway', r));
  const req = client.request('slow', { ms: 150, value: 'finished in time', tag: 'gs-req' });
  const shortStream = consume(client.stream('ticker', { tag: 'gs-short', count: 10, intervalMs: 10 }));
  const endless = consume(client.stream('ticker', { tag: 'gs-endless', intervalMs: 10 }));
  await probeEvent(srv, (e) => e.event === 'started' && e.tag === 'gs-req', 'request started');
  await probeEvent(srv, (e) => e.event === 'started' && e.tag === 'gs-endless', 'endless stream started');

  const closing = server.close({ deadlineMs: 2000 });
  t.regex(await within(goaway, 10_000, 'goaway'), /shutting down/);
  // New calls on the old connection are refused.
  const refused = await ipcError(t, client.request('echo', 1));
  t.is(refused.code, 'GOING_AWAY');
  t.true(refused.retryable);
  // New connections are refused while closing.
  const newcomer = await ipcError(t, IpcClient.connect(socketPath));
  t.true(['CONNECTION_LOST', 'HANDSHAKE_REJECTED'].includes(newcomer.code), newcomer.code);
  t.true(newcomer.retryable);
  t.false(fs.existsSync(controlPath(socketPath)), 'socket file removed');

  t.is(await within(req, 10_000, 'in-flight request'), 'finished in time');
  t.is(await within(shortStream.ended, 10_000, 'short stream'), null);
  t.deepEqual(
    shortStream.chunks,
    Array.from({ length: 10 }, (_, i) => ({ tag: 'gs-short', i })),
  );
  const endErr = await within(endless.ended, 10_000, 'endless stream');
  t.truthy(endErr);
  t.true(['GOING_AWAY', 'CONNECTION_LOST'].includes(endErr!.code), endErr!.code);
  t.true(endErr!.retryable);
  t.is((await probeEvent(srv, (e) => e.event === 'aborted' && e.tag === 'gs-endless', 'endless stream aborted')).reason, 'GOING_AWAY');
  await within(closing, 10_000, 'close()');
  t.is(server.connections, 0);
  t.false(srv.events.some((e) => e.event === 'aborted' && e.tag === 'gs-req'));
});

test('graceful shutdown with nothing in flight ends at once; close() is idempotent', async (t) => {
  const { server, socketPath } = await startServer(t);
  const client = await connect(t, socketPath);
  const lost = new Promise<IpcError>((r) => client.once('disconnect', r));
  await Promise.all([server.close({ deadlineMs: 60_000 }), server.close()]);
  t.false(fs.existsSync(controlPath(socketPath)));
  const err = await within(lost, 10_000, 'disconnect');
  // The server may not have read the client's READY yet: then it refuses with REJECT 8.
  t.true(err.code === 'CONNECTION_LOST' || (err.code === 'HANDSHAKE_REJECTED' && err.details?.reason === 'shutting_down'), err.message);
  t.true(err.retryable);
});

test('the idle timeout closes an idle session, but not one with a call in flight', async (t) => {
  const { server, socketPath } = await startServer(t, { idleTimeoutMs: 150 });
  const idle = await connect(t, socketPath);
  const busy = await connect(t, socketPath);
  t.is(idle.session!.idleTimeoutMs, 150);
  const idleLost = new Promise<IpcError>((r) => idle.once('disconnect', r));
  t.is(await idle.request('echo', 'once'), 'once');
  const long = busy.request('slow', { ms: 600, value: 'survived' });
  const err = await within(idleLost, 10_000, 'idle session to be closed');
  t.is(err.code, 'CONNECTION_LOST');
  t.true(err.retryable);
  t.false(idle.connected);
  t.is(await within(long, 10_000, 'busy call'), 'survived');
  // Then the busy one idles out too.
  await waitFor(() => server.connections === 0, 'busy session to idle out');
  t.is((await ipcError(t, idle.request('echo', 1))).code, 'CONNECTION_LOST');
});

test('max streams per connection: the next stream fails with a retryable TOO_MANY_STREAMS; requests and other connections are unaffected', async (t) => {
  const srv = await startServer(t, { maxStreams: 2 });
  const client = await connect(t, srv.socketPath);
  const stops = [new AbortController(), new AbortController()];
  const running = stops.map((ac, k) => consume(client.stream('ticker', { tag: `ms-${k}`, intervalMs: 5 }, { signal: ac.signal })));
  await waitFor(() => running.every((r) => r.chunks.length > 0), 'two streams flowing');

  const third = consume(client.stream('ticker', { tag: 'ms-third', count: 3 }));
  const err = await within(third.ended, 10_000, 'third stream');
  t.is(err?.code, 'TOO_MANY_STREAMS');
  t.true(err?.retryable);
  t.regex(err!.message, /2 streams/);
  t.deepEqual(third.chunks, []);
  t.false(
    srv.events.some((e) => e.tag === 'ms-third'),
    'the handler never ran',
  );
  t.is(await client.request('echo', 'requests still work'), 'requests still work');
  const other = await connect(t, srv.socketPath);
  const otherChunks = [];
  for await (const c of other.stream('ticker', { tag: 'ms-other', count: 3 })) otherChunks.push(c);
  t.is(otherChunks.length, 3);

  // Ending one frees its place.
  stops[0].abort();
  await probeEvent(srv, (e) => e.event === 'aborted' && e.tag === 'ms-0', 'first stream aborted');
  await waitFor(async () => {
    const r = consume(client.stream('ticker', { tag: 'ms-retry', count: 2 }));
    return (await r.ended) === null && r.chunks.length === 2;
  }, 'a new stream to be admitted');
  stops[1].abort();
  t.pass();
});

// Serial (ava runs serial tests before the concurrent ones): it watches process-wide unhandled rejections.
test.serial(
  'reconnect: giving up after maxAttempts, or close() while reconnecting, leaves no unhandled rejection; waiting calls fail typed',
  async (t) => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => {
      unhandled.push(e);
    };
    process.on('unhandledRejection', onUnhandled);
    t.teardown(() => {
      process.off('unhandledRejection', onUnhandled);
    });
    const dropped = async (opts: { initialDelayMs: number; maxDelayMs: number; maxAttempts?: number }): Promise<IpcClient> => {
      const { server, socketPath } = await startServer(t);
      const client = await connect(t, socketPath, { reconnect: opts });
      const lost = new Promise<IpcError>((r) => client.once('disconnect', r));
      await server.close({ deadlineMs: 0 });
      await within(lost, 10_000, 'disconnect');
      return client;
    };

    // The server is gone for good and nobody is calling: the loop gives up quietly.
    const giveUp = await dropped({ initialDelayMs: 5, maxDelayMs: 20, maxAttempts: 3 });
    await new Promise((r) => setTimeout(r, 300));
    const err = await ipcError(t, giveUp.request('echo', 1));
    t.is(err.code, 'CONNECTION_LOST');
    t.true(err.retryable);

    // A call waiting for the reconnection learns that it gave up.
    const waitsForGiveUp = await dropped({ initialDelayMs: 5, maxDelayMs: 20, maxAttempts: 3 });
    const e2 = await ipcError(t, waitsForGiveUp.request('echo', 2));
    t.is(e2.code, 'CONNECTION_LOST');
    t.regex(e2.message, /after 3 attempts/);

    // Closed while reconnecting, with and without a call waiting.
    const quiet = await dropped({ initialDelayMs: 50, maxDelayMs: 50 });
    quiet.close();
    const busy = await dropped({ initialDelayMs: 50, maxDelayMs: 50 });
    const waiting = busy.request('echo', 3);
    busy.close();
    t.is((await ipcError(t, waiting)).code, 'CHANNEL_CLOSED');

    await new Promise((r) => setTimeout(r, 200));
    t.deepEqual(unhandled, []);
  },
);

test('review R15: a second GOAWAY from the server is a protocol error that ends the session, not another event', async (t) => {
  const { server, socketPath } = await startServer(t);
  const client = await connect(t, socketPath);
  t.is(await client.request('echo', 1), 1);
  const session = [...(server as unknown as { sessions: Set<{ conn: ControlConnection }> }).sessions][0];
  let goaways = 0;
  client.on('goaway', () => goaways++);
  const disconnected = new Promise<IpcError>((r) => client.once('disconnect', r));
  // A hostile server: GOAWAY after GOAWAY.
  for (let i = 0; i < 50; i++) session.conn.trySend(encodeGoAway({ deadlineMs: 60_000, message: `bye ${i}` }));
  const err = await within(disconnected, 5000, 'the client to drop the session');
  t.is(err.code, 'PROTOCOL_ERROR');
  t.is(goaways, 1);
});

test('the default socket path works for a uid with no passwd entry (docker run -u 54321)', (t) => {
  // Needs root to switch uid (the test suite runs as root); os.userInfo() threw ENOENT here.
  // The other uid may not be able to read this checkout (a clone in a 0700 temp dir), so the
  // fixture runs as one bundled file from a directory it can read.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lapce-default-path-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.chmodSync(dir, 0o755);
  const bundle = path.join(dir, 'default-path.js');
  buildSync({
    entryPoints: [path.join(__dirname, 'fixtures', 'default-path.ts')],
    bundle: true,
    platform: 'node',
    outfile: bundle,
    logLevel: 'silent',
  });
  fs.chmodSync(bundle, 0o644);
  const env = { ...process.env };
  delete env.XDG_RUNTIME_DIR;
  delete env.LAPCE_AI_SOCKET;
  delete env.NODE_OPTIONS;
  const r = spawnSync(process.execPath, [bundle], { uid: 54321, gid: 54321, cwd: dir, env, encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout.trim(), '/tmp/lapce-ai-54321/ai.sock');
});
