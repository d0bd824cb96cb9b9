/**
 * The handshake on the control socket: a successful one, and every reject path. Each reject is
 * checked from the client's side (the IpcError's code, `details.reason`, retry hint) and from the
 * server's (slot and fd usage back to where they were, the failure counted in
 * `lapce_ipc_handshake_failures_total{reason}`, a log line with the reason).
 *
 * The client side is the real `clientHandshake` with its first frame (the HELLO) rewritten or
 * replaced by raw bytes, so everything after the HELLO is what a real client would do.
 *
 * Serial: the tests count this process's fds.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import test, { type ExecutionContext } from 'ava';
import { IpcError } from '../../src/errors';
import { IpcClient } from '../../src/ipc/client';
import { ControlConnection } from '../../src/ipc/control-connection';
import { clientHandshake } from '../../src/ipc/handshake';
import { controlPath } from '../../src/ipc/paths';
import type { IpcServer, IpcServerOptions } from '../../src/ipc/server';
import { PROTOCOL_VERSION_MAX } from '../../src/protocol/control';
import { captureLogger, connect, fdCount, ipcError, metricValue, mutatedHandshake, startServer, waitFor } from './helpers';

/** Slots reserved and handshakes pending, from the server's internals. */
function usage(server: IpcServer): { reserved: number; pending: number } {
  const s = server as unknown as { pending: Set<unknown>; slots: Array<{ reserved: boolean }> };
  return { reserved: s.slots.filter((x) => x.reserved).length, pending: s.pending.size };
}

/** Opens and closes one session so that lazily created resources exist before a baseline. */
async function warmUp(server: IpcServer, socketPath: string): Promise<void> {
  const c = await IpcClient.connect(socketPath);
  await c.request('echo', 1);
  c.close();
  await waitFor(() => server.connections === 0, 'warm-up session to close');
}

test.serial('a successful handshake opens a session with the announced parameters; closing frees it', async (t) => {
  const { logger, lines } = captureLogger();
  const { server, socketPath } = await startServer(t, { logger, ringCapacity: 64 << 10, maxMessage: 1 << 20, maxStreams: 7 });
  const before = fdCount();
  const client = await connect(t, socketPath, { name: 'handshake-test' });
  const w = client.session!;
  t.truthy(w);
  t.is(w.version, PROTOCOL_VERSION_MAX);
  t.is(w.slot, 0);
  t.is(w.generation, 1);
  t.is(w.capacity, 64 << 10);
  t.is(w.maxMessage, 1 << 20);
  t.is(w.maxStreams, 7);
  t.is(w.idleTimeoutMs, 0);
  t.is(w.serverPid, process.pid);
  t.deepEqual(await client.request('echo', { hello: 'world' }), { hello: 'world' });
  await waitFor(() => server.connections === 1, 'server to open the session');
  const accepted = lines.find((l) => l.msg === 'connection accepted');
  t.like(accepted, { slot: 0, generation: 1, peerPid: process.pid, clientName: 'handshake-test' });
  t.true(
    lines.some(
      (l) =>
        l.msg === 'lapce-ai-ipc server listening' &&
        l.socket === socketPath &&
        l.controlSocket === `${socketPath}.ctl` &&
        (l.level as number) >= 30,
    ),
  );

  client.close();
  await waitFor(() => server.connections === 0, 'session to close');
  await waitFor(() => fdCount() <= before, `fds back to ${before}`);
  t.like(
    lines.find((l) => l.msg === 'connection closed'),
    { slot: 0, peerPid: process.pid },
  );
  t.deepEqual(usage(server), { reserved: 0, pending: 0 });

  // The slot is reused, with the next generation.
  const again = await connect(t, socketPath);
  t.is(again.session!.slot, 0);
  t.is(again.session!.generation, 2);
  // The client is done once READY is sent; the server counts the handshake when it reads it.
  await waitFor(() => server.connections === 1, 'server to open the second session');
  const m = await server.metrics();
  t.is(metricValue(m, 'lapce_ipc_handshakes_total'), 2);
  t.is(metricValue(m, 'lapce_ipc_handshake_seconds', {}, 'lapce_ipc_handshake_seconds_count'), 2);
  t.is(metricValue(m, 'lapce_ipc_connections_total'), 2);
  // Per-message events stay below info.
  t.false(lines.some((l) => (l.level as number) >= 30 && /frame|message/i.test(String(l.msg)) && l.msg !== 'connection accepted'));
});

