/**
 * A bounded first-in first-out queue with O(1) `push` and `shift`: a ring of slots that grows
 * by doubling up to its bound, so a short queue costs a few slots and a full one never more
 * than `limit`. A JS array used as a FIFO (`push` + `shift`) degraded tenfold once a stream's
 * backlog reached ~15k items (REFERENCE.md); this does not.
 * @packageDocumentation
 */

/** See the module comment. */
export class BoundedFifo<T> {
  private slots: Array<T | undefined>;
  private head = 0;
  private count = 0;

  /** @param limit most items held at once; {@link push} refuses more. */
  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`BoundedFifo limit must be a positive integer, got ${limit}`);
    this.slots = new Array(Math.min(limit, 16));
  }

  /** Items held. */
  get length(): number {
    return this.count;
  }

  /** Whether {@link push} would refuse. */
  get full(): boolean {
    return this.count >= this.limit;
  }

  /** Appends `item`; returns false (and keeps nothing) when the queue is at its limit. */
  push(item: T): boolean {
    if (this.count >= this.limit) return false;
    if (this.count === this.slots.length) this.grow();
    this.slots[(this.head + this.count) % this.slots.length] = item;
    this.count++;
    return true;
  }

  /** Removes and returns the oldest item, or undefined when empty. */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.slots[this.head];
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) % this.slots.length;
    this.count--;
    return item;
  }

  /** The oldest item without removing it. */
  peek(): T | undefined {
    return this.count === 0 ? undefined : this.slots[this.head];
  }

  /** Drops every item. */
  clear(): void {
    this.slots = new Array(Math.min(this.limit, 16));
    this.head = 0;
    this.count = 0;
  }

  private grow(): void {
    const n = Math.min(this.limit, this.slots.length * 2);
    const next = new Array<T | undefined>(n);
    for (let i = 0; i < this.count; i++) next[i] = this.slots[(this.head + i) % this.slots.length];
    this.slots = next;
    this.head = 0;
  }
}
