/**
 * Control frames: the handshake and session signals on the control socket. Each is
 * `u32 length` (of what follows) + `u8 type` + body, little-endian; see `docs/PROTOCOL.md`.
 * @packageDocumentation
 */
import { IpcError } from '../errors';

/** Control frame types. */
export enum ControlType {
  /** client → server: magic, version range, pid, features, name. */
  Hello = 1,
  /** server → client, with the channel's 3 fds: the session's parameters. */
  Welcome = 2,
  /** client → server: the fds are mapped and checked. */
  Ready = 3,
  /** either way: the handshake failed; reason code and text. */
  Reject = 4,
  /** server → client: stop starting new work; the server closes after `deadlineMs`. */
  GoAway = 5,
}

/** `b"LAIC"` as a little-endian u32: the first bytes of every HELLO. */
export const HELLO_MAGIC = 0x4349414c;
/** Lowest protocol version this build speaks. */
export const PROTOCOL_VERSION_MIN = 2;
/** Highest protocol version this build speaks. */
export const PROTOCOL_VERSION_MAX = 2;
/** Largest control frame accepted (a peer sending more is cut off). */
export const MAX_CONTROL_FRAME = 4096;

/** Feature bits exchanged in HELLO/WELCOME (none defined yet; unknown bits are ignored). */
export const FEATURES_NONE = 0;

export { REJECT_NAMES, RejectReason } from './reject';
import { RejectReason } from './reject';

/** A HELLO: the client's first frame. */
export interface Hello {
  /** {@link HELLO_MAGIC}. */
  magic: number;
  /** Lowest protocol version the client speaks. */
  minVersion: number;
  /** Highest protocol version the client speaks. */
  maxVersion: number;
  /** The client's pid (compared with SO_PEERCRED unless the server has `checkPid: false`). */
  pid: number;
  /** Feature bits (none defined). */
  features: number;
  /** The client's name, for the server's logs. */
  name: string;
}

/**
 * A WELCOME: the session's parameters, as the server chose them.
 * @category IPC
 */
export interface Welcome {
  /** The protocol version in use (2). */
  version: number;
  /** The server's slot for this session. */
  slot: number;
  /** The slot's generation (a reused slot gets the next one). */
  generation: number;
  /** Ring capacity per direction, bytes. */
  capacity: number;
  /** Largest data frame either side may send, bytes. */
  maxMessage: number;
  /** Most concurrent streams on this connection. */
  maxStreams: number;
  /** Feature bits (none defined). */
  features: number;
  /** Idle timeout the server enforces, ms (0: none). */
  idleTimeoutMs: number;
  /** The server's pid. */
  serverPid: number;
}

/** A READY: the client mapped and checked the fds. */
export interface Ready {
  /** As in WELCOME. */
  slot: number;
  /** As in WELCOME. */
  generation: number;
}

/** A REJECT: the handshake failed. */
export interface Reject {
  /** A {@link RejectReason}. */
  reason: number;
  /** Why, for people. */
  message: string;
}