interface RejectCase {
  title: string;
  /** What the client sends instead of its HELLO (null: nothing). */
  mutate: (hello: Buffer) => Buffer | null;
  code: string;
  reason: string;
  retryable?: boolean;
  server?: IpcServerOptions;
}

function withField(hello: Buffer, write: (b: Buffer) => void): Buffer {
  const b = Buffer.from(hello);
  write(b);
  return b;
}

// HELLO layout: u32 length, u8 type, then the body: u32 magic @5, u16 min @9, u16 max @11,
// u32 pid @13, u32 features @17, u16 name length @21, name @23.
const CASES: RejectCase[] = [
  {
    title: 'bad magic',
    mutate: (h) => withField(h, (b) => b.writeUInt32LE(0xdeadbeef, 5)),
    code: 'HANDSHAKE_REJECTED',
    reason: 'bad_magic',
  },
  {
    title: 'no common version',
    mutate: (h) =>
      withField(h, (b) => {
        b.writeUInt16LE(PROTOCOL_VERSION_MAX + 5, 9);
        b.writeUInt16LE(PROTOCOL_VERSION_MAX + 9, 11);
      }),
    code: 'HANDSHAKE_REJECTED',
    reason: 'no_common_version',
  },
  {
    title: 'wrong uid (server allows only another uid)',
    mutate: (h) => h,
    code: 'HANDSHAKE_REJECTED',
    reason: 'uid_mismatch',
    server: { allowedUids: [os.userInfo().uid + 4242] },
  },
  {
    title: 'pid mismatch (HELLO names a pid that is not the sender)',
    mutate: (h) => withField(h, (b) => b.writeUInt32LE(process.pid === 1 ? 2 : 1, 13)),
    code: 'HANDSHAKE_REJECTED',
    reason: 'pid_mismatch',
  },
  {
    title: 'handshake timeout (connect and say nothing)',
    mutate: () => null,
    code: 'HANDSHAKE_TIMEOUT',
    reason: 'timeout',
    retryable: true,
    server: { handshakeTimeoutMs: 150 },
  },
  {
    title: 'handshake timeout (a frame that never completes)',
    mutate: () => Buffer.from([100, 0, 0, 0, 1, 0x4c, 0x41]),
    code: 'HANDSHAKE_TIMEOUT',
    reason: 'timeout',
    retryable: true,
    server: { handshakeTimeoutMs: 150 },
  },
  {
    title: 'garbage: random bytes',
    // Seeded random bytes; the top byte of the length is forced non-zero so it is a bad length.
    mutate: () => withField(crypto.createHash('sha512').update('lapce-ai-ipc garbage').digest(), (b) => (b[3] |= 0x80)),
    code: 'HANDSHAKE_REJECTED',
    reason: 'malformed',
  },
  {
    title: 'garbage: frame length 0',
    mutate: () => Buffer.from([0, 0, 0, 0, 1, 2, 3, 4]),
    code: 'HANDSHAKE_REJECTED',
    reason: 'malformed',
  },
  {
    title: 'garbage: frame length over the limit',
    mutate: () => Buffer.from([0x01, 0x10, 0, 0, 1, 2, 3, 4]),
    code: 'HANDSHAKE_REJECTED',
    reason: 'malformed',
  },
  {
    title: 'garbage: unknown control frame type',
    mutate: () => Buffer.from([5, 0, 0, 0, 99, 1, 2, 3, 4]),
    code: 'HANDSHAKE_REJECTED',
    reason: 'malformed',
  },
  {
    title: 'garbage: HELLO too short',
    mutate: () => Buffer.from([5, 0, 0, 0, 1, 0x4c, 0x41, 0x49, 0x43]),
    code: 'HANDSHAKE_REJECTED',
    reason: 'malformed',
  },
  {
    title: 'garbage: HELLO name length past the frame',
    mutate: (h) => withField(h, (b) => b.writeUInt16LE(999, 21)),
    code: 'HANDSHAKE_REJECTED',
    reason: 'malformed',
  },
  {
    title: 'garbage: READY where HELLO belongs',
    mutate: () => Buffer.from([9, 0, 0, 0, 3, 0, 0, 0, 0, 1, 0, 0, 0]),
    code: 'HANDSHAKE_REJECTED',
    reason: 'malformed',
  },
];

