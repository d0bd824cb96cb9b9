/**
 * Every provider end to end through the router against its mock: streamed text, usage, and
 * the exact request each mock received.
 */
import test from 'ava';
import { ChatRouter, echoReply, loadConfig } from '../../src/ai';
import { DEFAULT_CHUNKS, DEFAULT_USAGE } from './mocks/harness';
import { KEYS, ask, collect, envFor, routerFor, startMocks, stopMocks } from './helpers';

const conversation = {
  system: 'Be brief.',
  messages: [
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello! How can I help?' },
    { role: 'user', content: 'Say hello' },
  ],
  temperature: 0.3,
  maxTokens: 64,
};
const expectedMessages = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello! How can I help?' },
  { role: 'user', content: 'Say hello' },
];

const cases = [
  { model: 'gemini-2.5-flash', provider: 'gemini', mock: 'gemini', sentModel: 'gemini-2.5-flash' },
  { model: 'gpt-4o-mini', provider: 'openai', mock: 'openai', sentModel: 'gpt-4o-mini' },
  { model: 'claude-sonnet-4-5', provider: 'anthropic', mock: 'anthropic', sentModel: 'claude-sonnet-4-5' },
  { model: 'ollama/llama3.2', provider: 'ollama', mock: 'ollama', sentModel: 'llama3.2' },
  { model: 'local/qwen2.5-coder', provider: 'local', mock: 'local', sentModel: 'qwen2.5-coder' },
  { model: 'other/mixtral', provider: 'other', mock: 'other', sentModel: 'mixtral' },
] as const;

for (const c of cases) {
  test(`${c.provider}: streams text and usage; the request is well-formed`, async (t) => {
    const m = await startMocks();
    t.teardown(() => stopMocks(m));
    const { router } = routerFor(m);
    const { events, error, text } = await collect(router.chat({ model: c.model, ...conversation }));
    t.is(error, undefined);
    t.deepEqual(events[0], { type: 'start', provider: c.provider, model: c.sentModel });
    t.is(text, DEFAULT_CHUNKS.join(''));
    t.is(events.filter((e) => e.type === 'delta').length, DEFAULT_CHUNKS.length, 'one delta per provider chunk');
    t.like(events.at(-1), {
      type: 'finish',
      finishReason: 'stop',
      usage: { inputTokens: DEFAULT_USAGE.input, outputTokens: DEFAULT_USAGE.output },
    });

    const mock = m[c.mock];
    t.is(mock.requests.length, 1);
    const req = mock.requests[0];
    t.deepEqual(req.problems, []);
    t.is(req.model, c.sentModel);
    t.deepEqual(req.messages, expectedMessages);
  });
}

