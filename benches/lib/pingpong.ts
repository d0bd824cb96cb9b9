/**
 * The 64-byte ping-pong both the transport and the IPC suites measure the bare channel with:
 * send, wait for the echo, record the round trip, repeat.
 */
import type { Channel } from '../../src/transport/channel';

/** Runs `count` round trips of `msg` over `ch` (whose peer echoes) and returns each in ms. */
export function channelPingPong(ch: Channel, count: number, msg: Uint8Array = new Uint8Array(64)): Promise<Float64Array> {
  return new Promise<Float64Array>((resolve, reject) => {
    const samples = new Float64Array(count);
    let i = 0;
    let t0 = 0;
    ch.onMessage(() => {
      samples[i++] = performance.now() - t0;
      if (i === count) {
        ch.onMessage(null);
        resolve(samples);
        return;
      }
      t0 = performance.now();
      if (!ch.trySend(msg)) ch.send(msg).catch(reject);
    });
    ch.onClose((e) => reject(e ?? new Error('channel closed')));
    t0 = performance.now();
    ch.send(msg).catch(reject);
  });
}
