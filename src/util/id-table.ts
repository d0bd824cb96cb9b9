/**
 * {@link IdTable}: calls in flight by their u32 id, on both sides of a session.
 *
 * Why not a `Map`: V8 rehashes a `Map` with steady adds and deletes every few dozen entries,
 * and links each obsolete table to its successor (for iterators still on it); as we read it,
 * the obsolete table also keeps the values it held. Once one of them is in the old generation
 * (as happens in a process with a heap of some size, such as one that loaded the `ai` SDK),
 * that chain keeps every later table, and every call it held, alive through each scavenge
 * until the next full GC. `benches/profile/gc-survival.ts`
 * (64 requests in flight, 200,000 live objects of ballast) measured a median 2.5 MiB surviving
 * each scavenge in the client with a `Map` (1.3 MiB in a server with async handlers) and
 * 32 KiB with this table, and 0.38 M against 0.55-0.76 M req/s. Typed and plain arrays hold
 * nothing but the entries in them.
 * @packageDocumentation
 */

/**
 * A hash table from nonzero u32 ids to values: open addressing with linear probing, deletion
 * by backward shift (no tombstones), doubling at half load. The ids may come from a peer, so
 * the hash multiplier is drawn at random per table: a peer cannot aim its ids at one slot
 * (and the per-session limits on calls in flight bound any probe anyway). It never shrinks:
 * its size is bounded by twice the most entries it ever held at once.
 */
export class IdTable<T> {
  private ids = new Uint32Array(INITIAL);
  private values: (T | undefined)[] = new Array<T | undefined>(INITIAL).fill(undefined);
  private shift = 32 - Math.log2(INITIAL);
  private readonly multiplier = (Math.floor(Math.random() * 2 ** 32) | 1) >>> 0;
  /** Entries in the table. */
  size = 0;

  private home(id: number): number {
    return Math.imul(id, this.multiplier) >>> this.shift;
  }

  /**
   * The slot holding `id`, else the first empty slot of its run, which is where it would go:
   * with no tombstones, a run ends at the first empty slot. The table is never more than half
   * full, so there always is one.
   */
  private slot(id: number): number {
    const { ids } = this;
    const mask = ids.length - 1;
    let i = this.home(id);
    while (ids[i] !== id && ids[i] !== 0) i = (i + 1) & mask;
    return i;
  }

  /** The slot holding `id`, or -1. */
  private find(id: number): number {
    if (id === 0) return -1;
    const i = this.slot(id);
    return this.ids[i] === id ? i : -1;
  }

  /** The value of `id`, if it is in the table (any number may be asked). */
  get(id: number): T | undefined {
    const i = this.find(id);
    return i < 0 ? undefined : this.values[i];
  }

  /** Whether `id` is in the table. */
  has(id: number): boolean {
    return this.find(id) >= 0;
  }

  /** Adds or replaces `id`'s value. */
  set(id: number, value: T): void {
    if (id === 0 || id >>> 0 !== id) throw new RangeError(`id ${id} is not a nonzero u32`);
    if (2 * (this.size + 1) > this.ids.length) this.grow();
    const i = this.slot(id);
    if (this.ids[i] === 0) {
      this.ids[i] = id;
      this.size++;
    }
    this.values[i] = value;
  }

  /** Removes `id`; returns whether it was in the table. */
  delete(id: number): boolean {
    let hole = this.find(id);
    if (hole < 0) return false;
    const { ids, values } = this;
    const mask = ids.length - 1;
    // Backward shift: move each later entry of the run into the hole when its home slot does
    // not lie (cyclically) between the hole and itself, so every lookup still finds it.
    for (let j = (hole + 1) & mask; ids[j] !== 0; j = (j + 1) & mask) {
      const home = this.home(ids[j]);
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        ids[hole] = ids[j];
        values[hole] = values[j];
        hole = j;
      }
    }
    ids[hole] = 0;
    values[hole] = undefined;
    this.size--;
    return true;
  }

  /** The values (a copy: the table may change while the caller goes through them). */
  valuesCopy(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.ids.length; i++) if (this.ids[i] !== 0) out.push(this.values[i] as T);
    return out;
  }

  /** Empties the table (keeping its size). */
  clear(): void {
    this.ids.fill(0);
    this.values.fill(undefined);
    this.size = 0;
  }

  private grow(): void {
    const oldIds = this.ids;
    const oldValues = this.values;
    const n = 2 * oldIds.length;
    this.ids = new Uint32Array(n);
    this.values = new Array<T | undefined>(n).fill(undefined);
    this.shift--;
    for (let k = 0; k < oldIds.length; k++) {
      const id = oldIds[k];
      if (id === 0) continue;
      const i = this.slot(id);
      this.ids[i] = id;
      this.values[i] = oldValues[k];
    }
  }
}

/** Initial slots (a power of two): a session's usual calls in flight fit without growing. */
const INITIAL = 64;
