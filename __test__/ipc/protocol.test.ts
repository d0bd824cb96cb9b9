/**
 * The spec as a contract (PLAN §4–§15, issue 9), checked from raw sessions against a server in
 * this process: every malformed client frame ends its session with an id-0 ERROR, ignored
 * frames are ignored, control frames and fds after READY end the session, a control socket that
 * closes at any instant of the handshake frees everything, limits answer per call, the
 * built-ins, API validation that never reaches the server, checkPid, idle timeout and shutdown.
 *
 * Serial: several tests count this process's fds.
 */
import fs from 'node:fs';
import test from 'ava';
import native = require('../../src/native');
import { HandshakeError, IpcError } from '../../src/errors';
import { IpcClient } from '../../src/ipc/client';
import { ControlConnection } from '../../src/ipc/control-connection';
import { clientHandshake, serverHandshake } from '../../src/ipc/handshake';
import { controlPath } from '../../src/ipc/paths';
import type { IpcServer } from '../../src/ipc/server';
import { ControlType, decodeReject, encodeHello, HELLO_MAGIC } from '../../src/protocol/control';
import { IPC_METRIC_NAMES } from '../../src/ipc/metrics';
import { decodePayload, encodeCredit, encodeFrame, FLAG_JSON, FrameKind } from '../../src/protocol/frame';
import { connect, fdCount, ipcError, metricValue, mutatedHandshake, rawFrame, rawSession, startServer, waitFor, within } from './helpers';
import type { RawFrame } from './helpers';

function usage(server: IpcServer): { sessions: number; reserved: number; pending: number } {
  const s = server as unknown as { pending: Set<unknown>; slots: Array<{ reserved: boolean }> };
  return { sessions: server.connections, reserved: s.slots.filter((x) => x.reserved).length, pending: s.pending.size };
}

async function settled(server: IpcServer, baselineFds: number, what: string): Promise<void> {
  await waitFor(() => {
    const u = usage(server);
    return u.sessions === 0 && u.reserved === 0 && u.pending === 0 && fdCount() <= baselineFds;
  }, `${what}: sessions, slots, handshakes and fds back to baseline`);
}

async function warm(socketPath: string, server: IpcServer): Promise<number> {
  const c = await IpcClient.connect(socketPath);
  await c.request('$ping');
  c.close();
  await waitFor(() => server.connections === 0, 'warm-up session to close');
  return fdCount();
}

function errorOf(f: RawFrame): { code: string; message: string; retryable: boolean } {
  return decodePayload(f) as { code: string; message: string; retryable: boolean };
}

const malformed: Array<[string, Buffer]> = [
  ['shorter than the header', Buffer.from([1, 0, 0, 0, 1, 0, 0])],
  ['kind 0', rawFrame(0, 0, 5, '')],
  ['kind 9', rawFrame(9, 0, 5, '')],
  ['a RESPONSE from the client', rawFrame(FrameKind.Response, FLAG_JSON, 5, '', Buffer.from('1'))],
  ['an ERROR from the client', rawFrame(FrameKind.Error, FLAG_JSON, 5, '', Buffer.from('{}'))],
  ['a STREAM_CHUNK from the client', rawFrame(FrameKind.StreamChunk, 0, 5, '')],
  ['a STREAM_END from the client', rawFrame(FrameKind.StreamEnd, 0, 5, '')],
  ['reserved flag bit', rawFrame(FrameKind.Request, 0x02, 5, 'echo')],
  ['a method on a CANCEL', rawFrame(FrameKind.Cancel, 0, 5, 'echo')],
  ['REQUEST without a method', rawFrame(FrameKind.Request, FLAG_JSON, 5, '', Buffer.from('1'))],
  ['method past the frame end', Buffer.from([FrameKind.Request, 0, 50, 0, 5, 0, 0, 0, 0x61])],
  ['method over 255 bytes', rawFrame(FrameKind.Request, 0, 5, 'm'.repeat(256))],
  ['non-UTF-8 method', rawFrame(FrameKind.Request, 0, 5, Buffer.from([0xc3, 0x28]))],
  ['id 0', rawFrame(FrameKind.Request, FLAG_JSON, 0, 'echo', Buffer.from('1'))],
  ['CANCEL with a payload', rawFrame(FrameKind.Cancel, 0, 5, '', Buffer.from([1]))],
  ['STREAM_CREDIT of 7 bytes', rawFrame(FrameKind.StreamCredit, 0, 5, '', Buffer.alloc(7))],
  ['STREAM_CREDIT of 9 bytes', rawFrame(FrameKind.StreamCredit, 0, 5, '', Buffer.alloc(9))],
];

