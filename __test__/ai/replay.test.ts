/**
 * Provider × feature against documented provider streams (`fixtures/`, sources in its README),
 * replayed byte for byte by mock HTTP servers on 127.0.0.1: text, reasoning, single and
 * parallel tool calls, images, usage, each error shape, truncation at every boundary, slow
 * first byte and slow reasoning. Test titles are `provider: feature`, so the pass/fail table
 * reads straight off ava's output.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import type { ChatErrorCode, ChatToolCallEvent, ConfigInput } from '../../src/ai';
import { type Mocks, ask, collect, routerFor, startMocks, stopMocks } from './helpers';

const test = anyTest.serial as unknown as TestFn & { before: TestFn['before']; after: TestFn['after'] };
import { eventCount, eventIndex } from './mocks/fixtures';
import type { MockScript } from './mocks/harness';

/** A 1×1 transparent PNG. */
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';

const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'Current weather for a place',
  parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
};

interface ToolExpect {
  fixture: string;
  calls: Array<{ name: string; args: Record<string, unknown>; id?: string }>;
}

interface Case {
  /** Provider name, as routed. */
  provider: string;
  model: string;
  mock: keyof Mocks;
  text: { fixture: string; reply: string; usage: Record<string, number>; responseId?: string };
  reasoning?: {
    fixture: string;
    reasoning: string;
    reply: string;
    request: Record<string, unknown>;
    /** What the provider's request body must carry for the reasoning controls. */
    sent: (body: any) => unknown;
    expectSent: unknown;
    usage?: Record<string, number>;
  };
  tool?: ToolExpect;
  parallel?: ToolExpect;
  /** Where the tools appear in the request body. */
  toolNames: (body: any) => string[];
  /** How the image appears in the request body. */
  image: RegExp;
  errors: Array<{ fixture: string; status: number; code: ChatErrorCode; headers?: Record<string, string>; retryAfterMs?: number }>;
  midError?: { fixture: string; code: ChatErrorCode; partial: string };
  /** Needle of the event carrying the finish reason (truncation right after it). */
  finishNeedle: string;
  /** Whether a stream cut right after the finish reason is still complete (no later frame is due). */
  completeAfterFinish?: boolean;
}

const openaiTools = (b: any) => (b?.tools ?? []).map((t: any) => t.function?.name);

