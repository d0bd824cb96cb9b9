/**
 * Shared helpers of the transport tests: deterministic message contents, waiting with a
 * deadline, fd counting, and the path of the peer script run in child processes.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import type { BarePair, SpawnOptions } from '../../benches/lib/bare-pair';
import { spawnBarePair } from '../../benches/lib/bare-pair';
import type { NativeFds } from '../../index';
import native = require('../../src/native');
import type { Channel } from '../../src/transport/channel';
import type { IpcError } from '../../src/errors';
import {
  FLAG_CONT,
  FLAG_PAD,
  HEADER_SIZE,
  OFF_CONSUMER_SLEEPING,
  OFF_HEAD,
  OFF_PRODUCER_WAITING,
  OFF_TAIL,
} from '../../src/transport/layout';

/** The child-process side of the cross-process tests. */
export const PEER = path.join(__dirname, 'fixtures', 'peer.ts');

/** Spawns a bare pair with the peer script, closed when the test ends. */
export async function pair(t: ExecutionContext, script: string, options: SpawnOptions): Promise<BarePair> {
  const p = await spawnBarePair(script, options);
  t.teardown(() => p.close().then(() => undefined));
  return p;
}

/**
 * A new channel's fds for both sides, as a server and its client hold them: the server's set
 * from `createChannelFds`, and the client's copies received over a socketpair with SCM_RIGHTS.
 */
export function channelFds(capacity: number): { server: NativeFds; client: NativeFds } {
  const server = native.createChannelFds(capacity);
  const [x, y] = native.controlSocketPair();
  try {
    x.send(Buffer.from([0]), server);
    y.recv(Buffer.alloc(1));
    return { server, client: y.takeFds()! };
  } finally {
    x.close();
    y.close();
  }
}

/** A small deterministic PRNG (xorshift32). */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/**
 * Size of message `i` in a varied sequence of 1 to `max` bytes: tiny, around the 8-byte record
 * alignment, and (when `max` allows) larger than a quarter of a small ring. Never 0: empty
 * messages have tests of their own (a full ring loses them, a known bug; see ring.test.ts),
 * and here they would make the other tests flaky.
 */
export function sizeOf(i: number, max: number): number {
  const specials = [1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 63, 64, 65];
  if (i % 7 === 0) return Math.min(specials[(i / 7) % specials.length], max);
  let x = (Math.imul(i + 1, 0x9e3779b1) ^ (i >>> 3)) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x85ebca6b) >>> 0;
  x = (x ^ (x >>> 13)) >>> 0;
  return 1 + (x % max);
}

/** The contents of message `i`: its index in the first 4 bytes (when they fit), then a pattern. */
export function makeMessage(i: number, size: number): Uint8Array {
  const m = new Uint8Array(size);
  fillMessage(m, i);
  return m;
}

function fillMessage(m: Uint8Array, i: number): void {
  const size = m.length;
  let j = 0;
  if (size >= 4) {
    m[0] = i & 255;
    m[1] = (i >>> 8) & 255;
    m[2] = (i >>> 16) & 255;
    m[3] = (i >>> 24) & 255;
    j = 4;
  }
  for (; j < size; j++) m[j] = (i * 131 + j * 7 + (j >>> 8)) & 255;
}

/** Why `m` is not message `i` of `size` bytes, or null when it is. */
export function checkMessage(m: Uint8Array, i: number, size: number): string | null {
  if (m.length !== size) return `message ${i}: ${m.length} bytes, expected ${size}`;
  if (size >= 4) {
    const got = (m[0] | (m[1] << 8) | (m[2] << 16) | (m[3] << 24)) >>> 0;
    if (got !== i >>> 0) return `message ${i}: carries index ${got}`;
  }
  for (let j = size >= 4 ? 4 : 0; j < size; j++) {
    if (m[j] !== ((i * 131 + j * 7 + (j >>> 8)) & 255)) return `message ${i}: byte ${j} is ${m[j]}`;
  }
  return null;
}

/** Rejects with `what` if `p` does not settle within `ms` (a hang becomes a failure). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Resolves when the channel closes, with the error it closed with (if any). */
export function closed(ch: Channel): Promise<IpcError | undefined> {
  return new Promise((resolve) => ch.onClose(resolve));
}

/** Number of open fds of this process. */
export function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** Open fds of this process with what they point at (for failure messages). */
export function fdList(): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      out.push(`${fd} -> ${fs.readlinkSync(`/proc/self/fd/${fd}`)}`);
    } catch {
      // closed while listing (the directory's own fd)
    }
  }
  return out;
}

/** Lets pending callbacks and closes run. */
export async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 10));
}

/** A promise and its resolvers. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((a, b) => {
    resolve = a;
    reject = b;
  });
  return { promise, resolve, reject };
}

// ---- a hostile peer ---------------------------------------------------------------------

/** Ways of scribbling over a ring the other side reads (all but `flags` must be detected). */
export const CORRUPTIONS = [
  'head-beyond',
  'head-unaligned',
  'head-behind',
  'len-huge',
  'len-past-head',
  'flags-unknown',
  'stray-cont',
  'bogus-pad',
  'garbage',
] as const;
export type Corruption = (typeof CORRUPTIONS)[number] | 'tail' | 'flags';