test.serial(
  'every malformed client frame ends its session with an id-0 PROTOCOL_ERROR; slot and fds are freed; others are served',
  async (t) => {
    const { server, socketPath } = await startServer(t);
    const baseline = await warm(socketPath, server);
    const bystander = await connect(t, socketPath);
    for (const [what, frame] of malformed) {
      const raw = await rawSession(t, socketPath);
      await raw.send(frame);
      const err = await raw.frameFor(0, `id-0 error for ${what}`);
      t.is(err.kind, FrameKind.Error, what);
      t.is(errorOf(err).code, 'PROTOCOL_ERROR', what);
      t.false(errorOf(err).retryable, what);
      await raw.ended(`session end after ${what}`);
      await waitFor(() => server.connections === 1, `server to drop the session after ${what}`);
      t.is(await bystander.request('echo', what), what);
    }
    const m = await server.metrics();
    t.true(metricValue(m, 'lapce_ipc_errors_total', { code: 'PROTOCOL_ERROR' }) >= malformed.length);
    bystander.close();
    await settled(server, baseline, 'after the malformed frames');
  },
);

test.serial(
  'ignored, as the spec says: CANCEL and STREAM_CREDIT of unknown ids, credit for a request; bit 0 on an empty CANCEL',
  async (t) => {
    const { socketPath } = await startServer(t);
    const raw = await rawSession(t, socketPath);
    await raw.send(encodeFrame(FrameKind.Cancel, 77, ''));
    await raw.send(encodeCredit(78, 5, 5));
    await raw.send(rawFrame(FrameKind.Cancel, FLAG_JSON, 79, ''));
    await raw.send(encodeFrame(FrameKind.Request, 80, 'slow', { ms: 30, value: 'ok' }));
    await raw.send(encodeCredit(80, 1, 1));
    const f = await raw.frameFor(80, 'response');
    t.is(f.kind, FrameKind.Response);
    t.is(decodePayload(f), 'ok');
    t.is(raw.frames().filter((x) => x.id === 0).length, 0, 'no connection-level error');
    t.false(raw.conn.closed);
  },
);

test.serial('a control frame after READY (a second HELLO) ends the session with an id-0 PROTOCOL_ERROR', async (t) => {
  const { server, socketPath } = await startServer(t);
  const raw = await rawSession(t, socketPath);
  await waitFor(() => server.connections === 1, 'session open');
  raw.conn.send(encodeHello({ magic: HELLO_MAGIC, minVersion: 2, maxVersion: 2, pid: process.pid, features: 0, name: 'again' }));
  const err = await raw.frameFor(0, 'id-0 error');
  t.regex(errorOf(err).message, /control frame type 1 after READY/);
  await raw.ended();
  await waitFor(() => server.connections === 0, 'session gone');
});

test.serial('fds sent on the control socket after READY are closed at once and end the session', async (t) => {
  const { server, socketPath } = await startServer(t);
  const baseline = await warm(socketPath, server);
  const raw = await rawSession(t, socketPath);
  await waitFor(() => server.connections === 1, 'session open');
  const fds = native.createChannelFds(4096);
  raw.conn.send(encodeHello({ magic: HELLO_MAGIC, minVersion: 2, maxVersion: 2, pid: process.pid, features: 0, name: 'fds' }), fds);
  fds.close();
  await raw.ended();
  raw.channel.close();
  await settled(server, baseline, 'after fds on a control frame');
  t.pass();
});