const cases: Case[] = [
  {
    provider: 'openai',
    model: 'gpt-4o-mini',
    mock: 'openai',
    text: {
      fixture: 'openai/text.sse',
      reply: 'Hello! How can I assist you today?',
      usage: { inputTokens: 19, outputTokens: 10, reasoningTokens: 0, cachedInputTokens: 0 },
      responseId: 'chatcmpl-AyPNinnUqUDYo9SAdA52NobMflmj2',
    },
    reasoning: {
      fixture: 'openai/reasoning-usage.sse',
      reasoning: '',
      reply: 'The answer is 42.',
      request: { effort: 'high' },
      sent: (b) => b.reasoning_effort,
      expectSent: 'high',
      usage: { inputTokens: 30, outputTokens: 205, reasoningTokens: 192, cachedInputTokens: 12 },
    },
    tool: {
      fixture: 'openai/tool-call.sse',
      calls: [{ name: 'get_weather', args: { location: 'Paris, France' }, id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA' }],
    },
    parallel: {
      fixture: 'openai/tool-calls-parallel.sse',
      calls: [
        { name: 'get_weather', args: { location: 'Paris, France' }, id: 'call_9yQ8aLJhMBvQrb8zPKnDjm2Z' },
        { name: 'get_weather', args: { location: 'Bogotá, Colombia' }, id: 'call_Ex3rBIZpcC1lIt5ie3jhbsLv' },
      ],
    },
    toolNames: openaiTools,
    image: /"image_url":\{"url":"data:image\/png;base64,iVBOR/,
    errors: [
      { fixture: 'openai/error-429.json', status: 429, code: 'RATE_LIMITED', headers: { 'retry-after-ms': '20000' }, retryAfterMs: 20000 },
      { fixture: 'openai/error-401.json', status: 401, code: 'AUTH' },
      { fixture: 'openai/error-context-length.json', status: 400, code: 'CONTEXT_LENGTH' },
      { fixture: 'openai/error-insufficient-quota.json', status: 429, code: 'RATE_LIMITED' },
    ],
    midError: { fixture: 'openai/mid-stream-error.sse', code: 'SERVER_ERROR', partial: 'Hello' },
    finishNeedle: '"finish_reason":"stop"',
  },
  {
    provider: 'azure',
    model: 'azure/my-gpt4o-deployment',
    mock: 'azure',
    text: { fixture: 'azure/text.sse', reply: 'Hello! How can I help?', usage: { inputTokens: 12, outputTokens: 8 } },
    tool: {
      fixture: 'azure/tool-call.sse',
      calls: [{ name: 'get_weather', args: { location: 'Seattle' }, id: 'call_hBz3UiG2T1l4kT9Hk4a7X9Qe' }],
    },
    parallel: {
      fixture: 'azure/tool-calls-parallel.sse',
      calls: [
        { name: 'get_weather', args: { location: 'Seattle' }, id: 'call_8Fj2kKx0aQ1wE3rT5yU7iO9p' },
        { name: 'get_weather', args: { location: 'Tokyo' }, id: 'call_Zx9Cv8Bn7Mm6Ll5Kk4Jj3Hh2' },
      ],
    },
    reasoning: {
      fixture: 'azure/reasoning-usage.sse',
      reasoning: '',
      reply: 'Paris.',
      request: { effort: 'low' },
      sent: (b) => b.reasoning_effort,
      expectSent: 'low',
      usage: { inputTokens: 20, outputTokens: 150, reasoningTokens: 128 },
    },
    midError: { fixture: 'azure/mid-stream-error.sse', code: 'SERVER_ERROR', partial: 'Hello' },
    toolNames: openaiTools,
    image: /"image_url":\{"url":"data:image\/png;base64,iVBOR/,
    errors: [
      { fixture: 'azure/error-429.json', status: 429, code: 'RATE_LIMITED', headers: { 'retry-after': '6' }, retryAfterMs: 6000 },
      { fixture: 'azure/error-content-filter.json', status: 400, code: 'BAD_REQUEST' },
    ],
    finishNeedle: '"finish_reason":"stop"',
  },
  {
    provider: 'anthropic',
    model: 'claude-sonnet-4-5',
    mock: 'anthropic',
    text: {
      fixture: 'anthropic/text.sse',
      reply: 'Hello! How can I help you today?',
      usage: { inputTokens: 25, outputTokens: 15 },
      responseId: 'msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY',
    },
    reasoning: {
      fixture: 'anthropic/thinking.sse',
      reasoning:
        'I need to find the GCD of 1071 and 462 using the Euclidean algorithm.\n\n1071 = 2 × 462 + 147\n462 = 3 × 147 + 21\n147 = 7 × 21 + 0\n\nSo the GCD is 21.',
      reply: 'The greatest common divisor of 1071 and 462 is **21**.',
      request: { budgetTokens: 2048 },
      sent: (b) => b.thinking,
      expectSent: { type: 'enabled', budget_tokens: 2048 },
      usage: { inputTokens: 52, outputTokens: 96, cachedInputTokens: 12 },
    },
    tool: {
      fixture: 'anthropic/tool-use.sse',
      calls: [{ name: 'get_weather', args: { location: 'San Francisco, CA' }, id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6' }],
    },
    parallel: {
      fixture: 'anthropic/tool-use-parallel.sse',
      calls: [
        { name: 'get_weather', args: { location: 'San Francisco, CA' }, id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6' },
        { name: 'get_weather', args: { location: 'New York, NY' }, id: 'toolu_01AbCkqGq4W3G9vvgkzAH8LH' },
      ],
    },
    toolNames: (b) => (b?.tools ?? []).map((t: any) => t.name),
    image: /"source":\{"type":"base64","media_type":"image\/png","data":"iVBOR/,
    errors: [
      { fixture: 'anthropic/error-529.json', status: 529, code: 'OVERLOADED' },
      { fixture: 'anthropic/error-429.json', status: 429, code: 'RATE_LIMITED', headers: { 'retry-after': '30' }, retryAfterMs: 30000 },
      { fixture: 'anthropic/error-context-length.json', status: 400, code: 'CONTEXT_LENGTH' },
    ],
    midError: { fixture: 'anthropic/mid-stream-error.sse', code: 'OVERLOADED', partial: 'Hello' },
    finishNeedle: 'event: message_delta',
  },
  {
    provider: 'gemini',
    model: 'gemini-2.5-flash',
    mock: 'gemini',
    text: {
      fixture: 'gemini/text.sse',
      reply: 'Hello! How can I help you today?',
      usage: { inputTokens: 8, outputTokens: 9 },
      responseId: '-hg5aP3kKqv6vdIPr9ir0Qg',
    },
    reasoning: {
      fixture: 'gemini/thinking.sse',
      reasoning:
        "**Calculating the GCD**\n\nI'm applying the Euclidean algorithm: 1071 = 2·462 + 147, then 462 = 3·147 + 21.**Finishing up**\n\n147 = 7·21, so the remainder is zero and the GCD is 21.",
      reply: 'The greatest common divisor of 1071 and 462 is 21.',
      request: { enabled: true, effort: 'low' },
      sent: (b) => b.generationConfig?.thinkingConfig,
      expectSent: { includeThoughts: true, thinkingBudget: 1024 },
      usage: { inputTokens: 12, reasoningTokens: 113, cachedInputTokens: 4 },
    },
    tool: { fixture: 'gemini/function-call.sse', calls: [{ name: 'get_weather', args: { location: 'Boston, MA' } }] },
    parallel: {
      fixture: 'gemini/function-calls-parallel.sse',
      calls: [
        { name: 'get_weather', args: { location: 'Boston, MA' } },
        { name: 'get_weather', args: { location: 'Tokyo, Japan' } },
      ],
    },
    toolNames: (b) => (b?.tools ?? []).flatMap((t: any) => (t.functionDeclarations ?? []).map((f: any) => f.name)),
    image: /"inlineData":\{"mimeType":"image\/png","data":"iVBOR/,
    errors: [
      { fixture: 'gemini/error-429.json', status: 429, code: 'RATE_LIMITED', retryAfterMs: 34000 },
      { fixture: 'gemini/error-400-api-key.json', status: 400, code: 'AUTH' },
      { fixture: 'gemini/error-context-length.json', status: 400, code: 'CONTEXT_LENGTH' },
    ],
    midError: { fixture: 'gemini/mid-stream-error.sse', code: 'OVERLOADED', partial: 'Hello' },
    finishNeedle: '"finishReason":"STOP"',
    completeAfterFinish: true,
  },
  {
    provider: 'vertex',
    model: 'vertex/gemini-2.5-flash',
    mock: 'vertex',
    text: {
      fixture: 'vertex/text.sse',
      reply: 'Hello! How can I help you today?',
      usage: { inputTokens: 8, outputTokens: 9 },
      responseId: 'rgbuaM2sG5ShgLUP_NKp6AI',
    },
    reasoning: {
      fixture: 'vertex/thinking.sse',
      reasoning: '**Weighing the options**\n\nThe user wants a one-word answer.',
      reply: 'Blue.',
      request: { enabled: true },
      sent: (b) => b.generationConfig?.thinkingConfig,
      expectSent: { includeThoughts: true },
      usage: { inputTokens: 9, reasoningTokens: 37 },
    },
    tool: { fixture: 'vertex/function-call.sse', calls: [{ name: 'get_weather', args: { location: 'Boston, MA' } }] },
    parallel: {
      fixture: 'vertex/function-calls-parallel.sse',
      calls: [
        { name: 'get_weather', args: { location: 'Boston, MA' } },
        { name: 'get_weather', args: { location: 'Tokyo, Japan' } },
      ],
    },
    midError: { fixture: 'vertex/mid-stream-error.sse', code: 'OVERLOADED', partial: 'Hello' },
    toolNames: (b) => (b?.tools ?? []).flatMap((t: any) => (t.functionDeclarations ?? []).map((f: any) => f.name)),
    image: /"inlineData":\{"mimeType":"image\/png","data":"iVBOR/,
    errors: [{ fixture: 'vertex/error-429.json', status: 429, code: 'RATE_LIMITED' }],
    finishNeedle: '"finishReason":"STOP"',
    completeAfterFinish: true,
  },
  {
    provider: 'ollama',
    model: 'llama3.2:3b',
    mock: 'ollama',
    text: {
      fixture: 'ollama/text.ndjson',
      reply: 'The sky is blue because of Rayleigh scattering.',
      usage: { inputTokens: 26, outputTokens: 282 },
    },
    reasoning: {
      fixture: 'ollama/thinking.ndjson',
      reasoning: 'Okay, the user asks for 10 plus 23.',
      reply: '10 + 23 = 33',
      request: { effort: 'high' },
      sent: (b) => b.think,
      expectSent: 'high',
      usage: { inputTokens: 18, outputTokens: 41 },
    },
    tool: { fixture: 'ollama/tool-call.ndjson', calls: [{ name: 'get_weather', args: { city: 'Toronto' }, id: 'call_xf2yarrb' }] },
    parallel: {
      fixture: 'ollama/tool-calls-parallel.ndjson',
      calls: [
        { name: 'get_temperature', args: { city: 'New York' }, id: 'call_0' },
        { name: 'get_conditions', args: { city: 'New York' }, id: 'call_1' },
      ],
    },
    toolNames: (b) => (b?.tools ?? []).map((t: any) => t.function?.name),
    image: /"images":\["iVBOR/,
    errors: [{ fixture: 'ollama/error-404.json', status: 404, code: 'BAD_REQUEST' }],
    midError: { fixture: 'ollama/mid-stream-error.ndjson', code: 'SERVER_ERROR', partial: 'The' },
    finishNeedle: '"done":true',
    completeAfterFinish: true,
  },
  {
    provider: 'xai',
    model: 'grok-3-mini',
    mock: 'xai',
    text: { fixture: 'xai/text.sse', reply: 'Hi there!', usage: { inputTokens: 15, cachedInputTokens: 6 } },
    reasoning: {
      fixture: 'xai/reasoning.sse',
      reasoning: 'The user asks what 101 times 3 is. 101*3 = 303.',
      reply: '101 × 3 = 303',
      request: { effort: 'low' },
      sent: (b) => b.reasoning_effort,
      expectSent: 'low',
      usage: { inputTokens: 15, reasoningTokens: 16 },
    },
    tool: { fixture: 'xai/tool-call.sse', calls: [{ name: 'get_weather', args: { location: 'Paris' }, id: 'call_21484961' }] },
    parallel: {
      fixture: 'xai/tool-calls-parallel.sse',
      calls: [
        { name: 'get_weather', args: { location: 'Paris' }, id: 'call_51263512' },
        { name: 'get_weather', args: { location: 'Berlin' }, id: 'call_88271902' },
      ],
    },
    toolNames: openaiTools,
    image: /"image_url":\{"url":"data:image\/png;base64,iVBOR/,
    errors: [{ fixture: 'xai/error-429.json', status: 429, code: 'RATE_LIMITED' }],
    finishNeedle: '"finish_reason":"stop"',
  },
  {
    provider: 'openrouter',
    model: 'openrouter/deepseek/deepseek-r1',
    mock: 'openrouter',
    text: { fixture: 'openrouter/text.sse', reply: 'Hello world!', usage: { inputTokens: 9, outputTokens: 3 } },
    reasoning: {
      fixture: 'openrouter/reasoning.sse',
      reasoning: 'Okay, the user wants a haiku.',
      reply: 'Silent pond at dawn— a frog leaps.',
      request: { effort: 'high' },
      sent: (b) => b.reasoning,
      expectSent: { effort: 'high' },
      usage: { inputTokens: 11, outputTokens: 64, reasoningTokens: 52 },
    },
    tool: {
      fixture: 'openrouter/tool-call.sse',
      calls: [{ name: 'get_weather', args: { location: 'London' }, id: 'call_0bbBN0Bb5b9mP2xYtqQTqsBT' }],
    },
    parallel: {
      fixture: 'openrouter/tool-calls-parallel.sse',
      calls: [
        { name: 'get_weather', args: { location: 'London' }, id: 'call_0bbBN0Bb5b9mP2xYtqQTqsBT' },
        { name: 'get_weather', args: { location: 'Oslo' }, id: 'call_Wq8Pn5eR3vT1yU7iO9aS2dF4' },
      ],
    },
    toolNames: openaiTools,
    image: /"image_url":\{"url":"data:image\/png;base64,iVBOR/,
    errors: [
      { fixture: 'openrouter/error-402.json', status: 402, code: 'AUTH' },
      { fixture: 'openrouter/error-429.json', status: 429, code: 'RATE_LIMITED' },
    ],
    midError: { fixture: 'openrouter/mid-stream-error.sse', code: 'SERVER_ERROR', partial: 'Silent' },
    finishNeedle: '"finish_reason":"stop"',
  },
  {
    provider: 'local',
    model: 'local/qwen2.5-coder',
    mock: 'local',
    text: { fixture: 'openai/text.sse', reply: 'Hello! How can I assist you today?', usage: { inputTokens: 19, outputTokens: 10 } },
    reasoning: {
      fixture: 'compatible/vllm-reasoning.sse',
      reasoning: 'Okay, 9.11 versus 9.8: compare the tenths, 1 < 8.',
      reply: '9.8 is greater.',
      request: { effort: 'medium' },
      sent: (b) => b.reasoning_effort,
      expectSent: 'medium',
      usage: { inputTokens: 14, outputTokens: 46 },
    },
    tool: {
      fixture: 'openai/tool-call.sse',
      calls: [{ name: 'get_weather', args: { location: 'Paris, France' }, id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA' }],
    },
    parallel: {
      fixture: 'openai/tool-calls-parallel.sse',
      calls: [
        { name: 'get_weather', args: { location: 'Paris, France' } },
        { name: 'get_weather', args: { location: 'Bogotá, Colombia' } },
      ],
    },
    toolNames: openaiTools,
    image: /"image_url":\{"url":"data:image\/png;base64,iVBOR/,
    errors: [{ fixture: 'openai/error-429.json', status: 429, code: 'RATE_LIMITED' }],
    midError: { fixture: 'openai/mid-stream-error.sse', code: 'SERVER_ERROR', partial: 'Hello' },
    finishNeedle: '"finish_reason":"stop"',
  },
  {
    provider: 'bedrock',
    model: 'bedrock/anthropic.claude-3-7-sonnet-20250219-v1:0',
    mock: 'bedrock',
    text: {
      fixture: 'bedrock/text.eventstream.json',
      reply: 'Hello! How can I help you today?',
      usage: { inputTokens: 12, outputTokens: 11 },
    },
    reasoning: {
      fixture: 'bedrock/reasoning.eventstream.json',
      reasoning: 'The user asks for 2+2. That is 4.',
      reply: '2 + 2 = 4.',
      request: { budgetTokens: 2048 },
      sent: (b) => b.additionalModelRequestFields?.thinking,
      expectSent: { type: 'enabled', budget_tokens: 2048 },
      usage: { inputTokens: 45, outputTokens: 58 },
    },
    tool: {
      fixture: 'bedrock/tool-use.eventstream.json',
      calls: [{ name: 'get_weather', args: { location: 'Seattle, WA' }, id: 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q' }],
    },
    parallel: {
      fixture: 'bedrock/tool-use-parallel.eventstream.json',
      calls: [
        { name: 'get_weather', args: { location: 'Seattle, WA' }, id: 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q' },
        { name: 'get_weather', args: { location: 'Paris' }, id: 'tooluse_3nQ1tBq0T6y0ZHk2Sx9W1A' },
      ],
    },
    toolNames: (b) => (b?.toolConfig?.tools ?? []).map((t: any) => t.toolSpec?.name),
    image: /"image":\{"format":"png","source":\{"bytes":"iVBOR/,
    errors: [
      {
        fixture: 'bedrock/error-429.json',
        status: 429,
        code: 'RATE_LIMITED',
        headers: { 'x-amzn-errortype': 'ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/' },
      },
      {
        fixture: 'bedrock/error-context-length.json',
        status: 400,
        code: 'CONTEXT_LENGTH',
        headers: { 'x-amzn-errortype': 'ValidationException' },
      },
    ],
    midError: { fixture: 'bedrock/mid-stream-throttling.eventstream.json', code: 'RATE_LIMITED', partial: 'Hello' },
    finishNeedle: 'messageStop',
  },
];

const ONE_TRY: ConfigInput = { retry: { maxAttempts: 1 } };

// One set of mocks for the file, and the tests run one at a time: each test owns the mocks'
// script queues while it runs, and timing tests are not starved by a hundred concurrent ones.
let shared: Mocks;
test.before(async () => {
  shared = await startMocks();
});
test.after.always(() => stopMocks(shared));

async function run(_t: ExecutionContext, c: Case, scripts: MockScript[], payload: unknown, config: ConfigInput = ONE_TRY) {
  const mock = shared[c.mock];
  const before = mock.requests.length;
  mock.enqueue(...scripts);
  const { router } = routerFor(shared, config);
  const result = await collect(router.chat(payload));
  return { ...result, mock: { requests: mock.requests.slice(before) } };
}

function toolCalls(events: Array<{ type: string }>): ChatToolCallEvent[] {
  return events.filter((e): e is ChatToolCallEvent => e.type === 'tool-call');
}

for (const c of cases) {
  test(`${c.provider}: text and usage`, async (t) => {
    const r = await run(t, c, [{ kind: 'replay', fixture: c.text.fixture }], ask(c.model));
    t.is(r.error, undefined, r.error?.message);
    t.like(r.events[0], { type: 'start', provider: c.provider });
    t.is(r.text, c.text.reply);
    const finish = r.events.at(-1);
    t.like(finish, { type: 'finish', finishReason: 'stop', usage: c.text.usage });
    if (c.text.responseId) t.like(finish, { responseId: c.text.responseId });
    t.deepEqual(r.mock.requests[0].problems, []);
    t.true(r.timing!.firstEventMs! <= r.timing!.firstTextMs!, 'first event no later than first text');
  });

  if (c.reasoning) {
    const rs = c.reasoning;
    test(`${c.provider}: reasoning`, async (t) => {
      const r = await run(t, c, [{ kind: 'replay', fixture: rs.fixture }], ask(c.model, 'Think first', { reasoning: rs.request }));
      t.is(r.error, undefined, r.error?.message);
      t.is(r.reasoning, rs.reasoning, 'reasoning arrives as reasoning events');
      t.is(r.text, rs.reply, 'and never leaks into the reply text');
      t.deepEqual(rs.sent(r.mock.requests[0].body), rs.expectSent, 'reasoning controls mapped into the request');
      if (rs.usage) t.like(r.events.at(-1), { type: 'finish', usage: rs.usage });
      t.deepEqual(r.mock.requests[0].problems, []);
    });

    test(`${c.provider}: slow reasoning is activity, not a timeout`, async (t) => {
      const events = eventCount(rs.fixture);
      // Each gap is under the between-events limit; the whole reasoning phase is over the
      // first-event limit, which only the old text-only timer would have held against it.
      const r = await run(t, c, [{ kind: 'replay', fixture: rs.fixture, delayMs: 400 }], ask(c.model, 'Think', { reasoning: rs.request }), {
        retry: { maxAttempts: 1 },
        timeouts: { firstChunkMs: 700, betweenChunksMs: 1500 },
      });
      t.is(r.error, undefined, r.error?.message);
      t.is(r.text, rs.reply);
      t.is(r.mock.requests.length, 1, 'not retried');
      t.true(events * 400 > 700);
    });
  }

  for (const [kind, spec] of [
    ['tool call', c.tool],
    ['parallel tool calls', c.parallel],
  ] as const) {
    if (!spec) continue;
    test(`${c.provider}: ${kind}`, async (t) => {
      const payload = ask(c.model, 'Weather?', { tools: [WEATHER_TOOL], toolChoice: 'auto' });
      const r = await run(t, c, [{ kind: 'replay', fixture: spec.fixture }], payload);
      t.is(r.error, undefined, r.error?.message);
      const calls = toolCalls(r.events);
      t.is(calls.length, spec.calls.length);
      for (const [i, want] of spec.calls.entries()) {
        t.is(calls[i].name, want.name);
        t.deepEqual(JSON.parse(calls[i].arguments), want.args);
        if (want.id) t.is(calls[i].id, want.id);
        t.truthy(calls[i].id);
        // Start and the argument deltas come before the complete call, and add up to it.
        const starts = r.events.filter((e) => e.type === 'tool-call-start' && e.id === calls[i].id);
        t.is(starts.length, 1);
        const args = r.events.map((e) => (e.type === 'tool-call-delta' && e.id === calls[i].id ? e.argumentsDelta : '')).join('');
        t.deepEqual(JSON.parse(args), want.args);
      }
      t.like(r.events.at(-1), { type: 'finish', finishReason: 'tool-calls' });
      t.deepEqual(c.toolNames(r.mock.requests[0].body), ['get_weather'], 'tools sent in the provider form');
      t.deepEqual(r.mock.requests[0].problems, []);
    });
  }

  test(`${c.provider}: image in a message`, async (t) => {
    const payload = {
      model: c.model,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in this picture?' },
            { type: 'image', mediaType: 'image/png', data: PNG },
          ],
        },
      ],
    };
    const r = await run(t, c, [{ kind: 'replay', fixture: c.text.fixture }], payload);
    t.is(r.error, undefined, r.error?.message);
    t.regex(JSON.stringify(r.mock.requests[0].body), c.image);
    t.true(JSON.stringify(r.mock.requests[0].body).includes(PNG), 'the image bytes, intact');
  });

  test(`${c.provider}: multi-turn with a tool result`, async (t) => {
    const payload = {
      model: c.model,
      tools: [WEATHER_TOOL],
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: null, toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"location":"Paris"}' }] },
        { role: 'tool', toolCallId: 'call_1', name: 'get_weather', content: '{"temperature":18}' },
      ],
    };
    const r = await run(t, c, [{ kind: 'replay', fixture: c.text.fixture }], payload);
    t.is(r.error, undefined, r.error?.message);
    const body = JSON.stringify(r.mock.requests[0].body);
    t.true(body.includes('Paris'), 'the tool call went back');
    t.true(body.includes('temperature'), 'the tool result went back');
  });

  for (const e of c.errors) {
    test(`${c.provider}: HTTP ${e.status} ${e.fixture.split('/')[1]} → ${e.code}`, async (t) => {
      const r = await run(t, c, [{ kind: 'replay', fixture: e.fixture, status: e.status, headers: e.headers }], ask(c.model));
      t.is(r.error?.code, e.code, r.error?.message);
      t.is(r.error?.provider, c.provider);
      t.is(r.error?.httpStatus, e.status);
      if (e.retryAfterMs !== undefined) t.is(r.error?.retryAfterMs, e.retryAfterMs);
      t.deepEqual(r.events, []);
    });
  }

  if (c.midError) {
    const me = c.midError;
    test(`${c.provider}: error in mid-stream`, async (t) => {
      const r = await run(t, c, [{ kind: 'replay', fixture: me.fixture }], ask(c.model), { retry: { maxAttempts: 3 } });
      t.is(r.error?.code, me.code, r.error?.message);
      t.is(r.text, me.partial);
      t.is(r.mock.requests.length, 1, 'no retry after the first token');
    });
  }

  test(`${c.provider}: truncated mid-event`, async (t) => {
    const first = eventIndex(c.text.fixture, c.text.reply.slice(0, 2));
    const r = await run(t, c, [{ kind: 'replay', fixture: c.text.fixture, cut: { after: first + 1, partial: true } }], ask(c.model));
    t.is(r.error?.code, 'TRUNCATED', r.error?.message);
    t.true(r.error?.retryable);
  });

  test(`${c.provider}: truncated right after the finish reason`, async (t) => {
    const fin = eventIndex(c.text.fixture, c.finishNeedle);
    const r = await run(t, c, [{ kind: 'replay', fixture: c.text.fixture, cut: { after: fin + 1, clean: true } }], ask(c.model));
    if (c.completeAfterFinish) {
      t.is(r.error, undefined, 'nothing else is due after the finish chunk');
      t.is(r.text, c.text.reply);
    } else {
      t.is(r.error?.code, 'TRUNCATED', r.error?.message ?? 'reported as complete');
      t.false(
        r.events.some((e) => e.type === 'finish'),
        'no finish, no made-up usage',
      );
    }
  });

  test(`${c.provider}: truncated before the terminal event`, async (t) => {
    const n = eventCount(c.text.fixture);
    for (const clean of [true, false]) {
      const r = await run(t, c, [{ kind: 'replay', fixture: c.text.fixture, cut: { after: n - 1, clean } }], ask(c.model));
      t.is(r.error?.code, 'TRUNCATED', `clean=${clean}: ${r.error?.message ?? 'reported as complete'}`);
    }
  });

  test(`${c.provider}: slow first byte times out, with progress while waiting`, async (t) => {
    const r = await run(t, c, [{ kind: 'replay', fixture: c.text.fixture, firstDelayMs: 5000 }], ask(c.model), {
      retry: { maxAttempts: 1 },
      timeouts: { firstChunkMs: 800, progressMs: 250 },
    });
    t.is(r.error?.code, 'TIMEOUT');
    t.regex(r.error!.message, /no first event within 800 ms/);
    t.true(r.progress.length >= 1, 'the editor heard something while the provider was silent');
    t.like(r.progress[0], { type: 'progress', state: 'waiting', provider: c.provider });
    t.deepEqual(await r.mock.requests[0].closed, { byClient: true });
  });
}
