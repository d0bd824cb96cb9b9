/**
 * The three stream timeouts of one provider try: first chunk, silence between chunks, and
 * total. The router turns an expiry into an abort of the try's HTTP request.
 */
import type { Timeouts } from './config';

/** Which timeout fired. */
export type DeadlineKind = 'first_chunk' | 'between_chunks' | 'total';

/**
 * Timers for one try. `chunk()` when a chunk arrives and `resume()` when the router asks for
 * the next one: time spent waiting on our own consumer is not held against the provider.
 */
export class StreamDeadlines {
  private chunkTimer?: NodeJS.Timeout;
  private totalTimer?: NodeJS.Timeout;
  private expired = false;

  constructor(
    private readonly timeouts: Timeouts,
    private readonly onExpire: (kind: DeadlineKind, ms: number) => void,
  ) {}

  /** Arm the total and first-chunk timers. */
  start(): void {
    if (this.timeouts.totalMs > 0) this.totalTimer = setTimeout(() => this.fire('total', this.timeouts.totalMs), this.timeouts.totalMs);
    this.arm('first_chunk', this.timeouts.firstChunkMs);
  }

  /** A chunk arrived: stop the per-chunk timer until {@link resume}. */
  chunk(): void {
    clearTimeout(this.chunkTimer);
    this.chunkTimer = undefined;
  }

  /** Waiting for the next chunk again. */
  resume(): void {
    this.arm('between_chunks', this.timeouts.betweenChunksMs);
  }

  /** Clear every timer. */
  stop(): void {
    clearTimeout(this.chunkTimer);
    clearTimeout(this.totalTimer);
    this.chunkTimer = this.totalTimer = undefined;
  }

  private arm(kind: DeadlineKind, ms: number): void {
    clearTimeout(this.chunkTimer);
    this.chunkTimer = ms > 0 ? setTimeout(() => this.fire(kind, ms), ms) : undefined;
  }

  private fire(kind: DeadlineKind, ms: number): void {
    if (this.expired) return;
    this.expired = true;
    this.stop();
    this.onExpire(kind, ms);
  }
}
