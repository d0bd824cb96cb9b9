/**
 * Limits and fairness (PLAN §8, §9; issue 7 items 5 and 6): a client that never reads its
 * replies makes the server stop reading its requests once the backlog passes 4 × ring (memory
 * stays bounded), and a client flooding cheap frames from another process does not starve
 * another client's requests. No timing assertions beyond generous guards; the latency figures
 * are logged for the report.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import test from 'ava';
import { BACKLOG_PAUSE_RINGS } from '../../src/defaults';
import { decodeFrame, decodePayload, encodeFrame, FrameKind } from '../../src/protocol/frame';
import { connect, mutatedHandshake, startServer, waitFor, within } from './helpers';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test.serial(
  'backpressure: replies nobody reads stop the server reading that client; the backlog stays near 4 × ring (at most one batch more); nothing is dropped',
  async (t) => {
    const capacity = 64 << 10;
    const { server, socketPath } = await startServer(t, { ringCapacity: capacity });
    const { channel, conn } = await mutatedHandshake(socketPath, (h) => h);
    t.teardown(() => {
      channel.close();
      conn.close();
    });
    await waitFor(() => server.connections === 1, 'session');
    const [session] = (server as unknown as { sessions: Set<{ channel: { queuedBytes: number } }> }).sessions;
    const payload = Buffer.alloc(16 << 10, 7);
    const n = 400; // 6.4 MB of replies, 100 × the ring
    let resolved = 0;
    let maxBacklog = 0;
    const sends = Array.from({ length: n }, (_, i) =>
      channel.send(encodeFrame(FrameKind.Request, i + 1, 'echo', payload)).then(() => resolved++),
    );
    // If an assertion fails first, teardown closes the channel under the waiting sends.
    for (const p of sends) p.catch(() => undefined);
    for (let i = 0; i < 30; i++) {
      await sleep(20);
      maxBacklog = Math.max(maxBacklog, session.channel.queuedBytes);
    }
    t.log(`client sends resolved while nobody read: ${resolved}/${n}; server backlog peak ${maxBacklog} bytes (ring ${capacity})`);
    t.true(resolved < n, 'the client is held back: its ring is full because the server stopped reading');
    // The pause applies after the batch being read: at most one ring's worth of requests more.
    t.true(maxBacklog <= (BACKLOG_PAUSE_RINGS + 1) * capacity, `backlog ${maxBacklog}`);
    // Now read: every reply arrives, in order, none dropped.
    const ids: number[] = [];
    channel.onMessage((m) => {
      const f = decodeFrame(m);
      t.is(f.kind, FrameKind.Response);
      if (ids.length === 0) t.true(Buffer.from(decodePayload(f) as Buffer).equals(payload));
      ids.push(f.id);
    });
    await within(Promise.all(sends), 30_000, 'all requests sent');
    await waitFor(() => ids.length === n, `all ${n} replies`, 30_000);
    t.deepEqual(
      ids,
      Array.from({ length: n }, (_, i) => i + 1),
    );
  },
);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

test.serial('fairness: under a flood of cheap frames from another process, another client is still served (latency logged)', async (t) => {
  const { server, socketPath } = await startServer(t);
  const victim = await connect(t, socketPath);
  const quiet: number[] = [];
  for (let i = 0; i < 200; i++) {
    const s = performance.now();
    await victim.request('echo', i);
    quiet.push(performance.now() - s);
  }
  const child = spawn(process.execPath, ['--import=tsx', path.join(__dirname, 'fixtures', 'flood.ts')], {
    env: { ...process.env, IPC_TEST_FLOOD: JSON.stringify({ socketPath }) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  const lines = readline.createInterface({ input: child.stdout! });
  let sent = 0;
  const flooding = new Promise<void>((resolve) =>
    lines.on('line', (l) => {
      const m = JSON.parse(l) as { type: string; frames?: number };
      if (m.type === 'flooding') resolve();
      if (m.type === 'sent') sent = m.frames ?? sent;
    }),
  );
  await within(flooding, 20_000, 'flood to start');
  await waitFor(() => server.connections === 2, 'flood session');
  await sleep(300);
  const loaded: number[] = [];
  const until = Date.now() + 3000;
  while (Date.now() < until) {
    const s = performance.now();
    t.is(await within(victim.request('echo', 'under flood'), 10_000, 'a request under flood'), 'under flood');
    loaded.push(performance.now() - s);
  }
  quiet.sort((a, b) => a - b);
  loaded.sort((a, b) => a - b);
  const fmt = (xs: number[]): string =>
    `n=${xs.length} p50=${percentile(xs, 0.5).toFixed(3)} ms p99=${percentile(xs, 0.99).toFixed(3)} ms max=${xs[xs.length - 1].toFixed(3)} ms`;
  t.log(`quiet: ${fmt(quiet)}`);
  t.log(`under flood (${sent} frames sent by the flooder so far): ${fmt(loaded)}`);
  t.true(loaded.length >= 10, 'requests kept completing under the flood');
  t.true(sent > 10_000, `the flood was real (${sent} frames)`);
});

test.serial(
  'reassembly budget: a message that does not fit ends only its session; the budget is returned; others are served',
  async (t) => {
    const { server, socketPath } = await startServer(t, { ringCapacity: 4096, maxMessage: 1 << 20, reassemblyBudget: 64 << 10 });
    const bystander = await connect(t, socketPath);
    const greedy = await connect(t, socketPath);
    const lost = new Promise<Error>((r) => greedy.once('disconnect', r));
    // 200 KiB in fragments of ~1 KiB: past the 64 KiB budget long before it is complete.
    const big = greedy.request('echo', Buffer.alloc(200 << 10, 1)).catch((e: Error) => e);
    await within(lost, 20_000, 'the greedy session to end');
    t.true((await big) instanceof Error);
    await waitFor(() => server.connections === 1, 'greedy session gone');
    const budget = (server as unknown as { reassembly: { used: number; limit: number } }).reassembly;
    t.is(budget.limit, 64 << 10);
    await waitFor(() => budget.used === 0, 'budget returned');
    // A message that fits the budget still goes through (fragmented through the 4 KiB ring).
    const ok = (await bystander.request('echo', Buffer.alloc(32 << 10, 2))) as Buffer;
    t.is(ok.length, 32 << 10);
  },
);
