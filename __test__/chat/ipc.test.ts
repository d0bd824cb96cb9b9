/**
 * The chat backend end to end: a real IpcServer with the backend, a real IpcClient, and the
 * mock providers speaking their wire formats on 127.0.0.1. Everything a test checks crossed
 * the shared-memory rings.
 *
 * Waits are bounded and only ever checked for "it happened", never for how long it took.
 */
import test from 'ava';
import { echoReply, METRIC_NAMES, type ChatEvent } from '../../src/ai';
import { CHAT_METHOD, PROVIDERS_METHOD, type ProvidersReply } from '../../src/backend';
import { summarizeMetrics } from '../../src/cli/metrics-summary';
import { IpcError } from '../../src/errors';
import { DEFAULT_CHUNKS, DEFAULT_USAGE } from '../ai/mocks/harness';
import { AWS, MOCK_PROVIDER_NAMES } from '../ai/helpers';
import { KEYS, type Mocks, ask, chatOverIpc, mocks, startBackend, within } from './helpers';

const BOUND_MS = 10_000;

const kinds: Array<{ mock: keyof Mocks; model: string; provider: string; sentModel: string }> = [
  { mock: 'gemini', model: 'gemini-2.5-flash', provider: 'gemini', sentModel: 'gemini-2.5-flash' },
  { mock: 'openai', model: 'gpt-4o-mini', provider: 'openai', sentModel: 'gpt-4o-mini' },
  { mock: 'anthropic', model: 'claude-sonnet-4-5', provider: 'anthropic', sentModel: 'claude-sonnet-4-5' },
  { mock: 'ollama', model: 'ollama/llama3.2', provider: 'ollama', sentModel: 'llama3.2' },
  { mock: 'local', model: 'local/qwen2.5-coder', provider: 'local', sentModel: 'qwen2.5-coder' },
  { mock: 'other', model: 'other/mixtral', provider: 'other', sentModel: 'mixtral' },
];

for (const k of kinds) {
  test(`${k.provider}: text and usage stream through IPC`, async (t) => {
    const m = await mocks(t);
    const { client } = await startBackend(t, m);
    const { events, text, error } = await chatOverIpc(client, ask(k.model, 'Say hello', { system: 'Be brief.' }));
    t.is(error, undefined);
    t.deepEqual(events[0], { type: 'start', provider: k.provider, model: k.sentModel });
    t.is(text, DEFAULT_CHUNKS.join(''));
    t.is(events.filter((e) => e.type === 'delta').length, DEFAULT_CHUNKS.length, 'one IPC chunk per provider chunk');
    t.like(events.at(-1), {
      type: 'finish',
      finishReason: 'stop',
      usage: { inputTokens: DEFAULT_USAGE.input, outputTokens: DEFAULT_USAGE.output },
    });
    // The request reached the right mock, well-formed, with the prompt intact.
    t.is(m[k.mock].requests.length, 1);
    t.deepEqual(m[k.mock].requests[0].problems, []);
    t.deepEqual(m[k.mock].requests[0].messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Say hello' },
    ]);
  });
}

test('echo: the offline default answers through IPC and says it is the echo provider', async (t) => {
  const m = await mocks(t);
  const { client } = await startBackend(t, m, { default: 'echo' });
  const { events, text, error } = await chatOverIpc(client, ask(undefined, 'one two three'));
  t.is(error, undefined);
  t.deepEqual(events[0], { type: 'start', provider: 'echo', model: 'echo' });
  t.is(text, echoReply({ messages: [{ role: 'user', content: 'one two three' }] }));
  t.regex(text, /echo provider/);
  t.true(events.filter((e) => e.type === 'delta').length > 1, 'streamed in several chunks');
  t.deepEqual(events.at(-1), { type: 'finish', finishReason: 'stop', usage: { inputTokens: 3, outputTokens: 7 } });
});

test('fallback: a retryable failure before the first token moves to the next provider', async (t) => {
  const m = await mocks(t);
  m.openai.enqueue({ kind: 'status', status: 503 });
  const { client } = await startBackend(t, m, { fallback: ['anthropic'], retry: { maxAttempts: 1 } });
  const { events, text, error } = await chatOverIpc(client, ask('gpt-4o'));
  t.is(error, undefined);
  t.like(events[0], { type: 'start', provider: 'anthropic', model: 'claude-sonnet-4-5' });
  t.is(text, 'Hello, world!');
  t.is(m.openai.requests.length, 1);
  t.is(m.anthropic.requests.length, 1);
});

