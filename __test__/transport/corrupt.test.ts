/**
 * A hostile peer scribbles over shared memory. The reading side must close that channel with
 * `RING_CORRUPT` (never crash, hang or touch memory out of bounds), and every other channel of
 * the process must keep working.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import native = require('../../src/native');
import type { NativeEndpoint } from '../../index';
import { IpcError } from '../../src/errors';
import { Channel, channelPair } from '../../src/transport/channel';
import { activate } from '../../src/transport/idle';
import { OFF_HEAD } from '../../src/transport/layout';
import { RingWriter } from '../../src/transport/ring-writer';
import type { Corruption } from './helpers';
import { channelFds, closed, CORRUPTIONS, deferred, echoRoundTrip, makeMessage, pair, PEER, scribble, within } from './helpers';

/** A Channel (server side) and a raw endpoint on the other side, in this process. */
function rawPair(t: ExecutionContext, capacity: number, zeroCopy: boolean): { channel: Channel; ep: NativeEndpoint } {
  const { server: fds, client: theirs } = channelFds(capacity);
  const ep = new native.NativeEndpoint(theirs, native.Side.Client, capacity, 64 << 20, true);
  const channel = new Channel(fds, 'server', { capacity, zeroCopy });
  t.teardown(() => {
    channel.close();
    ep.close();
  });
  return { channel, ep };
}

/** An in-process channel pair that keeps exchanging messages; `check()` proves it still works. */
function bystander(t: ExecutionContext): { check: (n?: number) => Promise<void> } {
  const [a, b] = channelPair({ capacity: 4096 });
  b.onMessage((m) => void b.send(m.slice()));
  t.teardown(() => {
    a.close();
    b.close();
  });
  return {
    async check(n = 200) {
      t.is(await echoRoundTrip(a, n, (i) => makeMessage(i, 1 + (i % 300))), n);
      t.false(a.closed);
    },
  };
}

/** Writes `n` good 32-byte messages into the raw side's outgoing ring. */
function writeGood(ep: NativeEndpoint, w: RingWriter, from: number, n: number): void {
  for (let i = from; i < from + n; i++) {
    t_assert(w.write(makeMessage(i, 32), null, 0) === 32, 'good message fits');
    if (w.publish()) ep.ringPeer();
  }
  ep.ringPeer();
}

function t_assert(cond: boolean, what: string): void {
  if (!cond) throw new Error(what);
}

/** Waits for `n` messages on `ch`, returning their first bytes. */
function receive(ch: Channel, n: number): Promise<number[]> {
  const got: number[] = [];
  const d = deferred<number[]>();
  ch.onMessage((m) => {
    got.push(m[0]);
    if (got.length === n) d.resolve(got);
  });
  return within(d.promise, 10_000, `${n} messages`);
}

for (const zeroCopy of [true, false]) {
  for (const variant of CORRUPTIONS) {
    const seeds = variant === 'garbage' ? [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] : [1];
    test(`corrupted ring (${variant}, zeroCopy ${zeroCopy}) closes the reader with RING_CORRUPT`, async (t) => {
      const other = bystander(t);
      for (const seed of seeds) {
        const { channel, ep } = rawPair(t, 4096, zeroCopy);
        const w = new RingWriter(ep.txBuffer()!, 4096, ep.txHead);
        const whenClosed = closed(channel);
        writeGood(ep, w, 0, 3);
        t.deepEqual(await receive(channel, 3), [0, 1, 2]);
        scribble(ep.txBuffer()!, 4096, variant, seed);
        ep.ringPeer();
        const err = await within(whenClosed, 5000, `channel to close after ${variant} (seed ${seed})`);
        t.true(err instanceof IpcError, `seed ${seed}: closed without an error`);
        t.is(err?.code, 'RING_CORRUPT', `seed ${seed}: ${err?.message}`);
        t.true(channel.closed);
        const e = await t.throwsAsync(channel.send(new Uint8Array(1)));
        t.is((e as IpcError).code, 'RING_CORRUPT', 'later sends report why the channel closed');
      }
      await other.check();
    });
  }

  test(`a peer moving our tail (zeroCopy ${zeroCopy}) fails the next send with RING_CORRUPT`, async (t) => {
    const other = bystander(t);
    const { channel, ep } = rawPair(t, 4096, zeroCopy);
    await channel.send(makeMessage(0, 100));
    scribble(ep.rxBuffer()!, 4096, 'tail');
    const whenClosed = closed(channel);
    const e = await t.throwsAsync(channel.send(makeMessage(1, 100)));
    t.is((e as IpcError).code, 'RING_CORRUPT');
    t.is((await within(whenClosed, 5000, 'close'))?.code, 'RING_CORRUPT');
    await other.check();
  });
}

