/**
 * A {@link Channel} is one side of an open shared-memory connection: a ring each way and one
 * end of a doorbell socketpair, built from the three fds a handshake passed (or
 * {@link channelPair} in one process).
 *
 * Data path: `send()` writes the record into the outgoing ring (from JS in the zero-copy
 * backend, {@link ZeroCopyBackend}; through a native call in the copying one,
 * {@link CopyingBackend}); the peer's scheduler finds it on its next loop turn or is woken by
 * its doorbell; it reads records in place through a view of the ring
 * ({@link Channel.onMessage}) and releases them. This file keeps what both backends share: the
 * send queue, the async iterator, pausing, and the lifecycle.
 * @packageDocumentation
 */
import { performance } from 'node:perf_hooks';
import native = require('../native');
import type { NativeEndpoint, NativeEndpointStats, NativeFds, NativeReassemblyBudget, WakeMode } from '../../index';
import { fromNative, IpcError } from '../errors';
import { partsLength } from '../util/parts';
import type { Backend, Sink } from './backend';
import { Drained, TRANSIENT } from './backend';
import { CopyingBackend } from './copying';
import type { IdleMode, Pollable } from './idle';
import { activate, deactivate, look, spinWindowMs } from './idle';
import { MAX_CAPACITY, maxFragment, MIN_CAPACITY } from './layout';
import { ZeroCopyBackend } from './zero-copy';

import {
  DEFAULT_HIGH_WATER_MARK,
  DEFAULT_MAX_MESSAGE,
  DEFAULT_REASSEMBLY_BUDGET,
  DEFAULT_RING_CAPACITY,
  MID_MESSAGE_SPIN_MS,
} from '../defaults';

export { TURN_MESSAGES, TURN_MS } from '../defaults';
export { DEFAULT_MAX_MESSAGE, DEFAULT_REASSEMBLY_BUDGET };

/**
 * Options of a channel.
 * @category Transport
 */
export interface ChannelOptions {
  /** Ring capacity per direction in bytes: a power of two, 4 KiB to 1 GiB. Default 1 MiB. */
  capacity?: number;
  /** Largest message accepted from the peer, in bytes. Default 16 MiB (`DEFAULT_MAX_MESSAGE`). */
  maxMessage?: number;
  /** When to poll and when to sleep; see {@link IdleMode}. Default `adaptive`. */
  idle?: IdleMode;
  /** Polling window of `adaptive` mode in µs. Default 200. */
  spinMicros?: number;
  /**
   * How a sleeping side is woken: `uv` (libuv `uv_poll` on the doorbell, default) or `thread`
   * (a blocked thread and a threadsafe function; slower, kept for measurement and as fallback).
   */
  wake?: 'uv' | 'thread';
  /**
   * Read and write the rings through views of the mapping (default). Runtimes that refuse
   * external buffers (a V8 sandbox, as in Electron) fall back to copying automatically;
   * `false` forces that path.
   */
  zeroCopy?: boolean;
  /** Messages buffered for an async iterator before reading pauses (backpressure). Default 1024. */
  highWaterMark?: number;
  /**
   * The budget this channel's fragment reassembly is charged to, shared with other channels
   * (an `IpcServer` passes one for all its sessions). Past it the channel closes with
   * `RESOURCE_EXHAUSTED`. Default: one budget for the whole process, `DEFAULT_REASSEMBLY_BUDGET` (256 MiB).
   */
  reassemblyBudget?: ReassemblyBudget;
}

/**
 * A byte budget for fragment reassembly shared by the channels opened with it.
 * @category Transport
 */
export type ReassemblyBudget = NativeReassemblyBudget;

/**
 * Makes a reassembly budget of `limitBytes` (a whole number of bytes).
 * @category Transport
 */
export function createReassemblyBudget(limitBytes: number): ReassemblyBudget {
  try {
    return new native.NativeReassemblyBudget(limitBytes);
  } catch (e) {
    throw fromNative(e);
  }
}

let processBudget: ReassemblyBudget | null = null;

/**
 * The budget channels share when their options name none.
 * @category Transport
 */
export function processReassemblyBudget(): ReassemblyBudget {
  return (processBudget ??= createReassemblyBudget(DEFAULT_REASSEMBLY_BUDGET));
}