test('fallback is not used for a non-retryable failure: the typed error reaches the client', async (t) => {
  const m = await mocks(t);
  m.openai.enqueue({ kind: 'status', status: 400, message: 'bad model' });
  const { client } = await startBackend(t, m, { fallback: ['anthropic'] });
  const { events, error } = await chatOverIpc(client, ask('gpt-4o'));
  t.deepEqual(events, []);
  t.true(error instanceof IpcError);
  t.is(error?.code, 'BAD_REQUEST');
  t.false(error?.retryable);
  t.is(error?.code, 'BAD_REQUEST');
  t.deepEqual(error?.details, { provider: 'openai', httpStatus: 400 });
  t.is(m.anthropic.requests.length, 0);
});

test('a 429 with retry-after-ms is retried, and the retry shows in the metrics', async (t) => {
  const m = await mocks(t);
  m.openai.enqueue({ kind: 'status', status: 429, headers: { 'retry-after-ms': '50' } });
  const { client } = await startBackend(t, m);
  const { text, error } = await chatOverIpc(client, ask('gpt-4o'));
  t.is(error, undefined);
  t.is(text, 'Hello, world!');
  t.is(m.openai.requests.length, 2);
  const openai = summarizeMetrics(await client.serverMetrics('json')).providers.find((p) => p.provider === 'openai');
  t.like(openai, { requests: 2, errors: { RATE_LIMITED: 1 }, tokensIn: DEFAULT_USAGE.input, tokensOut: DEFAULT_USAGE.output });
});

test('a Gemini 429 with RetryInfo in the body is retried through IPC', async (t) => {
  const m = await mocks(t);
  m.gemini.enqueue({ kind: 'status', status: 429, retryDelay: '0.05s' });
  const { client } = await startBackend(t, m);
  const { text, error } = await chatOverIpc(client, ask('gemini-2.5-flash'));
  t.is(error, undefined);
  t.is(text, 'Hello, world!');
  t.is(m.gemini.requests.length, 2);
});

test('an error in mid-stream ends the IPC stream with a typed error after the partial text', async (t) => {
  const m = await mocks(t);
  m.anthropic.enqueue({ kind: 'mid-error', chunks: ['Part'], errorType: 'overloaded_error' });
  const { client } = await startBackend(t, m, { fallback: ['openai'] });
  const { events, text, error } = await chatOverIpc(client, ask('claude-x'));
  t.like(events[0], { type: 'start', provider: 'anthropic' });
  t.is(text, 'Part');
  t.is(error?.code, 'OVERLOADED');
  t.is(error?.code, 'OVERLOADED');
  t.like(error?.details, { provider: 'anthropic' });
  t.is(m.anthropic.requests.length, 1, 'no retry after the first token');
  t.is(m.openai.requests.length, 0, 'no fallback after the first token');
});

test('a truncated stream is an error through IPC, not a quiet finish', async (t) => {
  const m = await mocks(t);
  m.ollama.enqueue({ kind: 'truncate', chunks: ['Hel'] });
  const { client } = await startBackend(t, m);
  const { events, error } = await chatOverIpc(client, ask('ollama/llama3.2'));
  t.is(error?.code, 'TRUNCATED');
  t.false(events.some((e) => e.type === 'finish'));
});

for (const k of kinds.slice(0, 5)) {
  test(`${k.provider}: breaking out of the client's for-await closes the provider's HTTP connection`, async (t) => {
    const m = await mocks(t);
    // The next chunk is 30 s away: only the cancel travelling from the client to the provider's
    // request can close the connection within the bound.
    m[k.mock].enqueue({ kind: 'stream', chunks: ['first ', 'second '], delayMs: 30_000 });
    const { client } = await startBackend(t, m);
    const seen: ChatEvent[] = [];
    for await (const ev of client.stream<ChatEvent>(CHAT_METHOD, ask(k.model))) {
      seen.push(ev);
      if (ev.type === 'delta') break;
    }
    t.deepEqual(
      seen.map((e) => e.type),
      ['start', 'delta'],
    );
    t.deepEqual(await within(m[k.mock].requests[0].closed, BOUND_MS), { byClient: true }, 'the backend hung up on the mock');
    t.is(m[k.mock].requests.length, 1, 'a cancel is never retried');
    // The connection is still usable afterwards.
    t.is((await chatOverIpc(client, ask('echo'))).error, undefined);
  });
}

