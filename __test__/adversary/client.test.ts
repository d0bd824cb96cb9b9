/**
 * The library's IpcClient against a hostile server (issue 7 items 11–13 and 15): the Rust
 * adversary plays the server; the client runs in a child process (fixtures/victim.ts) so a crash
 * shows as its exit and a hang as a timeout. Each case asserts that the client process exits
 * cleanly, with no unhandled rejection, and gets the typed error (or the reply) stated.
 */
import test from 'ava';
import { ensureAdversary, Scope, sockPath, startAdversary, Victims, within } from './harness';

const scope = new Scope();
const victims = new Victims(scope);
test.before(() => ensureAdversary());
test.after.always(() => scope.run());

/**
 * What the client must end with: a reply (`ok: true`), an IpcError whose code is one of `codes`
 * (`ok: false`), or either of those (`ok: 'either'`: the server misbehaved in a way the client
 * may or may not have noticed before its reply arrived).
 */
type Expect = { ok: true } | { ok: false | 'either'; codes: string[]; check?: (r: Record<string, unknown>) => string | null };

const TYPED_CORRUPT = ['RING_CORRUPT', 'CONNECTION_LOST', 'PROTOCOL_ERROR'];
const BAD_FDS = ['INVALID_SHM', 'HANDSHAKE_REJECTED', 'PROTOCOL_ERROR'];

const CASES: Array<[string, string, Expect]> = [
  ['echo', 'an honest adversary server answers (checks the adversary itself)', { ok: true }],
  ['goaway-short', 'item 11: GOAWAY with a 2-byte body', { ok: false, codes: ['PROTOCOL_ERROR', 'CONNECTION_LOST'] }],
  ['goaway-empty', 'item 11: GOAWAY with an empty body', { ok: false, codes: ['PROTOCOL_ERROR', 'CONNECTION_LOST'] }],
  ['control-unknown', 'item 11: a control frame of unknown type after READY', { ok: false, codes: ['PROTOCOL_ERROR', 'CONNECTION_LOST'] }],
  ['control-fds', 'a control frame carrying fds after READY', { ok: false, codes: ['PROTOCOL_ERROR', 'CONNECTION_LOST'] }],
  ['doorbell-block', 'item 12: a poisoned doorbell (blocking, saturated or flooded, never read)', { ok: true }],
  ['doorbell-shutdown', 'item 12: the server shuts its doorbell end down', { ok: 'either', codes: ['CONNECTION_LOST', 'CHANNEL_CLOSED'] }],
  // TIMEOUT: the client had parked before the head was poisoned, and a hostile server never
  // rings; it finds out at its next look, and the request's timeout fires first. No livelock.
  ['head-livelock', 'item 12: head = 0xFFFFFFFF after READY', { ok: false, codes: [...TYPED_CORRUPT, 'TIMEOUT'] }],
  ['head-livelock-early', 'item 12: head = 0xFFFFFFFF in the ring WELCOME passes', { ok: false, codes: [...TYPED_CORRUPT, ...BAD_FDS] }],
  ['tail-livelock', 'tail = 0xFFFFFFFF in the client→server ring WELCOME passes', { ok: false, codes: [...TYPED_CORRUPT, ...BAD_FDS] }],
  ['ring-garbage', 'garbage records in the server→client ring', { ok: false, codes: TYPED_CORRUPT }],
  ['welcome-eventfd', 'item 13: an eventfd as doorbell', { ok: false, codes: BAD_FDS }],
  ['welcome-pipe', 'item 13: a pipe as doorbell', { ok: false, codes: BAD_FDS }],
  ['welcome-dgram', 'item 13: a datagram socket as doorbell', { ok: false, codes: BAD_FDS }],
  ['welcome-same-memfd', 'item 13: one memfd for both rings', { ok: false, codes: BAD_FDS }],
  ['welcome-unsealed', 'item 13: unsealed memfds', { ok: false, codes: BAD_FDS }],
  ['welcome-no-seal-seal', 'item 13: memfds without F_SEAL_SEAL', { ok: false, codes: BAD_FDS }],
  ['welcome-write-seal', 'item 13: memfds sealed against writing', { ok: false, codes: BAD_FDS }],
  ['welcome-wrong-size', 'item 13: memfds of the wrong size', { ok: false, codes: BAD_FDS }],
  ['welcome-few-fds', 'WELCOME with 2 fds', { ok: false, codes: BAD_FDS }],
  ['welcome-extra-fds', 'WELCOME with one fd too many', { ok: false, codes: BAD_FDS }],
  ['welcome-no-fds', 'WELCOME with no fds', { ok: false, codes: BAD_FDS }],
  ['welcome-bad-version', 'WELCOME naming a version nobody offered', { ok: false, codes: BAD_FDS }],
  ['welcome-bad-ring-magic', 'rings with a wrong magic', { ok: false, codes: BAD_FDS }],
  ['welcome-bad-capacity', 'WELCOME with a capacity that is not a power of two', { ok: false, codes: BAD_FDS }],
  ['welcome-close', 'the server closes right after WELCOME', { ok: false, codes: ['CONNECTION_LOST', 'HANDSHAKE_REJECTED'] }],
  [
    'reject-full',
    'item 15: REJECT 7 arrives as its own typed error with the server’s message',
    {
      ok: false,
      codes: ['HANDSHAKE_REJECTED'],
      check: (r) =>
        (r.details as { reasonCode?: number } | undefined)?.reasonCode === 7 && String(r.message).includes('every slot is taken')
          ? null
          : `REJECT 7 should carry reasonCode 7 and the server's message, got ${JSON.stringify(r)}`,
    },
  ],
  ['frame-short', 'a 4-byte data frame', { ok: false, codes: ['PROTOCOL_ERROR', 'CONNECTION_LOST'] }],
  [
    'frame-unknown-kind',
    'a data frame of unknown kind for our call',
    { ok: false, codes: ['PROTOCOL_ERROR', 'CONNECTION_LOST', 'TIMEOUT'] },
  ],
  ['frame-bad-error', 'an ERROR frame whose payload is not JSON', { ok: false, codes: ['PROTOCOL_ERROR'] }],
  ['frame-unknown-id', 'a RESPONSE for an id nobody used is ignored', { ok: true }],
  ['silent', 'a server that never answers: the call times out', { ok: false, codes: ['TIMEOUT'] }],
  ['vanish', 'the server dies at a random moment after READY', { ok: 'either', codes: ['CONNECTION_LOST', 'CHANNEL_CLOSED'] }],
  ['silent-handshake', 'a server that never sends WELCOME: the handshake times out', { ok: false, codes: ['HANDSHAKE_TIMEOUT'] }],
];

