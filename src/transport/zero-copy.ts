/**
 * The zero-copy backend: JS writes records straight into the outgoing ring
 * ({@link RingWriter}), and reads incoming messages in place through views of the incoming
 * ring, released in batches. One `poll()` native call per batch of up to 256 records. A message
 * larger than a record arrives in fragments, which Rust validates and JS copies straight into a
 * buffer of its own: one copy on the reading side, whatever the size.
 * @packageDocumentation
 */
import { performance } from 'node:perf_hooks';
import type { NativeEndpoint } from '../../index';
import type { Backend, Sink } from './backend';
import { Drained, TRANSIENT } from './backend';
import { TURN_MESSAGES, TURN_MS } from '../defaults';
import {
  HEADER_SIZE,
  OFF_CLOSED,
  OFF_HEAD,
  OFF_PRODUCER_WAITING,
  POLL_DESC_WORDS,
  POLL_FAILED,
  POLL_LAST_FRAGMENT,
  POLL_WHOLE,
} from './layout';
import { RingWriter } from './ring-writer';
import { partsLength } from '../util/parts';

// Int32 indices of the header words read on every loop turn, as plain module constants.
const HEAD = OFF_HEAD / 4;
const CLOSED = OFF_CLOSED / 4;
const PRODUCER_WAITING = OFF_PRODUCER_WAITING / 4;
const WORDS = POLL_DESC_WORDS;
const WHOLE = POLL_WHOLE;
const LAST = POLL_LAST_FRAGMENT;
const FAILED = POLL_FAILED;

/** See the module comment. */
export class ZeroCopyBackend implements Backend {
  readonly zeroCopy = true;
  doorbellsSuppressed = 0;
  private readonly writer: RingWriter;
  private readonly rxCtl: Int32Array;
  private readonly desc = new Int32Array(WORDS * TURN_MESSAGES);
  /** `head` (unsigned) as of the last complete poll; -1, which no u32 equals, forces a poll. */
  private lastHead = -1;
  /** Records were read and not yet released. */
  private unreleased = false;
  /** Messages of the last poll delivered so far, and how many it returned (`desc`). */
  private batchAt = 0;
  private batchLen = 0;
  /** True while a batch is delivered (replies sent from handlers are published every 16
   * messages and after it), or while the owner corked the channel. */
  private corked = false;
  /** The owner's cork (see Channel.cork), kept apart from the batch's own. */
  private ownerCorked = false;
  /** Reused buffer that fragments of a large message are copied into (see {@link assemble}). */
  private scratch: Uint8Array | null = null;
  /** Bytes of the message being reassembled in `scratch` so far. */
  private assembled = 0;

  constructor(
    private readonly ep: NativeEndpoint,
    private readonly rx: ArrayBuffer,
    tx: ArrayBuffer,
    private readonly capacity: number,
    private readonly maxMessage: number,
  ) {
    TRANSIENT.add(rx);
    this.rxCtl = new Int32Array(rx, 0, HEADER_SIZE / 4);
    this.writer = new RingWriter(tx, capacity, ep.txHead);
  }

  readonly gathers = true;

  write(head: Uint8Array, body: Uint8Array | null, progress: number): number {
    const p = this.writer.write(head, body, progress);
    // A ring that filled up is published at once so the peer can make room.
    if (!this.corked || p !== partsLength(head, body)) this.publish();
    return p;
  }

  private publish(): void {
    const w = this.writer;
    if (w.idle) return;
    if (w.publish()) this.ep.ringPeer();
    else this.doorbellsSuppressed++;
  }

  waitForSpace(remaining: number): boolean {
    // Even a side that never sleeps announces it: the flag is also what makes the reader
    // release what it has read.
    return this.writer.prepareWaitForSpace(this.writer.spaceNeeded(remaining));
  }

  probe(reading: boolean, sending: boolean): boolean {
    const ctl = this.rxCtl;
    if (reading && (this.batchAt < this.batchLen || Atomics.load(ctl, HEAD) >>> 0 !== this.lastHead || Atomics.load(ctl, CLOSED) !== 0)) {
      return true;
    }
    return (sending && this.writer.tailMoved()) || (this.unreleased && Atomics.load(ctl, PRODUCER_WAITING) !== 0);
  }

  drain(sink: Sink): Drained {
    if (this.batchAt < this.batchLen) {
      // The rest of a batch a budget or a pause cut short (still unreleased in the ring).
      this.deliverBatch(sink, false);
      return Drained.Work;
    }
    // Unsigned, so the -1 of "not seen yet" can never equal a value the peer wrote.
    const head = Atomics.load(this.rxCtl, HEAD) >>> 0;
    if (head !== this.lastHead) {
      this.lastHead = head;
      this.deliverBatch(sink, true);
      return Drained.Work;
    }
    if (this.unreleased && Atomics.load(this.rxCtl, PRODUCER_WAITING) !== 0) {
      // The writer waits for the space of what we already read.
      this.release();
      return Drained.Idle;
    }
    // SYNC(closed), PROTOCOL §3.6: closed and nothing left to read.
    return Atomics.load(this.rxCtl, CLOSED) !== 0 ? Drained.Ended : Drained.Idle;
  }

