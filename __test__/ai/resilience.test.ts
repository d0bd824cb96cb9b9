/**
 * Retries, fallback, and how each provider's failures become typed errors.
 * Timing is only ever checked as a lower bound (a wait at least as long as asked).
 */
import test from 'ava';
import type { ChatErrorCode } from '../../src/ai';
import type { MockScript, MockServer } from './mocks/harness';
import { type Mocks, ask, closedPort, collect, routerFor, startMocks, stopMocks } from './helpers';

async function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const m = await startMocks();
  t.teardown(() => stopMocks(m));
  return m;
}

const gap = (mock: MockServer, i = 1) => mock.requests[i].at - mock.requests[i - 1].at;
/** Scheduling slack allowed below a requested wait (timers may fire a little early vs. the mock's clock). */
const SLACK_MS = 60;

test('429 with retry-after (seconds) is retried after at least that long', async (t) => {
  const m = await setup(t);
  m.openai.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '1' } });
  const { events, error } = await collect(routerFor(m).router.chat(ask('gpt-4o')));
  t.is(error, undefined);
  t.like(events[0], { type: 'start', provider: 'openai' });
  t.is(m.openai.requests.length, 2);
  t.true(gap(m.openai) >= 1000 - SLACK_MS, `waited ${gap(m.openai)} ms`);
});

test('429 with retry-after-ms is honoured', async (t) => {
  const m = await setup(t);
  m.openai.enqueue({ kind: 'status', status: 429, headers: { 'retry-after-ms': '400', 'retry-after': '0' } });
  const { error } = await collect(routerFor(m).router.chat(ask('gpt-4o')));
  t.is(error, undefined);
  t.is(m.openai.requests.length, 2);
  t.true(gap(m.openai) >= 400 - SLACK_MS, `waited ${gap(m.openai)} ms`);
});

test('Gemini 429 with RetryInfo in the body (no header) is honoured', async (t) => {
  const m = await setup(t);
  m.gemini.enqueue({ kind: 'status', status: 429, retryDelay: '0.6s' });
  const { error, text } = await collect(routerFor(m).router.chat(ask('gemini-2.5-flash')));
  t.is(error, undefined);
  t.is(text, 'Hello, world!');
  t.is(m.gemini.requests.length, 2);
  t.true(gap(m.gemini) >= 600 - SLACK_MS, `waited ${gap(m.gemini)} ms`);
});

test('a retry-after longer than maxDelayMs falls back at once instead of retrying early', async (t) => {
  const m = await setup(t);
  m.anthropic.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '120' } });
  const { error, events } = await collect(routerFor(m, { retry: { maxDelayMs: 100 }, fallback: ['echo'] }).router.chat(ask('claude-x')));
  t.is(error, undefined);
  t.is(m.anthropic.requests.length, 1, 'no early retry into another 429');
  t.like(events[0], {
    type: 'start',
    provider: 'echo',
    fallbackFrom: [{ provider: 'anthropic', model: 'claude-x', code: 'RATE_LIMITED' }],
  });
});

test('a retry-after longer than maxDelayMs with no fallback is waited out in full when the deadline allows', async (t) => {
  const m = await setup(t);
  m.anthropic.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '1' } });
  const { error, progress } = await collect(routerFor(m, { retry: { maxDelayMs: 100 } }).router.chat(ask('claude-x')));
  t.is(error, undefined);
  t.is(m.anthropic.requests.length, 2);
  t.true(gap(m.anthropic) >= 1000 - SLACK_MS, `waited ${gap(m.anthropic)} ms`);
  t.like(progress[0], { type: 'progress', state: 'retrying', provider: 'anthropic', code: 'RATE_LIMITED', delayMs: 1000 });
});

test('a retry-after longer than the chat deadline fails at once with the provider error', async (t) => {
  const m = await setup(t);
  m.anthropic.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '120' } });
  const { error } = await collect(routerFor(m, { retry: { maxDelayMs: 100 } }).router.chat(ask('claude-x')));
  t.is(error?.code, 'RATE_LIMITED');
  t.is(error?.retryAfterMs, 120_000);
  t.is(m.anthropic.requests.length, 1);
});

const retried: Array<[keyof Mocks, string, MockScript]> = [
  ['openai', 'gpt-4o', { kind: 'status', status: 500 }],
  ['openai', 'gpt-4o', { kind: 'status', status: 502 }],
  ['gemini', 'gemini-2.5-flash', { kind: 'status', status: 503 }],
  ['gemini', 'gemini-2.5-flash', { kind: 'status', status: 500 }],
  ['anthropic', 'claude-x', { kind: 'status', status: 529 }],
  ['anthropic', 'claude-x', { kind: 'status', status: 500 }],
  ['ollama', 'ollama/llama3.2', { kind: 'status', status: 500 }],
  ['local', 'local/qwen', { kind: 'status', status: 503 }],
];
for (const [name, model, script] of retried) {
  test(`${name}: HTTP ${(script as { status: number }).status} is retried and then succeeds`, async (t) => {
    const m = await setup(t);
    m[name].enqueue(script);
    const { error, text } = await collect(routerFor(m).router.chat(ask(model)));
    t.is(error, undefined);
    t.is(text, 'Hello, world!');
    t.is(m[name].requests.length, 2);
  });
}