/** A GOAWAY: the server is shutting down (or the session idled out). */
export interface GoAway {
  /** How long calls in flight may take, ms. */
  deadlineMs: number;
  /** Why, for people. */
  message: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const EMPTY = Buffer.alloc(0);

/**
 * A whole control frame of `type` with a body of `fixedLen` bytes (zeroed, for the caller to
 * fill from offset {@link BODY}) followed, when `text` is given, by its u16 length and UTF-8
 * bytes. One allocation per frame: the handshake encodes three of these on its critical path.
 */
function frameOf(type: ControlType, fixedLen: number, text?: string): Buffer {
  const t = text === undefined ? null : controlText(text);
  const bodyLen = fixedLen + (t ? 2 + t.length : 0);
  const out = Buffer.allocUnsafe(BODY + bodyLen).fill(0, 0, BODY + fixedLen);
  out.writeUInt32LE(1 + bodyLen, 0);
  out[4] = type;
  if (t) {
    out.writeUInt16LE(t.length, BODY + fixedLen);
    t.copy(out, BODY + fixedLen + 2);
  }
  return out;
}

/** Offset of the body in an encoded frame: u32 length, u8 type. */
const BODY = 5;

/** Most UTF-8 bytes a sender puts in a text field (`docs/PROTOCOL.md` §2.2); receivers take any length that fits. */
export const MAX_CONTROL_TEXT_BYTES = 1000;

/**
 * `text` as UTF-8, cut to at most {@link MAX_CONTROL_TEXT_BYTES} bytes at a character boundary.
 * The first 1000 UTF-16 units always encode to at least 1000 bytes, so only they are encoded;
 * a surrogate pair split there becomes U+FFFD past the cut and is dropped with it.
 */
export function controlText(text: string): Buffer {
  const t = Buffer.from(text.slice(0, MAX_CONTROL_TEXT_BYTES), 'utf8');
  if (t.length <= MAX_CONTROL_TEXT_BYTES) return t;
  let end = MAX_CONTROL_TEXT_BYTES;
  while (end > 0 && (t[end] & 0xc0) === 0x80) end--; // t[end] continues a character begun before it
  return t.subarray(0, end);
}

function readText(body: Buffer, at: number, what: string): string {
  if (body.length < at + 2) throw malformed(`${what}: missing text length`);
  const n = body.readUInt16LE(at);
  if (body.length !== at + 2 + n) throw malformed(`${what}: text length ${n} does not match frame`);
  try {
    return utf8.decode(body.subarray(at + 2));
  } catch {
    throw malformed(`${what}: text is not UTF-8`);
  }
}

function malformed(msg: string): IpcError {
  return new IpcError('PROTOCOL_ERROR', `malformed control frame: ${msg}`, { details: { reason: RejectReason.Malformed } });
}

function need(body: Buffer, n: number, what: string): void {
  if (body.length < n) throw malformed(`${what} needs ${n} bytes, got ${body.length}`);
}

export function encodeHello(h: Hello): Buffer {
  const b = frameOf(ControlType.Hello, 16, h.name);
  b.writeUInt32LE(h.magic, BODY);
  b.writeUInt16LE(h.minVersion, BODY + 4);
  b.writeUInt16LE(h.maxVersion, BODY + 6);
  b.writeUInt32LE(h.pid, BODY + 8);
  b.writeUInt32LE(h.features, BODY + 12);
  return b;
}

export function decodeHello(body: Buffer): Hello {
  need(body, 18, 'HELLO');
  return {
    magic: body.readUInt32LE(0),
    minVersion: body.readUInt16LE(4),
    maxVersion: body.readUInt16LE(6),
    pid: body.readUInt32LE(8),
    features: body.readUInt32LE(12),
    name: readText(body, 16, 'HELLO name'),
  };
}

export function encodeWelcome(w: Welcome): Buffer {
  const b = frameOf(ControlType.Welcome, 36);
  b.writeUInt16LE(w.version, BODY);
  // BODY + 2: reserved u16, 0
  b.writeUInt32LE(w.slot, BODY + 4);
  b.writeUInt32LE(w.generation, BODY + 8);
  b.writeUInt32LE(w.capacity, BODY + 12);
  b.writeUInt32LE(w.maxMessage, BODY + 16);
  b.writeUInt32LE(w.maxStreams, BODY + 20);
  b.writeUInt32LE(w.features, BODY + 24);
  b.writeUInt32LE(w.idleTimeoutMs, BODY + 28);
  b.writeUInt32LE(w.serverPid, BODY + 32);
  return b;
}

export function decodeWelcome(body: Buffer): Welcome {
  if (body.length !== 36) throw malformed(`WELCOME must be 36 bytes, got ${body.length}`);
  return {
    version: body.readUInt16LE(0),
    slot: body.readUInt32LE(4),
    generation: body.readUInt32LE(8),
    capacity: body.readUInt32LE(12),
    maxMessage: body.readUInt32LE(16),
    maxStreams: body.readUInt32LE(20),
    features: body.readUInt32LE(24),
    idleTimeoutMs: body.readUInt32LE(28),
    serverPid: body.readUInt32LE(32),
  };
}

export function encodeReady(r: Ready): Buffer {
  const b = frameOf(ControlType.Ready, 8);
  b.writeUInt32LE(r.slot, BODY);
  b.writeUInt32LE(r.generation, BODY + 4);
  return b;
}

export function decodeReady(body: Buffer): Ready {
  if (body.length !== 8) throw malformed(`READY must be 8 bytes, got ${body.length}`);
  return { slot: body.readUInt32LE(0), generation: body.readUInt32LE(4) };
}

export function encodeReject(r: Reject): Buffer {
  const b = frameOf(ControlType.Reject, 2, r.message);
  b.writeUInt16LE(r.reason, BODY);
  return b;
}

export function decodeReject(body: Buffer): Reject {
  need(body, 4, 'REJECT');
  return { reason: body.readUInt16LE(0), message: readText(body, 2, 'REJECT message') };
}

export function encodeGoAway(g: GoAway): Buffer {
  const b = frameOf(ControlType.GoAway, 4, g.message);
  b.writeUInt32LE(g.deadlineMs, BODY);
  return b;
}

export function decodeGoAway(body: Buffer): GoAway {
  need(body, 6, 'GOAWAY');
  return { deadlineMs: body.readUInt32LE(0), message: readText(body, 4, 'GOAWAY message') };
}

/**
 * Splits a byte stream into control frames. Feed it what the socket gives; it returns whole
 * frames and keeps the rest. A length over {@link MAX_CONTROL_FRAME} or of 0 is an error.
 * A returned body may be a view of the chunk just pushed: copy it before the chunk is reused.
 */
export class ControlFrameReader {
  private buf: Buffer = EMPTY;

  push(chunk: Buffer): Array<{ type: ControlType; body: Buffer }> {
    // Bodies may be views of `chunk` (the caller's read buffer, reused by the next read), so
    // the caller copies what it keeps; only an incomplete tail is copied here.
    let buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Array<{ type: ControlType; body: Buffer }> = [];
    while (buf.length >= 4) {
      const len = buf.readUInt32LE(0);
      if (len === 0 || len > MAX_CONTROL_FRAME) throw malformed(`frame length ${len}`);
      if (buf.length < 4 + len) break;
      out.push({ type: buf[4] as ControlType, body: buf.subarray(5, 4 + len) });
      buf = buf.subarray(4 + len);
    }
    this.buf = buf.length ? Buffer.from(buf) : EMPTY;
    return out;
  }
}