test('gemini: key in x-goog-api-key only, never in the URL', async (t) => {
  const m = await startMocks();
  t.teardown(() => stopMocks(m));
  await collect(routerFor(m).router.chat(ask('gemini-2.5-flash')));
  const req = m.gemini.requests[0];
  t.is(req.headers['x-goog-api-key'], KEYS.gemini);
  t.false(req.url.includes(KEYS.gemini));
  t.is(req.url, '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
  t.is(req.body.generationConfig?.temperature, undefined);
});

test('openai: Chat Completions (not Responses) with bearer auth and include_usage', async (t) => {
  const m = await startMocks();
  t.teardown(() => stopMocks(m));
  await collect(routerFor(m).router.chat(ask('gpt-4o-mini', 'hi', { temperature: 0.5, maxTokens: 20 })));
  const req = m.openai.requests[0];
  t.is(req.url, '/v1/chat/completions');
  t.is(req.headers.authorization, `Bearer ${KEYS.openai}`);
  t.true(req.body.stream_options?.include_usage);
  t.is(req.body.temperature, 0.5);
  t.is(req.body.max_tokens, 20);
});

test('anthropic: x-api-key, anthropic-version and a max_tokens default', async (t) => {
  const m = await startMocks();
  t.teardown(() => stopMocks(m));
  await collect(routerFor(m).router.chat(ask('claude-sonnet-4-5')));
  const req = m.anthropic.requests[0];
  t.is(req.headers['x-api-key'], KEYS.anthropic);
  t.is(req.headers['anthropic-version'], '2023-06-01');
  t.is(req.body.max_tokens, 8192);
});

test('openai-compatible: usage is requested, keyless servers get no key, keyed ones get theirs', async (t) => {
  const m = await startMocks();
  t.teardown(() => stopMocks(m));
  const { router } = routerFor(m);
  await collect(router.chat(ask('local/qwen2.5-coder')));
  await collect(router.chat(ask('other/mixtral')));
  t.true(m.local.requests[0].body.stream_options?.include_usage);
  t.is(m.local.requests[0].headers.authorization, undefined);
  t.is(m.other.requests[0].url, '/api/v1/chat/completions');
  t.is(m.other.requests[0].headers.authorization, `Bearer ${KEYS.other}`);
});

test('ollama: native /api/chat with options mapped', async (t) => {
  const m = await startMocks();
  t.teardown(() => stopMocks(m));
  await collect(routerFor(m).router.chat(ask('ollama/llama3.2', 'hi', { temperature: 0.1, maxTokens: 5 })));
  const req = m.ollama.requests[0];
  t.is(req.url, '/api/chat');
  t.true(req.body.stream);
  t.deepEqual(req.body.options, { temperature: 0.1, num_predict: 5 });
});

test('finish reasons are passed through (length)', async (t) => {
  const m = await startMocks();
  t.teardown(() => stopMocks(m));
  const { router } = routerFor(m);
  m.openai.enqueue({ kind: 'stream', finishReason: 'length' });
  m.gemini.enqueue({ kind: 'stream', finishReason: 'MAX_TOKENS' });
  m.anthropic.enqueue({ kind: 'stream', finishReason: 'max_tokens' });
  m.ollama.enqueue({ kind: 'stream', finishReason: 'length' });
  for (const model of ['gpt-4o', 'gemini-2.5-flash', 'claude-x', 'ollama/llama3.2']) {
    const { events } = await collect(router.chat(ask(model)));
    t.like(events.at(-1), { type: 'finish', finishReason: 'length' }, model);
  }
});

test('echo: offline, deterministic, says it is the echo provider, several chunks', async (t) => {
  const router = new ChatRouter(loadConfig({ env: {} }));
  const payload = {
    messages: [
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'ok' },
      { role: 'user', content: 'What is  two plus two?' },
    ],
  };
  const a = await collect(router.chat(payload));
  const b = await collect(router.chat(payload));
  t.deepEqual(a.events, b.events, 'same request, same events');
  t.deepEqual(a.events[0], { type: 'start', provider: 'echo', model: 'echo' });
  t.is(a.text, '[echo provider] You said: What is  two plus two?');
  t.true(a.events.filter((e) => e.type === 'delta').length > 3);
  // Input: 1 + 1 + 5 words; output: 9 words.
  t.deepEqual(a.events.at(-1), { type: 'finish', finishReason: 'stop', usage: { inputTokens: 7, outputTokens: 9 } });
  t.is(echoReply({ messages: [{ role: 'user', content: 'x' }] }), '[echo provider] You said: x');
});

test('echo: maxTokens cuts the reply and reports length', async (t) => {
  const router = new ChatRouter(loadConfig({ env: {} }));
  const { events, text } = await collect(
    router.chat({ model: 'echo', messages: [{ role: 'user', content: 'one two three four' }], maxTokens: 3 }),
  );
  t.is(text, '[echo provider] You ');
  t.like(events.at(-1), { type: 'finish', finishReason: 'length', usage: { outputTokens: 3 } });
});

test('flood mode streams many small chunks intact (benchmark path)', async (t) => {
  const m = await startMocks();
  t.teardown(() => stopMocks(m));
  const { router } = routerFor(m);
  const count = 3000;
  for (const [mock, model] of [
    [m.openai, 'gpt-4o'],
    [m.gemini, 'gemini-2.5-flash'],
    [m.anthropic, 'claude-x'],
    [m.ollama, 'ollama/llama3.2'],
  ] as const) {
    mock.enqueue({ kind: 'flood', count, text: 'ab' });
    const { events, error, text } = await collect(router.chat(ask(model)));
    t.is(error, undefined, model);
    t.is(text.length, count * 2, model);
    t.like(events.at(-1), { type: 'finish', usage: { outputTokens: count } }, model);
  }
});

test("the router's fetch option carries every provider's HTTP", async (t) => {
  const m = await startMocks();
  t.teardown(() => stopMocks(m));
  const seen: string[] = [];
  const spy: typeof fetch = (input, init) => {
    seen.push(new URL(input instanceof Request ? input.url : String(input)).pathname);
    return fetch(input, init);
  };
  const router = new ChatRouter(loadConfig({ env: envFor(m) }), { fetch: spy });
  for (const model of ['gpt-4o', 'gemini-2.5-flash', 'claude-x', 'ollama/llama3.2']) {
    const { error } = await collect(router.chat(ask(model)));
    t.is(error, undefined, model);
  }
  t.deepEqual(seen, ['/v1/chat/completions', '/v1beta/models/gemini-2.5-flash:streamGenerateContent', '/v1/messages', '/api/chat']);
});