/**
 * The default ring capacity (`DEFAULT_RING_CAPACITY` of `src/defaults.ts`, under its older name).
 * @category Transport
 */
export const DEFAULT_CAPACITY = DEFAULT_RING_CAPACITY;

/** Called with each message. In zero-copy mode `msg` is a view into the ring that is valid only
 * until the handler returns: copy it (`msg.slice()`) to keep it.
 * @category Transport
 */
export type MessageHandler = (msg: Uint8Array) => void;

/**
 * Counters of a channel (monotonic).
 * @category Transport
 */
export interface ChannelStats {
  /** Messages written into the outgoing ring. */
  messagesSent: number;
  /** Payload bytes of those messages. */
  bytesSent: number;
  /** Messages read from the incoming ring. */
  messagesReceived: number;
  /** Payload bytes of those messages. */
  bytesReceived: number;
  /** Doorbells rung because the peer slept. */
  doorbellsRung: number;
  /** Publishes that needed no doorbell because the peer was awake. */
  doorbellsSuppressed: number;
  /** Sends that found the ring full and had to wait. */
  ringFullWaits: number;
  /** Times this side was woken by its doorbell. */
  wakeups: number;
}

interface PendingSend {
  /** The message is `data` followed by `body` (null: `data` alone), `length` bytes in all. */
  data: Uint8Array;
  body: Uint8Array | null;
  length: number;
  progress: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** Options of {@link Channel.send}. */
export interface SendOptions {
  /**
   * Withdraws the message while it waits in the send queue with no byte of it in the ring yet:
   * the promise then rejects with `CANCELLED` (`details.withdrawn === true`) and the peer never
   * sees any of it. Once part of it is in the ring it goes out whole (half a message cannot be
   * taken back) and the promise resolves as usual. An already aborted signal sends nothing.
   */
  signal?: AbortSignal;
}

function withdrawnError(signal: AbortSignal): IpcError {
  return new IpcError('CANCELLED', 'send withdrawn before any of it was written', { cause: signal.reason, details: { withdrawn: true } });
}

const RESOLVED: Promise<void> = Promise.resolve();

function noop(): void {}

/** `data`, or a copy of it when it is a transient view (see {@link Channel.send}). */
function owned(data: Uint8Array): Uint8Array {
  return TRANSIENT.has(data.buffer) ? Uint8Array.prototype.slice.call(data) : data;
}

/**
 * One side of a shared-memory channel.
 * @category Transport
 */
export class Channel implements Pollable, Sink {
  /** Handler for incoming messages; see {@link MessageHandler}. */
  private handler: MessageHandler | null = null;
  private readonly ep: NativeEndpoint;
  private readonly backend: Backend;
  private readonly queue: PendingSend[] = [];
  /** Reading paused by the owner (backpressure), see {@link pauseReading}. */
  private paused = false;
  /** Bytes of queued sends not yet in the ring. */
  private queued = 0;
  private drainHandler: (() => void) | null = null;
  /** The peer hung up its doorbell end: it is gone once its ring is drained. */
  private peerGone = false;
  private isClosed = false;
  /** {@link endOutgoing} was called: nothing more is written. */
  private sendEnded = false;
  private closeError: IpcError | undefined;
  private finalStats: NativeEndpointStats | null = null;
  private readonly closeHandlers: Array<(err?: IpcError) => void> = [];
  private readonly failingHandlers: Array<(err: IpcError) => void> = [];
  /** The first failure, while its onFailing hooks run (a second one must not replace it). */
  private failing: IpcError | null = null;
  private readonly iterBuffer: Uint8Array[] = [];
  private iterWaiter: { resolve: (r: IteratorResult<Uint8Array>) => void; reject: (e: Error) => void } | null = null;
  private iterating = false;
  private readonly highWaterMark: number;
  private readonly counters = { messagesSent: 0, bytesSent: 0, ringFullWaits: 0, wakeups: 0 };
  /** @internal */ lastWork = 0;
  /** @internal */ active = false;
  /** @internal */ readonly spinMs: number;
  /** Ring capacity per direction. */
  readonly capacity: number;
  /** Largest message either side may send (the peer refuses larger ones). */
  readonly maxMessage: number;

