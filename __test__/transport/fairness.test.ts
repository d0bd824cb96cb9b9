/**
 * Fairness and backpressure: a channel's step delivers a bounded batch per event-loop turn, so
 * a flooding peer cannot starve the other channels, timers and the accept loop; an owner can
 * pause reading (messages stay in the ring, the peer waits) and learn when its queued sends
 * drain.
 */
import test from 'ava';
import { channelPair, TURN_MESSAGES } from '../../src/transport/channel';
import { checkMessage, deferred, makeMessage, pair, PEER, within } from './helpers';

test('a flooding peer gets at most two bounded steps per event-loop turn; timers keep running', async (t) => {
  const count = 200_000;
  const p = await pair(t, PEER, { channel: { capacity: 1 << 16 }, params: { role: 'flood', count, size: 16 } });
  const ch = p.channel!;
  let received = 0;
  let sinceTurn = 0;
  let maxPerTurn = 0;
  let turns = 0;
  let timers = 0;
  const done = deferred();
  let ticking = true;
  const ticker = () => {
    maxPerTurn = Math.max(maxPerTurn, sinceTurn);
    sinceTurn = 0;
    turns++;
    if (ticking) setImmediate(ticker);
  };
  setImmediate(ticker);
  const timer = setInterval(() => timers++, 1);
  ch.onMessage(() => {
    sinceTurn++;
    if (++received === count) done.resolve();
  });
  await within(done.promise, 60_000, `${count} flood messages`);
  ticking = false;
  clearInterval(timer);
  t.log(`at most ${maxPerTurn} messages per turn, ${turns} turns, ${timers} timer ticks`);
  // One scheduler step and at most one doorbell wake-up step per loop iteration, each bounded.
  t.true(maxPerTurn <= 2 * TURN_MESSAGES, `${maxPerTurn} messages delivered within one event-loop turn`);
  t.true(turns > count / (2 * TURN_MESSAGES) - 1, `${turns} turns for ${count} messages`);
  t.true(timers > 0, 'timers ran during the flood');
});

test('pauseReading leaves messages in the ring (the sender queues), resumeReading delivers them in order', async (t) => {
  const [a, b] = channelPair({ capacity: 4096 });
  t.teardown(() => {
    a.close();
    b.close();
  });
  const n = 300;
  const got: Uint8Array[] = [];
  b.pauseReading();
  t.true(b.readingPaused);
  b.onMessage((m) => got.push(m.slice()));
  const drains: number[] = [];
  a.onDrain(() => drains.push(a.queuedBytes));
  const sends = Array.from({ length: n }, (_, i) => a.send(makeMessage(i, 100)));
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  t.is(got.length, 0, 'nothing is read while paused');
  t.true(a.queuedBytes > 0, `the ring filled and ${a.queuedBytes} bytes wait in the send queue`);
  const queuedWhilePaused = a.queuedBytes;
  b.resumeReading();
  await within(Promise.all(sends), 10_000, 'every send');
  const d = deferred();
  const check = setInterval(() => got.length === n && d.resolve(), 1);
  await within(d.promise, 10_000, 'every message');
  clearInterval(check);
  t.is(got.map((m, i) => checkMessage(m, i, 100)).filter(Boolean).length, 0);
  t.is(a.queuedBytes, 0);
  t.true(drains.length > 0 && drains[drains.length - 1] === 0, `drain reports: ${drains.slice(-3).join(',')}`);
  t.true(drains.every((q) => q < queuedWhilePaused));
});

test('pausing inside a handler stops delivery mid-batch without losing or corrupting the rest', async (t) => {
  const [a, b] = channelPair({ capacity: 1 << 16 });
  t.teardown(() => {
    a.close();
    b.close();
  });
  const n = 200;
  const got: Uint8Array[] = [];
  const tenth = deferred();
  b.onMessage((m) => {
    got.push(m.slice());
    if (got.length === 10) {
      b.pauseReading();
      tenth.resolve();
    }
  });
  // One burst: all 200 land in the ring before the reader's next turn, so one poll returns them.
  for (let i = 0; i < n; i++) t.true(a.trySend(makeMessage(i, 64)));
  await within(tenth.promise, 5000, 'ten messages');
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  t.is(got.length, 10, 'paused after the tenth, within its batch');
  // The writer has room for nothing more only if we released early: fill the rest of the ring
  // with new messages that would overwrite the undelivered records if they had been released.
  let extra = 0;
  while (a.trySend(makeMessage(n + extra, 64))) extra++;
  b.resumeReading();
  const all = deferred();
  const check = setInterval(() => got.length === n + extra && all.resolve(), 1);
  await within(all.promise, 5000, 'the rest');
  clearInterval(check);
  t.is(
    got
      .map((m, i) => checkMessage(m, i, 64))
      .filter(Boolean)
      .join('; '),
    '',
  );
});

test('sleep mode: a batch the time budget cut short is finished without another message or doorbell', async (t) => {
  const [a, b] = channelPair({ capacity: 1 << 16, idle: 'sleep' });
  t.teardown(() => {
    a.close();
    b.close();
  });
  const got: number[] = [];
  const all = deferred();
  b.onMessage((m) => {
    got.push(m[0]);
    // Past the turn's time budget at the 32nd message: the step stops there, 68 left unread.
    if (got.length === 32) {
      const until = performance.now() + 3;
      while (performance.now() < until);
    }
    if (got.length === 100) all.resolve();
  });
  // Let b park on its doorbell, then publish 100 messages at once and never send again.
  await new Promise((r) => setTimeout(r, 20));
  a.cork();
  for (let i = 0; i < 100; i++) t.true(a.trySend(Uint8Array.of(i)));
  a.uncork();
  await within(all.promise, 5000, 'the rest of the batch');
  t.deepEqual(
    got,
    Array.from({ length: 100 }, (_, i) => i),
  );
  t.true(b.stats().wakeups >= 1, 'b slept and was woken');
});
