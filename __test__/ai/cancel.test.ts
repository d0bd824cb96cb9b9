/**
 * Timeouts and cancellation: each must end the chat with the right error AND close the
 * provider's HTTP connection, which the mocks observe from their side.
 *
 * Timeouts here are 2 s against mock delays of 30 s: long enough that even a loaded machine
 * has delivered the request to the mock before they fire (so the mock can see the connection
 * close), short enough to keep the suite quick. A slow machine can only make a test slower,
 * never flip its outcome. Waits for the connection to close are bounded generously and only
 * ever checked for "it happened".
 */
import test from 'ava';
import type { ChatEvent } from '../../src/ai';
import type { MockServer } from './mocks/harness';
import { type Mocks, ask, collect, routerFor, startMocks, stopMocks, within } from './helpers';

const LONG = 30_000;
const BOUND = 10_000;
/** Short enough for a quick test, long enough for the request to reach the mock first. */
const SHORT = 2000;

async function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const m = await startMocks();
  t.teardown(() => stopMocks(m));
  return m;
}

async function closedByClient(mock: MockServer, i = 0) {
  return within(mock.requests[i].closed, BOUND);
}

test('first-chunk timeout: headers arrive, no chunk → timeout, connection closed', async (t) => {
  const m = await setup(t);
  m.openai.enqueue({ kind: 'stream', firstDelayMs: LONG });
  const { router } = routerFor(m, { retry: { maxAttempts: 1 }, timeouts: { firstChunkMs: SHORT } });
  const { events, error } = await collect(router.chat(ask('gpt-4o')));
  t.deepEqual(events, []);
  t.is(error?.code, 'TIMEOUT');
  t.true(error?.retryable);
  t.regex(error!.message, /first event within 2000 ms/);
  t.deepEqual(await closedByClient(m.openai), { byClient: true });
});

test('first-chunk timeout while the server has not even sent headers (hang)', async (t) => {
  const m = await setup(t);
  m.gemini.enqueue({ kind: 'hang', noHeaders: true });
  const { router } = routerFor(m, { retry: { maxAttempts: 1 }, timeouts: { firstChunkMs: SHORT } });
  const { error } = await collect(router.chat(ask('gemini-2.5-flash')));
  t.is(error?.code, 'TIMEOUT');
  t.deepEqual(await closedByClient(m.gemini), { byClient: true });
});

test('a first-chunk timeout is retried like any retryable failure', async (t) => {
  const m = await setup(t);
  m.anthropic.enqueue({ kind: 'hang' });
  const { router } = routerFor(m, { retry: { maxAttempts: 2 }, timeouts: { firstChunkMs: SHORT } });
  const { error, text } = await collect(router.chat(ask('claude-x')));
  t.is(error, undefined);
  t.is(text, 'Hello, world!');
  t.is(m.anthropic.requests.length, 2);
  t.deepEqual(await closedByClient(m.anthropic, 0), { byClient: true });
});

test('between-chunks timeout after the first token: error, no retry, connection closed', async (t) => {
  const m = await setup(t);
  m.anthropic.enqueue({ kind: 'stream', chunks: ['Hel', 'lo'], delayMs: LONG });
  const { router } = routerFor(m, { retry: { maxAttempts: 3 }, timeouts: { betweenChunksMs: SHORT } });
  const { events, error, text } = await collect(router.chat(ask('claude-x')));
  t.like(events[0], { type: 'start', provider: 'anthropic' });
  t.is(text, 'Hel');
  t.is(error?.code, 'TIMEOUT');
  t.regex(error!.message, /next event within 2000 ms/);
  t.is(m.anthropic.requests.length, 1);
  t.deepEqual(await closedByClient(m.anthropic), { byClient: true });
});

test('total timeout bounds a reply that keeps trickling', async (t) => {
  const m = await setup(t);
  m.ollama.enqueue({ kind: 'stream', chunks: Array.from({ length: 1000 }, () => 'x'), delayMs: 20 });
  const { router } = routerFor(m, { timeouts: { totalMs: SHORT } });
  const { error, text } = await collect(router.chat(ask('ollama/llama3.2')));
  t.is(error?.code, 'TIMEOUT');
  t.regex(error!.message, /complete reply within 2000 ms/);
  t.true(text.length > 0 && text.length < 1000);
  t.deepEqual(await closedByClient(m.ollama), { byClient: true });
});

