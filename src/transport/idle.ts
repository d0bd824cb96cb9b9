/**
 * Idle strategies: when a side looks for work, and when it goes to sleep.
 *
 * A wake-up from sleep costs about 10 µs per hop on the reference machine whatever the
 * transport, so a side that just handled a message keeps checking its rings on every turn of
 * the event loop (`setImmediate`, never blocking the loop) for a short window, and only then
 * announces sleep and waits on its doorbell. This is Aeron's spin-then-park, with the spin
 * turned into event-loop turns so that JS never blocks. One scheduler serves every channel of
 * the process, so a thousand idle connections cost no CPU and a busy one costs one immediate
 * per loop turn.
 * @packageDocumentation
 */
import native = require('../native');

/**
 * - `adaptive` (default): poll each loop turn while messages flow, sleep after
 *   `spinMicros` without work.
 * - `poll`: never sleep (lowest latency; a core stays busy while the channel is open).
 * - `sleep`: sleep as soon as there is no work (least CPU; every message pays a wake-up).
 * @category Transport
 */
export type IdleMode = 'adaptive' | 'poll' | 'sleep';

/** How long a side polls without work before it starts yielding the CPU each turn, ms. */
const YIELD_AFTER_MS = 0.02;

import { DEFAULT_SPIN_MICROS } from '../defaults';

export { DEFAULT_SPIN_MICROS };

/**
 * What the scheduler drives.
 * @category Transport
 */
export interface Pollable {
  /** Does whatever work is waiting; returns true when it did any. */
  step(): boolean;
  /** Tries to go to sleep; returns false when work turned up meanwhile (stay active). */
  park(): boolean;
  /** Ends the pollable after `step` or `park` threw (they should not), so one bad channel cannot stop the scheduler. */
  abort(e: unknown): void;
  /** Polling window in ms (Infinity: never park; 0: park when idle). */
  readonly spinMs: number;
  /** @internal last time work was done, in ms (performance.now()). */
  lastWork: number;
  /** @internal whether the scheduler holds it. */
  active: boolean;
}

const active = new Set<Pollable>();
let scheduled = false;

function tick(): void {
  scheduled = false;
  const now = performance.now();
  let idleFor = Infinity;
  for (const p of active) {
    try {
      if (p.step()) {
        p.lastWork = now;
        idleFor = 0;
      } else if (now - p.lastWork >= p.spinMs && p.park()) {
        p.active = false;
        active.delete(p);
      } else {
        idleFor = Math.min(idleFor, now - p.lastWork);
      }
    } catch (e) {
      p.active = false;
      active.delete(p);
      p.abort(e);
    }
  }
  if (active.size > 0) {
    // Spin, then yield, then park: after a while without work, give the CPU away once per turn,
    // so that a peer sharing this CPU gets to run instead of waiting for our window to end.
    if (idleFor >= YIELD_AFTER_MS && idleFor !== Infinity) native.yieldCpu();
    schedule();
  }
}

function schedule(): void {
  if (!scheduled) {
    scheduled = true;
    setImmediate(tick);
  }
}

/** Puts `p` on the polling list (after a wake-up or a send). */
export function activate(p: Pollable): void {
  p.lastWork = performance.now();
  if (!p.active) {
    p.active = true;
    active.add(p);
  }
  schedule();
}

/** Takes `p` off the polling list for good (it closed). */
export function deactivate(p: Pollable): void {
  p.active = false;
  active.delete(p);
}

/** Converts options to a polling window in ms. */
export function spinWindowMs(mode: IdleMode, spinMicros = DEFAULT_SPIN_MICROS): number {
  if (mode === 'poll') return Infinity;
  if (mode === 'sleep') return 0;
  return spinMicros / 1000;
}
