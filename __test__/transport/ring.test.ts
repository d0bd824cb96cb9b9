/**
 * Data integrity across two real processes: ring wrap-around, a full ring, messages larger than
 * the ring (both directions), and empty messages.
 */
import test from 'ava';
import native = require('../../src/native');
import type { IpcError } from '../../src/errors';
import { Channel, channelPair, createReassemblyBudget } from '../../src/transport/channel';
import { RingWriter } from '../../src/transport/ring-writer';
import { channelFds, checkMessage, closed, deferred, echoRoundTrip, makeMessage, pair, PEER, rng, sizeOf, within } from './helpers';

test('messages of varying sizes wrap a 4 KiB ring many times, content intact', async (t) => {
  const capacity = 4096;
  const p = await pair(t, PEER, { channel: { capacity }, params: { role: 'echo' } });
  const ch = p.channel!;
  // Up to 3000 bytes: many records, padding at the wrap point, and fragments (> 1016 bytes).
  const n = 6000;
  let bytes = 0;
  const got = await echoRoundTrip(ch, n, (i) => {
    const m = makeMessage(i, sizeOf(i, 3000));
    bytes += m.length;
    return m;
  });
  t.is(got, n);
  const s = ch.stats();
  t.is(s.messagesSent, n);
  t.is(s.messagesReceived, n);
  t.is(s.bytesReceived, bytes);
  // Each direction carried far more than the ring holds: it wrapped hundreds of times.
  t.true(bytes > 200 * capacity, `only ${bytes} bytes went through`);
  const child = (await p.link.request({ type: 'stats' })).stats as { messagesReceived: number; bytesReceived: number };
  t.is(child.messagesReceived, n);
  t.is(child.bytesReceived, bytes);
});

test('a full ring makes sends wait, in order, and drops nothing', async (t) => {
  const capacity = 4096;
  const n = 3000;
  const max = 300;
  const p = await pair(t, PEER, { channel: { capacity }, params: { role: 'verify', count: n, max } });
  const ch = p.channel!;
  const verified = p.link.next('verified', 30_000);
  let resolved = 0;
  const order: number[] = [];
  const sends = [];
  for (let i = 0; i < n; i++) {
    sends.push(
      ch.send(makeMessage(i, sizeOf(i, max))).then(() => {
        resolved++;
        order.push(i);
      }),
    );
  }
  // Let the event loop turn a few times: the peer reads nothing yet, so the ring stays full.
  for (let k = 0; k < 5; k++) await new Promise((r) => setTimeout(r, 5));
  t.true(resolved < n, 'some sends must be waiting for space');
  t.true(resolved > 0, 'the sends that fit resolved at once');
  const stalledAt = resolved;
  t.true(ch.stats().ringFullWaits > 0);
  t.true(ch.stats().messagesSent < n);
  p.link.send({ type: 'start' });
  await within(Promise.all(sends), 30_000, 'sends after the peer started reading');
  t.true(stalledAt < n);
  t.deepEqual(
    order,
    Array.from({ length: n }, (_, i) => i),
    'send promises resolve in order',
  );
  const v = await verified;
  t.is(v.error, null, String(v.error));
  t.is(v.count, n);
  const s = ch.stats();
  t.is(s.messagesSent, n);
  t.true(s.ringFullWaits > 0);
});

test('a 3 MB message crosses a 64 KiB ring in both directions, content intact', async (t) => {
  const p = await pair(t, PEER, { channel: { capacity: 64 * 1024 }, params: { role: 'echo' } });
  const sizes = [3_000_000, 17, 0, 65536, 16 * 1024 - 8, 16 * 1024 - 7, 3 * 1024 * 1024 + 5, 1];
  const got = await echoRoundTrip(p.channel!, sizes.length, (i) => makeMessage(i + 1000, sizes[i]), { awaitEach: true });
  t.is(got, sizes.length);
  const total = sizes.reduce((a, b) => a + b, 0);
  t.is(p.channel!.stats().bytesReceived, total);
});

test('several oversized messages in flight at once, both directions', async (t) => {
  const p = await pair(t, PEER, { channel: { capacity: 64 * 1024 }, params: { role: 'echo' } });
  const got = await echoRoundTrip(p.channel!, 12, (i) => makeMessage(i, 200_000 + i * 50_001));
  t.is(got, 12);
});

