/**
 * Every callback and promise chain on the data path handles its errors (issue 7 item 1): a
 * handler that throws or rejects with anything, a stream that is not iterable or fails in its
 * `finally`, a result JSON cannot encode, a peer that corrupts the ring: each ends at most its
 * call or its session, with a typed error, and nothing reaches `unhandledRejection` or
 * `uncaughtException`.
 */
import test from 'ava';
import { IpcError } from '../../src/errors';
import { OFF_TAIL } from '../../src/transport/layout';
import { connect, ipcError, mutatedHandshake, startServer, waitFor } from './helpers';
import { encodeFrame, FrameKind } from '../../src/protocol/frame';

test.serial('misbehaving handlers and a ring-corrupting peer never reach unhandledRejection; the server keeps serving', async (t) => {
  const seen: unknown[] = [];
  const onRejection = (r: unknown): void => void seen.push(['unhandledRejection', r]);
  const onException = (e: unknown): void => void seen.push(['uncaughtException', e]);
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  t.teardown(() => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  });
  const { server, socketPath } = await startServer(t);
  server.handle('throwString', () => {
    throw 'a string, not an Error';
  });
  server.handle('rejectUndefined', () => Promise.reject(undefined));
  server.handle('rejectLater', async () => {
    await new Promise((r) => setTimeout(r, 5));
    throw new TypeError('late');
  });
  server.handle('cyclic', () => {
    const o: Record<string, unknown> = {};
    o.o = o;
    return o;
  });
  server.handleStream('notIterable', (() => 42) as never);
  server.handleStream('badFinally', async function* () {
    try {
      yield 1;
      yield 2;
    } finally {
      // eslint-disable-next-line no-unsafe-finally
      throw new Error('finally failed');
    }
  });
  const client = await connect(t, socketPath);
  const codes: Record<string, string> = {};
  for (const m of ['throwString', 'rejectUndefined', 'rejectLater', 'cyclic']) codes[m] = (await ipcError(t, client.request(m))).code;
  for (const m of ['notIterable', 'badFinally']) {
    const err = await ipcError(
      t,
      (async () => {
        for await (const _ of client.stream(m));
      })(),
    );
    codes[m] = err.code;
  }
  t.deepEqual(codes, {
    throwString: 'HANDLER_ERROR',
    rejectUndefined: 'HANDLER_ERROR',
    rejectLater: 'HANDLER_ERROR',
    cyclic: 'HANDLER_ERROR',
    notIterable: 'HANDLER_ERROR',
    badFinally: 'HANDLER_ERROR',
  });
  // Breaking out of a stream whose finally throws: the cancel path swallows nothing into the void.
  for await (const _ of client.stream('badFinally')) break;

  // A peer that writes an impossible `tail` into the server→client ring, then asks for a reply
  // (issue 7 item 1): that session ends, nothing else.
  const raw = await mutatedHandshake(socketPath, (h) => h);
  t.teardown(() => {
    raw.channel.close();
    raw.conn.close();
  });
  await waitFor(() => server.connections === 2, 'raw session open');
  // The binding hands out one ArrayBuffer per mapping; the incoming ring's is the server→client ring.
  const rx = (raw.channel as unknown as { ep: { rxBuffer(): ArrayBuffer | null } }).ep.rxBuffer();
  t.truthy(rx, 'zero-copy path: the client maps the server→client ring');
  new DataView(rx as ArrayBuffer).setUint32(OFF_TAIL, 1417435350, true);
  await raw.channel.send(encodeFrame(FrameKind.Request, 1, 'echo', 'reply into a corrupt ring'));
  await waitFor(() => server.connections === 1, 'the corrupting session to end');
  t.is(await client.request('echo', 'still here'), 'still here');
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(seen, []);
  t.true(new IpcError('HANDLER_ERROR', 'x') instanceof Error);
});
