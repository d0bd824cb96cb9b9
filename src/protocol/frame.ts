/**
 * Data frames: what travels through the rings once a session is open. One ring message is one
 * frame. Layout (little-endian), specified in `docs/PROTOCOL.md`:
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0 | 1 | kind ({@link FrameKind}) |
 * | 1 | 1 | flags (bit 0: payload is UTF-8 JSON) |
 * | 2 | 2 | method length *m* (REQUEST and STREAM_OPEN; else 0) |
 * | 4 | 4 | id: the client's request or stream id, never 0 |
 * | 8 | *m* | method, UTF-8 |
 * | 8+*m* | rest | payload |
 * @packageDocumentation
 */
import { IpcError } from '../errors';
import { TRANSIENT } from '../util/transient';

/** Frame kinds. */
export enum FrameKind {
  /** client → server: call `method` once. */
  Request = 1,
  /** server → client: the result of request `id`. */
  Response = 2,
  /** server → client: request or stream `id` failed; payload is JSON `{code, message, retryable, details?}`. */
  Error = 3,
  /** client → server: start streaming `method`. */
  StreamOpen = 4,
  /** server → client: one item of stream `id`. */
  StreamChunk = 5,
  /** server → client: stream `id` finished. */
  StreamEnd = 6,
  /** client → server: abandon request or stream `id`. */
  Cancel = 7,
  /** client → server: more window for stream `id`; payload `u32 chunks, u32 bytes` (increments). */
  StreamCredit = 8,
}

/** Kinds only a client sends (a server receiving anything else ends the session). */
export function isClientKind(kind: FrameKind): boolean {
  return kind === FrameKind.Request || kind === FrameKind.StreamOpen || kind === FrameKind.Cancel || kind === FrameKind.StreamCredit;
}

/** Payload size of a STREAM_CREDIT frame. */
export const CREDIT_PAYLOAD = 8;

/** Flag: the payload is UTF-8 JSON rather than opaque bytes. */
export const FLAG_JSON = 1;
/** Size of the fixed header. */
export const FRAME_HEADER = 8;
/** Longest method name. */
export const MAX_METHOD = 255;

