/**
 * What the router exposes about itself: logs (never keys or prompts), error messages (never
 * keys), and Prometheus metrics.
 */
import test from 'ava';
import { ChatRouter, type ChatError, METRIC_NAMES, loadConfig } from '../../src/ai';
import type { MockScript } from './mocks/harness';
import { KEYS, Registry, ask, closedPort, collect, routerFor, startMocks, stopMocks } from './helpers';

const PROMPT = 'TOP-SECRET-PROMPT-TEXT do not log me';

test('API keys never appear in error messages, error JSON or logs (any level); prompts never in logs', async (t) => {
  const m = await startMocks();
  t.teardown(() => stopMocks(m));
  const port = await closedPort();
  const { router, logs } = routerFor(m, {
    retry: { maxAttempts: 2 },
    providers: { compatible: { dead: { baseURL: `http://127.0.0.1:${port}/v1`, apiKey: KEYS.other, models: ['m'] } } },
  });
  const leak = (key: string) => `upstream rejected credentials ${key} (Authorization: Bearer ${key})`;
  const scripts: Array<[keyof typeof m | 'dead', string, MockScript | undefined]> = [
    ['openai', 'gpt-4o', { kind: 'status', status: 401, message: `Incorrect API key provided: ${KEYS.openai}` }],
    ['openai', 'gpt-4o', { kind: 'status', status: 400, message: leak(KEYS.openai) }],
    ['anthropic', 'claude-x', { kind: 'status', status: 403, message: leak(KEYS.anthropic) }],
    ['anthropic', 'claude-x', { kind: 'mid-error', errorType: 'overloaded_error', message: leak(KEYS.anthropic) }],
    ['gemini', 'gemini-2.5-flash', { kind: 'status', status: 400, message: `API key ${KEYS.gemini} not valid` }],
    ['gemini', 'gemini-2.5-flash', { kind: 'mid-error', code: 500, message: leak(KEYS.gemini) }],
    // A provider leaking another provider's key is scrubbed too.
    ['other', 'other/mixtral', { kind: 'status', status: 400, message: `also saw ${KEYS.openai} and ${KEYS.gemini}` }],
    ['ollama', 'ollama/llama3.2', { kind: 'mid-error', message: leak(KEYS.anthropic) }],
    ['dead', 'dead/m', undefined],
    ['openai', 'gpt-4o', undefined],
  ];
  const errors: ChatError[] = [];
  for (const [name, model, script] of scripts) {
    if (script && name !== 'dead') m[name].enqueue(script);
    const { error } = await collect(router.chat(ask(model, PROMPT)));
    if (error) errors.push(error);
  }
  t.is(errors.length, scripts.length - 1, 'every scripted failure failed');
  const surfaced = [...errors.map((e) => e.message), ...errors.map((e) => JSON.stringify(e)), logs()].join('\n');
  for (const key of Object.values(KEYS)) t.false(surfaced.includes(key), `key ${key.slice(0, 8)}… leaked`);
  t.true(
    errors.some((e) => e.message.includes('[REDACTED]')),
    'scrubbing happened (the mocks did echo keys)',
  );
  t.false(logs().includes('TOP-SECRET-PROMPT'), 'prompt text is never logged');
  t.true(logs().includes('"msg":"chat finished"'), 'logs were captured');
});

test('info-level logs carry routing facts, not content', async (t) => {
  const m = await startMocks();
  t.teardown(() => stopMocks(m));
  const { router, logs } = routerFor(m);
  await collect(router.chat(ask('gpt-4o', PROMPT)));
  const lines = logs()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const info = lines.filter((l) => l.level >= 30);
  t.like(
    info.find((l) => l.msg === 'chat request'),
    { provider: 'openai', model: 'gpt-4o', messages: 1 },
  );
  t.like(
    info.find((l) => l.msg === 'chat finished'),
    { provider: 'openai', inputTokens: 11, outputTokens: 4, finishReason: 'stop' },
  );
  t.false(JSON.stringify(info).includes('Hello, world'), 'reply text is not logged');
});

