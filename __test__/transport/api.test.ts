/**
 * The Channel API across two real processes: the copying fallback, the async iterator (end of
 * stream, errors, backpressure).
 */
import test from 'ava';
import type { NativeEndpoint } from '../../index';
import type { IpcError } from '../../src/errors';
import type { ChannelStats } from '../../src/transport/channel';
import { channelPair } from '../../src/transport/channel';
import { OFF_HEAD } from '../../src/transport/layout';
import { checkMessage, closed, deferred, echoRoundTrip, makeMessage, pair, PEER, sizeOf, within } from './helpers';

for (const [ours, theirs] of [
  [false, false],
  [false, true],
  [true, false],
] as const) {
  test(`copying fallback works both directions (zeroCopy: parent ${ours}, child ${theirs})`, async (t) => {
    const p = await pair(t, PEER, {
      channel: { capacity: 64 * 1024, zeroCopy: ours },
      childChannel: { zeroCopy: theirs },
      params: { role: 'echo' },
    });
    const info = await p.link.next('fdinfo');
    t.is(p.channel!.zeroCopy, ours);
    t.is(info.zeroCopy, theirs);
    // Small messages, and some larger than a quarter of the ring (reassembled from fragments).
    const n = 1500;
    const got = await echoRoundTrip(p.channel!, n, (i) => makeMessage(i, i % 50 === 0 ? 70_000 + i : sizeOf(i, 2000)));
    t.is(got, n);
    const child = (await p.link.request({ type: 'stats' })).stats as ChannelStats;
    t.is(child.messagesReceived, n);
    t.is(child.messagesSent, n);
  });
}

test('the async iterator ends when the peer closes, after every message', async (t) => {
  const n = 500;
  const max = 2500;
  const p = await pair(t, PEER, { channel: { capacity: 4096 }, params: { role: 'sendclose', count: n, max } });
  let i = 0;
  const errors: string[] = [];
  const loop = (async () => {
    for await (const m of p.channel!) {
      const e = checkMessage(m, i, sizeOf(i, max));
      if (e) errors.push(e);
      i++;
    }
  })();
  await within(loop, 20_000, `the iterator to end (${i} of ${n} so far)`);
  t.deepEqual(errors, []);
  t.is(i, n);
  t.true(p.channel!.closed);
  // Iterating a closed channel ends at once.
  const again = await p.channel![Symbol.asyncIterator]().next();
  t.true(again.done);
});

test('the async iterator throws the error a corrupted peer caused', async (t) => {
  const p = await pair(t, PEER, { channel: { capacity: 4096 }, params: { role: 'corrupt', good: 3 } });
  let seen = 0;
  const loop = (async () => {
    for await (const m of p.channel!) {
      t.is(m[0], seen);
      if (++seen === 3) p.link.request({ type: 'corrupt', variant: 'len-huge' }).catch(() => undefined);
    }
  })();
  const err = (await t.throwsAsync(within(loop, 10_000, 'the iterator to fail'))) as IpcError;
  t.is(err.code, 'RING_CORRUPT');
  t.is(seen, 3);
});

test('a slow async-iterator consumer holds the sender back; memory stays bounded; all arrive', async (t) => {
  const n = 20_000;
  const size = 1000;
  const highWaterMark = 16;
  const capacity = 64 * 1024;
  const p = await pair(t, PEER, { channel: { capacity, highWaterMark }, params: { role: 'flood', count: n, size } });
  const ch = p.channel!;
  const flooded = p.link.next('flooded', 60_000);
  let i = 0;
  let maxBacklog = 0;
  let maxBacklogBytes = 0;
  let error: string | null = null;
  for await (const m of ch) {
    error ??= checkMessage(m, i, size);
    i++;
    // Received from the ring but not yet consumed: what the channel buffers for us.
    const s = ch.stats();
    maxBacklog = Math.max(maxBacklog, s.messagesReceived - i);
    maxBacklogBytes = Math.max(maxBacklogBytes, s.bytesReceived - i * size);
    if (i % 500 === 0) await new Promise((r) => setTimeout(r, 1));
    else await new Promise((r) => setImmediate(r));
    if (i === n) break;
  }
  t.is(error, null);
  t.is(i, n);
  const sender = (await flooded).stats as ChannelStats;
  t.is(sender.messagesSent, n);
  t.true(sender.ringFullWaits > 0, 'the sender had to wait for the slow reader');
  // Reading pauses at the high-water mark; one poll batch (up to 256 messages, never more
  // bytes than the ring holds) may overshoot it.
  t.true(maxBacklog <= highWaterMark + 256, `backlog reached ${maxBacklog} messages`);
  t.true(maxBacklogBytes <= highWaterMark * size + capacity, `backlog reached ${maxBacklogBytes} bytes`);
  t.log(`largest backlog: ${maxBacklog} messages (highWaterMark ${highWaterMark}); sender waited ${sender.ringFullWaits} times`);
});

