/**
 * Per-stream flow control (PLAN §3, frame kind 8 STREAM_CREDIT): the server's window starts at
 * zero and is only what the client grants; `yield` waits on it without holding up other calls;
 * the client grants as its consumer reads, per client and per call, and its queue is bounded by
 * the window.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { decodePayload, encodeCredit, encodeFrame, FrameKind } from '../../src/protocol/frame';
import type { IpcServer } from '../../src/ipc/server';
import { connect, rawSession, startServer, waitFor, within } from './helpers';

/** A server with a `count` stream whose produced items are counted here. */
async function countingServer(t: ExecutionContext, size = 16): Promise<{ server: IpcServer; socketPath: string; produced: () => number }> {
  const { server, socketPath } = await startServer(t);
  let produced = 0;
  server.handleStream('count', async function* (p: { n: number }) {
    for (let i = 0; i < p.n; i++) {
      produced++;
      yield size === 0 ? { i } : Buffer.alloc(size, i & 255);
    }
  });
  return { server, socketPath, produced: () => produced };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('raw: no chunk before credit; then exactly the granted chunks; the byte window stops a stream too', async (t) => {
  const { socketPath } = await countingServer(t, 100);
  const raw = await rawSession(t, socketPath);
  await raw.send(encodeFrame(FrameKind.StreamOpen, 1, 'count', { n: 1000 }));
  // A request on the same session goes through while stream 1 has no window.
  await raw.send(encodeFrame(FrameKind.Request, 2, 'echo', 'meanwhile'));
  t.is(decodePayload(await raw.frameFor(2, 'echo reply')), 'meanwhile');
  await sleep(100);
  t.is(raw.frames().filter((f) => f.id === 1).length, 0, 'window 0: nothing sent');

  await raw.send(encodeCredit(1, 3, 1 << 20));
  await raw.frameFor(1, 'third chunk', 2);
  await sleep(100);
  t.is(raw.frames().filter((f) => f.id === 1).length, 3, 'exactly 3 chunks for 3 credits');

  // More chunks only: 2 more.
  await raw.send(encodeCredit(1, 2, 0));
  await raw.frameFor(1, 'fifth chunk', 4);
  await sleep(100);
  t.is(raw.frames().filter((f) => f.id === 1).length, 5);
  for (const f of raw.frames().filter((x) => x.id === 1)) t.is(f.kind, FrameKind.StreamChunk);

  // Another stream with plenty of chunks but 150 bytes: the first 100-byte chunk leaves 50,
  // the second takes it to -50 (a window may be overrun by at most one chunk), then it waits.
  await raw.send(encodeFrame(FrameKind.StreamOpen, 3, 'count', { n: 1000 }));
  await raw.send(encodeCredit(3, 100, 150));
  await raw.frameFor(3, 'second chunk of stream 3', 1);
  await sleep(100);
  t.is(raw.frames().filter((f) => f.id === 3).length, 2, 'the byte window holds the stream');

  // CANCEL ends it with a terminal ERROR CANCELLED even while it waits for credit.
  await raw.send(encodeFrame(FrameKind.Cancel, 1, ''));
  const end = await raw.frameFor(1, 'terminal frame', 5);
  t.is(end.kind, FrameKind.Error);
  t.is((decodePayload(end) as { code: string }).code, 'CANCELLED');
});

test('raw: credit sums are clamped to 2^31, never wrap; STREAM_END is not held by the window', async (t) => {
  const { socketPath } = await countingServer(t, 8);
  const raw = await rawSession(t, socketPath);
  await raw.send(encodeFrame(FrameKind.StreamOpen, 7, 'count', { n: 4 }));
  for (let i = 0; i < 3; i++) await raw.send(encodeCredit(7, 0xffffffff, 0xffffffff));
  const end = await raw.frameFor(7, 'stream end', 4);
  t.is(end.kind, FrameKind.StreamEnd);
  // A stream of 0 items ends with no credit at all.
  await raw.send(encodeFrame(FrameKind.StreamOpen, 8, 'count', { n: 0 }));
  t.is((await raw.frameFor(8, 'end of an empty stream')).kind, FrameKind.StreamEnd);
});

test('a consumer that does not read stalls only its own stream: the producer stops at the window, other calls and streams go on', async (t) => {
  const { socketPath, produced } = await countingServer(t);
  const client = await connect(t, socketPath, { streamWindow: { chunks: 8 } });
  const it = client.stream<Buffer>('count', { n: 100_000 })[Symbol.asyncIterator]();
  t.is((await it.next()).done, false);
  await waitFor(() => produced() >= 9, 'the producer to fill the window');
  await sleep(200);
  // 8 granted + the one `yield` that is waiting for credit.
  t.true(produced() <= 10, `produced ${produced()} with a window of 8`);
  // Others on the same connection are not held up.
  t.is(await client.request('echo', 'not blocked'), 'not blocked');
  const other: number[] = [];
  for await (const c of client.stream<{ i: number }>('ticker', { tag: 'x', count: 50 })) other.push(c.i);
  t.is(other.length, 50);
  // Reading resumes the producer; breaking out cancels it.
  let got = 1;
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    if (++got === 500) break;
  }
  await it.return?.();
  t.is(got, 500);
  const at = produced();
  await sleep(100);
  t.true(produced() - at <= 10, 'after return() the producer stops');
});