/**
 * Scribbles over a ring region as a hostile peer would. For every variant but `tail` the region
 * is one we produce into (the other side reads it); for `tail` it is one we consume (the other
 * side writes it and must refuse to trust our `tail`). `flags` writes garbage only into the
 * sleep/wait flags, which must not break anything.
 */
export function scribble(region: ArrayBuffer, capacity: number, variant: Corruption, seed = 1): void {
  const ctl = new Int32Array(region, 0, HEADER_SIZE / 4);
  const data = new DataView(region, HEADER_SIZE, capacity);
  const head = Atomics.load(ctl, OFF_HEAD / 4) >>> 0;
  const pos = head & (capacity - 1);
  if (pos + 64 > capacity) throw new Error('scribble: head too close to the end of the ring');
  const record = (len: number, flags: number, advance = 16) => {
    data.setUint32(pos, len >>> 0, true);
    data.setUint32(pos + 4, flags >>> 0, true);
    Atomics.store(ctl, OFF_HEAD / 4, (head + advance) | 0);
  };
  const r = rng(seed);
  switch (variant) {
    case 'head-beyond':
      return void Atomics.store(ctl, OFF_HEAD / 4, (head + capacity * 4) | 0);
    case 'head-unaligned':
      return void Atomics.store(ctl, OFF_HEAD / 4, (head + 13) | 0);
    case 'head-behind':
      return void Atomics.store(ctl, OFF_HEAD / 4, (head - 8) | 0);
    case 'len-huge':
      return record(0xfffffff0, 0);
    case 'len-past-head':
      return record(100, 0);
    case 'flags-unknown':
      return record(8, 0x80);
    case 'stray-cont':
      return record(8, FLAG_CONT);
    case 'bogus-pad':
      return record(8, FLAG_PAD);
    case 'garbage': {
      for (let i = pos; i + 4 <= capacity; i += 4) data.setUint32(i, r(), true);
      const words = new Int32Array(region, 0, HEADER_SIZE / 4);
      // Also the header's unused words (never the magic/capacity words, which are checked only
      // at open, nor the indices, which the other variants cover one by one).
      for (let k = 0; k < 8; k++) {
        const w = 16 + (r() % (HEADER_SIZE / 4 - 16));
        if (w !== OFF_HEAD / 4 && w !== OFF_TAIL / 4 && w !== 80) words[w] = r() | 0;
      }
      return void Atomics.store(ctl, OFF_HEAD / 4, (head + 8 * (1 + (r() % (capacity / 16)))) | 0);
    }
    case 'tail': {
      const tail = Atomics.load(ctl, OFF_TAIL / 4) >>> 0;
      return void Atomics.store(ctl, OFF_TAIL / 4, (tail + capacity * 8 + 8) | 0);
    }
    case 'flags':
      Atomics.store(ctl, OFF_CONSUMER_SLEEPING / 4, 0x5a5a5a5a);
      Atomics.store(ctl, OFF_PRODUCER_WAITING / 4, -1);
      return;
  }
}

/**
 * Sends `n` messages made by `make(i)` and waits until the peer (an echo) has sent every one
 * back, checking each echo against what was sent, in order. `pace(i)` may return a promise to
 * pause the sender before message `i` (for races). Returns how many echoes arrived (always `n`
 * on success); rejects with the first mismatch, or after `timeoutMs`.
 */
export async function echoRoundTrip(
  ch: Channel,
  n: number,
  make: (i: number) => Uint8Array,
  options: { timeoutMs?: number; pace?: (i: number) => Promise<void> | void; awaitEach?: boolean; window?: number } = {},
): Promise<number> {
  const sent: Uint8Array[] = [];
  let received = 0;
  const done = deferred<void>();
  let windowOpen: (() => void) | null = null;
  ch.onMessage((m) => {
    const want = sent[received];
    if (!want) return done.reject(new Error(`echo ${received} arrived before it was sent`));
    if (m.length !== want.length) return done.reject(new Error(`echo ${received}: ${m.length} bytes, sent ${want.length}`));
    for (let j = 0; j < m.length; j++) {
      if (m[j] !== want[j]) return done.reject(new Error(`echo ${received}: byte ${j} differs`));
    }
    sent[received] = undefined as unknown as Uint8Array;
    if (++received === n) done.resolve();
    if (windowOpen && sent.length - received < (options.window ?? Infinity)) {
      const w = windowOpen;
      windowOpen = null;
      w();
    }
  });
  ch.onClose((err) => done.reject(err ?? new Error(`channel closed after ${received} of ${n} echoes`)));
  const sender = (async () => {
    for (let i = 0; i < n; i++) {
      const p = options.pace?.(i);
      if (p) await p;
      if (sent.length - received >= (options.window ?? Infinity)) await new Promise<void>((r) => (windowOpen = r));
      const m = make(i);
      sent.push(m);
      const s = ch.send(m);
      if (options.awaitEach) await s;
      else s.catch((e) => done.reject(e));
    }
  })();
  sender.catch((e) => done.reject(e));
  // The count and the counters as of the timeout, not of the call (a hang must say where).
  const ms = options.timeoutMs ?? 30_000;
  const timer = setTimeout(
    () => done.reject(new Error(`timed out after ${ms} ms: echoes: ${received} of ${n} arrived; ${JSON.stringify(ch.stats())}`)),
    ms,
  );
  await done.promise.finally(() => clearTimeout(timer));
  ch.onMessage(null);
  return received;
}