// ---- the copying fallback -----------------------------------------------------------------
// Regression: trySend() used to throw on a full ring in the copying fallback instead of
// returning false (inside an onMessage handler that closed the channel).
test('copying fallback: trySend returns false on a full ring', (t) => {
  const [a, b] = channelPair({ capacity: 4096, zeroCopy: false });
  t.teardown(() => {
    a.close();
    b.close();
  });
  let sent = 0;
  t.notThrows(() => {
    while (a.trySend(new Uint8Array(100))) sent++;
  });
  t.true(sent > 0 && sent < 4096 / 100);
  t.false(a.closed);
});

// Regression: the copying fallback used to miss the peer closing (only the zero-copy branch read
// the `closed` word), so the iterator never ended and the channel polled a core at 100%.
test('copying fallback: the peer closing closes the channel (and ends the iterator)', async (t) => {
  const [a, b] = channelPair({ capacity: 4096, zeroCopy: false });
  t.teardown(() => {
    a.close();
    b.close();
  });
  await a.send(makeMessage(1, 10));
  const got: Uint8Array[] = [];
  const loop = (async () => {
    for await (const m of b) got.push(m);
  })();
  a.close();
  await within(loop, 1000, 'the iterator to end').catch(() => undefined);
  t.is(got.length, 1);
  t.true(b.closed, 'the channel noticed that the peer closed');
  t.is(await within(closed(b), 100, 'onClose'), undefined);
});

test('bad options (an unknown wake mode, a capacity that is no power of two) are refused up front with INVALID_ARGUMENT', (t) => {
  for (const opts of [{ capacity: 4096, wake: 'epoll' as 'uv' }, { capacity: 5000 }, { capacity: 4096, maxMessage: -1 }]) {
    const e = t.throws(() => channelPair(opts));
    t.is((e as IpcError).code, 'INVALID_ARGUMENT', e?.message);
  }
});

test('a closed endpoint answers every call with CHANNEL_CLOSED', (t) => {
  const [a, b] = channelPair({ capacity: 4096 });
  b.close();
  const ep = (a as unknown as { ep: NativeEndpoint }).ep;
  a.close();
  for (const call of [() => ep.release(), () => ep.woke(), () => ep.peerClosed(), () => ep.poll(new Int32Array(2)), () => ep.ringPeer()]) {
    const e = t.throws(call);
    t.is((e as { code?: string }).code, 'CHANNEL_CLOSED');
  }
});

test('close() publishes what a handler wrote inside its batch before the closed word', async (t) => {
  const [a, b] = channelPair({ capacity: 4096 });
  t.teardown(() => a.close());
  const got = deferred<string>();
  a.onMessage((m) => got.resolve(Buffer.from(m).toString()));
  b.onMessage(() => {
    // Inside the batch: the reply is corked; closing must still let it out.
    t.true(b.trySend(Buffer.from('last words')));
    b.close();
  });
  await a.send(Buffer.from('hi'));
  t.is(await within(got.promise, 5000, 'the reply'), 'last words');
});