  /**
   * Opens this side from the channel's fds (taken from `fds`).
   * @param side `server` for the side that created the fds with `createChannelFds` (and sent
   *   them), `client` for the one that received the three fds of WELCOME.
   */
  constructor(fds: NativeFds, side: 'server' | 'client', options: ChannelOptions = {}) {
    this.capacity = options.capacity ?? DEFAULT_CAPACITY;
    this.maxMessage = options.maxMessage ?? DEFAULT_MAX_MESSAGE;
    const wake = options.wake ?? 'uv';
    const invalid = checkOptions(this.capacity, this.maxMessage, wake);
    if (invalid) {
      fds.close();
      throw new IpcError('INVALID_ARGUMENT', invalid);
    }
    this.spinMs = spinWindowMs(options.idle ?? 'adaptive', options.spinMicros);
    this.highWaterMark = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    let ep: NativeEndpoint | undefined;
    try {
      ep = new native.NativeEndpoint(
        fds,
        side === 'server' ? native.Side.Server : native.Side.Client,
        this.capacity,
        this.maxMessage,
        options.zeroCopy ?? true,
        options.reassemblyBudget ?? processReassemblyBudget(),
      );
      const rx = ep.rxBuffer();
      const tx = rx ? ep.txBuffer() : null;
      this.backend = rx && tx ? new ZeroCopyBackend(ep, rx, tx, this.capacity, this.maxMessage) : new CopyingBackend(ep);
      ep.watch(() => this.onWake(), wake as WakeMode);
    } catch (e) {
      fds.close();
      ep?.close();
      throw fromNative(e);
    }
    this.ep = ep;
    // Messages may already be waiting; look once (polling starts with the first message).
    look(this);
  }

  /** Whether messages are read in place (false: the copying fallback is in use). */
  get zeroCopy(): boolean {
    return this.backend.zeroCopy;
  }

  /** Whether the channel is closed. */
  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * Sets the message handler (replacing any). Reading starts once a handler or an iterator is
   * attached; until then messages wait in the ring, and the peer waits when it is full.
   */
  onMessage(handler: MessageHandler | null): void {
    this.handler = handler;
    if (handler && !this.isClosed) look(this);
  }

  /**
   * Registers a callback for when the channel found a failure itself (the peer corrupted the
   * incoming ring, a message too large, the reassembly budget used up, a handler threw), called
   * just before it closes, while {@link trySend} still works: the owner may tell the peer why
   * (the id-0 ERROR of `docs/PROTOCOL.md` §6.3). What it sends is published before the close.
   * Not called for {@link close} from the owner.
   */
  onFailing(cb: (err: IpcError) => void): void {
    if (!this.isClosed) this.failingHandlers.push(cb);
  }

  /**
   * Holds publishing back until {@link uncork}: messages sent meanwhile become visible to the
   * peer together, with one doorbell at most (for an owner producing a run of frames in one
   * turn, such as stream chunks). The zero-copy path only; a no-op for the copying one.
   */
  cork(): void {
    if (!this.isClosed) this.backend.cork();
  }

  /** Publishes what was sent since {@link cork}. */
  uncork(): void {
    if (this.isClosed) return;
    try {
      this.backend.uncork();
    } catch (e) {
      this.fail(e);
    }
  }

  /** Registers a callback for when the channel closes (`err` set when it failed). */
  onClose(cb: (err?: IpcError) => void): void {
    if (this.isClosed) queueMicrotask(() => cb(this.closeError));
    else this.closeHandlers.push(cb);
  }

  /**
   * Sends one message. Resolves once it is in the ring (not when the peer has read it).
   * When the ring is full the message waits, in order, and the promise resolves later: nothing
   * is dropped. Until then `data` must not be modified, except that a received message's
   * transient view (as passed to an {@link MessageHandler}) may be sent as is: it is copied if
   * it has to wait.
   * Messages larger than the ring travel in fragments and arrive whole.
   * With `options.signal`, a send still waiting whole in the queue can be withdrawn (see
   * {@link SendOptions.signal}), so calls that timed out do not pile up behind a stalled peer.
   */
  send(data: Uint8Array, options?: SendOptions): Promise<void> {
    return this.sendParts(data, null, options);
  }