test('garbage in the sleep and wait flags does not break a channel', async (t) => {
  const { channel, ep } = rawPair(t, 4096, true);
  const w = new RingWriter(ep.txBuffer()!, 4096, ep.txHead);
  writeGood(ep, w, 0, 3);
  t.deepEqual(await receive(channel, 3), [0, 1, 2]);
  scribble(ep.txBuffer()!, 4096, 'flags');
  scribble(ep.rxBuffer()!, 4096, 'flags');
  const next = receive(channel, 2);
  writeGood(ep, w, 3, 2);
  t.deepEqual(await next, [3, 4]);
  await channel.send(makeMessage(9, 10));
  t.false(channel.closed);
});

// ---- across processes -------------------------------------------------------------------

for (const variant of ['len-huge', 'head-beyond', 'garbage'] as Corruption[]) {
  test(`a child process corrupting the ring (${variant}) closes our channel, others keep working`, async (t) => {
    const other = bystander(t);
    // A second child on its own channel, exchanging messages throughout.
    const echo = await pair(t, PEER, { channel: { capacity: 4096 }, params: { role: 'echo' } });
    const evil = await pair(t, PEER, { channel: { capacity: 4096 }, params: { role: 'corrupt', good: 3 } });
    const ch = evil.channel!;
    const whenClosed = closed(ch);
    const echoing = echoRoundTrip(echo.channel!, 3000, (i) => makeMessage(i, 1 + (i % 500)), { window: 50 });
    t.deepEqual(await receive(ch, 3), [0, 1, 2]);
    await evil.link.request({ type: 'corrupt', variant, seed: 7 });
    const err = await within(whenClosed, 10_000, 'the corrupted channel to close');
    t.is(err?.code, 'RING_CORRUPT', err?.message);
    t.is(await echoing, 3000);
    await other.check();
    t.is(await echoRoundTrip(echo.channel!, 100, (i) => makeMessage(i, 64)), 100);
  });
}

test('a child process moving the tail of the ring we write fails our send', async (t) => {
  const evil = await pair(t, PEER, { channel: { capacity: 4096 }, params: { role: 'corrupt', good: 0 } });
  const ch = evil.channel!;
  await evil.link.next('ready');
  await ch.send(makeMessage(0, 100));
  await evil.link.request({ type: 'corrupt', variant: 'tail' });
  const e = await t.throwsAsync(ch.send(makeMessage(1, 100)));
  t.is((e as IpcError).code, 'RING_CORRUPT');
});

test('a child process scribbling over the flags only does not break the channel', async (t) => {
  const p = await pair(t, PEER, { channel: { capacity: 4096 }, params: { role: 'corrupt', good: 3 } });
  const ch = p.channel!;
  t.deepEqual(await receive(ch, 3), [0, 1, 2]);
  const more = receive(ch, 1);
  await p.link.request({ type: 'corrupt', variant: 'flags' });
  t.deepEqual(await more, [3]);
  t.false(ch.closed);
});

// ---- nothing a peer writes throws out of the data path (issue 7 items 1, 4, 12) ----------

test('a head of 0xFFFFFFFF written before reading starts is validated, not mistaken for "seen" (no livelock)', async (t) => {
  const other = bystander(t);
  const { channel, ep } = rawPair(t, 4096, true);
  const whenClosed = closed(channel);
  // Before any handler is attached: the reader has not looked at the ring yet.
  Atomics.store(new Int32Array(ep.txBuffer()!, 0, 128), OFF_HEAD / 4, -1);
  ep.ringPeer();
  channel.onMessage(() => t.fail('no message can come out of a corrupt ring'));
  const err = await within(whenClosed, 5000, 'the channel to close instead of spinning');
  t.is(err?.code, 'RING_CORRUPT', err?.message);
  await other.check();
});

test('trySend on a ring whose tail the peer corrupted returns false and closes with RING_CORRUPT', async (t) => {
  const { channel, ep } = rawPair(t, 4096, true);
  await channel.send(makeMessage(0, 100));
  scribble(ep.rxBuffer()!, 4096, 'tail');
  const whenClosed = closed(channel);
  let sent: boolean | undefined;
  t.notThrows(() => {
    sent = channel.trySend(makeMessage(1, 100));
  });
  t.false(sent);
  t.is((await within(whenClosed, 5000, 'close'))?.code, 'RING_CORRUPT');
  t.false(channel.trySend(makeMessage(2, 10)), 'a closed channel: false, never a throw');
  const e = await t.throwsAsync(channel.send(makeMessage(2, 10)));
  t.is((e as IpcError).code, 'RING_CORRUPT', 'send() says why');
});

test('trySend never throws for a message that is too large: send() rejects it', async (t) => {
  const [a, b] = channelPair({ capacity: 4096, maxMessage: 1000 });
  t.teardown(() => {
    a.close();
    b.close();
  });
  t.false(a.trySend(new Uint8Array(2000)));
  const e = await t.throwsAsync(a.send(new Uint8Array(2000)));
  t.is((e as IpcError).code, 'MESSAGE_TOO_LARGE');
  t.false(a.closed);
});

