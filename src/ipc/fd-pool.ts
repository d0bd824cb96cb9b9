/**
 * A small pool of channel fd sets made ahead of need, so that a handshake takes a ready set
 * instead of creating two sealed memfds and a socketpair between HELLO and WELCOME, and the
 * channel it opens at READY finds the server's side already mapped (`createChannelFds`).
 * @packageDocumentation
 */
import native = require('../native');
import type { NativeFds } from '../../index';

/** How long after a failed refill (the fd limit) the pool tries again, ms. */
const POOL_RETRY_MS = 250;

/**
 * At most `size` sets of one ring capacity. {@link take} hands one out (or makes one at once
 * when the pool is empty) and schedules the refill for a later event-loop turn, off the
 * handshake's path; {@link close} frees every set it still holds. A refill that fails (the
 * process is at its fd limit) leaves the pool short and is tried again a little later;
 * meanwhile a handshake makes its own set, and its failure is that handshake's REJECT 9, as
 * without a pool.
 */
export class ChannelFdPool {
  private readonly ready: NativeFds[] = [];
  private refill: NodeJS.Immediate | null = null;
  private retry: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly capacity: number,
    private readonly size: number,
  ) {}

  /** Makes sets until the pool is full (or creating one fails). */
  fill(): void {
    while (!this.closed && this.ready.length < this.size) {
      let fds: NativeFds;
      try {
        fds = native.createChannelFds(this.capacity);
      } catch {
        // Out of fds, most likely: try again later, so the pool is whole again once they are free.
        if (this.retry === null) {
          this.retry = setTimeout(() => {
            this.retry = null;
            this.fill();
          }, POOL_RETRY_MS);
          this.retry.unref();
        }
        return;
      }
      this.ready.push(fds);
    }
  }

  /** A set of fds the caller now owns. Throws what `createChannelFds` throws when none is ready. */
  take(): NativeFds {
    const fds = this.ready.pop();
    if (!this.closed && this.refill === null) {
      this.refill = setImmediate(() => {
        this.refill = null;
        this.fill();
      });
      this.refill.unref();
    }
    return fds ?? native.createChannelFds(this.capacity);
  }

  /** Frees every set still held; later {@link take}s create theirs directly. Idempotent. */
  close(): void {
    this.closed = true;
    if (this.refill) clearImmediate(this.refill);
    if (this.retry) clearTimeout(this.retry);
    this.refill = null;
    this.retry = null;
    for (const fds of this.ready.splice(0)) fds.close();
  }
}
