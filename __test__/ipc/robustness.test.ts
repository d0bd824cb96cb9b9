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
import type { Channel } from '../../src/transport/channel';
import { connect, ipcError, mutatedHandshake, sockPath, spawnServer, startServer, waitFor } from './helpers';
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

test('review R16: requests that time out while queued behind a stopped server are withdrawn, and only requests that left get a CANCEL', async (t) => {
  const socketPath = sockPath(t);
  const server = await spawnServer(t, { socketPath, ringCapacity: 64 << 10 });
  const client = await connect(t, socketPath);
  t.is(await client.request('echo', 1), 1);
  const channel = (client as unknown as { current: { channel: Channel } }).current.channel;
  let requestsLeft = 0;
  let withdrawn = 0;
  let cancels = 0;
  const trySend = channel.trySend.bind(channel);
  const send = channel.sendParts.bind(channel);
  channel.trySend = (data, body) => {
    const ok = trySend(data, body);
    if (ok && data[0] === FrameKind.Request) requestsLeft++;
    if (ok && data[0] === FrameKind.Cancel) cancels++;
    return ok;
  };
  // Every queued send goes through sendParts (send() is sendParts without a body).
  channel.sendParts = (data, body, options) => {
    const p = send(data, body, options);
    if (data[0] === FrameKind.Cancel) cancels++;
    if (data[0] === FrameKind.Request) {
      p.then(
        () => requestsLeft++,
        (e: IpcError) => {
          if (e.details?.withdrawn) withdrawn++;
        },
      );
    }
    return p;
  };
  const n = 40;
  const frameBytes = 8 << 10;
  process.kill(server.pid, 'SIGSTOP');
  try {
    // The 64 KiB ring takes a few 8 KiB requests; the rest wait in the client's send queue.
    const results = await Promise.allSettled(
      Array.from({ length: n }, () => client.request('echo', Buffer.alloc(frameBytes, 1), { timeout: 200 })),
    );
    t.true(results.every((r) => r.status === 'rejected' && (r.reason as IpcError).code === 'TIMEOUT'));
    await new Promise((r) => setImmediate(r));
    // At most the one request already part-way into the ring stays queued (it must go out whole).
    t.true(channel.queuedBytes <= frameBytes + 64, `still queued: ${channel.queuedBytes} bytes`);
    t.true(withdrawn > 0, 'queued requests were withdrawn');
  } finally {
    process.kill(server.pid, 'SIGCONT');
  }
  t.is(await client.request('echo', 'alive', { timeout: 10_000 }), 'alive');
  requestsLeft--; // 'alive' itself
  await waitFor(
    () => channel.queuedBytes === 0 && withdrawn + requestsLeft === n,
    `the partly written request to leave (${withdrawn} withdrawn, ${requestsLeft} left, ${channel.queuedBytes} queued)`,
    3000,
  );
  t.is(withdrawn + requestsLeft, n);
  t.is(cancels, requestsLeft, `a CANCEL for each of the ${requestsLeft} requests the server got, none for the ${withdrawn} withdrawn`);
});

test('review R16: the client bounds its queued sends (maxQueuedBytes); past it a call fails at once with retryable SEND_QUEUE_FULL', async (t) => {
  const socketPath = sockPath(t);
  const server = await spawnServer(t, { socketPath, ringCapacity: 64 << 10 });
  const limit = 4 * (64 << 10);
  const client = await connect(t, socketPath, { maxQueuedBytes: limit });
  t.is(await client.request('echo', 1), 1);
  const channel = (client as unknown as { current: { channel: Channel } }).current.channel;
  const n = 60;
  process.kill(server.pid, 'SIGSTOP');
  let calls: Array<Promise<unknown>>;
  let maxQueued = 0;
  try {
    calls = Array.from({ length: n }, () => {
      const p = client.request('echo', Buffer.alloc(8 << 10, 2));
      maxQueued = Math.max(maxQueued, channel.queuedBytes);
      return p;
    });
    t.true(maxQueued <= limit, `queued ${maxQueued} bytes, limit ${limit}`);
  } finally {
    process.kill(server.pid, 'SIGCONT');
  }
  const results = await Promise.allSettled(calls);
  const refused = results.filter((r) => r.status === 'rejected');
  t.true(refused.length > 0, 'some calls were refused locally');
  for (const r of refused) {
    const e = (r as PromiseRejectedResult).reason as IpcError;
    t.is(e.code, 'SEND_QUEUE_FULL');
    t.true(e.retryable);
  }
  t.is(results.filter((r) => r.status === 'fulfilled').length + refused.length, n);
  t.is(await client.request('echo', 'after'), 'after');
});

test('review R16: a stream aborted while its STREAM_OPEN waits in the send queue is withdrawn, with no CANCEL', async (t) => {
  const socketPath = sockPath(t);
  const server = await spawnServer(t, { socketPath, ringCapacity: 64 << 10 });
  const client = await connect(t, socketPath);
  t.is(await client.request('echo', 1), 1);
  const channel = (client as unknown as { current: { channel: Channel } }).current.channel;
  let cancels = 0;
  const trySend = channel.trySend.bind(channel);
  const send = channel.sendParts.bind(channel);
  channel.trySend = (data, body) => {
    const ok = trySend(data, body);
    if (ok && data[0] === FrameKind.Cancel) cancels++;
    return ok;
  };
  channel.sendParts = (data, body, options) => {
    if (data[0] === FrameKind.Cancel) cancels++;
    return send(data, body, options);
  };
  process.kill(server.pid, 'SIGSTOP');
  let fillers: Array<Promise<unknown>> = [];
  try {
    // Fill the ring and put one request in the queue, so the stream's open has to wait.
    for (let i = 0; i < 12 && channel.queuedBytes === 0; i++) fillers.push(client.request('echo', Buffer.alloc(8 << 10, 3)));
    t.true(channel.queuedBytes > 0, 'the ring is full');
    const before = channel.queuedBytes;
    const ac = new AbortController();
    const it = client.stream('ticker', { count: 3 }, { signal: ac.signal })[Symbol.asyncIterator]();
    const first = it.next();
    await waitFor(() => channel.queuedBytes > before, 'STREAM_OPEN to be queued');
    ac.abort();
    const err = (await t.throwsAsync(first)) as IpcError;
    t.is(err.code, 'CANCELLED');
    await new Promise((r) => setImmediate(r));
    t.is(channel.queuedBytes, before, 'STREAM_OPEN and its credit left the queue');
    t.is(cancels, 0, 'no CANCEL for a stream the server never saw');
  } finally {
    process.kill(server.pid, 'SIGCONT');
  }
  await Promise.all(fillers);
  t.is(await client.request('echo', 'after'), 'after');
  t.is(cancels, 0);
  fillers = [];
});