const slow: Array<[keyof Mocks, string]> = [
  ['gemini', 'gemini-2.5-flash'],
  ['openai', 'gpt-4o'],
  ['anthropic', 'claude-x'],
  ['ollama', 'ollama/llama3.2'],
  ['local', 'local/qwen'],
];
for (const [name, model] of slow) {
  test(`${name}: aborting the caller's signal mid-stream ends with cancelled and closes the connection`, async (t) => {
    const m = await setup(t);
    m[name].enqueue({ kind: 'stream', chunks: Array.from({ length: 50 }, (_, i) => `c${i} `), delayMs: 200 });
    const { router } = routerFor(m);
    const ac = new AbortController();
    const events: ChatEvent[] = [];
    const err = await t.throwsAsync(async () => {
      for await (const ev of router.chat(ask(model), { signal: ac.signal })) {
        events.push(ev);
        if (ev.type === 'delta') ac.abort();
      }
    });
    t.is((err as { code?: string }).code, 'CANCELLED');
    t.deepEqual(
      events.map((e) => e.type),
      ['start', 'delta'],
    );
    t.deepEqual(await closedByClient(m[name]), { byClient: true });
    t.is(m[name].requests.length, 1, 'a cancellation is never retried');
  });
}

test('stopping iteration early (generator return) closes the connection', async (t) => {
  const m = await setup(t);
  m.openai.enqueue({ kind: 'stream', chunks: Array.from({ length: 50 }, () => 'x'), delayMs: 200 });
  const { router } = routerFor(m);
  const gen = router.chat(ask('gpt-4o'));
  t.like((await gen.next()).value, { type: 'start' });
  t.like((await gen.next()).value, { type: 'delta' });
  t.deepEqual(await gen.return(undefined), { done: true, value: undefined });
  t.deepEqual(await closedByClient(m.openai), { byClient: true });
});

test('breaking out of for-await closes the connection', async (t) => {
  const m = await setup(t);
  m.ollama.enqueue({ kind: 'stream', chunks: Array.from({ length: 50 }, () => 'x'), delayMs: 200 });
  const { router } = routerFor(m);
  for await (const ev of router.chat(ask('ollama/llama3.2'))) if (ev.type === 'delta') break;
  t.deepEqual(await closedByClient(m.ollama), { byClient: true });
});

test('cancelling before the first chunk aborts the pending request', async (t) => {
  const m = await setup(t);
  m.openai.enqueue({ kind: 'hang', noHeaders: true });
  const { router } = routerFor(m);
  const ac = new AbortController();
  const run = collect(router.chat(ask('gpt-4o'), { signal: ac.signal }));
  await m.openai.waitForRequests(1);
  ac.abort();
  const { events, error } = await run;
  t.deepEqual(events, []);
  t.is(error?.code, 'CANCELLED');
  t.deepEqual(await closedByClient(m.openai), { byClient: true });
});

test('cancelling during a retry backoff ends at once without another request', async (t) => {
  const m = await setup(t);
  m.openai.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '30' } });
  const { router } = routerFor(m, { retry: { maxDelayMs: LONG } });
  const ac = new AbortController();
  const run = collect(router.chat(ask('gpt-4o'), { signal: ac.signal }));
  await m.openai.waitForRequests(1);
  // Give the router a moment to classify the 429 and start sleeping.
  await new Promise((r) => setTimeout(r, 100));
  ac.abort();
  const result = await within(run, BOUND);
  t.not(result, 'timed out', 'the 30 s backoff was cut short');
  if (result !== 'timed out') t.is(result.error?.code, 'CANCELLED');
  t.is(m.openai.requests.length, 1);
});

test('an already-aborted signal sends nothing', async (t) => {
  const m = await setup(t);
  const { router } = routerFor(m);
  const { error } = await collect(router.chat(ask('gpt-4o'), { signal: AbortSignal.abort() }));
  t.is(error?.code, 'CANCELLED');
  t.is(m.openai.requests.length, 0);
});

test('echo honours cancellation too', async (t) => {
  const m = await setup(t);
  const { router } = routerFor(m);
  const ac = new AbortController();
  const events: ChatEvent[] = [];
  const err = await t.throwsAsync(async () => {
    for await (const ev of router.chat(ask('echo', 'one two three four five six'), { signal: ac.signal })) {
      events.push(ev);
      if (ev.type === 'delta') ac.abort();
    }
  });
  t.is((err as { code?: string }).code, 'CANCELLED');
  t.is(events.filter((e) => e.type === 'delta').length, 1);
});
