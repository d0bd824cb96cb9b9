/**
 * Wake-ups across two real processes: no wake-up is ever lost (a lost one shows up as a hang,
 * which the deadline turns into a failure), in every idle mode and with both wake paths.
 */
import test from 'ava';
import type { ChannelOptions, ChannelStats } from '../../src/transport/channel';
import { echoRoundTrip, makeMessage, pair, PEER, rng } from './helpers';

/**
 * Random bursts and pauses: most messages go straight out, then a pause of a random kind —
 * none, an event-loop turn, a busy spin of up to 150 µs (around the adaptive window), or a
 * timer (long enough for both sides to fall asleep).
 */
function bursty(seed: number): (i: number) => Promise<void> | void {
  const r = rng(seed);
  let left = 0;
  return () => {
    if (left-- > 0) return;
    left = r() % 48;
    const k = r() % 100;
    if (k < 30) return;
    if (k < 60) return new Promise<void>((res) => setImmediate(res));
    if (k < 94) {
      const end = performance.now() + (r() % 150) / 1000;
      while (performance.now() < end);
      return;
    }
    return new Promise<void>((res) => setTimeout(res, r() % 2));
  };
}

async function race(t: import('ava').ExecutionContext, channel: ChannelOptions, n: number, seed: number) {
  const p = await pair(t, PEER, { channel, params: { role: 'echo' } });
  const ch = p.channel!;
  const got = await echoRoundTrip(ch, n, (i) => makeMessage(i, 4 + (i % 61)), { pace: bursty(seed), window: 400, timeoutMs: 45_000 });
  t.is(got, n, 'every message came back, in order, intact');
  const child = (await p.link.request({ type: 'stats' })).stats as ChannelStats;
  t.is(child.messagesReceived, n);
  return { ours: ch.stats(), child };
}

test.serial('sleep mode: 100k messages in random bursts, no wake-up lost', async (t) => {
  const { ours, child } = await race(t, { capacity: 4096, idle: 'sleep' }, 100_000, 1);
  // In sleep mode each side sleeps whenever it runs out of work, so both must have been woken,
  // and the other side must have rung (and, while the reader was busy, not rung).
  t.true(ours.wakeups > 0, `parent wakeups ${ours.wakeups}`);
  t.true(child.wakeups > 0, `child wakeups ${child.wakeups}`);
  t.true(ours.doorbellsRung > 0 && child.doorbellsRung > 0);
  t.log(
    `parent: ${ours.wakeups} wake-ups, ${ours.doorbellsRung} rung / ${ours.doorbellsSuppressed} suppressed; child: ${child.wakeups} wake-ups`,
  );
});

test.serial('adaptive mode (short window): 100k messages in random bursts, no wake-up lost', async (t) => {
  const { ours, child } = await race(t, { capacity: 4096, idle: 'adaptive', spinMicros: 50 }, 100_000, 2);
  t.true(ours.doorbellsSuppressed > 0, 'while both sides poll, no doorbell is rung');
  t.log(
    `parent: ${ours.wakeups} wake-ups, ${ours.doorbellsRung} rung / ${ours.doorbellsSuppressed} suppressed; child: ${child.wakeups} wake-ups`,
  );
});

test.serial('adaptive mode (default window), 64 KiB ring: no wake-up lost', async (t) => {
  await race(t, { capacity: 64 * 1024 }, 30_000, 3);
});

test.serial("wake: 'thread' works (sleep mode, so every message needs a wake-up)", async (t) => {
  const { ours, child } = await race(t, { capacity: 4096, idle: 'sleep', wake: 'thread' }, 20_000, 4);
  t.true(ours.wakeups > 0, `parent wakeups ${ours.wakeups}`);
  t.true(child.wakeups > 0, `child wakeups ${child.wakeups}`);
});

test.serial("idle: 'poll' works and never sleeps, so no doorbell is ever rung", async (t) => {
  // The window keeps the rings from filling: a ring holds at most the reader's last,
  // unreleased batch plus what is in flight, 2 x 20 x 712 bytes < 64 KiB. (A producer waiting
  // for space asks for a doorbell even in poll mode; that is not what this test is about.)
  const p = await pair(t, PEER, { channel: { capacity: 64 * 1024, idle: 'poll' }, params: { role: 'echo' } });
  const ch = p.channel!;
  const n = 20_000;
  const got = await echoRoundTrip(ch, n, (i) => makeMessage(i, 1 + (i % 700)), { pace: bursty(5), window: 20 });
  t.is(got, n);
  const child = (await p.link.request({ type: 'stats' })).stats as ChannelStats;
  const ours = ch.stats();
  t.is(ours.doorbellsRung, 0, 'the child never slept');
  t.is(child.doorbellsRung, 0, 'we never slept');
  t.is(ours.wakeups, 0, 'nothing woke us');
  t.is(child.wakeups, 0, 'nothing woke the child');
  t.is(ours.ringFullWaits, 0);
  t.is(child.messagesReceived, n);
});