async function checkFreed(t: ExecutionContext, server: IpcServer, baseline: number): Promise<void> {
  await waitFor(() => usage(server).pending === 0, 'pending handshakes to be dropped');
  await waitFor(() => fdCount() <= baseline, `fds back to ${baseline} (now ${fdCount()})`);
  t.deepEqual(usage(server), { reserved: 0, pending: 0 });
  t.is(server.connections, 0);
}

for (const c of CASES) {
  test.serial(`reject: ${c.title}`, async (t) => {
    const { logger, lines } = captureLogger();
    const { server, socketPath } = await startServer(t, { logger, ...c.server });
    if (!c.server?.allowedUids) await warmUp(server, socketPath);
    const baseline = fdCount();
    const failuresBefore = metricValue(await server.metrics(), 'lapce_ipc_handshake_failures_total', { reason: c.reason });

    const err = await ipcError(t, mutatedHandshake(socketPath, c.mutate));
    t.is(err.code, c.code, err.message);
    t.is(err.details?.reason, c.reason, err.message);
    t.is(err.retryable, c.retryable ?? false);
    t.true(err.message.length > 10);

    await checkFreed(t, server, baseline);
    const m = await server.metrics();
    t.is(metricValue(m, 'lapce_ipc_handshake_failures_total', { reason: c.reason }), failuresBefore + 1);
    t.is(metricValue(m, 'lapce_ipc_handshakes_total'), c.server?.allowedUids ? 0 : 1);
    const logged = lines.find((l) => l.msg === 'handshake failed');
    t.truthy(logged, 'a log line for the failure');
    t.is(logged?.reason, c.reason);
    t.true((logged?.level as number) >= 40, 'logged at warn');

    // The server is unharmed: a normal client still gets in (unless it is the wrong uid).
    if (!c.server?.allowedUids) {
      const ok = await connect(t, socketPath);
      t.is(await ok.request('echo', 'still serving'), 'still serving');
    }
  });
}

test.serial('reject: server full (maxConnections: 1), retryable; the slot frees when the first client leaves', async (t) => {
  const { logger, lines } = captureLogger();
  const { server, socketPath } = await startServer(t, { logger, maxConnections: 1 });
  await warmUp(server, socketPath);
  const first = await connect(t, socketPath);
  const baseline = fdCount();

  const err = await ipcError(t, IpcClient.connect(socketPath));
  t.is(err.code, 'HANDSHAKE_REJECTED');
  t.is(err.details?.reason, 'server_full');
  t.true(err.retryable, 'a full server is worth retrying');
  t.regex(err.message, /full/);
  // The raw path (no IpcClient) sees the same.
  const raw = await ipcError(
    t,
    mutatedHandshake(socketPath, (h) => h),
  );
  t.is(raw.details?.reason, 'server_full');

  await waitFor(() => usage(server).pending === 0 && fdCount() <= baseline, 'refused connections to be dropped');
  t.deepEqual(usage(server), { reserved: 1, pending: 0 });
  t.is(server.connections, 1);
  const m = await server.metrics();
  t.is(metricValue(m, 'lapce_ipc_connections_rejected_total', { reason: 'server_full' }), 2);
  t.is(metricValue(m, 'lapce_ipc_handshake_failures_total', { reason: 'server_full' }), 2);
  t.true(lines.some((l) => l.reason === 'server_full' && (l.level as number) >= 40));

  first.close();
  await waitFor(() => server.connections === 0, 'first client to leave');
  const next = await connect(t, socketPath);
  t.is(await next.request('echo', 'in'), 'in');
});

