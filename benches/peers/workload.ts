/**
 * What every peer of the `peers` suite sends, so all of them carry the same bytes, and the wire
 * conventions the hand-written peers share (`net`, child_process, zeromq).
 */

/** A 64-byte JSON payload (its UTF-8 JSON text is exactly 64 bytes). */
export const JSON64 = { m: 'x'.repeat(56) };
if (Buffer.byteLength(JSON.stringify(JSON64)) !== 64) throw new Error('JSON64 is not 64 bytes');

/** 64 bytes of binary payload. */
export const BYTES64 = Buffer.alloc(64, 0xab);

/** Text of one chat delta: about what a provider streams per token batch. */
export const DELTA_TEXT = 'the quick brown fox jumps over the lazy';

/** A chat-delta-sized stream chunk as JSON (`{"d":"…"}`, 48 bytes). */
export const DELTA_JSON = { d: DELTA_TEXT };
/** The same chunk as bytes. */
export const DELTA_BYTES = Buffer.from(JSON.stringify(DELTA_JSON));

/** Chunks per stream (issue 11: a stream of 50k chat-delta-sized chunks). */
export const STREAM_CHUNKS = 50_000;

/** Large message sizes measured one way (client → server, acknowledged with the byte count). */
export const LARGE_SIZES = [64 * 1024, 1024 * 1024] as const;

/** Request kinds of the hand-written framings (`net`, child_process, zeromq). */
export const enum Kind {
  /** Echo the payload back. */
  Echo = 1,
  /** Payload is a u32 chunk count: answer with that many StreamChunk frames, then StreamEnd. */
  Stream = 2,
  /** Count the payload's bytes and answer with the count (u32). */
  Sink = 3,
  StreamChunk = 4,
  StreamEnd = 5,
  Reply = 6,
}

/** A `net` frame: u32 length of the rest, u8 kind, u32 id, payload. */
export function netFrame(kind: Kind, id: number, payload: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(9 + payload.length);
  b.writeUInt32LE(5 + payload.length, 0);
  b[4] = kind;
  b.writeUInt32LE(id, 5);
  b.set(payload, 9);
  return b;
}

/** A little-endian u32 (chunk counts, byte counts and ids of the hand-written framings). */
export function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(n, 0);
  return b;
}
