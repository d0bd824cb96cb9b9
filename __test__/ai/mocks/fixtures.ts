/**
 * Loading the provider stream fixtures of `__test__/ai/fixtures/` (sources in its README) as
 * the events a mock writes, byte for byte: SSE files split after each blank line (LF or CRLF
 * framing kept as written), NDJSON after each line, JSON error bodies whole, and Bedrock's
 * `*.eventstream.json` (one `{headers, body}` per message) encoded as binary
 * `application/vnd.amazon.eventstream` frames (prelude, headers, payload, CRCs) by
 * `@smithy/eventstream-codec`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';

/** Where the fixtures live. */
export const FIXTURES_DIR = join(__dirname, '..', 'fixtures');

/** A fixture as the mock writes it. */
export interface Fixture {
  contentType: string;
  /** The bytes of each event, in order; concatenated they are the whole body. */
  events: Buffer[];
}

const cache = new Map<string, Fixture>();

/** Split `raw` after every occurrence of `sep`, keeping it with the event before. */
function splitAfter(raw: Buffer, sep: string): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = raw.indexOf(sep, start); i >= 0; i = raw.indexOf(sep, start)) {
    out.push(raw.subarray(start, i + sep.length));
    start = i + sep.length;
  }
  if (start < raw.length) out.push(raw.subarray(start));
  return out;
}

/** Encode one event-stream message the way Bedrock frames it. */
export function encodeEventStreamMessage(headers: Record<string, string>, body: unknown): Buffer {
  const codec = new EventStreamCodec(toUtf8, fromUtf8);
  const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, { type: 'string' as const, value: v }]));
  return Buffer.from(codec.encode({ headers: h, body: fromUtf8(JSON.stringify(body)) }));
}

/** The fixture at `name` (a path under `__test__/ai/fixtures/`). */
export function loadFixture(name: string): Fixture {
  const known = cache.get(name);
  if (known) return known;
  const raw = readFileSync(join(FIXTURES_DIR, name));
  let fx: Fixture;
  if (name.endsWith('.eventstream.json')) {
    const messages = JSON.parse(raw.toString('utf8')) as Array<{ headers: Record<string, string>; body: unknown }>;
    fx = { contentType: 'application/vnd.amazon.eventstream', events: messages.map((m) => encodeEventStreamMessage(m.headers, m.body)) };
  } else if (name.endsWith('.sse')) {
    const crlf = raw.includes('\r\n\r\n');
    fx = { contentType: 'text/event-stream', events: splitAfter(raw, crlf ? '\r\n\r\n' : '\n\n') };
  } else if (name.endsWith('.ndjson')) {
    fx = { contentType: 'application/x-ndjson', events: splitAfter(raw, '\n') };
  } else {
    fx = { contentType: 'application/json', events: [raw] };
  }
  cache.set(name, fx);
  return fx;
}

/** Index of the first event whose bytes contain `needle` (to cut a stream at a boundary). */
export function eventIndex(name: string, needle: string): number {
  const fx = loadFixture(name);
  const i = fx.events.findIndex((e) => e.includes(needle));
  if (i < 0) throw new Error(`${name}: no event contains ${needle}`);
  return i;
}

/** Number of events of a fixture. */
export function eventCount(name: string): number {
  return loadFixture(name).events.length;
}