test.serial('fds sent with the HELLO are closed at once and get REJECT 6 (the server never takes fds)', async (t) => {
  const { server, socketPath } = await startServer(t);
  const baseline = await warm(socketPath, server);
  const conn = ControlConnection.connect(controlPath(socketPath));
  const reply = conn.next(5000, () => new IpcError('TIMEOUT', 'no reply'));
  const fds = native.createChannelFds(4096);
  conn.send(encodeHello({ magic: HELLO_MAGIC, minVersion: 2, maxVersion: 2, pid: process.pid, features: 0, name: 'fds' }), fds);
  fds.close();
  const f = await within(reply, 10_000, 'REJECT');
  t.is(f.type, ControlType.Reject);
  const r = decodeReject(f.body);
  t.is(r.reason, 6);
  t.regex(r.message, /fds sent to the server/);
  await waitFor(() => conn.closed, 'the server to hang up');
  await settled(server, baseline, 'after fds with HELLO');
});

test.serial('metric names come from IPC_METRIC_NAMES and every one is registered', async (t) => {
  const { server } = await startServer(t);
  const names = new Set(((await server.metrics()) as Array<{ name: string }>).map((m) => m.name));
  for (const n of Object.values(IPC_METRIC_NAMES)) t.true(names.has(n), n);
});

/** A handshake whose control socket closes at a chosen instant. */
async function hangUp(
  socketPath: string,
  when: 'mid-hello' | 'after-hello' | 'on-welcome' | 'with-ready' | 'ready-plus-hello',
): Promise<void> {
  const conn = ControlConnection.connect(controlPath(socketPath));
  const send = conn.send.bind(conn);
  conn.send = (frame, fds) => {
    const type = frame[4];
    if (when === 'mid-hello' && type === ControlType.Hello) {
      send(frame.subarray(0, 9), fds);
      conn.close();
      throw new IpcError('CONNECTION_LOST', 'hung up on purpose');
    }
    if (when === 'on-welcome' && type === ControlType.Ready) {
      conn.close();
      throw new IpcError('CONNECTION_LOST', 'hung up on purpose');
    }
    if (when === 'ready-plus-hello' && type === ControlType.Ready) {
      // READY and a second HELLO in one write: the HELLO is read before the session exists.
      send(
        Buffer.concat([frame, encodeHello({ magic: HELLO_MAGIC, minVersion: 2, maxVersion: 2, pid: process.pid, features: 0, name: 'x' })]),
        fds,
      );
      return;
    }
    send(frame, fds);
    if (when === 'after-hello' && type === ControlType.Hello) conn.close();
    // READY and EOF reach the server in one read: the case of issue 7 item 3.
    if (when === 'with-ready' && type === ControlType.Ready) conn.close();
  };
  try {
    const r = await clientHandshake(conn, { name: `hangup-${when}`, timeoutMs: 5000, channel: {} });
    if (when === 'ready-plus-hello') await waitFor(() => conn.closed, 'the server to end the session');
    r.channel.close();
  } catch {
    /* expected for the early hang-ups */
  }
}

test.serial(
  'a control socket that closes at any instant of the handshake (mid-HELLO, after HELLO, at WELCOME, 0 µs after READY), or a HELLO right behind READY, frees slot, fds and mappings at once',
  async (t) => {
    const { server, socketPath } = await startServer(t, { maxConnections: 4 });
    const baseline = await warm(socketPath, server);
    for (const when of ['mid-hello', 'after-hello', 'on-welcome', 'with-ready', 'ready-plus-hello'] as const) {
      for (let i = 0; i < 25; i++) await hangUp(socketPath, when);
      await settled(server, baseline, when);
    }
    // Far more hang-ups than maxConnections: the server is not full.
    const c = await connect(t, socketPath);
    t.is(await c.request('echo', 'still room'), 'still room');
  },
);

test.serial('maxInFlight: past it a call gets a retryable TOO_MANY_REQUESTS; the session stays and recovers', async (t) => {
  const { socketPath } = await startServer(t, { maxInFlight: 3 });
  const client = await connect(t, socketPath);
  const ctl = new AbortController();
  const hanging = [1, 2, 3].map(() => client.request('hang', {}, { signal: ctl.signal }).catch((e: IpcError) => e));
  const err = await ipcError(t, client.request('echo', 'one too many'));
  t.is(err.code, 'TOO_MANY_REQUESTS');
  t.true(err.retryable);
  ctl.abort();
  for (const e of await Promise.all(hanging)) t.is((e as IpcError).code, 'CANCELLED');
  await waitFor(async () => (await client.request('echo', 'x').catch(() => null)) === 'x', 'calls to be admitted again');
  t.is(await client.request('echo', 'back'), 'back');
});

