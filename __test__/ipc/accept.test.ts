/**
 * The accept loop at the fd limit (issue 7 item 8): a server in a child process with
 * `ulimit -n` low is pushed past it by connections that never say HELLO. It must not spin
 * (CPU time of the child stays far below the wall time), log the failure once per episode,
 * answer the connections it cannot take with REJECT 9 rather than silence, keep serving the
 * session it has, and accept again once fds are free.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import test from 'ava';
import { IpcClient } from '../../src/ipc/client';
import { ControlConnection } from '../../src/ipc/control-connection';
import { controlPath } from '../../src/ipc/paths';
import { decodeReject } from '../../src/protocol/control';
import { ControlType } from '../../src/protocol/control';
import { ACCEPTS_PER_TURN } from '../../src/defaults';
import { connect, LineChild, SERVER_SCRIPT, sockPath, startServer, waitFor, within } from './helpers';

/** utime + stime of a process, in clock ticks (100 per second on Linux). */
function cpuTicks(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

test('at the fd limit the server backs off instead of spinning, logs once, refuses with REJECT 9, keeps serving, and recovers', async (t) => {
  const socketPath = sockPath(t);
  const proc = spawn('sh', ['-c', `ulimit -n 96 && exec "${process.execPath}" --import=tsx "${SERVER_SCRIPT}"`], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, IPC_TEST_SERVER: JSON.stringify({ socketPath, handshakeTimeoutMs: 60_000 }), IPC_TEST_SERVER_LOG: 'warn' },
  });
  const server = new LineChild(proc);
  t.teardown(async () => {
    proc.kill('SIGKILL');
    await server.exited;
  });
  await server.next((m) => m.type === 'listening', 'server listening');
  const member = await connect(t, socketPath);
  t.is(await member.request('echo', 'before'), 'before');

  // Connections that never say HELLO, until the server is out of fds and more wait in the backlog.
  const silent: ControlConnection[] = [];
  const rejects: string[] = [];
  t.teardown(() => {
    for (const c of silent) c.close();
  });
  for (let i = 0; i < 160; i++) {
    const c = ControlConnection.connect(controlPath(socketPath));
    c.onFrame((f) => {
      if (f.type === ControlType.Reject) rejects.push(`${decodeReject(f.body).reason}: ${decodeReject(f.body).message}`);
    });
    silent.push(c);
  }
  await waitFor(() => rejects.length > 0, 'a REJECT for a connection the server cannot take');
  const before = cpuTicks(proc.pid!);
  const wallStart = Date.now();
  await new Promise((r) => setTimeout(r, 1500));
  const cpuMs = (cpuTicks(proc.pid!) - before) * 10;
  const wallMs = Date.now() - wallStart;
  t.log(`server CPU at the fd limit: ${cpuMs} ms in ${wallMs} ms; REJECTs: ${rejects.length}; first: ${rejects[0]}`);
  t.true(cpuMs < wallMs * 0.5, `the server spins at the fd limit: ${cpuMs} ms CPU in ${wallMs} ms`);
  t.regex(rejects[0], /^9: server is out of file descriptors \(EMFILE\)/);
  // The session it had is still served.
  t.is(await within(member.request('echo', 'during'), 10_000, 'request at the fd limit'), 'during');
  const failures = server.stderr.split('\n').filter((l) => l.includes('accept failed'));
  t.is(failures.length, 1, 'one log line per episode');
  t.true(failures[0].includes('"level":50'), 'logged as an error');

  // Free the fds: new clients get in again.
  for (const c of silent.splice(0)) c.close();
  await waitFor(
    async () => {
      try {
        const c = await IpcClient.connect(socketPath);
        const ok = (await c.request('echo', 'after')) === 'after';
        c.close();
        return ok;
      } catch {
        return false;
      }
    },
    'a new client to get in after the episode',
    20_000,
  );
  t.pass();
});

test('review R5: a connect flood is accepted at most ACCEPTS_PER_TURN per loop turn, and other work runs between batches', async (t) => {
  const { server, socketPath } = await startServer(t, { handshakeTimeoutMs: 60_000, maxConnections: 4096 });
  const internals = server as unknown as { listener: { accept(): unknown } };
  // Accepts are counted per event-loop turn: an immediate that re-queues itself runs once per
  // turn (in the check phase), so it closes one turn's count and opens the next. The server
  // accepts in its listener callback and the microtasks after it, and resumes a cut batch in
  // an immediate of its own; any of them inside one turn counts toward that turn's batch.
  const listener = internals.listener;
  const accept = listener.accept.bind(listener);
  const perTurn: number[] = [0];
  let total = 0;
  listener.accept = () => {
    const s = accept();
    if (s) {
      perTurn[perTurn.length - 1]++;
      total++;
    }
    return s;
  };
  let counting = true;
  const nextTurn = (): void => {
    perTurn.push(0);
    if (counting) setImmediate(nextTurn);
  };
  setImmediate(nextTurn);
  t.teardown(() => {
    counting = false;
    listener.accept = accept;
  });
  // Other work queued on the loop while the flood is accepted: it must run before the flood is done.
  let acceptedWhenOtherWorkRan = -1;
  const otherWork = (): void => {
    if (total === 0) setImmediate(otherWork);
    else setImmediate(() => (acceptedWhenOtherWorkRan = total));
  };
  setImmediate(otherWork);
  // 300 connections queued in one synchronous burst (connect is non-blocking; the backlog is 4096).
  const flood = 300;
  const conns: ControlConnection[] = [];
  for (let i = 0; i < flood; i++) conns.push(ControlConnection.connect(controlPath(socketPath)));
  try {
    await waitFor(() => total === flood, 'every flood connection to be accepted');
    const busy = perTurn.filter((n) => n > 0);
    t.true(Math.max(...busy) <= ACCEPTS_PER_TURN, `at most ${ACCEPTS_PER_TURN} per turn: ${busy.join(',')}`);
    t.true(busy.length >= Math.ceil(flood / ACCEPTS_PER_TURN));
    t.true(acceptedWhenOtherWorkRan >= 1 && acceptedWhenOtherWorkRan < flood, `other work ran after ${acceptedWhenOtherWorkRan} accepts`);
    // An honest client still gets through after the flood.
    const c = await connect(t, socketPath);
    t.is(await c.request('echo', 'after'), 'after');
  } finally {
    for (const c of conns) c.close();
  }
});