const notRetried: Array<[keyof Mocks, string, MockScript, ChatErrorCode]> = [
  ['openai', 'gpt-4o', { kind: 'status', status: 401 }, 'AUTH'],
  ['gemini', 'gemini-2.5-flash', { kind: 'status', status: 401 }, 'AUTH'],
  ['anthropic', 'claude-x', { kind: 'status', status: 401 }, 'AUTH'],
  ['anthropic', 'claude-x', { kind: 'status', status: 403 }, 'AUTH'],
  ['openai', 'gpt-4o', { kind: 'status', status: 400, message: 'bad model' }, 'BAD_REQUEST'],
  ['ollama', 'ollama/nope', { kind: 'status', status: 404, message: 'model "nope" not found, try pulling it first' }, 'BAD_REQUEST'],
];
for (const [name, model, script, code] of notRetried) {
  test(`${name}: HTTP ${(script as { status: number }).status} is a ${code} error, not retried`, async (t) => {
    const m = await setup(t);
    m[name].enqueue(script);
    const { events, error } = await collect(routerFor(m).router.chat(ask(model)));
    t.deepEqual(events, []);
    t.is(error?.code, code);
    t.false(error?.retryable);
    t.is(error?.provider, name);
    t.is(m[name].requests.length, 1);
  });
}

test('a wrong key gets a 401 from the mock itself and is not retried', async (t) => {
  const m = await setup(t);
  const { error } = await collect(
    routerFor(m, { providers: { openai: { apiKey: 'sk-wrong-key-000000000000' } } }).router.chat(ask('gpt-4o')),
  );
  t.is(error?.code, 'AUTH');
  t.is(error?.httpStatus, 401);
  t.is(m.openai.requests.length, 1);
});

test('retries are bounded by maxAttempts; the last error is reported', async (t) => {
  const m = await setup(t);
  m.openai.enqueue(...Array.from({ length: 5 }, () => ({ kind: 'status', status: 503 }) as const));
  const { error } = await collect(routerFor(m, { retry: { maxAttempts: 3 } }).router.chat(ask('gpt-4o')));
  t.is(error?.code, 'OVERLOADED');
  t.is(error?.httpStatus, 503);
  t.true(error?.retryable);
  t.is(m.openai.requests.length, 3);
});

const midStream: Array<[keyof Mocks, string, MockScript, ChatErrorCode]> = [
  ['anthropic', 'claude-x', { kind: 'mid-error', errorType: 'overloaded_error' }, 'OVERLOADED'],
  ['anthropic', 'claude-x', { kind: 'mid-error', errorType: 'api_error', message: 'Internal server error' }, 'SERVER_ERROR'],
  ['openai', 'gpt-4o', { kind: 'mid-error', errorType: 'server_error' }, 'SERVER_ERROR'],
  ['gemini', 'gemini-2.5-flash', { kind: 'mid-error', code: 503 }, 'OVERLOADED'],
  ['gemini', 'gemini-2.5-flash', { kind: 'mid-error', code: 500, framed: false }, 'TRUNCATED'],
  ['ollama', 'ollama/llama3.2', { kind: 'mid-error', message: 'model runner has unexpectedly stopped' }, 'SERVER_ERROR'],
];
for (const [name, model, script, code] of midStream) {
  test(`${name}: mid-stream error ${JSON.stringify(script)} → ${code}, not retried after the first token`, async (t) => {
    const m = await setup(t);
    m[name].enqueue(script);
    const { events, error, text } = await collect(routerFor(m).router.chat(ask(model)));
    t.like(events[0], { type: 'start', provider: name });
    t.is(text, 'Partial');
    t.is(error?.code, code);
    t.is(error?.provider, name);
    t.is(m[name].requests.length, 1);
  });
}

test('a mid-stream error before the first token is retried', async (t) => {
  const m = await setup(t);
  m.anthropic.enqueue({ kind: 'mid-error', chunks: [], errorType: 'overloaded_error' });
  const { events, error, text } = await collect(routerFor(m).router.chat(ask('claude-x')));
  t.is(error, undefined);
  t.is(text, 'Hello, world!');
  t.is(events.filter((e) => e.type === 'start').length, 1, 'exactly one start event');
  t.is(m.anthropic.requests.length, 2);
});

