/**
 * Requests and streams between a client here and a server in a child process: many calls at
 * once on one connection, interleaved streams, cancellation reaching the handler's signal,
 * timeouts, and every error path arriving as a typed IpcError.
 */
import test from 'ava';
import { decodePayload, encodeFrame, FLAG_JSON, FrameKind } from '../../src/protocol/frame';
import {
  connect,
  ipcError,
  type LineChild,
  rawFrame,
  rawSession,
  Scope,
  serverState,
  sockPath,
  spawnServer,
  waitFor,
  within,
} from './helpers';

let server: LineChild;
let socketPath: string;
let tagSeq = 0;
const uniqueTag = (): string => `t${process.pid}-${++tagSeq}`;

const scope = new Scope();
test.before(async () => {
  socketPath = sockPath(scope);
  server = await spawnServer(scope, { socketPath, maxStreams: 64 });
});
test.after.always(() => scope.run());

/** The server child's probe event for `tag`. */
function probe(event: string, tag: unknown, ms = 10_000): Promise<Record<string, unknown>> {
  return server.next((m) => m.type === 'probe' && m.event === event && m.tag === tag, `${event} of ${String(tag)}`, ms);
}

test('200 concurrent requests on one connection, mixed JSON and bytes, each gets its own answer', async (t) => {
  const client = await connect(t, socketPath);
  const payloads: unknown[] = Array.from({ length: 200 }, (_, i) => {
    switch (i % 4) {
      case 0:
        return { i, text: `request ${i}`, nested: { list: [i, i * 2, String(i)] } };
      case 1:
        return Buffer.from(Array.from({ length: (i * 37) % 3000 }, (_, j) => (i + j) & 255));
      case 2:
        return `string ${i} ${'é'.repeat(i % 13)}`;
      default:
        return new Uint8Array([i & 255, (i >> 8) & 255, 0xfe]);
    }
  });
  const results = await within(Promise.all(payloads.map((p) => client.request('echo', p))), 30_000, '200 requests');
  for (let i = 0; i < payloads.length; i++) {
    const p = payloads[i];
    if (p instanceof Uint8Array) {
      t.true(Buffer.isBuffer(results[i]), `reply ${i} is bytes`);
      t.true(Buffer.from(p).equals(results[i] as Buffer), `reply ${i} carries request ${i}'s bytes`);
    } else {
      t.deepEqual(results[i], p, `reply ${i}`);
    }
  }
  // And again with the replies in an order unlike the requests': varied handler delays.
  const delayed = await Promise.all(Array.from({ length: 50 }, (_, i) => client.request('slow', { ms: (i * 7) % 23, value: { i } })));
  t.deepEqual(
    delayed,
    Array.from({ length: 50 }, (_, i) => ({ i })),
  );
});

test('interleaved streams on one connection: each stream in order, none mixed', async (t) => {
  const client = await connect(t, socketPath);
  const arrivals: number[] = [];
  const count = 40;
  const read = async (k: number): Promise<unknown[]> => {
    const got: unknown[] = [];
    const bytes = k % 2 === 1;
    for await (const c of client.stream('ticker', { tag: k, count, intervalMs: 1, bytes })) {
      arrivals.push(k);
      got.push(bytes ? Array.from(c as Buffer) : c);
    }
    return got;
  };
  const streams = await within(Promise.all([0, 1, 2, 3, 4, 5].map(read)), 30_000, 'streams');
  streams.forEach((got, k) => {
    const want = Array.from({ length: count }, (_, i) => (k % 2 === 1 ? [k, i & 255, (i >> 8) & 255] : { tag: k, i }));
    t.deepEqual(got, want, `stream ${k}`);
  });
  // They really were interleaved: the arrival order switches between streams many times.
  let switches = 0;
  for (let i = 1; i < arrivals.length; i++) if (arrivals[i] !== arrivals[i - 1]) switches++;
  t.true(switches > 10, `only ${switches} switches between streams`);
  // Requests still go through while streams run.
  const during = client.stream('ticker', { tag: 'bg', count: 20, intervalMs: 2 });
  const [reqs] = await Promise.all([
    Promise.all(Array.from({ length: 20 }, (_, i) => client.request('echo', { i }))),
    (async () => {
      for await (const _ of during);
    })(),
  ]);
  t.deepEqual(
    reqs,
    Array.from({ length: 20 }, (_, i) => ({ i })),
  );
});

test('breaking out of for-await cancels the stream on the server (handler signal aborts)', async (t) => {
  const client = await connect(t, socketPath);
  const tag = uniqueTag();
  let n = 0;
  for await (const c of client.stream<{ i: number }>('ticker', { tag, intervalMs: 2 })) {
    t.is(c.i, n);
    if (++n === 3) break;
  }
  const ev = await probe('aborted', tag);
  t.is(ev.reason, 'CANCELLED');
  // The connection carries on.
  t.is(await client.request('echo', 'after'), 'after');
});

test('aborting a stream through its AbortSignal cancels it on the server', async (t) => {
  const client = await connect(t, socketPath);
  const tag = uniqueTag();
  const ac = new AbortController();
  let n = 0;
  const err = await ipcError(
    t,
    (async () => {
      for await (const _ of client.stream('ticker', { tag, intervalMs: 2 }, { signal: ac.signal })) if (++n === 2) ac.abort();
    })(),
  );
  t.is(err.code, 'CANCELLED');
  t.is((await probe('aborted', tag)).reason, 'CANCELLED');
});

