/**
 * Attack report: runs every attack of the Rust adversary (`crates/lapce_ai_adversary`) against a
 * real IpcServer (hostile clients) or the library's IpcClient (hostile servers), and prints one
 * table: iterations run clean, and the server's fds, memfd mappings, sessions and RSS before and
 * after. The adversarial test suite (`__test__/adversary`) asserts the same things; this is the
 * bench-style summary of them.
 *
 *   node --import=tsx benches/attacks.ts [--soak] [--json] [--only NAME[,NAME…]]
 *
 * `--soak` runs 10× the iterations; `--only` runs the named attacks (and `idle`, the RSS per
 * idle connection) only. Exit status 1 if any attack left something behind.
 */
import {
  ensureAdversary,
  percentile,
  runClientAttack,
  Scope,
  sockPath,
  startAdversary,
  Target,
  Victims,
  within,
} from '../__test__/adversary/harness';
import type { Footprint } from '../__test__/adversary/harness';
import { footprintCell as fp } from './lib/attack-row';
import type { AttackRow as Row } from './lib/attack-row';
import { IpcClient } from '../dist/ipc/client';

const soak = process.argv.includes('--soak') ? 10 : 1;
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt > 0 ? new Set(process.argv[onlyAt + 1].split(',')) : null;
const wanted = (name: string): boolean => !only || only.has(name);

/** Hostile clients: name, arguments, server options, the server's fd limit. */
const CLIENT_ATTACKS: Array<[string, Record<string, number>, Record<string, unknown>?, number?]> = [
  ['ring-tail-garbage', { iterations: 10 }],
  ['doorbell-block', { iterations: 5 }],
  ['doorbell-flood', { iterations: 5 }],
  ['doorbell-shutdown', { iterations: 5 }],
  ['doorbell-close', { iterations: 5 }],
  ['hello-close', { iterations: 100 }],
  ['welcome-close', { iterations: 100 }],
  ['ready-close', { iterations: 500 }],
  ['streams-close', { iterations: 50 }],
  ['head-sentinel', { iterations: 10 }],
  ['tail-sentinel', { iterations: 10 }],
  ['frame-flood', { iterations: 1, 'duration-ms': 3000 }],
  ['unread-replies', { iterations: 1, 'duration-ms': 3000 }],
  ['in-flight', { iterations: 1 }],
  ['held-payloads', { iterations: 1 }],
  ['ctl-fds', { iterations: 50 }],
  ['hello-fds', { iterations: 20 }],
  ['hello-many-fds', { iterations: 20 }],
  ['fragment-hold', { connections: 5, 'duration-ms': 2000 }, { reassemblyBudget: 40 << 20 }],
  ['session-churn', { iterations: 500 }],
  ['scribble', { iterations: 50, seed: 7 }],
  ['scribble-live', { iterations: 10, seed: 7, 'duration-ms': 300 }],
  ['handshake-fuzz', { iterations: 100, seed: 7 }],
  ['malformed-frames', {}],
  ['stream-no-credit', { iterations: 3 }],
  ['credit-overflow', { iterations: 1, 'duration-ms': 2000 }],
  ['session-burst', { iterations: 2, connections: 200, 'duration-ms': 0 }],
  ['fd-exhaust', { iterations: 1, connections: 400, 'duration-ms': 2000 }, {}, 160],
];

