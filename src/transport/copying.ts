/**
 * The copying backend: every message crosses a native call (`write`, `readCopy`), for runtimes
 * that refuse external ArrayBuffers (a V8 sandbox, as in Electron), or `zeroCopy: false`.
 * @packageDocumentation
 */
import { performance } from 'node:perf_hooks';
import type { NativeEndpoint } from '../../index';
import type { Backend, Sink } from './backend';
import { Drained } from './backend';
import { TURN_MESSAGES, TURN_MS } from '../defaults';

/** See the module comment. */
export class CopyingBackend implements Backend {
  readonly zeroCopy = false;
  readonly doorbellsSuppressed = 0;

  constructor(private readonly ep: NativeEndpoint) {}

  readonly gathers = false;

  write(data: Uint8Array, _body: null, progress: number): number {
    return this.ep.write(data, progress);
  }

  waitForSpace(): boolean {
    // Rust announces the wait itself when this side parks (prepareSleep with the space).
    return true;
  }

  probe(): boolean {
    // Only a native call could tell: let the scheduler step instead.
    return true;
  }

  drain(sink: Sink): Drained {
    let n = 0;
    const start = performance.now();
    let msg: Buffer | null;
    while (!sink.closed && sink.reading && (msg = this.ep.readCopy()) !== null) {
      sink.deliver(msg, false);
      if (++n === TURN_MESSAGES || ((n & 31) === 0 && performance.now() - start >= TURN_MS)) break;
    }
    if (n > 0) return Drained.Work;
    return !sink.closed && this.ep.peerClosed() && !this.ep.hasPending() ? Drained.Ended : Drained.Idle;
  }

  prepareSleep(_reading: boolean, remaining: number): boolean {
    return this.ep.prepareSleep(remaining >= 0 ? this.ep.spaceNeeded(remaining) : 0);
  }

  release(): void {
    // readCopy() releases each message as it copies it.
  }

  cork(): void {
    // Each native write publishes at once.
  }

  uncork(): void {}
}
