/**
 * One error model and options checked up front: the ERROR_CODES table, IpcError/HandshakeError
 * behaviour and wire form, INVALID_ARGUMENT for every bad option (at construction, before any
 * socket is touched), socket paths given as `P` or `P.ctl`, refused directories and over-long
 * paths on both sides, connect errors carrying Node's `code`/`syscall`/`address`, and an
 * embedded server that writes nothing to stderr without a logger.
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import native = require('../../src/native');
import { DEFAULT_MAX_MESSAGE, DEFAULT_RING_CAPACITY, DEFAULT_STREAM_WINDOW, MAX_SOCKET_PATH_BYTES } from '../../src/defaults';
import { ERROR_CODES, HandshakeError, IpcError, toIpcError } from '../../src/errors';
import { IpcClient } from '../../src/ipc/client';
import { IpcServer } from '../../src/ipc/server';
import type { IpcServerOptions } from '../../src/ipc/server';
import { controlText } from '../../src/protocol/control';
import { RejectReason } from '../../src/protocol/reject';
import { BoundedFifo } from '../../src/util/fifo';
import { connect, ipcError, silent, sockPath } from './helpers';

test('ERROR_CODES: every code is UPPER_SNAKE with a meaning and a retry hint; IpcError takes its default from it', (t) => {
  const codes = Object.keys(ERROR_CODES);
  t.true(codes.length >= 20);
  for (const code of codes) {
    const info = ERROR_CODES[code as keyof typeof ERROR_CODES];
    t.regex(code, /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/, code);
    t.true(info.meaning.length > 10, code);
    t.is(typeof info.retryable, 'boolean', code);
    t.is(new IpcError(code, 'x').retryable, info.retryable, code);
  }
  t.true(new IpcError('TOO_MANY_REQUESTS', 'x').retryable);
  t.false(new IpcError('TOO_MANY_REQUESTS', 'x', { retryable: false }).retryable);
  t.false(new IpcError('SOME_OTHER_LAYER_CODE', 'x').retryable, 'unknown codes default to not retryable');
});

test('IpcError: toJSON is the wire form; fromJSON rebuilds it and turns garbage into PROTOCOL_ERROR; subclasses keep their name', (t) => {
  const cause = new Error('inner');
  const e = new IpcError('BAD_PAYLOAD', 'nope', { details: { field: 'x' }, cause });
  t.deepEqual(e.toJSON(), { code: 'BAD_PAYLOAD', message: 'nope', retryable: false, details: { field: 'x' } });
  t.is(e.cause, cause);
  t.is(e.name, 'IpcError');
  const back = IpcError.fromJSON(JSON.parse(JSON.stringify(e)));
  t.deepEqual(back.toJSON(), e.toJSON());
  for (const garbage of [null, 3, 'x', {}, { code: 5 }, { code: '' }]) t.is(IpcError.fromJSON(garbage).code, 'PROTOCOL_ERROR');
  class ChatLikeError extends IpcError {}
  const c = new ChatLikeError('RATE_LIMITED', 'slow down', { retryable: true });
  t.is(c.name, 'ChatLikeError');
  t.is(toIpcError(c), c, 'subclasses pass through unchanged');
  const duck = Object.assign(new Error('duck'), { code: 'RATE_LIMITED', retryable: true });
  t.like(toIpcError(duck).toJSON(), { code: 'HANDLER_ERROR', message: 'duck', retryable: false });
});

test('HandshakeError: reason name and wire code, retry hint by reason, timeout code', (t) => {
  const full = new HandshakeError(RejectReason.ServerFull, 'server is full');
  t.true(full instanceof IpcError);
  t.is(full.code, 'HANDSHAKE_REJECTED');
  t.is(full.reason, 'server_full');
  t.is(full.reasonCode, 7);
  t.true(full.retryable);
  t.like(full.details, { reason: 'server_full', reasonCode: 7 });
  const uid = new HandshakeError(RejectReason.UidMismatch, 'no');
  t.false(uid.retryable);
  const slow = new HandshakeError(RejectReason.Timeout, 'slow');
  t.is(slow.code, 'HANDSHAKE_TIMEOUT');
  t.true(slow.retryable);
  t.is(new HandshakeError(99, 'future reason').reason, 'unknown');
});

const badServerOptions: Array<[string, IpcServerOptions]> = [
  ['ringCapacity', { ringCapacity: 1000 }],
  ['ringCapacity', { ringCapacity: 3 << 20 }],
  ['ringCapacity', { ringCapacity: 1 << 31 }],
  ['ringCapacity', { ringCapacity: '1MiB' as unknown as number }],
  ['maxMessage', { maxMessage: 0 }],
  ['maxMessage', { maxMessage: 2 ** 32 }],
  ['maxConnections', { maxConnections: 0 }],
  ['maxStreams', { maxStreams: -1 }],
  ['maxInFlight', { maxInFlight: 1.5 }],
  ['maxInFlightBytes', { maxInFlightBytes: -1 }],
  // Below maxMessage a call of an allowed size could never be served.
  ['maxInFlightBytes', { maxMessage: 1 << 20, maxInFlightBytes: (1 << 20) - 1 }],
  ['inFlightBytesBudget', { inFlightBytesBudget: 2 ** 53 }],
  ['handshakeTimeoutMs', { handshakeTimeoutMs: 0 }],
  ['idleTimeoutMs', { idleTimeoutMs: -5 }],
  ['shutdownDeadlineMs', { shutdownDeadlineMs: NaN }],
  ['allowedUids', { allowedUids: [] }],
  ['allowedUids[0]', { allowedUids: [-1] }],
  ['checkPid', { checkPid: 'no' as unknown as boolean }],
  ['reassemblyBudget', { reassemblyBudget: -1 }],
  ['channel.idle', { channel: { idle: 'busy' as never } }],
  ['channel.wake', { channel: { wake: 'eventfd' as never } }],
  ['socketPath', { socketPath: '' }],
];

for (const [option, opts] of badServerOptions) {
  test(`new IpcServer refuses a bad ${option} with INVALID_ARGUMENT naming it: ${JSON.stringify(opts)}`, (t) => {
    const socketPath = opts.socketPath ?? sockPath(t);
    const err = t.throws(() => new IpcServer({ logger: silent(), ...opts, socketPath }), { instanceOf: IpcError });
    t.is(err?.code, 'INVALID_ARGUMENT');
    t.is(err?.details?.option ?? 'socketPath', option);
    t.regex(err!.message, new RegExp(option.replace(/[.[\]]/g, '\\$&')));
  });
}

test('IpcClient.connect refuses bad options with INVALID_ARGUMENT before connecting', async (t) => {
  const socketPath = sockPath(t); // nothing listens: a connect attempt would fail differently
  const cases: Array<Record<string, unknown>> = [
    { handshakeTimeoutMs: 0 },
    { name: '' },
    { streamWindow: { chunks: 0 } },
    { streamWindow: { bytes: 2 ** 31 + 1 } },
    { reconnect: 'yes' },
    { reconnect: { initialDelayMs: -1 } },
    { channel: { spinMicros: -1 } },
  ];
  for (const c of cases) {
    const err = await ipcError(t, IpcClient.connect(socketPath, c as never));
    t.is(err.code, 'INVALID_ARGUMENT', JSON.stringify(c));
  }
});

test('defaults: one source; the server announces them in WELCOME', async (t) => {
  const socketPath = sockPath(t);
  const server = new IpcServer({ socketPath, logger: silent() });
  await server.listen();
  t.teardown(() => server.close({ deadlineMs: 0 }));
  const client = await connect(t, socketPath);
  t.is(client.session!.capacity, DEFAULT_RING_CAPACITY);
  t.is(client.session!.maxMessage, DEFAULT_MAX_MESSAGE);
  t.deepEqual({ ...DEFAULT_STREAM_WINDOW }, { chunks: 256, bytes: 4 << 20 });
});

test('socket path: P and P.ctl name the same server on both sides; the log shows the path the user gave', async (t) => {
  const socketPath = sockPath(t);
  const lines: string[] = [];
  const pino = (await import('pino')).default;
  const { Writable } = await import('node:stream');
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(c: Buffer, _e, cb) {
        lines.push(c.toString());
        cb();
      },
    }),
  );
  const server = new IpcServer({ socketPath: `${socketPath}.ctl`, logger });
  await server.listen();
  t.teardown(() => server.close({ deadlineMs: 0 }));
  t.is(server.controlPath, `${socketPath}.ctl`);
  t.true(fs.existsSync(`${socketPath}.ctl`));
  t.false(fs.existsSync(`${socketPath}.ctl.ctl`));
  t.true(lines.some((l) => JSON.parse(l).socket === `${socketPath}.ctl`));
  for (const p of [socketPath, `${socketPath}.ctl`]) {
    const c = await connect(t, p);
    t.is(await c.request('$ping'), null);
    t.is(c.controlPath, `${socketPath}.ctl`);
  }
});

test('socket path: a directory is refused on both sides, with a clear message', async (t) => {
  const dir = path.dirname(sockPath(t));
  const err = t.throws(() => new IpcServer({ socketPath: dir, logger: silent() }), { instanceOf: IpcError });
  t.is(err?.code, 'INVALID_ARGUMENT');
  t.regex(err!.message, /is a directory/);
  const cerr = await ipcError(t, IpcClient.connect(dir));
  t.is(cerr.code, 'INVALID_ARGUMENT');
  t.regex(cerr.message, /is a directory/);
});

test('socket path: over the 108-byte sun_path limit is refused before trying, on both sides', async (t) => {
  const dir = path.dirname(sockPath(t));
  const long = path.join(dir, 'x'.repeat(MAX_SOCKET_PATH_BYTES));
  const err = t.throws(() => new IpcServer({ socketPath: long, logger: silent() }), { instanceOf: IpcError });
  t.is(err?.code, 'INVALID_ARGUMENT');
  t.regex(err!.message, /too long.*at most 107/);
  const cerr = await ipcError(t, IpcClient.connect(long));
  t.is(cerr.code, 'INVALID_ARGUMENT');
  t.regex(cerr.message, /too long/);
  // Exactly at the limit is fine (the control path is 107 bytes).
  const fits = path.join(dir, 'y'.repeat(MAX_SOCKET_PATH_BYTES - dir.length - 1 - 4));
  t.is(Buffer.byteLength(`${fits}.ctl`), MAX_SOCKET_PATH_BYTES);
  const server = new IpcServer({ socketPath: fits, logger: silent() });
  await server.listen();
  t.teardown(() => server.close({ deadlineMs: 0 }));
  const c = await connect(t, fits);
  t.is(await c.request('$ping'), null);
});

test('connect errors carry Node-style code, syscall and address: ENOENT and ECONNREFUSED', async (t) => {
  const missing = sockPath(t);
  const e1 = await ipcError(t, IpcClient.connect(missing));
  t.is(e1.code, 'CONNECTION_LOST');
  t.true(e1.retryable);
  t.like(e1.details, { errno: 'ENOENT', syscall: 'connect', address: `${missing}.ctl` });
  const cause = e1.cause as NodeJS.ErrnoException & { address?: string };
  t.is(cause.code, 'ENOENT');
  t.is(cause.syscall, 'connect');
  t.is(cause.address, `${missing}.ctl`);
  t.is(cause.errno, -2);

  // A socket file nobody listens on any more: ECONNREFUSED.
  const stale = sockPath(t);
  const l = native.NativeListener.bind(`${stale}.ctl`);
  l.close(false);
  const e2 = await ipcError(t, IpcClient.connect(stale));
  t.like(e2.details, { errno: 'ECONNREFUSED', syscall: 'connect' });
  t.is((e2.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  t.true(e2.retryable);
});

test('an embedded IpcServer without a logger writes nothing to stderr (listen, sessions, failures, close)', async (t) => {
  const socketPath = sockPath(t);
  const written: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  (process.stderr as { write: unknown }).write = (chunk: unknown, ...rest: unknown[]) => {
    written.push(String(chunk));
    return (orig as (...a: unknown[]) => boolean)(chunk, ...rest);
  };
  t.teardown(() => {
    (process.stderr as { write: unknown }).write = orig;
  });
  const server = new IpcServer({ socketPath, maxConnections: 1 });
  server.handle('boom', () => {
    throw new Error('handler failed');
  });
  await server.listen();
  const c = await IpcClient.connect(socketPath);
  await t.throwsAsync(c.request('boom'));
  // A refused handshake (server full) is a warn line with a logger; here it is silent.
  await t.throwsAsync(IpcClient.connect(socketPath));
  c.close();
  await server.close({ deadlineMs: 0 });
  (process.stderr as { write: unknown }).write = orig;
  t.deepEqual(written, []);
});

test('BoundedFifo: FIFO order across growth and wrap-around, refuses past its limit, O(1) shift', (t) => {
  const q = new BoundedFifo<number>(100);
  let next = 0;
  let expect = 0;
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 37 && !q.full; i++) t.true(q.push(next++));
    for (let i = 0; i < 30 && q.length; i++) t.is(q.shift(), expect++);
  }
  while (q.length) t.is(q.shift(), expect++);
  t.is(expect, next);
  for (let i = 0; i < 100; i++) q.push(i);
  t.true(q.full);
  t.false(q.push(100));
  t.is(q.length, 100);
  t.is(q.peek(), 0);
  q.clear();
  t.is(q.shift(), undefined);
  t.throws(() => new BoundedFifo(0));
  // 200k items through a queue of 50k: stays linear (a guard against Array#shift behaviour,
  // not a timing assertion: it would simply take minutes if shift were O(n)).
  const big = new BoundedFifo<number>(50_000);
  let sum = 0;
  for (let i = 0; i < 200_000; i++) {
    if (big.full) sum += big.shift()!;
    big.push(i);
  }
  while (big.length) sum += big.shift()!;
  t.is(sum, (199_999 * 200_000) / 2);
});

test('control-frame text is cut to 1000 UTF-8 bytes at a character boundary', (t) => {
  t.is(controlText('x'.repeat(1200)).length, 1000);
  t.is(controlText('short').toString(), 'short');
  // 999 ASCII bytes, then a 3-byte character that would straddle the limit: dropped whole.
  const straddle = controlText('a'.repeat(999) + '€' + 'b');
  t.is(straddle.length, 999);
  // Emoji (4 bytes, a surrogate pair each): 250 of them are exactly 1000 bytes; 251 cut back to 250.
  t.is(controlText('😀'.repeat(251)).toString(), '😀'.repeat(250));
  const odd = controlText('é' + '😀'.repeat(300));
  t.true(odd.length <= 1000 && odd.length > 996);
  t.is(Buffer.from(odd.toString(), 'utf8').length, odd.length, 'no U+FFFD from a split character');
});

test('request() never throws: a signal that is no AbortSignal rejects with INVALID_ARGUMENT, holding no id', async (t) => {
  const socketPath = sockPath(t);
  const server = new IpcServer({ socketPath, logger: silent() });
  server.handle('echo', (p) => p);
  await server.listen();
  t.teardown(() => server.close({ deadlineMs: 0 }));
  const client = await connect(t, socketPath);
  const bogus = { aborted: false } as unknown as AbortSignal;
  let pending: Promise<unknown> | undefined;
  t.notThrows(() => {
    pending = client.request('echo', 'x', { signal: bogus });
  });
  const err = await ipcError(t, pending as Promise<unknown>);
  t.is(err.code, 'INVALID_ARGUMENT');
  t.is((client as unknown as { calls: { size: number } }).calls.size, 0, 'the failed call holds no id');
  t.is(await client.request('echo', 'still works'), 'still works');
});