test('empty messages are messages, across processes', async (t) => {
  const p = await pair(t, PEER, { channel: { capacity: 4096 }, params: { role: 'echo' } });
  const ch = p.channel!;
  // At most 100 in flight, so the rings never fill (a full ring loses empty messages: see
  // the next test).
  const got = await echoRoundTrip(ch, 2000, (i) => (i % 3 === 0 ? makeMessage(i, 5) : new Uint8Array(0)), { window: 100 });
  t.is(got, 2000);
  // 2000 messages, of which 1333 empty: an empty record is 8 bytes, so this also wrapped.
  t.is(ch.stats().bytesReceived, Math.ceil(2000 / 3) * 5);
});

// Regression: an empty message sent while the ring was full used to be reported sent and
// dropped, because "nothing fitted" and "done" were both progress 0. Writers now return -1
// when nothing fit.
for (const zeroCopy of [true, false]) {
  test(`empty messages survive a full ring (zeroCopy ${zeroCopy})`, async (t) => {
    const [a, b] = channelPair({ capacity: 4096, zeroCopy });
    t.teardown(() => {
      a.close();
      b.close();
    });
    // 1000 empty records of 8 bytes do not fit in 4096 bytes: most sends must wait.
    const sends = Array.from({ length: 1000 }, () => a.send(new Uint8Array(0)));
    let n = 0;
    const all = deferred();
    b.onMessage(() => {
      if (++n === 1000) all.resolve();
    });
    await Promise.all(sends);
    await within(all.promise, 1000, `received ${n} of 1000 empty messages`).catch(() => undefined);
    t.is(n, 1000);
    t.true(a.stats().ringFullWaits > 0);
  });
}

test('empty messages in one process (trySend and send)', async (t) => {
  const [a, b] = channelPair({ capacity: 4096 });
  const seen: number[] = [];
  const done = deferred();
  b.onMessage((m) => {
    seen.push(m.length);
    if (seen.length === 3) done.resolve();
  });
  t.true(a.trySend(new Uint8Array(0)));
  await a.send(new Uint8Array(0));
  await a.send(Buffer.from('x'));
  await within(done.promise, 5000, 'three messages');
  t.deepEqual(seen, [0, 0, 1]);
  a.close();
  t.is(await closed(b), undefined);
});

// Fragmented messages reach an onMessage handler through one reused buffer (native and JS side).
// Reuse must never let one message's bytes show through in the next: sizes go up and down
// around the reuse limit (4 rings) and each message has its own pattern.
for (const zeroCopy of [true, false]) {
  test(`fragmented messages of changing sizes arrive intact through the reused buffers (zeroCopy ${zeroCopy})`, async (t) => {
    const capacity = 64 * 1024;
    const [a, b] = channelPair({ capacity, zeroCopy });
    t.teardown(() => {
      a.close();
      b.close();
    });
    const sizes = [20_000, 200_000, 17_000, 300_000, 16_400, 250_000, 100_000, 40_000, 3 * capacity, 5 * capacity, 30_000];
    const done = deferred<void>();
    let i = 0;
    b.onMessage((msg) => {
      const expected = makeMessage(i, sizes[i]);
      if (msg.length !== expected.length || Buffer.compare(Buffer.from(msg), expected) !== 0) {
        done.reject(new Error(`message ${i} (${sizes[i]} bytes) arrived altered (${msg.length} bytes)`));
        return;
      }
      if (++i === sizes.length) done.resolve();
    });
    for (let k = 0; k < sizes.length; k++) await a.send(makeMessage(k, sizes[k]));
    await within(done.promise, 20_000, 'messages did not all arrive');
    t.is(i, sizes.length);
  });
}

test('a handler may send the transient view it received: if it has to wait, it is copied first', async (t) => {
  // b echoes every message as the very view it was handed (ring memory, or the reassembly
  // buffer for fragmented ones) with no copy of its own; the 4 KiB ring makes many echoes wait.
  const [a, b] = channelPair({ capacity: 4096 });
  t.teardown(() => {
    a.close();
    b.close();
  });
  b.onMessage((m) => {
    b.send(m).catch(() => undefined);
  });
  const n = 400;
  const got = await echoRoundTrip(a, n, (i) => makeMessage(i, 1 + ((i * 997) % 3000)));
  t.is(got, n);
  t.true(b.stats().ringFullWaits > 0, 'some echoes had to wait');
});

// ---- reassembly budget (issue 7 item 9) -------------------------------------------------

test('a message whose reassembly does not fit the budget closes the channel with RESOURCE_EXHAUSTED', async (t) => {
  const budget = createReassemblyBudget(8192);
  const [a, b] = channelPair({ capacity: 4096, reassemblyBudget: budget });
  t.teardown(() => {
    a.close();
    b.close();
  });
  const whenClosed = new Promise<IpcError | undefined>((r) => b.onClose(r));
  b.onMessage(() => t.fail('the message cannot arrive'));
  void a.send(new Uint8Array(20_000)).catch(() => undefined);
  const err = await within(whenClosed, 5000, 'the receiver to close');
  t.is(err?.code, 'RESOURCE_EXHAUSTED', err?.message);
  t.is(budget.used, 0, 'a failed reassembly gives its bytes back');
});

