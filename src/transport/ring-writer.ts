/**
 * The producer side of a ring, written from JS straight into shared memory.
 *
 * Why not a native call per message: a napi-rs class method costs about 200 ns on the
 * reference machine (argument conversion plus napi-rs's borrow tracking), which alone would cap
 * a sender near 3 M msg/s. Typed-array stores into the mapped ring cost tens of ns. The reading
 * side stays in Rust, where every index the peer wrote is validated.
 *
 * Memory ordering: records are written with plain stores, then `head` is published with
 * `Atomics.exchange`, a full barrier (a locked instruction on x86, acquire-release on arm64),
 * so the records are visible first, and the load of the consumer's sleep flag that follows
 * cannot be reordered before the publish. That is the producer half of the lost-wake-up
 * protocol (`docs/PROTOCOL.md` §3.4); the consumer half is `Consumer::prepare_sleep` in Rust.
 * The same `SYNC(...)` names mark each synchronisation point here and in `ring.rs`.
 *
 * The writer starts from the `head` the Rust producer validated and handed over
 * (`NativeEndpoint.txHead`), never from the shared word, which the peer can write.
 * @packageDocumentation
 */
import { IpcError } from '../errors';
import { partsLength } from '../util/parts';
import {
  align8,
  FLAG_CONT,
  FLAG_MORE,
  FLAG_PAD,
  HEADER_SIZE,
  maxFragment,
  OFF_CONSUMER_SLEEPING,
  OFF_HEAD,
  OFF_PRODUCER_WAITING,
  OFF_TAIL,
  RECORD_HEADER,
} from './layout';

// Int32 indices of header words and record constants, as plain module constants: the writer
// runs once per message.
const HEAD = OFF_HEAD / 4;
const TAIL = OFF_TAIL / 4;
const SLEEPING = OFF_CONSUMER_SLEEPING / 4;
const WAITING = OFF_PRODUCER_WAITING / 4;
const REC = RECORD_HEADER;
const MORE = FLAG_MORE;
const CONT = FLAG_CONT;

/** Writes records into one ring; see the module comment. */
export class RingWriter {
  private readonly ctl: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly mask: number;
  private readonly maxFragment: number;
  /** Our own head; the shared one is only written, never read back. */
  private head: number;
  private tail: number;
  private published: number;

  /**
   * @param region the whole ring region (`NativeEndpoint.txBuffer()`)
   * @param head where to start (`NativeEndpoint.txHead`, read after `txBuffer()`)
   */
  constructor(
    region: ArrayBuffer,
    readonly capacity: number,
    head: number,
  ) {
    this.ctl = new Int32Array(region, 0, HEADER_SIZE / 4);
    this.bytes = new Uint8Array(region, HEADER_SIZE, capacity);
    this.view = new DataView(region, HEADER_SIZE, capacity);
    this.mask = capacity - 1;
    this.maxFragment = maxFragment(capacity);
    this.head = head >>> 0;
    this.tail = this.head;
    this.published = this.head;
  }

  /** Free bytes, after checking the consumer's `tail` (which the peer controls). */
  private free(): number {
    const tail = Atomics.load(this.ctl, TAIL) >>> 0;
    const used = (this.head - tail) >>> 0;
    const advanced = (tail - this.tail) >>> 0;
    if ((tail & 7) !== 0 || used > this.capacity || advanced > this.capacity) {
      throw new IpcError('RING_CORRUPT', `ring corrupted by peer: tail ${tail} is impossible with head ${this.head}`);
    }
    this.tail = tail;
    return this.capacity - used;
  }

  /**
   * Writes as much of the message `head` + `body` (`body` may be null) from `progress` on as
   * fits, a fragment at a time, and returns the new progress (the message's length once it is
   * complete), or -1 when not even its first record fit (so that an empty message can tell "not
   * sent" from "sent"). The two parts are copied straight into the ring, never concatenated
   * first: a frame header and a large payload cost one copy. Not visible until {@link publish}.
   */
  write(head: Uint8Array, body: Uint8Array | null, progress: number): number {
    const total = partsLength(head, body);
    let free = this.free();
    for (;;) {
      const rest = total - progress;
      const len = rest < this.maxFragment ? rest : this.maxFragment;
      const flags = (progress > 0 ? CONT : 0) | (len < rest ? MORE : 0);
      const record = REC + align8(len);
      let pos = this.head & this.mask;
      const contiguous = this.capacity - pos;
      const pad = record > contiguous ? contiguous : 0;
      if (pad + record > free) return progress === 0 ? -1 : progress;
      if (pad > 0) {
        this.view.setUint32(pos, pad - REC, true);
        this.view.setUint32(pos + 4, FLAG_PAD, true);
        this.head = (this.head + pad) >>> 0;
        pos = 0;
      }
      this.view.setUint32(pos, len, true);
      this.view.setUint32(pos + 4, flags, true);
      if (len > 0) this.copy(head, body, progress, len, pos + REC);
      this.head = (this.head + record) >>> 0;
      free -= pad + record;
      progress += len;
      if ((flags & MORE) === 0) return progress;
    }
  }

  /** Copies bytes `from..from+len` of `head` + `body` to `at` in the data area. */
  private copy(head: Uint8Array, body: Uint8Array | null, from: number, len: number, at: number): void {
    const h = head.length;
    if (from < h) {
      const n = len < h - from ? len : h - from;
      this.bytes.set(from === 0 && n === h ? head : head.subarray(from, from + n), at);
      if (n === len) return;
      from += n;
      len -= n;
      at += n;
    }
    const b = body as Uint8Array;
    const o = from - h;
    this.bytes.set(o === 0 && len === b.length ? b : b.subarray(o, o + len), at);
  }

  /**
   * Makes what was written visible. Returns true when the consumer said it was going to sleep:
   * the caller must then ring its doorbell (the flag is cleared here, one doorbell per sleep).
   */
  publish(): boolean {
    if (this.head === this.published) return false;
    this.published = this.head;
    // SYNC(publish), PROTOCOL §3.4 step 3: store head with a full barrier, then the consumer's
    // flag. Pairs with SYNC(consumer-sleep) in ring.rs.
    Atomics.exchange(this.ctl, HEAD, this.head | 0);
    return Atomics.load(this.ctl, SLEEPING) !== 0 && Atomics.exchange(this.ctl, SLEEPING, 0) !== 0;
  }

  /** Whether the consumer released space since we last looked (a queued send may go on). */
  tailMoved(): boolean {
    return Atomics.load(this.ctl, TAIL) >>> 0 !== this.tail;
  }

  /** Whether nothing written is left unpublished. */
  get idle(): boolean {
    return this.head === this.published;
  }

  /** Free space the next fragment of a message with `remaining` bytes to go needs. */
  spaceNeeded(remaining: number): number {
    const record = REC + align8(remaining < this.maxFragment ? remaining : this.maxFragment);
    const contiguous = this.capacity - (this.head & this.mask);
    return record > contiguous ? contiguous + record : record;
  }

  /**
   * Announces that we are about to sleep until `needed` bytes are free. Returns false (and
   * withdraws the announcement) when they already are: then do not sleep. The exchange is a
   * full barrier, pairing with the consumer's release-then-check in Rust.
   */
  prepareWaitForSpace(needed: number): boolean {
    // SYNC(producer-wait), PROTOCOL §3.4 step 4. Pairs with SYNC(release) in ring.rs.
    Atomics.exchange(this.ctl, WAITING, 1);
    if (this.free() >= needed) {
      Atomics.store(this.ctl, WAITING, 0);
      return false;
    }
    return true;
  }
}