test('aborting the client signal before the first chunk aborts the pending provider request', async (t) => {
  const m = await mocks(t);
  m.openai.enqueue({ kind: 'hang', noHeaders: true });
  const { client } = await startBackend(t, m);
  const ac = new AbortController();
  const run = (async () => {
    for await (const _ of client.stream(CHAT_METHOD, ask('gpt-4o'), { signal: ac.signal })) void _;
  })();
  await m.openai.waitForRequests(1);
  ac.abort();
  const err = await t.throwsAsync(run);
  t.is((err as IpcError).code, 'CANCELLED');
  t.deepEqual(await within(m.openai.requests[0].closed, BOUND_MS), { byClient: true });
});

const badRequests: Array<[string, unknown, RegExp]> = [
  ['no messages', { model: 'echo', messages: [] }, /messages/],
  ['a message with an unknown role', { messages: [{ role: 'robot', content: 'hi' }] }, /messages\[0\]\.role/],
  ['a misspelt field', { messages: [{ role: 'user', content: 'hi' }], temprature: 0.5 }, /temprature: unknown field/],
  ['temperature out of range', { messages: [{ role: 'user', content: 'hi' }], temperature: 7 }, /temperature/],
  ['a string instead of an object', 'hello', /invalid chat request/],
  ['only a system message', { messages: [{ role: 'system', content: 'be nice' }] }, /user or assistant/],
];
for (const [what, payload, field] of badRequests) {
  test(`a bad request (${what}) is rejected with a clear bad_request error and reaches no provider`, async (t) => {
    const m = await mocks(t);
    const { client } = await startBackend(t, m);
    const { events, error } = await chatOverIpc(client, payload);
    t.deepEqual(events, []);
    t.true(error instanceof IpcError);
    t.is(error?.code, 'BAD_REQUEST');
    t.false(error?.retryable);
    t.regex(error!.message, /^invalid chat request: /);
    t.regex(error!.message, field);
    t.is(error?.code, 'BAD_REQUEST');
    t.false(error?.retryable);
    for (const mock of Object.values(m)) t.is(mock.requests.length, 0);
  });
}

test('a model naming an unconfigured provider gets unknown_provider', async (t) => {
  const m = await mocks(t);
  const { client } = await startBackend(t, m);
  const { error } = await chatOverIpc(client, ask('mistral/large'));
  t.is(error?.code, 'UNKNOWN_PROVIDER');
  t.regex(error!.message, /mistral/);
});

test('providers lists every configured provider with its role, and never a key', async (t) => {
  const m = await mocks(t);
  const { client } = await startBackend(t, m, { default: 'anthropic', fallback: ['local', 'echo'] });
  const reply = await client.request<ProvidersReply>(PROVIDERS_METHOD);
  t.is(reply.default, 'anthropic');
  t.deepEqual(reply.fallback, ['local', 'echo']);
  t.deepEqual(reply.providers.map((p) => p.name).sort(), MOCK_PROVIDER_NAMES);
  t.like(
    reply.providers.find((p) => p.name === 'openai'),
    { kind: 'openai', hasKey: true, baseURL: `${m.openai.origin}/v1` },
  );
  t.like(
    reply.providers.find((p) => p.name === 'local'),
    { kind: 'openai-compatible', hasKey: false, fallbackIndex: 0 },
  );
  const json = JSON.stringify(reply);
  for (const key of [...Object.values(KEYS), AWS.secretAccessKey]) t.false(json.includes(key), 'a key leaked into providers');
  t.false(json.includes('apiKey'));
});

test('the server metrics hold both the IPC and the per-provider chat metrics', async (t) => {
  const m = await mocks(t);
  const { client } = await startBackend(t, m);
  await chatOverIpc(client, ask('claude-x'));
  await chatOverIpc(client, ask('echo'));
  await chatOverIpc(client, { messages: [] });
  const summary = summarizeMetrics(await client.serverMetrics('json'));
  t.like(
    summary.providers.find((p) => p.provider === 'anthropic'),
    { requests: 1, errors: {}, tokensIn: 11, tokensOut: 4 },
  );
  t.like(
    summary.providers.find((p) => p.provider === 'echo'),
    { requests: 1, tokensIn: 2, tokensOut: 6 },
  );
  t.true(summary.providers.every((p) => p.firstTokenMeanMs !== undefined && p.firstTokenMeanMs >= 0));
  t.is(summary.errors.BAD_REQUEST, 1, 'the bad request counted as an IPC error under its chat code');
  t.is(summary.connectionsActive, 1);
  const text = ((await client.serverMetrics('prometheus')) as { text: string }).text;
  t.regex(text, new RegExp(`^${METRIC_NAMES.requests}\\{provider="anthropic"\\} 1$`, 'm'));
  t.regex(text, new RegExp(`^${METRIC_NAMES.tokens}\\{provider="anthropic",direction="out"\\} 4$`, 'm'));
  t.regex(text, new RegExp(`^${METRIC_NAMES.firstToken}_count\\{provider="echo"\\} 1$`, 'm'));
  t.regex(text, /^lapce_ipc_stream_first_chunk_seconds_count\{method="chat"\} 2$/m);
});

