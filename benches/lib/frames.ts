/** Length-prefixed framing for the Unix-socket baselines. */

/**
 * Splits a byte stream into 4-byte-length-prefixed frames, calling `onFrame` for each. A frame
 * split across reads is gathered as a list and joined once it is complete (joining on every read
 * would copy a 1 MiB frame ~16 times and make the baseline look worse than `net` is).
 */
export class FrameParser {
  private parts: Buffer[] = [];
  private partsLen = 0;
  /** Bytes (from the start of `parts`) needed before the next frame can be parsed. */
  private need = 0;
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
    if (this.parts.length > 0) {
      this.parts.push(off > 0 ? buf.subarray(off) : buf);
      this.partsLen += buf.length - off;
      if (this.partsLen < this.need) return;
      buf = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.partsLen);
      this.parts = [];
      this.partsLen = 0;
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
        this.need = 4 + len;
        break;
      }
    }
    if (off < buf.length) {
      if (buf.length - off < 4) this.need = 4;
      // Socket reads are fresh buffers, so a view of the tail stays valid.
      this.parts = [buf.subarray(off)];
      this.partsLen = buf.length - off;
    }
  }
}
