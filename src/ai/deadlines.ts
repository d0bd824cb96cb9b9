/**
 * The stream timeouts of one provider try: the first event, and silence between events.
 * Any provider activity counts (text, reasoning, tool deltas, keep-alive bytes), so a model
 * that streams reasoning, or thinks silently behind keep-alives, is not mistaken for a dead
 * one. The chat's overall deadline is the router's. An expiry aborts the try's HTTP request.
 * @packageDocumentation
 */
import type { Timeouts } from './config';

/** Which timeout fired (`total` is the router's chat-wide deadline). */
export type DeadlineKind = 'first_chunk' | 'between_chunks' | 'total';

/**
 * Timers for one try. {@link activity} whenever the provider sends anything; {@link chunk}
 * when an event is handed to our consumer and {@link resume} when the router asks for the
 * next one: time spent waiting on our own consumer is not held against the provider.
 *
 * Activity only records a timestamp (a stream of a million chunks does not re-arm a million
 * timers); the one timer, when it fires early, re-arms itself for what is left.
 */
export class StreamDeadlines {
  private timer?: NodeJS.Timeout;
  private startedAt = 0;
  private lastActivity = 0;
  private sawActivity = false;
  private waiting = false;
  private expired = false;

  constructor(
    private readonly timeouts: Pick<Timeouts, 'firstChunkMs' | 'betweenChunksMs'>,
    private readonly onExpire: (kind: DeadlineKind, ms: number) => void,
  ) {}

  /** The try was sent: arm the first-event timer. */
  start(): void {
    this.startedAt = performance.now();
    this.waiting = true;
    this.schedule();
  }

  /** The provider sent something (any event or keep-alive bytes). */
  activity(): void {
    this.lastActivity = performance.now();
    this.sawActivity = true;
  }

  /** An event went to the consumer: no provider timer runs until {@link resume}. */
  chunk(): void {
    this.waiting = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Waiting for the next event again. */
  resume(): void {
    this.lastActivity = performance.now();
    this.sawActivity = true;
    this.waiting = true;
    this.schedule();
  }

  /** Clear the timer. */
  stop(): void {
    this.waiting = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private limit(): { kind: DeadlineKind; ms: number; deadline: number } {
    return this.sawActivity
      ? { kind: 'between_chunks', ms: this.timeouts.betweenChunksMs, deadline: this.lastActivity + this.timeouts.betweenChunksMs }
      : { kind: 'first_chunk', ms: this.timeouts.firstChunkMs, deadline: this.startedAt + this.timeouts.firstChunkMs };
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const { ms, deadline } = this.limit();
    if (ms <= 0 || !this.waiting) return;
    this.timer = setTimeout(() => this.check(), Math.max(1, Math.ceil(deadline - performance.now())));
  }

  private check(): void {
    this.timer = undefined;
    if (this.expired || !this.waiting) return;
    const { kind, ms, deadline } = this.limit();
    if (ms > 0 && performance.now() >= deadline) {
      this.expired = true;
      this.stop();
      this.onExpire(kind, ms);
    } else this.schedule();
  }
}