test('onFailing runs before a self-detected failure closes the channel, and what it sends gets out', async (t) => {
  const [a, b] = channelPair({ capacity: 4096 });
  t.teardown(() => a.close());
  const got = deferred<string>();
  a.onMessage((m) => got.resolve(Buffer.from(m).toString()));
  const seen: string[] = [];
  b.onFailing((err) => {
    seen.push(err.code);
    t.false(b.closed);
    t.true(b.trySend(Buffer.from(`error: ${err.code}`)));
  });
  const whenClosed = closed(b);
  b.onMessage(() => {
    throw new Error('handler bug');
  });
  await a.send(Buffer.from('hi'));
  t.is(await within(got.promise, 5000, 'the last word'), 'error: HANDLER_ERROR');
  t.is((await whenClosed)?.code, 'HANDLER_ERROR');
  t.deepEqual(seen, ['HANDLER_ERROR']);
});

test('cork/uncork: messages sent while corked become visible together, with one publish', async (t) => {
  const [a, b] = channelPair({ capacity: 1 << 16, idle: 'sleep' });
  t.teardown(() => {
    a.close();
    b.close();
  });
  const got: number[] = [];
  b.onMessage((m) => got.push(m[0]));
  await new Promise((r) => setTimeout(r, 20));
  const before = a.stats();
  a.cork();
  for (let i = 0; i < 10; i++) t.true(a.trySend(Uint8Array.of(i)));
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  t.deepEqual(got, [], 'nothing is visible while corked');
  a.uncork();
  const d = deferred();
  const check = setInterval(() => got.length === 10 && d.resolve(), 1);
  await within(d.promise, 5000, 'ten messages');
  clearInterval(check);
  t.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const after = a.stats();
  t.true(after.doorbellsRung + after.doorbellsSuppressed - (before.doorbellsRung + before.doorbellsSuppressed) <= 1);
});

test("replies written inside a long batch are published every 16 messages, not at its end; an owner's cork holds them all", async (t) => {
  for (const ownerCorks of [false, true]) {
    const [a, b] = channelPair({ capacity: 1 << 16 });
    // The head of a's incoming ring: what b has published so far (bytes; 0 before anything).
    const published = (): number => Atomics.load((a as unknown as { backend: { rxCtl: Int32Array } }).backend.rxCtl, OFF_HEAD / 4);
    const seen: number[] = [];
    const done = deferred();
    let got = 0;
    a.onMessage(() => ++got === 40 && done.resolve());
    b.onMessage((m) => {
      if (m[0] === 0 && ownerCorks) b.cork();
      t.true(b.trySend(m.slice()));
      if (m[0] === 19) seen.push(published());
      if (m[0] === 39 && ownerCorks) b.uncork();
    });
    // One publish of 40 messages, so b reads them in one batch.
    a.cork();
    for (let i = 0; i < 40; i++) t.true(a.trySend(Uint8Array.of(i)));
    a.uncork();
    await within(done.promise, 5000, 'forty replies');
    a.close();
    b.close();
    if (ownerCorks) t.deepEqual(seen, [0], 'corked by its owner: nothing is visible before uncork');
    else t.true(seen[0] > 0, `the first 16 replies were visible while the batch was still being read (head ${seen[0]})`);
  }
});

test('a queued send can be withdrawn by its signal until a byte of it is in the ring (review R16)', async (t) => {
  const [a, b] = channelPair({ capacity: 4096 });
  t.teardown(() => {
    a.close();
    b.close();
  });
  // b does not read yet: fill a's ring, then queue behind it.
  const filler = makeMessage(0, 3000);
  await a.send(filler);
  // Larger than the ring, so part of it goes in at once: no longer withdrawable.
  const started = new AbortController();
  const big = makeMessage(1, 6000);
  const bigSent = a.send(big, { signal: started.signal });
  const queued = new AbortController();
  const withdrawn = a.send(makeMessage(2, 500), { signal: queued.signal });
  const kept = a.send(makeMessage(3, 400));
  const before = a.queuedBytes;
  started.abort();
  queued.abort(new Error('timed out'));
  const err = await t.throwsAsync<IpcError>(within(withdrawn, 2000, 'the withdrawn send to settle'));
  t.is(err?.code, 'CANCELLED');
  t.deepEqual(err?.details, { withdrawn: true });
  t.is(a.queuedBytes, before - 500, 'the withdrawn bytes left the queue');
  const aborted = new AbortController();
  aborted.abort();
  await t.throwsAsync(within(a.send(makeMessage(4, 10), { signal: aborted.signal }), 2000, 'the aborted send to settle'), {
    message: /withdrawn/,
  });
  // Now b reads: everything but the withdrawn messages arrives, whole and in order.
  const got: Uint8Array[] = [];
  const done = deferred();
  b.onMessage((m) => {
    got.push(m.slice());
    if (got.length === 3) done.resolve();
  });
  await within(Promise.all([bigSent, kept, done.promise]), 5000, 'the rest to arrive');
  t.deepEqual(
    got.map((m) => m.length),
    [3000, 6000, 400],
  );
  t.deepEqual(got[1], big);
  t.is(a.queuedBytes, 0);
});

