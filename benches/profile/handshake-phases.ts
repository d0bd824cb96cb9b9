/**
 * Where a handshake's time goes, phase by phase, measured in one process with the same native
 * calls the handshake makes (`src/ipc/handshake.ts`): memfd creation and sealing and the
 * server side's mapping (`createChannelFds`), fd passing over a Unix socket (SCM_RIGHTS send +
 * recv), the client's checks and mapping and both sides' external buffers (`new Channel`),
 * closing; then whole handshakes
 * through the public API (`IpcClient.connect` + `close`) against a server in another process,
 * with the server's own accept → READY histogram.
 *
 *   node --import=tsx benches/profile/handshake-phases.ts [iterations]
 *
 * A profiling harness, not part of `npm run bench`: it uses the binding directly, so it
 * follows the binding's API (protocol v2: 3 fds per channel; the code does not count them).
 */
import native = require('../../dist/native');
import { Channel, IpcClient } from '../../dist';
import { PEERS } from '../peers/clients';
import { percentile } from '../lib/report';

const CAPACITY = 1 << 20;

function stats(xs: number[]): string {
  const s = Float64Array.from(xs).sort();
  return `p50 ${percentile(s, 50).toFixed(1).padStart(7)} µs   p99 ${percentile(s, 99).toFixed(1).padStart(7)} µs`;
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 2000);
  const t = { create: [] as number[], sendFds: [] as number[], sendPlain: [] as number[], recvFds: [] as number[] };
  const open = { server: [] as number[], client: [] as number[], closeBoth: [] as number[] };
  const frame = Buffer.alloc(64, 1);
  const buf = Buffer.alloc(4096);
  for (let i = 0; i < n; i++) {
    const [a, b] = native.controlSocketPair();
    let t0 = performance.now();
    const fds = native.createChannelFds(CAPACITY);
    t.create.push((performance.now() - t0) * 1000);
    t0 = performance.now();
    a.send(frame, null);
    t.sendPlain.push((performance.now() - t0) * 1000);
    b.recv(buf);
    t0 = performance.now();
    a.send(frame, fds);
    t.sendFds.push((performance.now() - t0) * 1000);
    t0 = performance.now();
    b.recv(buf);
    const got = b.takeFds();
    t.recvFds.push((performance.now() - t0) * 1000);
    t0 = performance.now();
    const server = new Channel(fds, 'server', { capacity: CAPACITY });
    open.server.push((performance.now() - t0) * 1000);
    t0 = performance.now();
    const client = new Channel(got!, 'client', { capacity: CAPACITY });
    open.client.push((performance.now() - t0) * 1000);
    t0 = performance.now();
    client.close();
    server.close();
    open.closeBoth.push((performance.now() - t0) * 1000);
    a.close();
    b.close();
  }
  console.log(`in-process phases, ${n} iterations, ring capacity ${CAPACITY} B:`);
  console.log(`  createChannelFds (memfds, seals, doorbell, server's mapping) ${stats(t.create)}`);
  console.log(`  control send, 64 B without fds                 ${stats(t.sendPlain)}`);
  console.log(`  control send, 64 B with the channel's fds      ${stats(t.sendFds)}`);
  console.log(`  control recv + takeFds                         ${stats(t.recvFds)}`);
  console.log(`  new Channel(server): external buffers + watch  ${stats(open.server)}`);
  console.log(`  new Channel(client): checks + map + buffers    ${stats(open.client)}`);
  console.log(`  close both channels                            ${stats(open.closeBoth)}`);

  const h = await PEERS[0].start();
  try {
    const whole: number[] = [];
    for (let i = 0; i < n + 200; i++) {
      const t0 = performance.now();
      const c = await IpcClient.connect(h.socketPath!);
      const dt = (performance.now() - t0) * 1000;
      c.close();
      if (i >= 200) whole.push(dt);
    }
    const c = await IpcClient.connect(h.socketPath!);
    const m = (await c.serverMetrics()) as Array<{ name: string; values: Array<{ value: number; metricName?: string }> }>;
    c.close();
    const hist = m.find((x) => x.name === 'lapce_ipc_handshake_seconds');
    const sum = hist?.values.find((v) => v.metricName === 'lapce_ipc_handshake_seconds_sum')?.value ?? NaN;
    const count = hist?.values.find((v) => v.metricName === 'lapce_ipc_handshake_seconds_count')?.value ?? NaN;
    console.log(`IpcClient.connect (public API, server in another process), ${n} sequential:`);
    console.log(`  connect → session ready (client side)          ${stats(whole)}`);
    console.log(`  server accept → READY, mean                    ${((sum / count) * 1e6).toFixed(1)} µs`);
  } finally {
    await h.stop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