test('aborting a request through its AbortSignal cancels the handler', async (t) => {
  const client = await connect(t, socketPath);
  const tag = uniqueTag();
  const ac = new AbortController();
  const call = client.request('hang', { tag }, { signal: ac.signal });
  await probe('started', tag);
  ac.abort();
  const err = await ipcError(t, call);
  t.is(err.code, 'CANCELLED');
  t.is((await probe('aborted', tag)).reason, 'CANCELLED');
  // An already aborted signal fails the call the same way, without reaching the server.
  t.is((await ipcError(t, client.request('echo', 1, { signal: AbortSignal.abort() }))).code, 'CANCELLED');
  const early = ipcError(
    t,
    (async () => {
      for await (const _ of client.stream('ticker', { tag }, { signal: AbortSignal.abort() }));
    })(),
  );
  t.is((await early).code, 'CANCELLED');
});

test('a request timeout fails the call with TIMEOUT and cancels the handler', async (t) => {
  const client = await connect(t, socketPath);
  const tag = uniqueTag();
  const err = await ipcError(t, client.request('hang', { tag }, { timeout: 100 }));
  t.is(err.code, 'TIMEOUT');
  t.true(err.retryable);
  t.is((await probe('aborted', tag)).reason, 'CANCELLED');
  // A call that finishes in time is not affected by its timeout.
  t.is(await client.request('slow', { ms: 1, value: 'ok' }, { timeout: 10_000 }), 'ok');
});

test('errors reach the client typed: unknown method, wrong call kind, thrown, typed, foreign, unserializable', async (t) => {
  const client = await connect(t, socketPath);
  const expect = async (p: Promise<unknown>, code: string, retryable: boolean, message: RegExp): Promise<void> => {
    const err = await ipcError(t, p);
    t.is(err.code, code, err.message);
    t.is(err.retryable, retryable, code);
    t.regex(err.message, message);
  };
  await expect(client.request('no.such.method', {}), 'UNKNOWN_METHOD', false, /no\.such\.method/);
  await expect(client.request('ticker', {}), 'UNKNOWN_METHOD', false, /stream/);
  await expect(
    (async () => {
      for await (const _ of client.stream('echo', {}));
    })(),
    'UNKNOWN_METHOD',
    false,
    /request/,
  );
  await expect(client.request('boom'), 'HANDLER_ERROR', false, /boom: the handler failed/);
  await expect(client.request('typed', { name: 42 }), 'BAD_PAYLOAD', false, /name must be a string/);
  await expect(client.request('foreign'), 'RATE_LIMITED', true, /rate limited/);
  // No duck typing: only IpcError (and subclasses) keep their code.
  await expect(client.request('ducktyped'), 'HANDLER_ERROR', false, /looks typed/);
  await expect(client.request('unserializable'), 'HANDLER_ERROR', false, /BigInt/);
  const chunks: unknown[] = [];
  await expect(
    (async () => {
      for await (const c of client.stream('streamBoom')) chunks.push(c);
    })(),
    'HANDLER_ERROR',
    false,
    /stream broke/,
  );
  t.deepEqual(chunks, [{ i: 0 }]);
  t.deepEqual(await client.request('typed', { name: 'x' }), { hello: 'x' });
});

test('a payload flagged JSON that does not parse comes back as a BAD_PAYLOAD error frame', async (t) => {
  const raw = await rawSession(t, socketPath);
  await raw.channel.send(rawFrame(FrameKind.Request, FLAG_JSON, 11, 'echo', Buffer.from('{"unterminated": ')));
  const f = await raw.frameFor(11, 'error frame');
  t.is(f.kind, FrameKind.Error);
  const e = decodePayload(f) as { code: string; message: string; retryable: boolean };
  t.is(e.code, 'BAD_PAYLOAD');
  t.false(e.retryable);
  t.regex(e.message, /JSON/);
  // Same for a stream, and invalid UTF-8 in a JSON payload.
  await raw.channel.send(rawFrame(FrameKind.StreamOpen, FLAG_JSON, 12, 'ticker', Buffer.from([0x7b, 0xff, 0x7d])));
  t.is((decodePayload(await raw.frameFor(12, 'stream error')) as { code: string }).code, 'BAD_PAYLOAD');
  // The session is still good.
  await raw.channel.send(encodeFrame(FrameKind.Request, 13, 'echo', { fine: true }));
  const ok = await raw.frameFor(13, 'response');
  t.is(ok.kind, FrameKind.Response);
  t.deepEqual(decodePayload(ok), { fine: true });
});

test('an id reused while its call is in flight is a protocol error: id-0 ERROR, then the session ends', async (t) => {
  const raw = await rawSession(t, socketPath);
  const tag = uniqueTag();
  await raw.channel.send(encodeFrame(FrameKind.Request, 21, 'slow', { ms: 60_000, value: 'first', tag }));
  await probe('started', tag);
  await raw.channel.send(encodeFrame(FrameKind.Request, 21, 'echo', 'second'));
  const err = await raw.frameFor(0, 'connection-level error');
  t.is(err.kind, FrameKind.Error);
  const body = decodePayload(err) as { code: string; message: string };
  t.is(body.code, 'PROTOCOL_ERROR');
  t.regex(body.message, /id 21 is already in use/);
  await waitFor(() => raw.conn.closed, 'the server to hang up');
  // The first call's handler is aborted; no answer for id 21 ever came.
  t.is((await probe('aborted', tag)).reason, 'CONNECTION_LOST');
  t.is(raw.frames().filter((f) => f.id === 21).length, 0);
});

test('a malformed data frame ends that session (the client sees EOF), not the server', async (t) => {
  const raw = await rawSession(t, socketPath);
  await raw.channel.send(Buffer.from([99, 0, 0, 0, 1, 0, 0, 0]));
  await waitFor(() => raw.conn.closed, 'the server to hang up (control socket EOF)');
  const other = await connect(t, socketPath);
  t.is(await other.request('echo', 'fine'), 'fine');
  await waitFor(async () => (await serverState(server)).connections >= 1, 'server state');
});