const providers: Array<[keyof Mocks, string]> = [
  ['gemini', 'gemini-2.5-flash'],
  ['openai', 'gpt-4o'],
  ['anthropic', 'claude-x'],
  ['ollama', 'ollama/llama3.2'],
  ['local', 'local/qwen'],
];
for (const [name, model] of providers) {
  for (const clean of [false, true]) {
    test(`${name}: stream cut before its terminal frame (${clean ? 'clean end' : 'socket destroyed'}) is a truncated error`, async (t) => {
      const m = await setup(t);
      m[name].enqueue({ kind: 'truncate', clean });
      const { events, error, text } = await collect(routerFor(m).router.chat(ask(model)));
      t.is(text, 'Partial');
      t.false(events.some((e) => e.type === 'finish'));
      t.is(error?.code, 'TRUNCATED');
      t.true(error?.retryable);
      t.is(m[name].requests.length, 1, 'not retried after the first token');
    });
  }
  test(`${name}: truncation before the first token is retried`, async (t) => {
    const m = await setup(t);
    m[name].enqueue({ kind: 'truncate', chunks: [] });
    const { error, text } = await collect(routerFor(m).router.chat(ask(model)));
    t.is(error, undefined);
    t.is(text, 'Hello, world!');
    t.is(m[name].requests.length, 2);
  });
}

test('fallback: retryable failures exhaust retries, then the next provider answers', async (t) => {
  const m = await setup(t);
  m.openai.enqueue(...Array.from({ length: 3 }, () => ({ kind: 'status', status: 503 }) as const));
  const { router } = routerFor(m, { default: 'openai', fallback: ['anthropic', 'gemini'], retry: { maxAttempts: 2 } });
  const { events, error, text } = await collect(router.chat(ask(undefined)));
  t.is(error, undefined);
  t.deepEqual(events[0], {
    type: 'start',
    provider: 'anthropic',
    model: 'claude-sonnet-4-5',
    fallbackFrom: [{ provider: 'openai', model: 'gpt-4o-mini', code: 'OVERLOADED', message: 'openai returned HTTP 503: mock error 503' }],
  });
  t.is(text, 'Hello, world!');
  t.is(m.openai.requests.length, 2);
  t.is(m.anthropic.requests.length, 1);
  t.is(m.gemini.requests.length, 0);
});

test('fallback also covers an explicitly routed model and skips a provider already tried', async (t) => {
  const m = await setup(t);
  m.gemini.enqueue({ kind: 'status', status: 500 }, { kind: 'status', status: 500 });
  const { router } = routerFor(m, { fallback: ['gemini', 'ollama'], retry: { maxAttempts: 2 } });
  const { events, error } = await collect(router.chat(ask('gemini-2.5-pro')));
  t.is(error, undefined);
  t.like(events[0], {
    type: 'start',
    provider: 'ollama',
    model: 'llama3.2',
    fallbackFrom: [{ provider: 'gemini', model: 'gemini-2.5-pro', code: 'SERVER_ERROR' }],
  });
  t.is(m.gemini.requests.length, 2);
});

test('no fallback after the first token', async (t) => {
  const m = await setup(t);
  m.openai.enqueue({ kind: 'mid-error' });
  const { router } = routerFor(m, { default: 'openai', fallback: ['anthropic'] });
  const { events, error } = await collect(router.chat(ask('gpt-4o')));
  t.is(error?.code, 'SERVER_ERROR');
  t.deepEqual(
    events.map((e) => e.type),
    ['start', 'delta'],
  );
  t.is(m.anthropic.requests.length, 0);
});

test('no fallback on a non-retryable failure', async (t) => {
  const m = await setup(t);
  m.openai.enqueue({ kind: 'status', status: 401 });
  const { router } = routerFor(m, { fallback: ['anthropic'] });
  const { error } = await collect(router.chat(ask('gpt-4o')));
  t.is(error?.code, 'AUTH');
  t.is(m.anthropic.requests.length, 0);
});

test('every provider failing ends with the last error', async (t) => {
  const m = await setup(t);
  m.openai.enqueue({ kind: 'status', status: 503 });
  m.anthropic.enqueue({ kind: 'status', status: 529 });
  const { router } = routerFor(m, { fallback: ['anthropic'], retry: { maxAttempts: 1 } });
  const { error } = await collect(router.chat(ask('gpt-4o')));
  t.is(error?.code, 'OVERLOADED');
  t.is(error?.provider, 'anthropic');
  t.is(error?.httpStatus, 529);
});

test('connection refused is a retryable network error that falls back', async (t) => {
  const m = await setup(t);
  const port = await closedPort();
  const { router, logs } = routerFor(m, {
    default: 'dead',
    fallback: ['echo'],
    retry: { maxAttempts: 2 },
    providers: { compatible: { dead: { baseURL: `http://127.0.0.1:${port}/v1`, models: ['m'] } } },
  });
  const { events, error } = await collect(router.chat(ask(undefined, 'ping')));
  t.is(error, undefined);
  t.like(events[0], { type: 'start', provider: 'echo' });
  const failures = logs()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((l) => l.msg === 'provider try failed');
  t.is(failures.length, 2);
  t.true(failures.every((l) => l.code === 'NETWORK' && l.provider === 'dead'));
});

test('an unconfigured provider is an unknown_provider error before any request', async (t) => {
  const m = await setup(t);
  const { router } = routerFor(m);
  const { events, error } = await collect(router.chat(ask('mistral/large')));
  t.deepEqual(events, []);
  t.is(error?.code, 'UNKNOWN_PROVIDER');
  t.false(error?.retryable);
});
