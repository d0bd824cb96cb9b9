/**
 * Shared harness for the mock AI provider servers.
 *
 * Each provider module supplies a {@link WireFormat} (how to check a request and how to
 * write each kind of frame, byte for byte); the harness owns the HTTP server, the
 * per-request script queue, request recording and connection-close observation, so the
 * mocks behave identically apart from their wire format. Recorded/documented provider
 * streams are replayed byte for byte with the `replay` script.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadFixture } from './fixtures';

/** Token counts a mock reports in its terminal frame. */
export interface MockUsage {
  input: number;
  output: number;
}

/**
 * What the mock does with one request. Scripts are consumed in order by
 * {@link MockServer.enqueue}; when the queue is empty {@link MockServer.defaultScript} is used.
 */
export type MockScript =
  /** A normal stream: `chunks` as text deltas, then the provider's proper terminal frames. */
  | {
      kind: 'stream';
      chunks?: string[];
      usage?: MockUsage;
      /** Raw provider finish reason (e.g. `STOP`, `stop`, `end_turn`); provider default if absent. */
      finishReason?: string;
      /** Delay after the headers before the first frame (slow first token). */
      firstDelayMs?: number;
      /** Delay between content frames (slow stream). */
      delayMs?: number;
    }
  /** Benchmark mode: `count` small deltas written as fast as the socket takes them. */
  | { kind: 'flood'; count: number; text?: string; usage?: MockUsage }
  /** An HTTP error response in the provider's error-body format. */
  | {
      kind: 'status';
      status: number;
      message?: string;
      headers?: Record<string, string>;
      /** Gemini only: adds a `google.rpc.RetryInfo` detail with this `retryDelay` (e.g. "1.5s"). */
      retryDelay?: string;
    }
  /** HTTP 200, some deltas, then the provider's in-stream error frame, then the connection ends. */
  | {
      kind: 'mid-error';
      chunks?: string[];
      /** Provider error type/status, e.g. `overloaded_error` (Anthropic), `server_error` (OpenAI). */
      errorType?: string;
      /** Numeric code where the wire format carries one (Gemini `error.code`). */
      code?: number;
      message?: string;
      /** Gemini only: `false` writes the error JSON without `data:` framing. */
      framed?: boolean;
    }
  /**
   * HTTP 200, some deltas, then the connection ends before any terminal frame: by destroying
   * the socket (default), or with `clean: true` by ending the response properly, as a proxy
   * that gave up would.
   */
  | { kind: 'truncate'; chunks?: string[]; clean?: boolean }
  /**
   * HTTP 200 and optional deltas, then silence until the client gives up; with
   * `noHeaders: true` not even the status line is sent.
   */
  | { kind: 'hang'; chunks?: string[]; noHeaders?: boolean }
  /**
   * Replay a fixture of `__test__/ai/fixtures/` byte for byte (see its README for where each
   * came from), event by event. With `status` it is an error body under that HTTP status.
   * `cut` stops after `after` events: with `partial`, half of the next event's bytes follow;
   * `clean` ends the response properly instead of dropping the connection.
   */
  | {
      kind: 'replay';
      fixture: string;
      status?: number;
      headers?: Record<string, string>;
      firstDelayMs?: number;
      /** Delay before every event after the first. */
      delayMs?: number;
      cut?: { after: number; partial?: boolean; clean?: boolean };
    };

/** One request as the mock saw it. */
export interface RecordedRequest {
  method: string;
  /** Path plus query string. */
  url: string;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON body (undefined if it was not JSON). */
  body: any;
  /** The model named by the request (path or body, per provider). */
  model?: string;
  /** Messages normalised to `{ role, content }`, system prompt first. */
  messages: Array<{ role: string; content: string }>;
  /** Everything the mock found wrong with the request; empty for a well-formed one. */
  problems: string[];
  /** The script kind used to answer. */
  script: MockScript['kind'] | 'rejected';
  /** `performance.now()` when the request arrived. */
  at: number;
  /** Resolves when the connection serving this response closes. */
  closed: Promise<{ byClient: boolean }>;
}

/** Result of a wire format's request check. */
export interface RequestCheck {
  model?: string;
  messages: Array<{ role: string; content: string }>;
  problems: string[];
  /** Reply 404 (wrong path or method). */
  notFound?: boolean;
  /** Reply 401 (missing or wrong credentials). */
  unauthorized?: boolean;
}

/** Bytes a mock writes: text (written as UTF-8) or binary (Bedrock's event-stream frames). */
export type Frame = string | Buffer;