test.serial('a client whose server stays silent fails with HANDSHAKE_TIMEOUT on its own clock', async (t) => {
  // The "server" accepts and stays silent: a raw listener that never reads.
  const { socketPath } = await startServer(t, { handshakeTimeoutMs: 60_000 });
  const err = await ipcError(
    t,
    mutatedHandshake(socketPath, () => null, 100),
  );
  t.is(err.code, 'HANDSHAKE_TIMEOUT');
  t.is(err.details?.reason, 'timeout');
  t.true(err.retryable);
});

test.serial('connecting where nothing listens fails with a retryable CONNECTION_LOST', async (t) => {
  const err = await ipcError(t, IpcClient.connect('/tmp/lapce-ai-ipc-test-nothing-here/ai.sock'));
  t.is(err.code, 'CONNECTION_LOST');
  t.true(err.retryable);
  t.true(err instanceof IpcError);
});

test.serial('the server keeps a bounded pool of ready channel fd sets, refills it after a handshake and frees it at close', async (t) => {
  const before = fdCount();
  const { server, socketPath } = await startServer(t, { logger: captureLogger().logger });
  const listening = fdCount();
  // Listener + reserve fd + 2 sets of 4 fds (2 memfds, both doorbell ends); a pool never holds more.
  t.true(listening - before >= 2 * 4, `a listening server holds its pool (${before} → ${listening} fds)`);
  for (let i = 0; i < 5; i++) {
    const c = await connect(t, socketPath);
    t.is(await c.request('echo', i), i);
    c.close();
  }
  await waitFor(() => server.connections === 0, 'sessions to close');
  const pool = (server as unknown as { fdPool: { ready: unknown[] } }).fdPool;
  await waitFor(() => pool.ready.length === 2, `pool refilled (holds ${pool.ready.length})`);
  await waitFor(() => fdCount() <= listening, `fds back to ${listening} with the pool full (now ${fdCount()})`);
  await server.close({ deadlineMs: 0 });
  await waitFor(() => fdCount() <= before, `every fd freed at close (${before} expected, now ${fdCount()})`);
});

test.serial('review R11: a client refuses a server whose SO_PEERCRED uid it does not trust, before sending anything', async (t) => {
  // Tests run as one uid, so the mismatch is simulated by a trust list that excludes it.
  const own = process.getuid?.() ?? 0;
  const { server, socketPath } = await startServer(t);
  const conn = ControlConnection.connect(controlPath(socketPath));
  const sent: Buffer[] = [];
  const send = conn.send.bind(conn);
  const trySend = conn.trySend.bind(conn);
  conn.send = (frame, fds) => {
    sent.push(Buffer.from(frame));
    return send(frame, fds);
  };
  conn.trySend = (frame) => {
    sent.push(Buffer.from(frame));
    return trySend(frame);
  };
  const err = await ipcError(t, clientHandshake(conn, { name: 'distrustful', timeoutMs: 5000, channel: {}, serverUids: [12345] }));
  t.is(err.code, 'PEER_NOT_TRUSTED');
  t.false(err.retryable);
  t.deepEqual(err.details, { reason: 'server_uid_mismatch', uid: own, trusted: [12345] });
  t.is(sent.length, 0, 'no HELLO (and no REJECT) reached the untrusted server');

  // Through the public client: the same refusal; a list that names the server's uid connects.
  const viaClient = await ipcError(t, IpcClient.connect(socketPath, { serverUids: [12345] }));
  t.is(viaClient.code, 'PEER_NOT_TRUSTED');
  const ok = await connect(t, socketPath, { serverUids: [12345, own] });
  t.is(await ok.request('echo', 7), 7);
  ok.close();
  await waitFor(() => server.connections === 0, 'session to close');
  t.is((await ipcError(t, IpcClient.connect(socketPath, { serverUids: [] }))).code, 'INVALID_ARGUMENT');
});
