/**
 * Idle strategies: when a side looks for work, and when it goes to sleep.
 *
 * A wake-up from sleep costs tens of µs per hop on the reference machine whatever the
 * transport, so a side that just handled a message keeps checking its rings for a short window
 * (`spinMicros`), and only then announces sleep and waits on its doorbell: Aeron's
 * spin-then-park. JS must not block the event loop, so the spin is made of event-loop turns
 * (`setImmediate`), and within a turn that found nothing, of a short busy-wait
 * ({@link POLL_SLICE_MICROS}) on the shared words a message would change, which returns as soon
 * as one arrives: going round the loop costs more than a reply takes to come. One scheduler
 * serves every channel of the process, so a thousand idle connections cost no CPU and a busy
 * one costs its polling window.
 * @packageDocumentation
 */
import { performance } from 'node:perf_hooks';
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

import { DEFAULT_SPIN_MICROS, POLL_SLICE_MICROS } from '../defaults';

export { DEFAULT_SPIN_MICROS };

/**
 * What the scheduler drives.
 * @category Transport
 */
export interface Pollable {
  /** Does whatever work is waiting; returns true when it did any. */
  step(): boolean;
  /**
   * Whether {@link step} would find work, from shared memory alone (no native call, no
   * allocation): the scheduler's busy-wait calls it in a tight loop. Never throws.
   */
  probe(): boolean;
  /** Tries to go to sleep; returns false when work turned up meanwhile (stay active). */
  park(): boolean;
  /** Ends the pollable after `step` or `park` threw (they should not), so one bad channel cannot stop the scheduler. */
  abort(e: unknown): void;
  /** Polling window in ms (Infinity: never park; 0: park when idle). */
  readonly spinMs: number;
  /** @internal last time work was done, in ms (performance.now()); Infinity: activated since the last pass. */
  lastWork: number;
  /** @internal whether the scheduler holds it. */
  active: boolean;
}

const active = new Set<Pollable>();
let scheduled = false;
const SLICE_MS = POLL_SLICE_MICROS / 1000;
/** How often a busy-wait that lasts gives the CPU away, ms (see {@link YIELD_AFTER_MS}). */
const YIELD_EVERY_MS = 0.005;

/**
 * `lastWork` of a pollable activated since the last pass: "just now", stamped with the pass's
 * own clock reading. A client activates its channel on every request it sends, and a clock
 * read each time showed in its profile.
 */
const JUST_NOW = Infinity;

/** Steps every active pollable once; returns how long the least idle one has been idle (0: work was done). */
function pass(now: number): number {
  let idleFor = Infinity;
  for (const p of active) {
    if (p.lastWork === JUST_NOW) p.lastWork = now;
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
  return idleFor;
}

/**
 * Busy-waits up to {@link SLICE_MS} for a pollable to have work; true when one does. Gives the
 * CPU away every few µs once idle for a while, so a peer on the same CPU gets to produce.
 */
function awaitWork(start: number, idleFor: number): boolean {
  const until = start + SLICE_MS;
  let yielded = start;
  for (let i = 1; ; i++) {
    // A probe that threw (it should not) counts as work: the pass that follows steps that
    // pollable, which ends it through `abort` if the fault is real.
    try {
      for (const p of active) if (p.probe()) return true;
    } catch {
      return true;
    }
    if ((i & 15) === 0) {
      const t = performance.now();
      if (t >= until) return false;
      if (idleFor + (t - start) >= YIELD_AFTER_MS && t - yielded >= YIELD_EVERY_MS) {
        native.yieldCpu();
        yielded = t;
      }
    }
  }
}

function tick(): void {
  scheduled = false;
  const now = performance.now();
  let idleFor = pass(now);
  // Nothing to do, yet some channel is within its polling window: wait in this turn for the
  // next message, then handle it and return, so that the continuations it resolves run now.
  if (idleFor > 0 && idleFor !== Infinity && awaitWork(now, idleFor)) idleFor = pass(performance.now());
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
  p.lastWork = JUST_NOW;
  if (!p.active) {
    p.active = true;
    active.add(p);
  }
  schedule();
}

/**
 * Has `p` looked at once, on the next loop turn, and parked at once if it finds nothing: for a
 * channel just opened or given a handler, where no message is known to be on its way, so that
 * polling starts with the first message rather than with every handshake.
 */
export function look(p: Pollable): void {
  if (p.active) return schedule();
  activate(p);
  // Its window already over: the first pass that finds nothing parks it (`poll` never parks).
  if (Number.isFinite(p.spinMs)) p.lastWork = performance.now() - p.spinMs;
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