test('channels sharing a budget: one holding a half-reassembled message leaves less for the others', async (t) => {
  const budget = createReassemblyBudget(16384);
  // Pair 1: a raw writer puts the first fragments of a large message into the ring and stops.
  const { server: fds, client: theirs } = channelFds(4096);
  const raw = new native.NativeEndpoint(theirs, native.Side.Client, 4096, 1 << 20, true);
  const holder = new Channel(fds, 'server', { capacity: 4096, reassemblyBudget: budget });
  const [a, b] = channelPair({ capacity: 4096, reassemblyBudget: budget });
  t.teardown(() => {
    holder.close();
    raw.close();
    a.close();
    b.close();
  });
  holder.onMessage(() => t.fail('half a message cannot arrive'));
  const w = new RingWriter(raw.txBuffer()!, 4096, raw.txHead);
  t.true(w.write(new Uint8Array(100_000), null, 0) > 0);
  if (w.publish()) raw.ringPeer();
  raw.ringPeer();
  const deadline = Date.now() + 5000;
  while (budget.used === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const held = budget.used;
  t.true(held >= 4096, `the half-reassembled message holds ${held} bytes`);
  // A message that would fit an empty budget no longer does.
  const whenClosed = new Promise<IpcError | undefined>((r) => b.onClose(r));
  b.onMessage(() => t.fail('the message cannot arrive'));
  void a.send(new Uint8Array(14_000)).catch(() => undefined);
  t.is((await within(whenClosed, 5000, 'close'))?.code, 'RESOURCE_EXHAUSTED');
  t.is(budget.used, held);
  t.false(holder.closed);
  holder.close();
  t.is(budget.used, 0, 'closing gives the held bytes back at once');
});

// ---- property: the JS writer and the Rust consumer agree on any message sequence ------------

test('JS writer -> Rust consumer round-trips random message sequences (100 seeds: sizes 0..3 rings, random pauses, half of them written in two parts)', async (t) => {
  for (let seed = 1; seed <= 100; seed++) {
    const r = rng(seed);
    const capacity = 4096;
    const { server: fds, client: theirs } = channelFds(capacity);
    const raw = new native.NativeEndpoint(theirs, native.Side.Client, capacity, 1 << 20, true);
    const reader = new Channel(fds, 'server', { capacity });
    const w = new RingWriter(raw.txBuffer()!, capacity, raw.txHead);
    const sizes = Array.from({ length: 1 + (r() % 40) }, () => {
      const k = r() % 4;
      return k === 0 ? r() % 9 : k === 1 ? r() % 1100 : k === 2 ? r() % (3 * capacity) : 1016 * (1 + (r() % 3));
    });
    const got: Uint8Array[] = [];
    reader.onMessage((m) => got.push(m.slice()));
    for (let i = 0; i < sizes.length; i++) {
      const msg = makeMessage(i, sizes[i]);
      // Half the messages go in two parts (a frame header and its payload), cut anywhere.
      const cut = r() % 2 === 0 ? r() % (msg.length + 1) : -1;
      const [head, body] = cut < 0 ? [msg, null] : [msg.subarray(0, cut), msg.subarray(cut)];
      let progress = 0;
      for (let spins = 0; ; spins++) {
        const p = w.write(head, body, progress);
        if (w.publish()) raw.ringPeer();
        if (p === msg.length) break;
        if (p > progress) progress = p;
        // The ring is full: let the reader run (it releases what it read).
        if (!w.prepareWaitForSpace(w.spaceNeeded(msg.length - progress))) continue;
        raw.ringPeer();
        await new Promise((res) => setImmediate(res));
        if (spins > 10_000) throw new Error(`seed ${seed}: writer stuck at message ${i}`);
      }
      if (r() % 4 === 0) await new Promise((res) => setImmediate(res));
    }
    const done = deferred();
    const check = setInterval(() => got.length >= sizes.length && done.resolve(), 1);
    await within(done.promise, 10_000, `seed ${seed}: ${got.length} of ${sizes.length} messages`).finally(() => clearInterval(check));
    const bad = got.map((m, i) => checkMessage(m, i, sizes[i])).find(Boolean);
    reader.close();
    raw.close();
    if (bad || got.length !== sizes.length) return t.fail(`seed ${seed}: ${bad ?? `${got.length} messages`}`);
  }
  t.pass();
});