test('the client grants as its consumer reads: a slow consumer of 2000 chunks gets them all, in order, through a window of 4', async (t) => {
  const { socketPath, produced } = await countingServer(t, 0);
  const client = await connect(t, socketPath);
  let i = 0;
  let maxAhead = 0;
  for await (const c of client.stream<{ i: number }>('count', { n: 2000 }, { window: { chunks: 4 } })) {
    t.is(c.i, i++);
    maxAhead = Math.max(maxAhead, produced() - i);
    if (i % 500 === 0) await sleep(20);
  }
  t.is(i, 2000);
  // The producer was never more than the window (+1 waiting in `yield`) ahead of the reader.
  t.true(maxAhead <= 5, `producer ran ${maxAhead} ahead with a window of 4`);
});

test('per-call windows override the client default, in bytes too', async (t) => {
  const { socketPath, produced } = await countingServer(t, 1000);
  const client = await connect(t, socketPath, { streamWindow: { chunks: 1000, bytes: 1 << 20 } });
  const it = client.stream<Buffer>('count', { n: 1000 }, { window: { bytes: 3000 } })[Symbol.asyncIterator]();
  await it.next();
  await sleep(150);
  // 3000 bytes of window at 1000 bytes a chunk: 3 chunks (+1 in yield), not 1000.
  t.true(produced() <= 5, `produced ${produced()}`);
  await it.return?.();
});

test('interleaved streams with small windows do not mix and all finish', async (t) => {
  const { socketPath } = await startServer(t);
  const client = await connect(t, socketPath, { streamWindow: { chunks: 2, bytes: 64 } });
  const run = async (tag: string): Promise<number[]> => {
    const got: number[] = [];
    for await (const c of client.stream<{ tag: string; i: number }>('ticker', { tag, count: 300 })) {
      t.is(c.tag, tag);
      got.push(c.i);
    }
    return got;
  };
  const results = await within(Promise.all(['a', 'b', 'c', 'd'].map(run)), 30_000, 'four streams');
  for (const r of results)
    t.deepEqual(
      r,
      Array.from({ length: 300 }, (_, i) => i),
    );
});

test('review R3: a server that sends past the byte window (beyond the one chunk allowed) ends the connection with PROTOCOL_ERROR', async (t) => {
  const { server, socketPath } = await startServer(t);
  let sent = 0;
  server.handleStream('overrun', async function* (_p: unknown, ctx: object) {
    // A hostile server: its credit check counts chunks only and ignores the byte window.
    Object.defineProperty(ctx, 'hasCredit', {
      get(this: { chunks: number }) {
        return this.chunks >= 1;
      },
    });
    for (let i = 0; i < 20; i++) {
      sent++;
      yield Buffer.alloc(1000, i);
    }
  });
  const client = await connect(t, socketPath);
  const disconnected = new Promise<{ code: string; message: string }>((r) => client.once('disconnect', r));
  // 4000 bytes of window at 1000 bytes a chunk: 4 chunks, the 5th arrives with no credit left.
  const got: Buffer[] = [];
  let failure: unknown;
  try {
    for await (const c of client.stream<Buffer>('overrun', null, { window: { chunks: 256, bytes: 4000 } })) got.push(c);
  } catch (e) {
    failure = e;
  }
  const err = await within(disconnected, 5000, 'the client to drop the connection');
  t.is(err.code, 'PROTOCOL_ERROR');
  t.regex(err.message, /4000 bytes/);
  t.is((failure as { code?: string })?.code, 'PROTOCOL_ERROR');
  t.true(got.length <= 4, `accepted ${got.length} chunks of a 4000-byte window (server sent ${sent})`);
});