test.serial(
  'maxInFlightBytes / inFlightBytesBudget: payloads parked on running handlers are bounded, per connection and per server',
  async (t) => {
    const { socketPath } = await startServer(t, { maxMessage: 150_000, maxInFlightBytes: 200_000, inFlightBytesBudget: 300_000 });
    const a = await connect(t, socketPath);
    const b = await connect(t, socketPath);
    const ctl = new AbortController();
    const hang = (c: IpcClient, bytes: number): Promise<unknown> =>
      c.request('hang', { pad: 'x'.repeat(bytes) }, { signal: ctl.signal }).catch((e: IpcError) => e);
    // Frames of one connection are read in order, so each call below finds the ones before it running.
    const first = hang(a, 120_000);
    const mine = await ipcError(t, a.request('hang', { pad: 'y'.repeat(100_000) }));
    t.is(mine.code, 'TOO_MANY_REQUESTS');
    t.true(mine.retryable);
    t.regex(mine.message, /this connection/);
    t.like(mine.details, { limitBytes: 200_000 });
    t.true((mine.details?.heldBytes as number) > 120_000);
    // Small calls still flow on a connection that holds a lot: the bound is in bytes.
    t.is(await a.request('echo', 'small'), 'small');
    const second = hang(b, 100_000);
    // Connection b is within its own limit, but the server as a whole would pass its budget.
    const total = await ipcError(t, b.request('hang', { pad: 'z'.repeat(90_000) }));
    t.is(total.code, 'TOO_MANY_REQUESTS');
    t.regex(total.message, /this server/);
    t.like(total.details, { limitBytes: 300_000 });
    // An unknown method is told so, whatever is held.
    t.is((await ipcError(t, b.request('nope', { pad: 'z'.repeat(90_000) }))).code, 'UNKNOWN_METHOD');
    ctl.abort();
    for (const e of await Promise.all([first, second])) t.is((e as IpcError).code, 'CANCELLED');
    // Released when the handlers return: the refused sizes are admitted again.
    await waitFor(
      async () => (await a.request('slow', { ms: 1, value: 'ok', pad: 'x'.repeat(140_000) }).catch(() => null)) === 'ok',
      'the payload bytes to be released',
    );
    t.is(await b.request('slow', { ms: 1, value: 'ok', pad: 'z'.repeat(140_000) }), 'ok');
  },
);

test.serial(
  'built-ins: $ping → null; $metrics with an unknown format or bytes → short BAD_PAYLOAD; a handler returning undefined arrives as null',
  async (t) => {
    const { socketPath } = await startServer(t);
    const client = await connect(t, socketPath);
    t.is(await client.ping(), null);
    t.is(await client.request('$ping', Buffer.from([1, 2])), null);
    const bad = await ipcError(t, client.request('$metrics', { format: 'xml' }));
    t.is(bad.code, 'BAD_PAYLOAD');
    t.regex(bad.message, /format must be "json" or "prometheus"/);
    const bytes = await ipcError(t, client.request('$metrics', Buffer.from('{"format":"json"}')));
    t.is(bytes.code, 'BAD_PAYLOAD');
    t.is(bytes.message, 'method $metrics takes JSON, got bytes');
    t.true(Array.isArray(await client.request('$metrics', null)));
    t.true(Array.isArray(await client.serverMetrics('json')));
    t.regex(((await client.serverMetrics('prometheus')) as { text: string }).text, /lapce_ipc_connections_active/);
    t.is(await client.request('nothing'), null);
  },
);

