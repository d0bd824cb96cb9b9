/**
 * A hostile peer scribbles over shared memory. The reading side must close that channel with
 * `RING_CORRUPT` (never crash, hang or touch memory out of bounds), and every other channel of
 * the process must keep working.
 */
import test, { type ExecutionContext } from 'ava';
import native = require('../../src/native');
import type { NativeEndpoint } from '../../index';
import { IpcError } from '../../src/errors';
import { Channel, channelPair } from '../../src/transport/channel';
import { RingWriter } from '../../src/transport/ring-writer';
import { closed, CORRUPTIONS, type Corruption, deferred, echoRoundTrip, makeMessage, pair, PEER, scribble, within } from './helpers';

/** A Channel (server side) and a raw endpoint on the other side, in this process. */
function rawPair(t: ExecutionContext, capacity: number, zeroCopy: boolean): { channel: Channel; ep: NativeEndpoint } {
  const fds = native.createChannelFds(capacity);
  const [a, b] = native.controlSocketPair();
  a.send(Buffer.from([0]), fds);
  b.recv(Buffer.alloc(1));
  const theirs = b.takeFds()!;
  a.close();
  b.close();
  const ep = new native.NativeEndpoint(theirs, 1, capacity, 64 << 20, true);
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
    t_assert(w.write(makeMessage(i, 32), 0) === 32, 'good message fits');
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
        const w = new RingWriter(ep.txBuffer()!, 4096);
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
  const w = new RingWriter(ep.txBuffer()!, 4096);
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