/** Hostile servers: name and the result the client must end with (a reply, or these codes). */
const SERVER_ATTACKS: Array<[string, true | string[]]> = [
  ['goaway-short', ['PROTOCOL_ERROR', 'CONNECTION_LOST']],
  ['goaway-empty', ['PROTOCOL_ERROR', 'CONNECTION_LOST']],
  ['control-unknown', ['PROTOCOL_ERROR', 'CONNECTION_LOST']],
  ['control-fds', ['PROTOCOL_ERROR', 'CONNECTION_LOST']],
  ['doorbell-block', true],
  // A client that already went to sleep when the head was poisoned (the server never rings)
  // finds out only when it looks again; until then its request times out. Either way: no
  // livelock, a typed error.
  ['head-livelock', ['RING_CORRUPT', 'CONNECTION_LOST', 'PROTOCOL_ERROR', 'TIMEOUT']],
  ['head-livelock-early', ['RING_CORRUPT', 'CONNECTION_LOST', 'PROTOCOL_ERROR', 'INVALID_SHM', 'HANDSHAKE_REJECTED']],
  ['tail-livelock', ['RING_CORRUPT', 'CONNECTION_LOST', 'PROTOCOL_ERROR', 'INVALID_SHM', 'HANDSHAKE_REJECTED']],
  ['ring-garbage', ['RING_CORRUPT', 'CONNECTION_LOST', 'PROTOCOL_ERROR']],
  ...[
    'eventfd',
    'pipe',
    'dgram',
    'same-memfd',
    'unsealed',
    'no-seal-seal',
    'write-seal',
    'wrong-size',
    'few-fds',
    'extra-fds',
    'no-fds',
  ].map((w): [string, string[]] => [`welcome-${w}`, ['INVALID_SHM', 'HANDSHAKE_REJECTED', 'PROTOCOL_ERROR']]),
  ['reject-full', ['HANDSHAKE_REJECTED']],
  ['frame-short', ['PROTOCOL_ERROR', 'CONNECTION_LOST']],
  ['frame-bad-error', ['PROTOCOL_ERROR']],
  ['frame-unknown-id', true],
  ['silent', ['TIMEOUT']],
  ['vanish', ['CONNECTION_LOST', 'CHANNEL_CLOSED']],
  ['silent-handshake', ['HANDSHAKE_TIMEOUT']],
];

async function floodProbe(target: Target): Promise<string> {
  let flooding = true;
  const flood = runClientAttack(target.socketPath, 'frame-flood', { 'duration-ms': 3000 * soak }).finally(() => (flooding = false));
  await new Promise((r) => setTimeout(r, 200));
  const c = await IpcClient.connect(target.socketPath, { name: 'attack-report-probe' });
  const lat: number[] = [];
  for (let i = 0; flooding; i++) {
    const t0 = process.hrtime.bigint();
    await within(c.request('echo', { i }), 15_000, 'probe under flood');
    lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await new Promise((r) => setTimeout(r, 2));
  }
  c.close();
  await flood;
  return `another client under the flood: ${lat.length} requests, p50 ${percentile(lat, 50).toFixed(2)} ms, p99 ${percentile(lat, 99).toFixed(2)} ms`;
}

/** Server RSS per idle session: 200 sessions (1 MiB rings, one call each) held open. */
async function idleCost(): Promise<{ sessions: number; kbPerSession: number; text: string }> {
  const scope = new Scope();
  const target = await Target.start(scope, { handshakeTimeoutMs: 1000 });
  const before = await target.baseline();
  const sessions = 200;
  const adv = startAdversary(['client', target.socketPath, 'session-burst', '--connections', String(sessions), '--duration-ms', '3000']);
  while (!adv.lines.some((l) => l.type === 'holding')) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 500));
  const held = await target.footprint();
  await adv.closed;
  await scope.run();
  const kbPerSession = (held.rssKb - before.rssKb) / sessions;
  const text =
    `RSS per idle connection: ${kbPerSession.toFixed(0)} KiB (${sessions} sessions held, 1 MiB rings, after a full GC; ` +
    `server RSS ${(before.rssKb / 1024).toFixed(0)} -> ${(held.rssKb / 1024).toFixed(0)} MiB, fds ${before.fds} -> ${held.fds}, memfd maps ${before.memfdMaps} -> ${held.memfdMaps})`;
  return { sessions, kbPerSession, text };
}