  /**
   * Sends one message made of `head` followed by `body`, as {@link send} does, without joining
   * them first: each part is copied once, straight into the ring (a frame header and a large
   * payload, for instance). `body` may be null. The same rule holds for both parts: unchanged
   * until the promise resolves, except for transient views, which are copied if they wait.
   */
  sendParts(head: Uint8Array, body: Uint8Array | null, options?: SendOptions): Promise<void> {
    if (this.isClosed || this.sendEnded) return Promise.reject(this.closedError());
    const length = partsLength(head, body);
    if (length > this.maxMessage) return Promise.reject(this.tooLarge(length));
    if (body !== null && !this.backend.gathers) {
      head = Buffer.concat([head, body]);
      body = null;
    }
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(withdrawnError(signal));
    if (this.queue.length === 0) {
      let progress: number;
      try {
        progress = this.backend.write(head, body, 0);
      } catch (e) {
        return Promise.reject(this.fail(e));
      }
      if (progress === length) {
        this.countSent(length);
        return RESOLVED;
      }
      this.counters.ringFullWaits++;
      return this.enqueue(head, body, length, Math.max(progress, 0), signal);
    }
    return this.enqueue(head, body, length, 0, signal);
  }

  /**
   * Sends `data` (followed by `body`, if given, as in {@link sendParts}) only if the whole
   * message fits in the ring now and nothing is queued before it; returns whether it was sent.
   * Never waits, never allocates and never throws: on false, call {@link send} or
   * {@link sendParts}, which queue the message or reject with the reason (closed, too large, or
   * the `RING_CORRUPT` a peer's scribbling just closed the channel with).
   */
  trySend(data: Uint8Array, body: Uint8Array | null = null): boolean {
    const length = partsLength(data, body);
    if (this.isClosed || this.sendEnded || this.queue.length > 0 || length > this.maxMessage || length > maxFragment(this.capacity)) {
      return false;
    }
    if (body !== null && !this.backend.gathers) return false;
    try {
      // One record (checked above): it either fits whole or not at all (-1).
      if (this.backend.write(data, body, 0) === -1) return false;
    } catch (e) {
      this.fail(e);
      return false;
    }
    this.countSent(length);
    return true;
  }

  private countSent(bytes: number): void {
    this.counters.messagesSent++;
    this.counters.bytesSent += bytes;
  }

  private enqueue(
    data: Uint8Array,
    body: Uint8Array | null,
    length: number,
    progress: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    // A received message handed out as a transient view (ring memory, or a reassembly buffer)
    // changes under us once its handler returns, so such a view is copied if it must wait, as
    // when a handler echoes what it got. Other data is the caller's to keep unchanged until the
    // promise resolves: copying everything would cost large-message senders half their speed.
    const item: PendingSend = {
      data: owned(data),
      body: body === null ? null : owned(body),
      length,
      progress,
      resolve: noop,
      reject: noop,
    };
    return new Promise<void>((resolve, reject) => {
      item.resolve = resolve;
      item.reject = reject;
      if (signal) {
        const onAbort = (): void => this.withdraw(item, signal);
        signal.addEventListener('abort', onAbort, { once: true });
        item.resolve = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        item.reject = (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        };
      }
      this.queue.push(item);
      this.queued += length - progress;
      if (this.queue.length === 1) {
        try {
          this.flushQueue();
        } catch (e) {
          // Closing rejects every queued send, this one included, with the reason.
          this.fail(e);
          return;
        }
      }
      activate(this);
    });
  }

  /** Takes a queued send out if none of it is in the ring yet (see {@link SendOptions.signal}). */
  private withdraw(item: PendingSend, signal: AbortSignal): void {
    const i = this.queue.indexOf(item);
    if (i < 0 || item.progress > 0) return;
    this.queue.splice(i, 1);
    this.queued -= item.length;
    item.reject(withdrawnError(signal));
    this.notifyDrain();
    // The next queued send may fit where the withdrawn one did not.
    if (i === 0 && this.queue.length > 0) activate(this);
  }

  /**
   * Writes queued messages in order as far as the ring allows. When it fills up, announces at
   * once that we wait for space, so the reader releases as soon as it has read, instead of
   * when it next goes idle.
   */
  private flushQueue(): boolean {
    const before = this.queued;
    const progressed = this.writeQueued();
    if (this.queued < before) this.notifyDrain();
    return progressed;
  }