/** A decoded frame. `payload` is a view into the input: copy it to keep it. */
export interface Frame {
  kind: FrameKind;
  flags: number;
  id: number;
  method: string;
  payload: Uint8Array;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * A payload as the API takes it: bytes as they are, anything else as JSON.
 * @category IPC
 */
export type Payload = Uint8Array | unknown;

/** Decodes a payload: JSON when flagged (parsed straight from the view), else an owned copy. */
export function decodePayload(frame: Frame): unknown {
  if (frame.flags & FLAG_JSON) {
    try {
      return JSON.parse(decoder.decode(frame.payload));
    } catch (e) {
      // Short: the parser's message names the position, which is all a caller can act on.
      throw new IpcError('BAD_PAYLOAD', `payload is not valid JSON: ${String((e as Error).message).slice(0, 200)}`, { cause: e });
    }
  }
  return Buffer.from(frame.payload);
}

/**
 * The UTF-8 bytes of a method name, checked: 1 to 255 bytes. Throws INVALID_ARGUMENT (a
 * caller's mistake, found before anything is sent).
 */
export function checkMethod(method: unknown): void {
  if (typeof method !== 'string' || method.length === 0) {
    throw new IpcError('INVALID_ARGUMENT', `method must be a non-empty string, got ${typeof method === 'string' ? '""' : typeof method}`);
  }
  methodToBytes(method);
}

// Method names repeat, so their UTF-8 bytes are computed once.
const methodBytes = new Map<string, Buffer>();

function methodToBytes(method: string): Buffer {
  let m = methodBytes.get(method);
  if (!m) {
    m = Buffer.from(method, 'utf8');
    if (m.length > MAX_METHOD)
      throw new IpcError('INVALID_ARGUMENT', `method name of ${m.length} bytes is longer than ${MAX_METHOD} bytes`);
    if (methodBytes.size < 4096) methodBytes.set(method, m);
  }
  return m;
}

/**
 * Encodes a frame into one freshly allocated buffer the caller owns. JSON is written straight
 * into it (one allocation per frame; encoding to an intermediate Uint8Array first showed in
 * profiles). `undefined` (and anything else JSON has no text for, such as a function) is sent
 * as JSON `null`. A payload JSON cannot encode (a BigInt, a cycle) throws INVALID_ARGUMENT.
 */
export function encodeFrame(kind: FrameKind, id: number, method: string, payload?: Payload): Buffer {
  return encode(kind, id, method, payload, false);
}

/**
 * {@link encodeFrame} into a buffer reused by every call: the result is valid only until the
 * next `encodeTransient`, so the caller must hand it to `Channel.trySend` (which copies it into
 * the ring) at once, and copy it (`Buffer.from`) for anything that keeps it, such as a queued
 * `send`. Frames over {@link TRANSIENT_MAX} bytes get their own buffer. Saves an allocation
 * (and for JSON a second UTF-8 pass to size it) per frame on the request path.
 */
export function encodeTransient(kind: FrameKind, id: number, method: string, payload?: Payload): Buffer {
  return encode(kind, id, method, payload, true);
}

/**
 * Payloads of at least this many bytes are not copied into their frame: the frame's header
 * ({@link encodeHead}) and the caller's bytes go to `Channel.sendParts` as two parts, each
 * copied once, straight into the ring. Below it one copy into the reused frame buffer costs
 * less than handling two parts.
 */
export const GATHER_MIN = 2048;

/** A frame ready to send, from {@link encodeParts}. */
export interface FrameParts {
  /** The whole frame, or only its header when `body` is set; in the reused buffer of {@link encodeTransient}. */
  head: Buffer;
  /** A bytes payload of {@link GATHER_MIN} or more, sent as the frame's second part, uncopied; else null. */
  body: Uint8Array | null;
}

const parts: FrameParts = { head: Buffer.alloc(0), body: null };

/**
 * Encodes a frame for `Channel.trySend(head, body)` / `sendParts`: one transient buffer, or for
 * large bytes a transient header and the payload itself (see {@link GATHER_MIN}). The one place
 * that decides. The result object is reused by the next call (read both fields at once), and
 * `head` follows the rules of {@link encodeTransient}.
 */
export function encodeParts(kind: FrameKind, id: number, method: string, payload?: Payload): FrameParts {
  if (payload instanceof Uint8Array && payload.length >= GATHER_MIN) {
    parts.head = encodeHead(kind, id, method);
    parts.body = payload;
  } else {
    parts.head = encodeTransient(kind, id, method, payload);
    parts.body = null;
  }
  return parts;
}

export { partsLength } from '../util/parts';

/** The header of a frame whose payload, bytes, goes as a second part, in the reused buffer. */
function encodeHead(kind: FrameKind, id: number, method: string): Buffer {
  const m = method ? methodToBytes(method) : EMPTY_BUF;
  return writeHeader(frameBuffer(FRAME_HEADER + m.length, true), kind, 0, id, m);
}

/** Writes the fixed header and the method name at the start of `out` (see the module comment); returns `out`. */
function writeHeader(out: Buffer, kind: FrameKind, flags: number, id: number, method: Buffer): Buffer {
  out[0] = kind;
  out[1] = flags;
  out[2] = method.length;
  out[3] = 0;
  out.writeUInt32LE(id >>> 0, 4);
  if (method.length) out.set(method, FRAME_HEADER);
  return out;
}

/** Largest frame {@link encodeTransient} writes into its reused buffer. */
export const TRANSIENT_MAX = 64 << 10;
let scratch = transientBuffer(4096);

/** A buffer of its own, recorded as transient: `Channel.send` copies a frame in it that must wait. */
function transientBuffer(size: number): Buffer {
  const b = Buffer.allocUnsafeSlow(size);
  TRANSIENT.add(b.buffer);
  return b;
}

/** The last view of `scratch` handed out: frames of one shape repeat, and a view is an allocation. */
let scratchView = scratch.subarray(0, 0);

/** A buffer of `size` bytes: the reused one when `transient` (grown as needed), else a new one. */
function frameBuffer(size: number, transient: boolean): Buffer {
  if (!transient || size > TRANSIENT_MAX) return Buffer.allocUnsafe(size);
  if (scratchView.length === size && scratchView.buffer === scratch.buffer) return scratchView;
  if (scratch.length < size) scratch = transientBuffer(Math.min(TRANSIENT_MAX, Math.max(size, 2 * scratch.length)));
  return (scratchView = scratch.subarray(0, size));
}

function encode(kind: FrameKind, id: number, method: string, payload: Payload, transient: boolean): Buffer {
  // STREAM_END and CANCEL carry nothing; elsewhere a missing value is JSON null.
  if (payload === undefined && (kind === FrameKind.StreamEnd || kind === FrameKind.Cancel)) payload = EMPTY;
  const m = method ? methodToBytes(method) : EMPTY_BUF;
  const head = FRAME_HEADER + m.length;
  let out: Buffer;
  let json = false;
  if (payload instanceof Uint8Array) {
    out = frameBuffer(head + payload.length, transient);
    out.set(payload, head);
  } else {
    json = true;
    let text: string | undefined;
    try {
      text = JSON.stringify(payload);
    } catch (e) {
      throw new IpcError('INVALID_ARGUMENT', `payload cannot be encoded as JSON: ${(e as Error).message}`, { cause: e });
    }
    if (text === undefined) text = 'null';
    // A UTF-16 unit is at most 3 UTF-8 bytes: when that bound fits the reused buffer, the text
    // is written once, without measuring it first.
    if (transient && head + 3 * text.length <= TRANSIENT_MAX) {
      if (scratch.length < head + 3 * text.length) frameBuffer(head + 3 * text.length, true);
      out = frameBuffer(head + scratch.write(text, head, 'utf8'), true);
    } else {
      out = frameBuffer(head + Buffer.byteLength(text), transient);
      out.write(text, head, 'utf8');
    }
  }
  return writeHeader(out, kind, json ? FLAG_JSON : 0, id, m);
}

const EMPTY = new Uint8Array(0);
const EMPTY_BUF = Buffer.alloc(0);

/** Encodes a STREAM_CREDIT frame: `chunks` and `bytes` more for stream `id`. */
export function encodeCredit(id: number, chunks: number, bytes: number): Buffer {
  const out = writeHeader(Buffer.allocUnsafe(FRAME_HEADER + CREDIT_PAYLOAD), FrameKind.StreamCredit, 0, id, EMPTY_BUF);
  out.writeUInt32LE(chunks >>> 0, 8);
  out.writeUInt32LE(bytes >>> 0, 12);
  return out;
}

/** The `(chunks, bytes)` of a STREAM_CREDIT frame's payload (8 bytes, checked by the caller). */
export function decodeCredit(payload: Uint8Array): { chunks: number; bytes: number } {
  const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return { chunks: v.getUint32(0, true), bytes: v.getUint32(4, true) };
}

// The last method name decoded, with its bytes: requests in a burst mostly name one method, and
// comparing a few bytes is cheaper than a TextDecoder call per frame.
let lastMethod = '';
let lastMethodBytes: Uint8Array = new Uint8Array(0);

function decodeMethod(buf: Uint8Array, len: number): string {
  const last = lastMethodBytes;
  if (last.length === len) {
    let i = 0;
    while (i < len && buf[FRAME_HEADER + i] === last[i]) i++;
    if (i === len) return lastMethod;
  }
  const bytes = buf.slice(FRAME_HEADER, FRAME_HEADER + len);
  let method: string;
  try {
    method = decoder.decode(bytes);
  } catch {
    throw new IpcError('PROTOCOL_ERROR', 'method name is not UTF-8');
  }
  lastMethod = method;
  lastMethodBytes = bytes;
  return method;
}

/**
 * Decodes a frame (a view into `buf`); throws PROTOCOL_ERROR on anything malformed: shorter
 * than the header, unknown kind, reserved flag bits, id 0 (except on an ERROR, where id 0 is
 * the connection-level error), a method on a kind without one or none on a kind with one, a
 * method past the end, longer than 255 bytes, or not UTF-8. Which kinds a side may receive is
 * the caller's check ({@link isClientKind}).
 */
export function decodeFrame(buf: Uint8Array): Frame {
  if (buf.length < FRAME_HEADER) throw new IpcError('PROTOCOL_ERROR', `frame of ${buf.length} bytes is shorter than its header`);
  const kind = buf[0] as FrameKind;
  const flags = buf[1];
  const methodLen = buf[2] | (buf[3] << 8);
  const id = (buf[4] | (buf[5] << 8) | (buf[6] << 16) | (buf[7] << 24)) >>> 0;
  if (kind < FrameKind.Request || kind > FrameKind.StreamCredit) throw new IpcError('PROTOCOL_ERROR', `unknown frame kind ${kind}`);
  if (flags & ~FLAG_JSON) throw new IpcError('PROTOCOL_ERROR', `reserved frame flag bits set (${flags})`);
  if (id === 0 && kind !== FrameKind.Error) throw new IpcError('PROTOCOL_ERROR', 'frame id 0 is reserved');
  const hasMethod = kind === FrameKind.Request || kind === FrameKind.StreamOpen;
  if (hasMethod ? methodLen === 0 : methodLen !== 0)
    throw new IpcError('PROTOCOL_ERROR', `bad method length ${methodLen} for frame kind ${kind}`);
  if (methodLen > MAX_METHOD) throw new IpcError('PROTOCOL_ERROR', `method length ${methodLen} is over ${MAX_METHOD}`);
  if (FRAME_HEADER + methodLen > buf.length) throw new IpcError('PROTOCOL_ERROR', 'method runs past the end of the frame');
  let method = '';
  if (methodLen > 0) method = decodeMethod(buf, methodLen);
  return { kind, flags, id, method, payload: buf.subarray(FRAME_HEADER + methodLen) };
}