for (const zeroCopy of [true, false]) {
  test(`sendParts/trySend(head, body): the two parts arrive as one message, queued or not, a transient body copied (zeroCopy ${zeroCopy})`, async (t) => {
    const [a, b] = channelPair({ capacity: 4096, zeroCopy });
    t.teardown(() => {
      a.close();
      b.close();
    });
    const msg = makeMessage(7, 9000);
    // In the ring at once (one record), then larger than the ring (fragments, queued).
    t.is(a.trySend(msg.subarray(0, 8), msg.subarray(8, 900)), zeroCopy, 'one record fits: sent without joining the parts');
    if (!zeroCopy) await a.sendParts(msg.subarray(0, 8), msg.subarray(8, 900));
    const big = a.sendParts(msg.subarray(0, 100), msg.subarray(100));
    const got: Uint8Array[] = [];
    const done = deferred();
    // b echoes what it got as two transient views; the 9000-byte echo does not fit b's ring, so
    // the rest of it waits in b's queue, as copies.
    b.onMessage((m) => {
      got.push(m.slice());
      b.sendParts(m.subarray(0, 3), m.subarray(3)).catch(() => undefined);
      if (got.length === 2) done.resolve();
    });
    const echoed: Uint8Array[] = [];
    const back = deferred();
    a.onMessage((m) => {
      echoed.push(m.slice());
      if (echoed.length === 2) back.resolve();
    });
    await within(Promise.all([big, done.promise, back.promise]), 5000, 'both messages and their echoes');
    t.deepEqual(Buffer.from(got[0]), Buffer.from(msg.subarray(0, 900)));
    t.deepEqual(Buffer.from(got[1]), Buffer.from(msg));
    t.deepEqual(Buffer.from(echoed[0]), Buffer.from(msg.subarray(0, 900)));
    t.deepEqual(Buffer.from(echoed[1]), Buffer.from(msg));
  });
}

test('endOutgoing: the closed word goes out after what was published; queued sends are refused and nothing follows it', async (t) => {
  const [a, b] = channelPair({ capacity: 4096 });
  t.teardown(() => {
    a.close();
    b.close();
  });
  // b does not read yet: 4000 bytes (four records) nearly fill the ring, the next message waits
  // whole in a's queue.
  await a.send(makeMessage(0, 4000));
  const queued = a.send(makeMessage(1, 500));
  t.is(a.queuedBytes, 500);
  a.endOutgoing();
  const err = await t.throwsAsync<IpcError>(within(queued, 2000, 'the queued send to be refused'));
  t.is(err?.code, 'CHANNEL_CLOSED');
  t.false(a.trySend(makeMessage(2, 10)), 'trySend refuses after endOutgoing');
  await t.throwsAsync(a.send(makeMessage(3, 10)));
  const got: Uint8Array[] = [];
  const ended = deferred();
  b.onClose(() => ended.resolve());
  b.onMessage((m) => got.push(m.slice()));
  await within(ended.promise, 5000, 'b to see the closed word');
  t.deepEqual(
    got.map((m) => m.length),
    [4000],
    'only what was in the ring before endOutgoing arrives',
  );
});
