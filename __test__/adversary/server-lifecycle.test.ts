/**
 * Hostile clients that hang up at every moment, pile fds, and churn sessions (issue 7 items 3,
 * 7, 10 and 15). After each: the server is alive, serves a fresh client, and its fds, memfd
 * mappings, sessions and RSS return to their baseline.
 */
import test from 'ava';
import { assertRecovered, clientAttack, ensureAdversary, Scope, SOAK, startAdversary, TargetPool } from './harness';

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
  const { run } = await clientAttack(t, pool, 'session-churn', { iterations: 200 * SOAK }, { gc: false });
  t.is(run.iterations.length, 200 * SOAK);
});