test('review R3: the client caps incoming messages with its own maxIncomingMessage, not the server max_message', async (t) => {
  const { server, socketPath } = await startServer(t, { maxMessage: 1 << 20 });
  server.handle('big', () => Buffer.alloc(200 << 10, 7));
  const roomy = await connect(t, socketPath);
  t.is(((await roomy.request('big', null)) as Buffer).length, 200 << 10, 'the default cap (64 MiB) takes it');
  const client = await connect(t, socketPath, { maxIncomingMessage: 64 << 10 });
  t.is(client.session!.maxMessage, 1 << 20, "WELCOME's value is still what the server announced");
  const err = (await t.throwsAsync(within(client.request('big', null), 5000, 'the oversized reply to fail'))) as { code?: string };
  t.is(err.code, 'MESSAGE_TOO_LARGE');
  t.is((await roomy.request('echo', 'still here')) as string, 'still here', 'other sessions are unaffected');
});

test('large bytes travel as a frame header plus the caller’s bytes, uncopied: requests, replies and stream chunks from 2 KiB to 3 MiB through a 64 KiB ring, pipelined, arrive intact', async (t) => {
  const { server, socketPath } = await startServer(t, { ringCapacity: 64 << 10 });
  const pattern = (n: number, seed: number): Buffer => {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 255;
    return b;
  };
  // Replies as bytes of their own (not the received view), so each direction is checked apart.
  server.handle('mirror', (p: Buffer) => Buffer.from(p).reverse());
  server.handleStream('pieces', async function* (p: { sizes: number[] }) {
    for (let i = 0; i < p.sizes.length; i++) yield pattern(p.sizes[i], i);
  });
  const client = await connect(t, socketPath);
  const sizes = [2047, 2048, 4096, 16 << 10, (16 << 10) + 1, 64 << 10, 200 << 10, 3 << 20];
  const replies = await within(
    Promise.all(sizes.map((n, i) => client.request<Buffer>('mirror', pattern(n, i)))),
    20_000,
    'the pipelined requests',
  );
  replies.forEach((r, i) => t.true(r.equals(pattern(sizes[i], i).reverse()), `request ${i} of ${sizes[i]} bytes`));
  const got: Buffer[] = [];
  for await (const c of client.stream<Buffer>('pieces', { sizes })) got.push(c);
  t.is(got.length, sizes.length);
  got.forEach((c, i) => t.true(c.equals(pattern(sizes[i], i)), `chunk ${i} of ${sizes[i]} bytes`));
});

test('borrow: a handler lent its bytes in place gets them intact (in place and reassembled), and echoing the loan back is copied safely even when replies queue', async (t) => {
  const { server, socketPath } = await startServer(t, { ringCapacity: 64 << 10 });
  const seen: boolean[] = [];
  server.handle(
    'lent',
    (p: Buffer) => {
      seen.push(Buffer.isBuffer(p));
      // The loan itself as the reply: it must be copied before the ring memory is reused.
      return p;
    },
    { borrow: true },
  );
  t.throws(() => server.handleStream('s', async function* () {}, { borrow: true }), { message: /cannot borrow/ });
  t.throws(() => server.handle('x', () => null, { borrow: 'yes' as unknown as boolean }), { message: /borrow must be a boolean/ });
  const client = await connect(t, socketPath);
  const pattern = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 255));
  // Small, a record's worth, fragmented (> 16 KiB in a 64 KiB ring) and several rings' worth,
  // 40 at once so that replies wait behind a full ring.
  const sizes = Array.from({ length: 40 }, (_, i) => [5, 3000, 20_000, 150_000][i % 4]);
  const replies = await within(
    Promise.all(sizes.map((n, i) => client.request<Buffer>('lent', pattern(n, i)))),
    20_000,
    'the borrowed echoes',
  );
  replies.forEach((r, i) => t.true(r.equals(pattern(sizes[i], i)), `reply ${i} of ${sizes[i]} bytes`));
  t.true(seen.every(Boolean), 'the loan is a Buffer');
  t.deepEqual(await client.request('lent', { json: true }), { json: true }, 'JSON payloads are decoded as usual');
});

test('borrow: an async handler that returns its borrowed payload gets HANDLER_ERROR, never stale bytes', async (t) => {
  const { server, socketPath } = await startServer(t, { ringCapacity: 64 << 10 });
  server.handle(
    'late',
    async (p: Buffer) => {
      await new Promise((r) => setImmediate(r));
      return p;
    },
    { borrow: true },
  );
  server.handle(
    'copied',
    async (p: Buffer) => {
      const mine = Buffer.from(p);
      await new Promise((r) => setImmediate(r));
      return mine;
    },
    { borrow: true },
  );
  const client = await connect(t, socketPath);
  const err = (await t.throwsAsync(client.request('late', Buffer.alloc(3000, 5)))) as { code?: string; message?: string };
  t.is(err.code, 'HANDLER_ERROR');
  t.regex(err.message ?? '', /borrowed payload/);
  const ok = await client.request<Buffer>('copied', Buffer.alloc(3000, 6));
  t.true(ok.equals(Buffer.alloc(3000, 6)), 'a copy taken before the await is fine');
});
