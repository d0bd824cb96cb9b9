/**
 * What framing and payload coding cost per message, in one process, for the 64-byte payloads
 * of the `peers` suite: the client's encoding of a request, the server's decoding of it, the
 * server's encoding of the response and the client's decoding of that, for JSON and bytes.
 * The difference between the two is what a JSON round trip pays over a bytes one before any
 * transport.
 *
 *   node .bench/js/benches/profile/frame-costs.js
 */
import { decodeFrame, decodePayload, encodeFrame, encodeParts, FrameKind } from '../../dist/protocol/frame';
import { BYTES64, JSON64 } from '../peers/workload';

const ring = new Uint8Array(1 << 16);
const N = 2_000_000;

function ns(fn: () => void): number {
  for (let i = 0; i < 200_000; i++) fn();
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) fn();
  return Number(process.hrtime.bigint() - t) / N;
}

for (let round = 1; round <= 3; round++) {
  for (const [label, payload] of [
    ['JSON ', JSON64],
    ['bytes', BYTES64],
  ] as const) {
    const req = encodeFrame(FrameKind.Request, 5, 'echo', payload);
    const value = decodePayload(decodeFrame(req));
    const resp = encodeFrame(FrameKind.Response, 5, '', value);
    const steps = [
      ns(() => ring.set(encodeParts(FrameKind.Request, 5, 'echo', payload).head, 0)),
      ns(() => decodePayload(decodeFrame(req))),
      ns(() => ring.set(encodeParts(FrameKind.Response, 5, '', value).head, 0)),
      ns(() => decodePayload(decodeFrame(resp))),
    ];
    const sum = steps.reduce((a, b) => a + b, 0);
    console.log(
      `round ${round} ${label}: encode request ${steps[0].toFixed(0)} ns, decode request ${steps[1].toFixed(0)} ns, ` +
        `encode response ${steps[2].toFixed(0)} ns, decode response ${steps[3].toFixed(0)} ns; per round trip ${(sum / 1000).toFixed(2)} µs`,
    );
  }
}