/** How a provider speaks on the wire. Every frame returned is written verbatim. */
export interface WireFormat {
  name: string;
  contentType: string;
  check(
    req: { method: string; url: string; headers: http.IncomingHttpHeaders; body: any; raw: string; origin: string },
    apiKey?: string,
  ): RequestCheck | Promise<RequestCheck>;
  /** Frames written before the first delta. */
  open(model: string): Frame[];
  delta(text: string, model: string, index: number): Frame;
  /** Frames written between deltas to keep the connection alive (Anthropic `ping`). */
  keepalive?(): Frame;
  /** Terminal frames: finish reason and usage. */
  close(model: string, usage: MockUsage, finishReason: string | undefined, req: RecordedRequest): Frame[];
  midError(script: Extract<MockScript, { kind: 'mid-error' }>, model: string): Frame;
  /** Error body for an HTTP error; `status` overrides the scripted status where the provider differs (Gemini's bad key is a 400). */
  errorResponse(script: Extract<MockScript, { kind: 'status' }>): { body: string; headers?: Record<string, string>; status?: number };
}

/** Options for {@link startMock}. */
export interface MockOptions {
  /** The key the mock expects; requests without it get 401. Undefined = no auth required. */
  apiKey?: string;
  defaultScript?: MockScript;
}

/** Default reply of every mock: "Hello, world!" in four deltas. */
export const DEFAULT_CHUNKS = ['Hello', ', ', 'world', '!'];
export const DEFAULT_USAGE: MockUsage = { input: 11, output: 4 };

/** A running mock provider. */
export class MockServer {
  readonly requests: RecordedRequest[] = [];
  defaultScript: MockScript;
  private readonly queue: MockScript[] = [];
  private readonly sockets = new Set<import('node:net').Socket>();
  private readonly waiters: Array<() => void> = [];

