/**
 * One server (a child process) serves 1000 concurrent connections from 4 client processes; each
 * connection makes a request; then all close and the server is back where it started.
 */
import test from 'ava';
import { connect, metricValue, serverState, sockPath, spawnClient, spawnServer, waitFor } from './helpers';

const CLIENTS = 4;
const PER_CLIENT = 250;

test('1000 concurrent connections from 4 processes, one request each; all close and the server returns to 0', async (t) => {
  const socketPath = sockPath(t);
  const server = await spawnServer(t, { socketPath });
  const warm = await connect(t, socketPath);
  await warm.request('echo', 0);
  warm.close();
  await waitFor(async () => (await serverState(server)).connections === 0, 'warm-up session to close');
  const before = await serverState(server);

  const clients = Array.from({ length: CLIENTS }, () => spawnClient(t, { socketPath, mode: 'conns', count: PER_CLIENT, batch: 50 }));
  const ready = await Promise.all(clients.map((c) => c.next((m) => m.type === 'ready', 'client child connections', 90_000)));
  for (const r of ready) {
    t.deepEqual(r.errors, []);
    t.is(r.ok, PER_CLIENT);
  }
  await waitFor(async () => (await serverState(server)).connections === CLIENTS * PER_CLIENT, 'all sessions open');
  const full = await serverState(server);
  t.is(full.connections, 1000);
  t.is(full.reservedSlots, 1000);
  t.true(full.fds >= before.fds + 1000, `fds ${before.fds} → ${full.fds}`);
  const m = (await server.cmd('metrics')).metrics;
  t.is(metricValue(m, 'lapce_ipc_connections_active'), 1000);
  t.is(metricValue(m, 'lapce_ipc_request_seconds', { method: 'echo' }, 'lapce_ipc_request_seconds_count'), 1001);
  t.is(metricValue(m, 'lapce_ipc_handshake_failures_total'), 0);

  for (const c of clients) c.send({ cmd: 'close' });
  await Promise.all(clients.map((c) => c.next((m2) => m2.type === 'closed', 'client child closed')));
  await waitFor(async () => (await serverState(server)).connections === 0, 'all sessions closed', 60_000);
  await waitFor(async () => (await serverState(server)).fds <= before.fds, 'server fds back to the baseline', 30_000);
  const after = await serverState(server);
  t.is(after.reservedSlots, 0);
  t.is(after.pending, 0);
  t.is(after.fds, before.fds);
  t.is(metricValue((await server.cmd('metrics')).metrics, 'lapce_ipc_connections_total'), 1001);
});
