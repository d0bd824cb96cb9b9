/**
 * Hostile clients that hang up at every moment, pile fds, and churn sessions (issue 7 items 3,
 * 7, 10 and 15). After each: the server is alive, serves a fresh client, and its fds, memfd
 * mappings, sessions and RSS return to their baseline.
 */
import test from 'ava';
import { assertRecovered, clientAttack, clientChurn, ensureAdversary, Scope, SOAK, startAdversary, Target, TargetPool } from './harness';

const scope = new Scope();
const pool = new TargetPool(scope, { handshakeTimeoutMs: 1000 });

test.before(() => ensureAdversary());
test.after.always(() => scope.run());

for (const [attack, n, what] of [
  ['hello-close', 40, 'in the middle of HELLO'],
  ['welcome-close', 40, 'between WELCOME and READY'],
  ['ready-close', 200, '0 µs after READY'],
  ['streams-close', 20, 'with streams in flight'],
] as const) {
  test.serial(`item 3: a control socket closed ${what} ends the session at once (${attack})`, async (t) => {
    await clientAttack(t, pool, attack, { iterations: n * SOAK });
  });
}

test.serial('item 3: kill -9 of a client at random points of handshakes and sessions', async (t) => {
  const target = await pool.get();
  const base = await target.baseline();
  const rounds = 6 * SOAK;
  let handshakes = 0;
  for (let r = 0; r < rounds; r++) {
    const adv = startAdversary(['client', target.socketPath, 'storm', '--iterations', '1000000', '--seed', String(r)]);
    await new Promise((res) => setTimeout(res, 50 + ((r * 97) % 400)));
    adv.proc.kill('SIGKILL');
    await adv.closed;
    handshakes += adv.lines.filter((l) => l.type === 'iteration').length;
  }
  t.log(`${rounds} clients killed with SIGKILL after ${handshakes} completed storm iterations`);
  await assertRecovered(t, target, base, 'kill -9 storm');
});

test.serial('item 7: fds attached to a control frame after READY are closed and end the session', async (t) => {
  await clientAttack(t, pool, 'ctl-fds', { iterations: 30 * SOAK });
});

test.serial('item 15: a HELLO carrying fds gets REJECT 6', async (t) => {
  await clientAttack(t, pool, 'hello-fds', { iterations: 10 * SOAK });
});

test.serial('item 15: a HELLO carrying more than 8 fds gets REJECT 6', async (t) => {
  await clientAttack(t, pool, 'hello-many-fds', { iterations: 10 * SOAK });
});

test.serial('item 10: sessions opened, used and closed release their mappings and fds without GC', async (t) => {
  // A young generation so large that no scavenge runs during the test: mappings freed only by
  // GC finalizers would stay, deterministic release frees them at once.
  const own = new Scope();
  t.teardown(() => own.run());
  const target = await Target.start(own, { handshakeTimeoutMs: 1000 }, undefined, ['--max-semi-space-size=128']);
  const { run } = await clientAttack(t, TargetPool.of(own, target), 'session-churn', { iterations: 200 * SOAK }, { gc: false });
  t.is(run.iterations.length, 200 * SOAK);
});

test.serial('item 10: many sessions closed together release their mappings and fds without GC', async (t) => {
  const own = new Scope();
  t.teardown(() => own.run());
  const target = await Target.start(own, { handshakeTimeoutMs: 1000 }, undefined, ['--max-semi-space-size=128']);
  await clientAttack(
    t,
    TargetPool.of(own, target),
    'session-burst',
    { iterations: 2 * SOAK, connections: 200, 'duration-ms': 0 },
    { gc: false },
  );
});

test.serial('item 10: a client process that closes many IpcClients releases their mappings and fds without GC', async (t) => {
  const target = await pool.get();
  const base = await target.baseline();
  // At most the server's default maxConnections (1024) at once.
  const count = Math.min(200 * SOAK, 1000);
  const r = (await clientChurn(t, target.socketPath, count)) as {
    type: string;
    message?: string;
    before: { maps: number; fds: number };
    open: { maps: number; fds: number };
    after: { maps: number; fds: number };
  };
  t.is(r.type, 'result', r.message);
  t.log(
    `client process: memfd maps ${r.before.maps} -> ${r.open.maps} open -> ${r.after.maps} 100 ms after close; fds ${r.before.fds} -> ${r.open.fds} -> ${r.after.fds}`,
  );
  t.true(r.open.maps >= 2 * count, 'each open client maps its two rings');
  t.is(r.after.maps, r.before.maps, 'mappings of closed clients are released without waiting for GC');
  t.is(r.after.fds, r.before.fds, 'fds of closed clients are closed');
  await assertRecovered(t, target, base, 'client churn', false);
});