test.serial(
  'API validation: empty or 256-byte methods, BigInt and cyclic payloads reject with INVALID_ARGUMENT, never throw, never reach the server',
  async (t) => {
    const { server, socketPath } = await startServer(t);
    const client = await connect(t, socketPath);
    await client.request('$ping');
    const inBefore = metricValue(await server.metrics(), 'lapce_ipc_messages_total', { direction: 'in' });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['empty method', () => client.request('')],
      ['256-byte method', () => client.request('m'.repeat(256))],
      ['non-string method', () => client.request(42 as unknown as string)],
      ['BigInt payload', () => client.request('echo', { n: 1n })],
      ['cyclic payload', () => client.request('echo', cyclic)],
      ['negative timeout', () => client.request('echo', 1, { timeout: -1 })],
    ];
    for (const [what, make] of calls) {
      let p: Promise<unknown> | undefined;
      t.notThrows(() => {
        p = make();
      }, what);
      const err = await ipcError(t, p!);
      t.is(err.code, 'INVALID_ARGUMENT', what);
    }
    for (const [what, it] of [
      ['stream, empty method', client.stream('')],
      ['stream, BigInt', client.stream('ticker', { n: 1n })],
      ['stream, zero window', client.stream('ticker', {}, { window: { chunks: 0 } })],
    ] as const) {
      const err = await ipcError(
        t,
        (async () => {
          for await (const _ of it);
        })(),
      );
      t.is(err.code, 'INVALID_ARGUMENT', what);
    }
    // 255 bytes is fine (unknown, but it reaches the server).
    t.is((await ipcError(t, client.request('m'.repeat(255)))).code, 'UNKNOWN_METHOD');
    const inAfter = metricValue(await server.metrics(), 'lapce_ipc_messages_total', { direction: 'in' });
    t.is(inAfter - inBefore, 1, 'only the 255-byte call reached the server');
  },
);

test.serial('checkPid: false admits a HELLO whose pid is not the peer pid (PID namespaces); uid is still checked', async (t) => {
  const { socketPath } = await startServer(t, { checkPid: false });
  const lie = (hello: Buffer): Buffer => {
    const b = Buffer.from(hello);
    b.writeUInt32LE(1, 13);
    return b;
  };
  const r = await mutatedHandshake(socketPath, lie);
  t.teardown(() => {
    r.channel.close();
    r.conn.close();
  });
  t.truthy(r.welcome.slot >= 0);
  const { socketPath: strict } = await startServer(t, { checkPid: false, allowedUids: [12345] });
  const err = await ipcError(t, mutatedHandshake(strict, lie));
  t.is(err.details?.reason, 'uid_mismatch');
  const { socketPath: checking } = await startServer(t);
  const perr = await ipcError(t, mutatedHandshake(checking, lie));
  t.is(perr.details?.reason, 'pid_mismatch');
  t.regex(perr.message, /checkPid: false/);
});

test.serial('idle timeout: the server sends GOAWAY "idle timeout" and closes; $ping keeps a session alive', async (t) => {
  const { socketPath } = await startServer(t, { idleTimeoutMs: 300 });
  const idle = await connect(t, socketPath);
  const kept = await connect(t, socketPath);
  const goaway = new Promise<string>((r) => idle.once('goaway', r));
  const lost = new Promise<IpcError>((r) => idle.once('disconnect', r));
  const timer = setInterval(() => void kept.ping().catch(() => undefined), 50);
  t.teardown(() => clearInterval(timer));
  t.is(await within(goaway, 10_000, 'goaway'), 'idle timeout');
  await within(lost, 10_000, 'disconnect');
  t.true(kept.connected);
  t.is(await kept.request('echo', 'alive'), 'alive');
});

test.serial(
  'shutdown: socket file gone at once; new calls after GOAWAY get GOING_AWAY; at the deadline the rest get GOING_AWAY',
  async (t) => {
    const { server, socketPath } = await startServer(t);
    const raw = await rawSession(t, socketPath);
    await raw.send(encodeFrame(FrameKind.Request, 1, 'hang', {}));
    await waitFor(() => server.connections === 1, 'session open');
    const gotGoAway = new Promise<void>((resolve) => {
      raw.conn.onFrame((f) => {
        if (f.type === ControlType.GoAway) resolve();
      });
    });
    const closing = server.close({ deadlineMs: 400 });
    t.false(fs.existsSync(controlPath(socketPath)), 'the socket file is removed before anything else');
    const refused = await ipcError(t, IpcClient.connect(socketPath));
    t.is(refused.code, 'CONNECTION_LOST');
    t.is(refused.details?.errno, 'ENOENT');
    await within(gotGoAway, 10_000, 'GOAWAY');
    await raw.send(encodeFrame(FrameKind.Request, 2, 'echo', 'late'));
    const late = await raw.frameFor(2, 'answer to a call after GOAWAY');
    t.is(errorOf(late).code, 'GOING_AWAY');
    t.true(errorOf(late).retryable);
    const cut = await raw.frameFor(1, 'the hanging call at the deadline');
    t.is(errorOf(cut).code, 'GOING_AWAY');
    await within(closing, 10_000, 'close()');
    await raw.ended();
  },
);

