/** Length-prefixed framing for the Unix-socket baselines. */

/** Splits a byte stream into 4-byte-length-prefixed frames, calling `onFrame` for each. */
export class FrameParser {
  private pending: Buffer | null = null;
  /** Bytes of the current frame's payload still to come when skipping (sink mode). */
  private skip = 0;

  constructor(
    private readonly onFrame: (frame: Buffer | null, len: number) => void,
    /** Hand over payloads (true) or only count them (false: no copy of split frames). */
    private readonly wantPayload: boolean,
  ) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    let off = 0;
    if (this.skip > 0) {
      const n = Math.min(this.skip, buf.length);
      this.skip -= n;
      off = n;
      if (this.skip > 0) return;
      this.onFrame(null, -1);
    }
    if (this.pending) {
      buf = Buffer.concat([this.pending, buf.subarray(off)]);
      this.pending = null;
      off = 0;
    }
    while (buf.length - off >= 4) {
      const len = buf.readUInt32LE(off);
      const avail = buf.length - off - 4;
      if (avail >= len) {
        this.onFrame(this.wantPayload ? buf.subarray(off + 4, off + 4 + len) : null, len);
        off += 4 + len;
      } else if (!this.wantPayload) {
        // Count the frame once all of it has gone by, without keeping it.
        this.skip = len - avail;
        return;
      } else {
        break;
      }
    }
    if (off < buf.length) this.pending = Buffer.from(buf.subarray(off));
  }
}