async function main(): Promise<void> {
  ensureAdversary();
  const scope = new Scope();
  const rows: Row[] = [];
  try {
    for (const [attack, args0, options, nofile] of CLIENT_ATTACKS.filter(([a]) => wanted(a))) {
      const args = { ...args0 };
      if (args.iterations) args.iterations *= soak;
      const own = new Scope();
      const target = await Target.start(own, { handshakeTimeoutMs: 1000, ...options }, nofile);
      const before = await target.baseline();
      const run = await runClientAttack(target.socketPath, attack, args, 300_000);
      const clean = run.iterations.filter((l) => l.ok === true).length;
      let after: Footprint | undefined;
      let note = '';
      let back = false;
      if (!(await target.alive())) note = `server died: ${target.death().slice(0, 200)}`;
      else {
        try {
          await target.probe(attack);
          after = (await target.settle(before, 10_000, attack !== 'session-churn')).after;
          back = true;
        } catch (e) {
          note = (e as Error).message.slice(0, 300);
          after = await target.footprint();
        }
      }
      if (attack === 'frame-flood' && back) note = await floodProbe(target);
      const failed = run.iterations.filter((l) => l.ok !== true)[0];
      if (failed && !note) note = `first not ok: ${JSON.stringify(failed).slice(0, 200)}`;
      rows.push({
        role: 'client',
        attack,
        iterations: run.iterations.length,
        clean,
        before,
        after,
        note,
        pass: back && clean === run.iterations.length && !!run.done,
      });
      await own.run();
      process.stderr.write(`client ${attack}: ${clean}/${run.iterations.length}\n`);
    }
    const victims = new Victims(scope);
    for (const [attack, want] of SERVER_ATTACKS.filter(([a]) => wanted(a))) {
      let clean = 0;
      let note = '';
      const n = 3 * soak;
      for (let i = 0; i < n; i++) {
        const own = new Scope();
        const socketPath = sockPath(own);
        const adv = startAdversary(['server', socketPath, attack, '--iterations', '1', '--seed', String(i)]);
        own.teardown(async () => {
          adv.proc.kill('SIGKILL');
          await adv.closed;
        });
        while (!adv.lines.some((l) => l.type === 'listening')) await new Promise((r) => setTimeout(r, 20));
        const r = await victims.run(socketPath);
        const good =
          !r.crashed &&
          !r.hung &&
          (r.unhandled as unknown[])?.length === 0 &&
          (want === true ? r.ok === true : r.ok !== true && want.includes(String(r.code)));
        if (good) clean++;
        else if (!note) note = JSON.stringify(r).slice(0, 200);
        if (i === 0 && good && r.code) note = `${r.code}`;
        await own.run();
      }
      rows.push({ role: 'server', attack, iterations: n, clean, note, pass: clean === n });
      process.stderr.write(`server ${attack}: ${clean}/${n}\n`);
    }
  } finally {
    await scope.run();
  }
  const idle = wanted('idle') ? await idleCost() : { sessions: 0, kbPerSession: NaN, text: '' };
  if (process.argv.includes('--json')) {
    process.stdout.write(JSON.stringify({ rows, idle }) + '\n');
  } else {
    if (idle.text) process.stdout.write(`${idle.text}\n\n`);
    process.stdout.write(
      '| role | attack | iterations clean | server fds/memfd maps/sessions/RSS MiB before → after | result | note |\n|---|---|---|---|---|---|\n',
    );
    for (const r of rows) {
      process.stdout.write(
        `| ${r.role} | ${r.attack} | ${r.clean}/${r.iterations} | ${r.role === 'client' ? `${fp(r.before)} → ${fp(r.after)}` : 'client process: exit, no hang'} | ${r.pass ? 'pass' : 'FAIL'} | ${r.note.replace(/\|/g, '/')} |\n`,
      );
    }
  }
  process.exitCode = rows.every((r) => r.pass) ? 0 : 1;
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(2);
});