test.serial('shutdown: a request written before close() but not read yet is served as a call in flight, not cut off', async (t) => {
  const { server, socketPath } = await startServer(t);
  const raw = await rawSession(t, socketPath);
  await waitFor(() => server.connections === 1, 'session open');
  // Written into the ring now; the server (in this process) cannot have read it before close().
  void raw.send(encodeFrame(FrameKind.Request, 1, 'echo', 'sent before GOAWAY'));
  const closing = server.close({ deadlineMs: 5000 });
  const reply = await raw.frameFor(1, 'the answer to the unread request');
  t.is(reply.kind, FrameKind.Response, 'answered by the handler, not GOING_AWAY');
  t.is(JSON.parse(reply.payload.toString('utf8')), 'sent before GOAWAY');
  await within(closing, 10_000, 'close()');
  await raw.ended();
});

test.serial('shutdown: close() called from a handler finishes that handler before any other is run, once', async (t) => {
  const { server, socketPath } = await startServer(t);
  const log: string[] = [];
  const closes: Array<Promise<void>> = [];
  server.handle('quit', () => {
    log.push('quit starts');
    closes.push(server.close({ deadlineMs: 5000 }));
    log.push('quit returns');
    return 'bye';
  });
  server.handle('note', (p) => {
    log.push(`note ${String(p)}`);
    return p;
  });
  const client = await connect(t, socketPath);
  // Written in one go, so the server reads them in one batch: the handler's close() must not
  // read (and run) the rest of that batch from inside the handler.
  const calls = [client.request('quit'), ...[1, 2, 3].map((i) => client.request('note', i)), client.request('quit')];
  const settled = await Promise.allSettled(calls);
  t.deepEqual(log.slice(0, 2), ['quit starts', 'quit returns'], `handlers ran in this order: ${log.join(', ')}`);
  t.deepEqual(settled[0], { status: 'fulfilled', value: 'bye' });
  for (const r of settled.slice(1)) {
    // Read in the batch (answered) or after GOAWAY (GOING_AWAY): either way settled, never lost.
    if (r.status === 'rejected') t.is((r.reason as IpcError).code, 'GOING_AWAY');
  }
  t.true(closes.length >= 1);
  for (const c of closes) t.is(c, closes[0], 'every close() returns the one shutdown');
  await within(closes[0], 10_000, 'close()');
});

test.serial('client: REJECT 7 arrives as a HandshakeError with reason server_full, retryable, with the server message', async (t) => {
  const { socketPath } = await startServer(t, { maxConnections: 1 });
  await connect(t, socketPath);
  const err = await ipcError(t, IpcClient.connect(socketPath));
  t.true(err instanceof HandshakeError);
  const h = err as HandshakeError;
  t.is(h.reason, 'server_full');
  t.is(h.reasonCode, 7);
  t.true(h.retryable);
  t.is(h.details?.serverMessage, 'server is full (1 connections)');
  t.regex(h.message, /server is full \(1 connections\)/);
});

/** The server side of the one session of `server`, for hostile-server tests. */
function serverSide(server: IpcServer): { conn: ControlConnection; channel: { send(b: Uint8Array): Promise<void> } } {
  const [s] = (server as unknown as { sessions: Set<{ conn: ControlConnection; channel: { send(b: Uint8Array): Promise<void> } }> })
    .sessions;
  return s;
}