test('several chats at once on one connection each get their own reply', async (t) => {
  const m = await mocks(t);
  const { client } = await startBackend(t, m);
  const prompts = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];
  const results = await Promise.all(prompts.map((p) => chatOverIpc(client, ask('echo', p))));
  t.deepEqual(
    results.map((r) => r.text),
    prompts.map((p) => echoReply({ messages: [{ role: 'user', content: p }] })),
  );
});

test('reasoning and tool-call events cross the rings as their own events; the editor can send the tool result back', async (t) => {
  const m = await mocks(t);
  const { client } = await startBackend(t, m);
  m.anthropic.enqueue({ kind: 'replay', fixture: 'anthropic/thinking.sse' });
  const thinking = await chatOverIpc(client, ask('claude-sonnet-4-5', 'gcd?', { reasoning: { budgetTokens: 1024 } }));
  t.is(thinking.error, undefined);
  const reasoning = thinking.events.map((e) => (e.type === 'reasoning' ? e.text : '')).join('');
  t.regex(reasoning, /Euclidean algorithm/);
  t.is(thinking.text, 'The greatest common divisor of 1071 and 462 is **21**.');

  m.ollama.enqueue({ kind: 'replay', fixture: 'ollama/tool-call.ndjson' });
  const tools = [{ name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } }];
  const call = await chatOverIpc(client, ask('qwen3:8b', 'Weather in Toronto?', { tools }));
  t.is(call.error, undefined);
  const done = call.events.find((e) => e.type === 'tool-call');
  t.deepEqual(done, { type: 'tool-call', id: 'call_xf2yarrb', name: 'get_weather', arguments: '{"city":"Toronto"}' });
  t.like(call.events.at(-1), { type: 'finish', finishReason: 'tool-calls' });

  const next = await chatOverIpc(client, {
    model: 'qwen3:8b',
    tools,
    messages: [
      { role: 'user', content: 'Weather in Toronto?' },
      { role: 'assistant', content: '', toolCalls: [{ id: 'call_xf2yarrb', name: 'get_weather', arguments: '{"city":"Toronto"}' }] },
      { role: 'tool', toolCallId: 'call_xf2yarrb', name: 'get_weather', content: '{"temperature":-3}' },
    ],
  });
  t.is(next.error, undefined);
  const sent = m.ollama.requests.at(-1)!.body.messages;
  t.deepEqual(sent.at(-2).tool_calls, [{ function: { name: 'get_weather', arguments: { city: 'Toronto' } } }]);
  t.deepEqual(sent.at(-1), { role: 'tool', content: '{"temperature":-3}', tool_name: 'get_weather' });
});

test('a provider in cooldown shows in the providers reply, and the fallback that answered in start', async (t) => {
  const m = await mocks(t);
  const { client } = await startBackend(t, m, { fallback: ['anthropic'], retry: { maxAttempts: 1 }, cooldown: { defaultMs: 60_000 } });
  m.openai.enqueue({ kind: 'status', status: 503 });
  const r = await chatOverIpc(client, ask('gpt-4o'));
  t.like(r.events[0], {
    type: 'start',
    provider: 'anthropic',
    fallbackFrom: [{ provider: 'openai', model: 'gpt-4o', code: 'OVERLOADED' }],
  });
  const reply = await client.request<ProvidersReply>(PROVIDERS_METHOD, null);
  t.is(reply.cooldowns?.openai?.code, 'OVERLOADED');
  t.true(reply.cooldowns!.openai.until > Date.now());
  t.like(
    reply.providers.find((p) => p.name === 'openai'),
    { cooldownCode: 'OVERLOADED' },
  );
});
