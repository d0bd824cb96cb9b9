/**
 * Hostile clients that corrupt what the server reads: ring indices and records (issue 7 items 1
 * and 4, seeded scribbling of every header word and record field), malformed data frames (every
 * case of the v2 plan's section 6) and handshake fuzz. After each: the server is alive, serves a
 * fresh client, and its fds, memfd mappings, sessions and RSS return to their baseline.
 */
import test from 'ava';
import { clientAttack, ensureAdversary, Scope, SOAK, TargetPool } from './harness';

const scope = new Scope();
const pool = new TargetPool(scope, { handshakeTimeoutMs: 1000 });
const SEED = Number(process.env.ADVERSARY_SEED ?? 7);

test.before(() => ensureAdversary());
test.after.always(() => scope.run());

test.serial('item 1: a garbage tail in the server→client ring ends only that session', async (t) => {
  const { run } = await clientAttack(t, pool, 'ring-tail-garbage', { iterations: 4 * SOAK });
  t.true(run.iterations.every((l) => l.eof === true));
});

test.serial('item 4: head = 0xFFFFFFFF before READY ends the session (no livelock)', async (t) => {
  await clientAttack(t, pool, 'head-sentinel', { iterations: 3 * SOAK });
});

test.serial('item 4: tail = 0xFFFFFFFF before READY ends the session', async (t) => {
  await clientAttack(t, pool, 'tail-sentinel', { iterations: 3 * SOAK });
});

test.serial(`scribbling every shared header word and record fields of both rings (seed ${SEED})`, async (t) => {
  const { run } = await clientAttack(t, pool, 'scribble', { iterations: 30 * SOAK, seed: SEED });
  const outcomes = new Map<string, number>();
  for (const l of run.iterations) {
    const k = String(l.outcome).replace(/^error0 (\S+).*/, 'error0 $1');
    outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
  }
  t.log(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
});

test.serial(
  'every malformed data frame ends the session with an id-0 PROTOCOL_ERROR; unknown-id CANCEL/STREAM_CREDIT are ignored',
  async (t) => {
    const { run } = await clientAttack(t, pool, 'malformed-frames');
    const ended = run.iterations.filter((l) => 'eof' in l);
    t.true(ended.length >= 20, 'the malformed cases ran');
    const withoutError = ended.filter((l) => l.code !== 'PROTOCOL_ERROR').map((l) => `${l.case}: ${l.code ?? 'no id-0 ERROR'}`);
    t.deepEqual(withoutError, [], 'each malformed frame gets an id-0 ERROR PROTOCOL_ERROR before the session ends');
    t.true(
      ended.every((l) => l.closedWord === true),
      `the server sets its ring's closed word on every session end: ${ended
        .filter((l) => l.closedWord !== true)
        .map((l) => l.case)
        .join(', ')}`,
    );
  },
);

test.serial(`a peer scribbling both rings while calls are in flight (seed ${SEED})`, async (t) => {
  const { run } = await clientAttack(t, pool, 'scribble-live', { iterations: 6 * SOAK, seed: SEED, 'duration-ms': 300 });
  t.log(
    run.iterations
      .map((l) => `${l.scribbles} scribbles: ${l.replies} replies, ${l.failedCalls} failed calls${l.sessionEnded ? ', session ended' : ''}`)
      .join('; '),
  );
});

test.serial(`handshake fuzz: random and truncated frames, wrong magic, versions, pid and slot (seed ${SEED})`, async (t) => {
  const { run } = await clientAttack(t, pool, 'handshake-fuzz', { iterations: 40 * SOAK, seed: SEED });
  const byCase = new Map<string, Set<string>>();
  for (const l of run.iterations) byCase.set(String(l.case), (byCase.get(String(l.case)) ?? new Set()).add(String(l.got)));
  t.log([...byCase].map(([c, g]) => `${c}: ${[...g].join('/')}`).join('; '));
});