for (const [attack, what, expect] of CASES) {
  test.serial(`hostile server: ${what} (${attack})`, async (t) => {
    const own = new Scope();
    t.teardown(() => own.run());
    const socketPath = sockPath(own);
    const adv = startAdversary(['server', socketPath, attack, '--iterations', '1']);
    own.teardown(async () => {
      adv.proc.kill('SIGKILL');
      await adv.closed;
    });
    await within(
      (async () => {
        while (!adv.lines.some((l) => l.type === 'listening')) await new Promise((r) => setTimeout(r, 20));
      })(),
      15_000,
      'adversary server listening',
    );
    const result = await victims.run(socketPath);
    const conn = adv.lines.find((l) => l.type === 'connection');
    t.log(`client: ${JSON.stringify(result)}; adversary saw: ${JSON.stringify(conn ?? adv.lines[adv.lines.length - 1])}`);
    if (result.crashed) return t.fail(`the client process crashed (${result.crashed}): ${result.stderr}`);
    if (result.hung) return t.fail(`the client hung (${result.hung}): ${result.stderr}`);
    t.deepEqual(result.unhandled, [], 'no unhandled rejection in the client');
    if (expect.ok === 'either' && result.ok === true) {
      t.deepEqual(result.value, { hello: 'victim' });
      return;
    }
    if (expect.ok === true) {
      t.true(result.ok === true, `expected a reply, got ${JSON.stringify(result)}`);
      t.deepEqual(result.value, { hello: 'victim' });
      return;
    }
    t.false(result.ok === true, 'the call must fail');
    t.true(expect.codes.includes(String(result.code)), `expected one of ${expect.codes.join(', ')}, got ${result.code}: ${result.message}`);
    const problem = expect.check?.(result);
    if (problem) t.fail(problem);
    if (attack.startsWith('welcome-') && attack !== 'welcome-close' && conn) {
      t.not(conn.client, 'ready', 'the client must not accept unusable fds');
    }
  });
}
