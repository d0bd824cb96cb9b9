/**
 * What one fresh Buffer per message costs against one reused buffer, for the message sizes of
 * the `peers` suite: `encodeFrame` (client) and `decodePayload` (server) each allocate one per
 * large request today. Prints CPU, minor page faults and wall time per message.
 *
 *   node --import=tsx benches/profile/fresh-buffers.ts
 */
for (const size of [64 << 10, 1 << 20]) {
  const src = Buffer.alloc(size, 7);
  const n = size > 100_000 ? 2000 : 20_000;
  for (const mode of ['fresh', 'reused'] as const) {
    const reused = Buffer.allocUnsafe(size + 16);
    const f0 = process.resourceUsage().minorPageFault;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let sink = 0;
    for (let i = 0; i < n; i++) {
      const b = mode === 'fresh' ? Buffer.allocUnsafe(size + 16) : reused;
      b.set(src, 16);
      sink ^= b[i % size];
    }
    const c = process.cpuUsage(c0);
    const faults = process.resourceUsage().minorPageFault - f0;
    const wall = ((performance.now() - t0) * 1000) / n;
    console.log(
      `${size >> 10} KiB, ${mode.padEnd(6)}: ${((c.user + c.system) / n).toFixed(2).padStart(7)} µs CPU/msg, ` +
        `${(faults / n).toFixed(1).padStart(5)} page faults/msg, ${wall.toFixed(2).padStart(7)} µs wall/msg${sink === -1 ? '' : ''}`,
    );
  }
}