test("the server side of a created set is held to its own Channel's message limit, and only to the set's capacity", async (t) => {
  const { server: fds, client: theirs } = channelFds(4096);
  // The set's server side was opened (mapped) for 4096-byte rings when it was made.
  const e = t.throws(() => new Channel(fds, 'server', { capacity: 8192 })) as IpcError;
  t.is(e.code, 'INVALID_ARGUMENT');
  t.regex(e.message, /4096/);
  t.is(fds.count, 0, 'a refused set is closed, not left to the collector');
  theirs.close();

  const { server: fds2, client: theirs2 } = channelFds(4096);
  const server = new Channel(fds2, 'server', { capacity: 4096, maxMessage: 1000 });
  const client = new Channel(theirs2, 'client', { capacity: 4096, maxMessage: 1 << 20 });
  t.teardown(() => {
    server.close();
    client.close();
  });
  const got: number[] = [];
  server.onMessage((m) => got.push(m.length));
  const whenClosed = new Promise<IpcError | undefined>((r) => server.onClose(r));
  await client.send(new Uint8Array(1000));
  await client.send(new Uint8Array(1001));
  t.is((await within(whenClosed, 5000, 'the server to close'))?.code, 'MESSAGE_TOO_LARGE');
  t.deepEqual(got, [1000], 'the limit is the one the server side was opened with');
});

test('a message handler that throws closes only its channel, with HANDLER_ERROR', async (t) => {
  const other = bystander(t);
  const [a, b] = channelPair({ capacity: 4096 });
  t.teardown(() => {
    a.close();
    b.close();
  });
  const whenClosed = closed(b);
  b.onMessage(() => {
    throw new Error('boom');
  });
  await a.send(makeMessage(0, 10));
  const err = await within(whenClosed, 5000, 'the channel to close');
  t.is(err?.code, 'HANDLER_ERROR');
  t.regex(err?.message ?? '', /boom/);
  await other.check();
});

test('a pollable whose step throws is dropped by the scheduler; every other channel keeps going', async (t) => {
  const other = bystander(t);
  const aborted = deferred<unknown>();
  const bad = {
    spinMs: Infinity,
    lastWork: 0,
    active: false,
    step(): boolean {
      throw new Error('step bug');
    },
    probe: () => true,
    park: () => true,
    abort: (e: unknown) => aborted.resolve(e),
  };
  activate(bad);
  t.regex(String(await within(aborted.promise, 5000, 'abort')), /step bug/);
  t.false(bad.active);
  await other.check();
});

test('an onFailing hook whose own send hits the corrupt ring keeps the first reason', async (t) => {
  const { channel, ep } = rawPair(t, 4096, true);
  await channel.send(makeMessage(0, 100));
  // The peer breaks both rings: our outgoing tail, then our incoming head.
  scribble(ep.rxBuffer()!, 4096, 'tail');
  const whenClosed = closed(channel);
  const sent: boolean[] = [];
  channel.onFailing(() => sent.push(channel.trySend(makeMessage(1, 10))));
  Atomics.store(new Int32Array(ep.txBuffer()!, 0, 128), OFF_HEAD / 4, 13);
  ep.ringPeer();
  channel.onMessage(() => undefined);
  const err = await within(whenClosed, 5000, 'close');
  t.is(err?.code, 'RING_CORRUPT');
  t.regex(err?.message ?? '', /peer: head/, 'the incoming-ring failure, not the hook send that failed after it');
  t.deepEqual(sent, [false]);
});

test('a peer moving head back to the value the reader cached ends the channel, it does not spin (review R9)', async (t) => {
  const [server, client] = channelPair({ capacity: 4096, idle: 'adaptive' });
  t.teardown(() => {
    server.close();
    client.close();
  });
  server.onMessage(() => undefined);
  // Force the race in one process: between the JS load of `head` and the native poll, the peer
  // publishes one more record; after the poll it stores `head` back to what JS loaded.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const be = (server as any).backend;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const peerCtl: Int32Array = (client as any).backend.writer.ctl;
  const realPoll = be.ep.poll.bind(be.ep);
  let cached = -1;
  be.ep.poll = (desc: Int32Array): number => {
    const first = cached < 0;
    if (first) {
      cached = be.lastHead;
      client.trySend(Buffer.from('racing'));
    }
    const n = realPoll(desc);
    if (first) Atomics.store(peerCtl, OFF_HEAD / 4, cached);
    return n;
  };
  const whenClosed = closed(server);
  client.trySend(Buffer.from('first'));
  const err = await within(whenClosed, 5000, 'the reader to close');
  t.true(cached > 0, 'the race was forced');
  t.is(err?.code, 'RING_CORRUPT');
});