  private deliverBatch(sink: Sink, poll: boolean): void {
    this.corked = true;
    try {
      const { rx, desc } = this;
      const start = performance.now();
      for (;;) {
        if (poll) {
          const n = this.ep.poll(this.desc);
          // Even with n = 0 the poll may have stepped over a padding record.
          this.unreleased = true;
          this.batchAt = 0;
          this.batchLen = n;
          // A full batch may have left records behind `head`: look again next time.
          if (n === TURN_MESSAGES) this.lastHead = -1;
        }
        let fragment = false;
        while (this.batchAt < this.batchLen) {
          const i = this.batchAt++;
          const off = desc[WORDS * i];
          const len = desc[WORDS * i + 1];
          const kind = desc[WORDS * i + 2];
          if (kind === WHOLE) {
            sink.deliver(new Uint8Array(rx, off, len), true);
          } else if (kind === FAILED) {
            // What came before the failure was delivered; the next drain polls, which throws it.
            this.lastHead = -1;
            return;
          } else {
            // The native poll ends a batch at a fragment, and more may wait behind it even
            // though `head` did not move: the next drain must poll (set now, before a handler
            // can pause reading and return).
            fragment = true;
            this.lastHead = -1;
            this.assemble(off, len);
            if (kind !== LAST) continue;
            sink.deliver(this.takeAssembled(), true);
          }
          if (sink.closed) return;
          // What the handlers have answered so far goes out now, not at the end of the batch
          // (unless the owner corked): a peer that polls starts on those replies while this side
          // reads the rest. (Interleaved A/B of benches/profile: JSON pipelined and streams
          // gained 6-16 %; pipelined bytes within noise.)
          if ((i & 15) === 15 && !this.ownerCorked) this.publish();
          // Paused (a full iterator buffer, pauseReading) or out of time: the rest waits, unreleased.
          if (!sink.reading || ((i & 31) === 31 && performance.now() - start >= TURN_MS)) return;
        }
        if (!fragment) break;
        // Within this turn's time, poll again at once, which releases the fragment just copied,
        // so the writer refills that space while we copy the next one.
        if (performance.now() - start >= TURN_MS) break;
        poll = true;
      }
      // All read: a writer waiting for space goes on now rather than when this side next polls.
      if (this.unreleased && Atomics.load(this.rxCtl, PRODUCER_WAITING) !== 0) this.release();
    } finally {
      this.corked = this.ownerCorked;
      if (!sink.closed && !this.corked) this.publish();
    }
  }

  /**
   * Copies one fragment (validated by the native side: in order, the message within
   * `maxMessage`, charged to the reassembly budget) to the end of the message in `scratch`.
   * The buffer is reused, warm, from one message to the next: fresh memory per message costs a
   * page fault per 4 KiB, which would dominate large-message throughput.
   */
  private assemble(off: number, len: number): void {
    const at = this.assembled;
    let scratch = this.scratch;
    if (!scratch || scratch.length < at + len) {
      // Doubling, from a ring's worth; never past maxMessage, which the message is within.
      const size = Math.min(Math.max(at + len, 2 * (scratch?.length ?? 0), this.capacity), this.maxMessage);
      // A plain Uint8Array, so that a handler's `msg.slice()` copies (a Buffer's would not).
      const grown = new Uint8Array(size);
      if (scratch && at > 0) grown.set(scratch.subarray(0, at));
      TRANSIENT.add(grown.buffer);
      this.scratch = scratch = grown;
    }
    scratch.set(new Uint8Array(this.rx, off, len), at);
    this.assembled = at + len;
  }

  /** The message assembled in `scratch`, as a transient view like an in-place message. */
  private takeAssembled(): Uint8Array {
    const scratch = this.scratch as Uint8Array;
    const view = scratch.subarray(0, this.assembled);
    this.assembled = 0;
    // Keep it only while it is modest, so one huge message does not pin memory for the life of
    // the channel (the view handed out keeps this one alive until the handler lets it go).
    if (scratch.length > 4 * this.capacity) this.scratch = null;
    return view;
  }

  prepareSleep(reading: boolean, remaining: number): boolean {
    this.release();
    // SYNC(consumer-sleep), PROTOCOL §3.5 step 4 (the announcement is made in Rust).
    if (reading && !this.ep.prepareSleep(0)) {
      // The native consumer saw `head` differ from what it read. That may be a peer moving
      // `head` back to the value JS cached: force the next drain to poll, so the native side
      // validates it (RING_CORRUPT) instead of the channel spinning for ever (review R9).
      this.lastHead = -1;
      return false;
    }
    if (remaining >= 0 && !this.waitForSpace(remaining)) {
      if (reading) this.ep.woke();
      return false;
    }
    return true;
  }

  cork(): void {
    this.ownerCorked = this.corked = true;
  }

  uncork(): void {
    this.ownerCorked = this.corked = false;
    this.publish();
  }

  release(): void {
    // Never with part of a batch undelivered: its in-place views point into those records.
    if (this.unreleased && this.batchAt >= this.batchLen) {
      this.ep.release();
      this.unreleased = false;
    }
  }
}