test.serial(
  'client vs a hostile server: a GOAWAY with a 2-byte body ends the connection with PROTOCOL_ERROR, calls fail typed, nothing crashes',
  async (t) => {
    const { server, socketPath } = await startServer(t);
    const client = await connect(t, socketPath);
    await waitFor(() => server.connections === 1, 'session');
    const pending = client.request('hang', {});
    const lost = new Promise<IpcError>((r) => client.once('disconnect', r));
    // length 3 = type + 2 bytes of body: a deadline cut short.
    serverSide(server).conn.send(Buffer.from([3, 0, 0, 0, ControlType.GoAway, 1, 2]));
    const err = await within(lost, 10_000, 'disconnect');
    t.is(err.code, 'PROTOCOL_ERROR');
    t.regex(err.message, /GOAWAY/);
    t.is((await ipcError(t, pending)).code, 'PROTOCOL_ERROR');
  },
);

test.serial(
  'client vs a hostile server: client-only frame kinds, malformed frames and id-0 errors end the connection typed; unknown ids are ignored',
  async (t) => {
    const cases: Array<[string, Buffer, string]> = [
      ['a REQUEST sent to the client', encodeFrame(FrameKind.Request, 9, 'x', null), 'PROTOCOL_ERROR'],
      ['a STREAM_CREDIT sent to the client', encodeCredit(9, 1, 1), 'PROTOCOL_ERROR'],
      ['kind 77', rawFrame(77, 0, 9, ''), 'PROTOCOL_ERROR'],
      ['a 3-byte frame', Buffer.from([2, 0, 0]), 'PROTOCOL_ERROR'],
      [
        'an id-0 RESOURCE_EXHAUSTED',
        encodeFrame(FrameKind.Error, 0, '', { code: 'RESOURCE_EXHAUSTED', message: 'budget', retryable: true }),
        'RESOURCE_EXHAUSTED',
      ],
    ];
    for (const [what, frame, code] of cases) {
      const { server, socketPath } = await startServer(t);
      const client = await connect(t, socketPath);
      await waitFor(() => server.connections === 1, 'session');
      const lost = new Promise<IpcError>((r) => client.once('disconnect', r));
      // Frames for ids the client does not know are ignored.
      await serverSide(server).channel.send(encodeFrame(FrameKind.Response, 4242, '', 'stray'));
      t.is(await client.request('echo', 'fine'), 'fine', what);
      await serverSide(server).channel.send(frame);
      const err = await within(lost, 10_000, `disconnect after ${what}`);
      t.is(err.code, code, what);
      t.true(err instanceof IpcError);
    }
  },
);

test.serial(
  'an internal failure during the handshake (the channel cannot be made) is REJECT 9 with a message, and the slot is given back',
  async (t) => {
    const [a, b] = native.controlSocketPair();
    const serverConn = new ControlConnection(a, { acceptFds: false });
    const clientConn = new ControlConnection(b, { acceptFds: true });
    t.teardown(() => {
      serverConn.close();
      clientConn.close();
    });
    const released: number[] = [];
    const handshake = serverHandshake(serverConn, {
      timeoutMs: 5000,
      allowedUids: [process.getuid?.() ?? 0],
      checkPid: true,
      // Not a valid ring size: createChannelFds fails inside the handshake, as EMFILE would.
      ringCapacity: 3,
      maxMessage: 1 << 20,
      maxStreams: 4,
      idleTimeoutMs: 0,
      channel: {},
      takeSlot: () => ({ slot: 5, generation: 1 }),
      releaseSlot: (s) => released.push(s),
    });
    const failed = handshake.then(
      () => null,
      (e: unknown) => e,
    );
    const reply = clientConn.next(5000, () => new IpcError('TIMEOUT', 'no reply'));
    clientConn.send(encodeHello({ magic: HELLO_MAGIC, minVersion: 2, maxVersion: 2, pid: process.pid, features: 0, name: 'internal' }));
    const f = await within(reply, 10_000, 'REJECT');
    t.is(f.type, ControlType.Reject);
    const r = decodeReject(f.body);
    t.is(r.reason, 9);
    t.regex(r.message, /server cannot create the channel/);
    const err = (await failed) as HandshakeError;
    t.true(err instanceof HandshakeError);
    t.is(err.reason, 'internal');
    t.deepEqual(released, [5]);
    await waitFor(() => clientConn.closed, 'the server to hang up');
  },
);