  /** Tells the drain handler that {@link queuedBytes} went down. */
  private notifyDrain(): void {
    if (!this.drainHandler) return;
    try {
      this.drainHandler();
    } catch (e) {
      this.fail(new IpcError('HANDLER_ERROR', `drain handler threw: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
    }
  }

  private writeQueued(): boolean {
    let progressed = false;
    while (this.queue.length > 0) {
      const item = this.queue[0];
      const p = this.backend.write(item.data, item.body, item.progress);
      if (p === -1 || p < item.length) {
        if (p > item.progress) {
          progressed = true;
          this.queued -= p - item.progress;
          item.progress = p;
        }
        // Announced at once, so the reader releases as soon as it has read. Space appeared
        // meanwhile: write again.
        if (!this.backend.waitForSpace(item.length - item.progress)) continue;
        break;
      }
      progressed = true;
      this.queue.shift();
      this.queued -= item.length - item.progress;
      this.countSent(item.length);
      item.resolve();
    }
    return progressed;
  }

  /** @internal Whether to go on reading (see {@link Sink}). */
  get reading(): boolean {
    return !this.paused && (this.handler !== null || (this.iterating && this.iterBuffer.length < this.highWaterMark));
  }

  /**
   * Stops reading incoming messages (they stay in the ring, so the peer's writer waits when it
   * fills): backpressure for an owner whose replies pile up. Takes effect between messages,
   * also within a batch.
   */
  pauseReading(): void {
    this.paused = true;
  }

  /** Resumes reading after {@link pauseReading}. */
  resumeReading(): void {
    if (!this.paused) return;
    this.paused = false;
    if (!this.isClosed) activate(this);
  }

  /** Whether reading is paused by {@link pauseReading}. */
  get readingPaused(): boolean {
    return this.paused;
  }

  /** Bytes of sends queued behind a full ring (accepted by `send()`, not yet in the ring). */
  get queuedBytes(): number {
    return this.queued;
  }

  /**
   * Sets the handler (replacing any) called each time queued sends went into the ring, so
   * {@link queuedBytes} went down (to 0 once the queue is empty).
   */
  onDrain(handler: (() => void) | null): void {
    this.drainHandler = handler;
  }

  /** @internal Hands one message to the handler or the iterator (see {@link Sink}). */
  deliver(msg: Uint8Array, inPlace: boolean): void {
    if (this.handler) {
      try {
        this.handler(msg);
      } catch (e) {
        // Our caller's bug, not the peer's: this channel ends with it, nothing else does.
        this.fail(new IpcError('HANDLER_ERROR', `message handler threw: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
      }
      return;
    }
    const owned = inPlace ? msg.slice() : msg;
    if (this.iterWaiter) {
      const w = this.iterWaiter;
      this.iterWaiter = null;
      w.resolve({ value: owned, done: false });
    } else {
      this.iterBuffer.push(owned);
    }
  }

  /**
   * @internal Does the work that is waiting; called by the scheduler. Bounded per call (one
   * poll of at most {@link TURN_MESSAGES} messages, and {@link TURN_MS} of handler time), so a
   * flooding peer cannot keep one channel's step going while other channels, timers and the
   * accept loop wait: the scheduler goes round every channel once per event-loop turn.
   */
  step(): boolean {
    if (this.isClosed) return false;
    try {
      let work = this.queue.length > 0 && this.flushQueue();
      if (this.reading) {
        const d = this.backend.drain(this);
        if (d === Drained.Work) work = true;
        else if (!this.isClosed && (d === Drained.Ended || this.peerGone)) this.close();
      }
      return work;
    } catch (e) {
      this.fail(e);
      return false;
    }
  }

  /** @internal Whether {@link step} would find work (see {@link Pollable.probe}). */
  probe(): boolean {
    return !this.isClosed && this.backend.probe(this.reading, this.queue.length > 0);
  }

  /** @internal Tries to sleep on the doorbell; false when work turned up. */
  park(): boolean {
    if (this.isClosed) return true;
    try {
      this.backend.release();
      if (!this.reading && this.queue.length === 0) return true;
      // A gone peer never rings again; a reader closes the channel in step(), a mere sender
      // waits for its owner to close it.
      if (this.peerGone && !this.reading) return true;
      const item = this.queue.length > 0 ? this.queue[0] : null;
      // Half-way through a message larger than the free space: the reader is releasing a ring's
      // worth right now; keep polling a little longer rather than pay a wake-up per hand-over.
      if (item && item.progress > 0 && this.spinMs > 0 && performance.now() - this.lastWork < MID_MESSAGE_SPIN_MS) return false;
      return this.backend.prepareSleep(this.reading, item ? item.length - item.progress : -1);
    } catch (e) {
      this.fail(e);
      return true;
    }
  }

  private onWake(): void {
    if (this.isClosed) return;
    this.counters.wakeups++;
    try {
      if (this.ep.woke() && !this.peerGone) {
        // A hung-up socket stays readable: stop watching it, or the loop would spin on it.
        // What the peer left in the ring is still read, then the channel closes (step).
        this.peerGone = true;
        this.ep.unwatch();
      }
    } catch (e) {
      this.fail(e);
      return;
    }
    // Work now rather than a loop turn later: this is the latency a sleeping side pays.
    this.step();
    // `sleep` mode goes straight back to sleep from here when nothing is left to do (the rest
    // of a batch cut short, more messages, space for a queued send): a loop turn of the
    // scheduler only to find nothing and park costs more than the work itself.
    if (this.isClosed || (this.spinMs === 0 && !this.active && !this.probe() && this.park())) return;
    // Its polling window starts now (the scheduler's next pass stamps it), work or not.
    activate(this);
  }

  private tooLarge(size: number): IpcError {
    return new IpcError('MESSAGE_TOO_LARGE', `message of ${size} bytes exceeds the limit of ${this.maxMessage} bytes`);
  }

  private closedError(): IpcError {
    return this.closeError ?? new IpcError('CHANNEL_CLOSED', 'channel closed', { retryable: true });
  }

  private fail(e: unknown): IpcError {
    // A hook's own send failing (the outgoing ring is the broken one) keeps the first reason.
    if (this.failing) return this.failing;
    const err = e instanceof IpcError ? e : fromNative(e);
    if (!this.isClosed) {
      this.failing = err;
      for (const cb of this.failingHandlers.splice(0)) {
        try {
          cb(err);
        } catch (thrown) {
          process.nextTick(() => {
            throw thrown;
          });
        }
      }
    }
    this.close(err);
    this.failing = null;
    return err;
  }

  /**
   * Ends the outgoing direction now: what was written (also inside a batch or a cork) is
   * published, then the `closed` word, so the peer sees end-of-stream; nothing sent after this
   * reaches it. The rest ({@link close}: unmapping, fds) may follow later, off a busy turn.
   */
  endOutgoing(): void {
    if (this.isClosed || this.sendEnded) return;
    try {
      this.backend.uncork();
      this.ep.closeOutgoing();
    } catch (e) {
      this.fail(e);
      return;
    }
    // Nothing may follow the `closed` word: what still waits is refused, as close() would.
    this.sendEnded = true;
    this.queued = 0;
    if (this.queue.length > 0) {
      const error = this.closedError();
      for (const item of this.queue.splice(0)) item.reject(error);
    }
  }

  /**
   * Closes this side now: the peer sees end-of-stream after what was already sent; queued sends
   * reject; the rings' views are detached. Idempotent.
   */
  close(err?: IpcError): void {
    if (this.isClosed) return;
    // Whatever was written and not yet published (a reply inside a batch, a corked run, a
    // failing hook's last word) goes out before the `closed` word.
    try {
      this.backend.uncork();
    } catch {
      // The outgoing ring is what failed: nothing more can be published on it.
    }
    this.isClosed = true;
    this.closeError = err;
    this.failingHandlers.length = 0;
    deactivate(this);
    // The native counters go with the endpoint; keep their last values for stats().
    this.finalStats = this.ep.stats();
    this.ep.close();
    this.queued = 0;
    if (this.queue.length > 0) {
      // Built only when someone receives it: an error's stack capture is not free.
      const error = this.closedError();
      for (const item of this.queue.splice(0)) item.reject(error);
    }
    if (this.iterWaiter) {
      const w = this.iterWaiter;
      this.iterWaiter = null;
      if (err) w.reject(err);
      else w.resolve({ value: undefined, done: true });
    }
    for (const cb of this.closeHandlers.splice(0)) {
      try {
        cb(err);
      } catch (e) {
        // A close handler's own bug must not stop the others or escape into the data path
        // (a doorbell callback, a scheduler turn); it surfaces as an uncaught exception.
        process.nextTick(() => {
          throw e;
        });
      }
    }
  }

  /** @internal The scheduler's last resort if a step ever threw. */
  abort(e: unknown): void {
    this.fail(e);
  }

  /**
   * Polls the incoming ring for the polling window from now, as after a message arrived: for an
   * owner that just sent something that will be answered (a request), so the answer is found by
   * polling rather than paid for with a wake-up, and a peer's corrupt ring is noticed at once.
   * `sleep` mode looks once and parks.
   */
  keepPolling(): void {
    if (!this.isClosed) activate(this);
  }

  /** Whether the doorbell watch keeps the process alive (default true). */
  setKeepAlive(keepAlive: boolean): void {
    if (!this.isClosed) this.ep.setRef(keepAlive);
  }

  /** Counters so far. */
  stats(): ChannelStats {
    const n: NativeEndpointStats = this.finalStats ?? this.ep.stats();
    return {
      ...this.counters,
      // Every doorbell goes through the native side (ringPeer, release, native writes).
      doorbellsRung: n.doorbellsRung,
      doorbellsSuppressed: this.backend.doorbellsSuppressed + n.doorbellsSuppressed,
      messagesReceived: n.messagesReceived,
      bytesReceived: n.bytesReceived,
    };
  }

  /**
   * Iterates over incoming messages (each an owned copy). Ends when the peer closes; throws if
   * the channel fails. Reading pauses while `highWaterMark` messages wait unconsumed.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    this.iterating = true;
    look(this);
    const self = this;
    return {
      next(): Promise<IteratorResult<Uint8Array>> {
        const buffered = self.iterBuffer.shift();
        if (buffered) {
          if (self.iterBuffer.length < self.highWaterMark && !self.isClosed) activate(self);
          return Promise.resolve({ value: buffered, done: false });
        }
        if (self.isClosed) {
          return self.closeError ? Promise.reject(self.closeError) : Promise.resolve({ value: undefined, done: true });
        }
        activate(self);
        return new Promise((resolve, reject) => {
          self.iterWaiter = { resolve, reject };
        });
      },
      return(): Promise<IteratorResult<Uint8Array>> {
        self.iterating = false;
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
}

/** Why these channel options are invalid, or null. */
function checkOptions(capacity: number, maxMessage: number, wake: string): string | null {
  if (!Number.isInteger(capacity) || capacity < MIN_CAPACITY || capacity > MAX_CAPACITY || (capacity & (capacity - 1)) !== 0) {
    return `capacity must be a power of two from ${MIN_CAPACITY} to ${MAX_CAPACITY}, got ${capacity}`;
  }
  if (!Number.isInteger(maxMessage) || maxMessage < 1 || maxMessage > 0xffff_ffff) {
    return `maxMessage must be a whole number of bytes from 1 to 2^32 - 1, got ${maxMessage}`;
  }
  if (wake !== 'uv' && wake !== 'thread') return `wake must be 'uv' or 'thread', got ${JSON.stringify(wake)}`;
  return null;
}

/**
 * Two connected channels in one process (for tests, benchmarks and in-process use).
 * @category Transport
 */
export function channelPair(options: ChannelOptions = {}): [server: Channel, client: Channel] {
  const fds = native.createChannelFds(options.capacity ?? DEFAULT_CAPACITY);
  // The client needs its own copies of the fds; passing them through a socketpair is how a
  // real client gets them, so this also exercises SCM_RIGHTS.
  const [a, b] = native.controlSocketPair();
  try {
    a.send(Buffer.from([0]), fds);
    const buf = Buffer.alloc(1);
    if (b.recv(buf) !== 1) throw new IpcError('IO', 'socketpair did not deliver the fds');
    const clientFds = b.takeFds();
    if (!clientFds) throw new IpcError('IO', 'socketpair did not deliver the fds');
    return [new Channel(fds, 'server', options), new Channel(clientFds, 'client', options)];
  } finally {
    a.close();
    b.close();
  }
}