  constructor(
    readonly format: WireFormat,
    private readonly server: http.Server,
    readonly apiKey: string | undefined,
    defaultScript: MockScript,
  ) {
    this.defaultScript = defaultScript;
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  /** `http://127.0.0.1:PORT` */
  get origin(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** Script the next requests, in order. */
  enqueue(...scripts: MockScript[]): this {
    this.queue.push(...scripts);
    return this;
  }

  /** Resolves once `n` requests have been received in total. */
  async waitForRequests(n: number): Promise<RecordedRequest> {
    while (this.requests.length < n) await new Promise<void>((r) => this.waiters.push(r));
    return this.requests[n - 1];
  }

  /** Close the server and every connection still open. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** @internal */
  nextScript(): MockScript {
    return this.queue.shift() ?? this.defaultScript;
  }

  /** @internal */
  record(r: RecordedRequest): void {
    this.requests.push(r);
    for (const w of this.waiters.splice(0)) w();
  }
}

/** Start a mock for `format` on 127.0.0.1 with an ephemeral port. */
export async function startMock(format: WireFormat, opts: MockOptions = {}): Promise<MockServer> {
  const server = http.createServer();
  const mock = new MockServer(format, server, opts.apiKey, opts.defaultScript ?? { kind: 'stream' });
  server.on('request', (req, res) => {
    handle(mock, req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return mock;
}

async function handle(mock: MockServer, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const at = performance.now();
  let hungUpByUs = false;
  // Registered before anything is written so an early client abort is never missed.
  const closed = new Promise<{ byClient: boolean }>((resolve) =>
    res.on('close', () => resolve({ byClient: !res.writableFinished && !hungUpByUs })),
  );
  const raw = await readBody(req);
  let body: any;
  try {
    body = raw.length ? JSON.parse(raw) : undefined;
  } catch {
    body = undefined;
  }
  const check = await mock.format.check(
    { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, raw, origin: mock.origin },
    mock.apiKey,
  );
  const rejected = check.notFound || check.unauthorized;
  const script = rejected ? undefined : mock.nextScript();
  const rec: RecordedRequest = {
    method: req.method ?? '',
    url: req.url ?? '',
    headers: req.headers,
    body,
    model: check.model,
    messages: check.messages,
    problems: check.problems,
    script: script?.kind ?? 'rejected',
    at,
    closed,
  };
  mock.record(rec);

  if (check.notFound) return sendStatus(mock, res, { kind: 'status', status: 404, message: `no route for ${req.method} ${req.url}` });
  if (check.unauthorized) return sendStatus(mock, res, { kind: 'status', status: 401, message: 'invalid api key' });
  const model = check.model ?? 'unknown';
  let clientGone = false;
  res.on('close', () => (clientGone = true));
  const gone = () => clientGone || res.destroyed;

  switch (script!.kind) {
    case 'status':
      return sendStatus(mock, res, script!);
    case 'stream': {
      const s = script!;
      startStream(mock, res);
      if (s.firstDelayMs) await sleep(s.firstDelayMs, closed);
      if (gone()) return;
      writeAll(res, mock.format.open(model));
      const chunks = s.chunks ?? DEFAULT_CHUNKS;
      for (let i = 0; i < chunks.length; i++) {
        if (i > 0 && s.delayMs) await sleep(s.delayMs, closed);
        if (gone()) return;
        res.write(mock.format.delta(chunks[i], model, i));
        // Interleave keep-alives the way Anthropic does, so clients are seen to ignore them.
        if (mock.format.keepalive && i % 2 === 0) res.write(mock.format.keepalive());
      }
      if (s.delayMs) await sleep(s.delayMs, closed);
      if (gone()) return;
      writeAll(res, mock.format.close(model, s.usage ?? DEFAULT_USAGE, s.finishReason, rec));
      res.end();
      return;
    }
    case 'flood': {
      const s = script!;
      startStream(mock, res);
      const text = s.text ?? 'x';
      let pending: Frame[] = mock.format.open(model);
      let size = 0;
      for (let i = 0; i < s.count; i++) {
        const f = mock.format.delta(text, model, i);
        pending.push(f);
        size += f.length;
        // Batch frames into ~64 KiB writes and respect backpressure: the point is to
        // measure the client, not the mock's write() overhead.
        if (size >= 65536) {
          if (gone()) return;
          if (!res.write(joinFrames(pending))) await new Promise((r) => res.once('drain', r));
          pending = [];
          size = 0;
        }
      }
      if (gone()) return;
      pending.push(...mock.format.close(model, s.usage ?? { input: 1, output: s.count }, undefined, rec));
      res.end(joinFrames(pending));
      return;
    }
    case 'mid-error': {
      const s = script!;
      startStream(mock, res);
      writeAll(res, mock.format.open(model));
      (s.chunks ?? ['Partial']).forEach((c, i) => res.write(mock.format.delta(c, model, i)));
      res.end(mock.format.midError(s, model));
      return;
    }
    case 'truncate': {
      const s = script!;
      startStream(mock, res);
      writeAll(res, mock.format.open(model));
      (s.chunks ?? ['Partial']).forEach((c, i) => res.write(mock.format.delta(c, model, i)));
      if (s.clean) return void res.end();
      // Let the bytes reach the client, then drop the connection without a terminal frame.
      await new Promise<void>((r) => res.write('', () => r()));
      hungUpByUs = true;
      res.destroy();
      return;
    }
    case 'replay': {
      const s = script!;
      const fx = loadFixture(s.fixture);
      if (s.status !== undefined) {
        res.writeHead(s.status, { 'content-type': fx.contentType, ...s.headers });
        return void res.end(Buffer.concat(fx.events));
      }
      res.writeHead(200, { 'content-type': fx.contentType, 'cache-control': 'no-cache', ...s.headers });
      res.flushHeaders();
      if (s.firstDelayMs) await sleep(s.firstDelayMs, closed);
      const last = s.cut ? Math.min(s.cut.after, fx.events.length) : fx.events.length;
      for (let i = 0; i < last; i++) {
        if (i > 0 && s.delayMs) await sleep(s.delayMs, closed);
        if (gone()) return;
        res.write(fx.events[i]);
      }
      if (s.cut) {
        const next = fx.events[last];
        if (s.cut.partial && next) res.write(next.subarray(0, Math.max(1, next.length >> 1)));
        if (s.cut.clean) return void res.end();
        await new Promise<void>((r) => res.write('', () => r()));
        hungUpByUs = true;
        res.destroy();
        return;
      }
      res.end();
      return;
    }
    case 'hang': {
      const s = script!;
      if (s.noHeaders) return void (await closed);
      startStream(mock, res);
      writeAll(res, mock.format.open(model));
      (s.chunks ?? []).forEach((c, i) => res.write(mock.format.delta(c, model, i)));
      await closed;
      return;
    }
  }
}

function startStream(mock: MockServer, res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': mock.format.contentType, 'cache-control': 'no-cache' });
  res.flushHeaders();
}

function sendStatus(mock: MockServer, res: http.ServerResponse, s: Extract<MockScript, { kind: 'status' }>): void {
  const { body, headers, status } = mock.format.errorResponse(s);
  res.writeHead(status ?? s.status, { 'content-type': 'application/json', ...headers, ...s.headers });
  res.end(body);
}

function joinFrames(frames: Frame[]): Frame {
  return frames.every((f) => typeof f === 'string')
    ? frames.join('')
    : Buffer.concat(frames.map((f) => (typeof f === 'string' ? Buffer.from(f) : f)));
}

function writeAll(res: http.ServerResponse, frames: Frame[]): void {
  for (const f of frames) res.write(f);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

/** Sleep that ends early when the connection closes, so no timer outlives a test. */
function sleep(ms: number, closed: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout;
  return Promise.race([new Promise<void>((r) => (timer = setTimeout(r, ms))), closed.then(() => undefined)]).finally(() =>
    clearTimeout(timer),
  );
}

/** Helper for wire formats: text of a message `content` that may be a string or an array of text parts. */
export function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((p: any) => (typeof p?.text === 'string' ? p.text : '')).join('');
  }
  return '';
}

/** Split `url` into path and query parameters. */
export function splitUrl(url: string): { path: string; query: URLSearchParams } {
  const u = new URL(url, 'http://mock');
  return { path: u.pathname, query: u.searchParams };
}