async function metricValue(registry: Registry, name: string, labels: Record<string, string>, suffix?: string) {
  const metric = registry.getSingleMetric(name);
  if (!metric) return undefined;
  const { values } = await metric.get();
  const hit = values.find(
    (v) =>
      (suffix === undefined || (v as { metricName?: string }).metricName === `${name}${suffix}`) &&
      Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val),
  );
  return hit?.value;
}

test('metrics: requests, errors by code, tokens in/out, first-token histogram', async (t) => {
  const m = await startMocks();
  t.teardown(() => stopMocks(m));
  const registry = new Registry();
  const { router } = routerFor(m, {}, registry);
  await collect(router.chat(ask('gpt-4o')));
  m.openai.enqueue({ kind: 'status', status: 429, headers: { 'retry-after-ms': '1' } });
  await collect(router.chat(ask('gpt-4o')));
  m.openai.enqueue({ kind: 'status', status: 401 });
  await collect(router.chat(ask('gpt-4o')));
  await collect(router.chat(ask('claude-x')));

  t.is(await metricValue(registry, METRIC_NAMES.requests, { provider: 'openai' }), 4);
  t.is(await metricValue(registry, METRIC_NAMES.requests, { provider: 'anthropic' }), 1);
  t.is(await metricValue(registry, METRIC_NAMES.errors, { provider: 'openai', code: 'RATE_LIMITED' }), 1);
  t.is(await metricValue(registry, METRIC_NAMES.errors, { provider: 'openai', code: 'AUTH' }), 1);
  t.is(await metricValue(registry, METRIC_NAMES.errors, { provider: 'anthropic', code: 'AUTH' }), undefined);
  t.is(await metricValue(registry, METRIC_NAMES.tokens, { provider: 'openai', direction: 'in' }), 22);
  t.is(await metricValue(registry, METRIC_NAMES.tokens, { provider: 'openai', direction: 'out' }), 8);
  t.is(await metricValue(registry, METRIC_NAMES.tokens, { provider: 'anthropic', direction: 'out' }), 4);
  t.is(await metricValue(registry, METRIC_NAMES.firstToken, { provider: 'openai' }, '_count'), 2);
  t.is(await metricValue(registry, METRIC_NAMES.firstToken, { provider: 'anthropic' }, '_count'), 1);
  const text = await registry.metrics();
  t.regex(text, /lapce_ai_provider_requests_total\{provider="openai"\} 4/);
});

test('metrics: cancellations and timeouts are counted as errors', async (t) => {
  const m = await startMocks();
  t.teardown(() => stopMocks(m));
  const registry = new Registry();
  const { router } = routerFor(m, { retry: { maxAttempts: 1 }, timeouts: { firstChunkMs: 150 } }, registry);
  m.ollama.enqueue({ kind: 'hang' });
  await collect(router.chat(ask('ollama/llama3.2')));
  await collect(router.chat(ask('echo'), { signal: AbortSignal.abort() }));
  t.is(await metricValue(registry, METRIC_NAMES.errors, { provider: 'ollama', code: 'TIMEOUT' }), 1);
});

test('two routers on one registry share the metrics instead of failing to register', async (t) => {
  const registry = new Registry();
  const config = loadConfig({ env: {} });
  const a = new ChatRouter(config, { registry });
  let b: ChatRouter | undefined;
  t.notThrows(() => (b = new ChatRouter(config, { registry })));
  await collect(a.chat(ask('echo')));
  await collect(b!.chat(ask('echo')));
  t.is(await metricValue(registry, METRIC_NAMES.requests, { provider: 'echo' }), 2);
  t.is((await registry.getMetricsAsJSON()).length, 8);
});

test('without a registry the router still works (metrics unregistered)', async (t) => {
  const router = new ChatRouter(loadConfig({ env: {} }));
  const { error, text } = await collect(router.chat(ask(undefined, 'hi')));
  t.is(error, undefined);
  t.is(text, '[echo provider] You said: hi');
});
