/**
 * Shared test setup: every mock provider running at once, a config pointing at them, a
 * router whose logs are captured, and small collectors.
 */
import net from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Registry } from 'prom-client';
import { ChatError, type ChatEvent, type ChatProgressEvent, ChatRouter, type ChatTiming, type ConfigInput, loadConfig } from '../../src/ai';
import { startAnthropicMock } from './mocks/anthropic';
import { startAzureMock, startBedrockMock, startOpenRouterMock, startVertexMock, startXaiMock } from './mocks/cloud';
import { startGeminiMock } from './mocks/gemini';
import type { MockServer } from './mocks/harness';
import { startOllamaMock } from './mocks/ollama';
import { startMock } from './mocks/harness';
import { openaiFormat, startOpenAIMock } from './mocks/openai';

/** Keys distinctive enough that finding one in a log or message is unambiguous. */
export const KEYS = {
  gemini: 'AIzaTEST-gemini-key-0123456789abcdef',
  openai: 'sk-test-openai-key-0123456789abcdef',
  anthropic: 'sk-ant-test-anthropic-key-0123456789',
  other: 'other-compatible-key-0123456789abcdef',
  azure: 'azure-test-key-0123456789abcdef0123',
  xai: 'xai-test-key-0123456789abcdef0123456789',
  openrouter: 'sk-or-v1-test-0123456789abcdef0123456789',
  vertex: 'AQ.vertex-express-test-key-0123456789',
};

/** AWS credentials the Bedrock mock checks SigV4 signatures against (AWS's documented example key). */
export const AWS = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  region: 'us-east-1',
};

/** Vertex project and location the mock's paths carry. */
export const VERTEX = { project: 'test-project', location: 'us-central1' };

/**
 * All mocks: every provider plus two OpenAI-compatible servers (`local` keyless, `other`
 * keyed).
 */
export interface Mocks {
  gemini: MockServer;
  openai: MockServer;
  anthropic: MockServer;
  ollama: MockServer;
  local: MockServer;
  other: MockServer;
  azure: MockServer;
  xai: MockServer;
  openrouter: MockServer;
  vertex: MockServer;
  bedrock: MockServer;
}

/** Every provider a router over {@link startMocks} has, sorted: the mocks' plus echo. */
export const MOCK_PROVIDER_NAMES = [
  'anthropic',
  'azure',
  'bedrock',
  'echo',
  'gemini',
  'local',
  'ollama',
  'openai',
  'openrouter',
  'other',
  'vertex',
  'xai',
];

/** Start every mock. */
export async function startMocks(): Promise<Mocks> {
  const [gemini, openai, anthropic, ollama, local, other, azure, xai, openrouter, vertex, bedrock] = await Promise.all([
    startGeminiMock({ apiKey: KEYS.gemini }),
    startOpenAIMock({ apiKey: KEYS.openai }),
    startAnthropicMock({ apiKey: KEYS.anthropic }),
    startOllamaMock(),
    startMock(openaiFormat('/v1/chat/completions')),
    startMock(openaiFormat('/api/v1/chat/completions'), { apiKey: KEYS.other }),
    startAzureMock({ apiKey: KEYS.azure }),
    startXaiMock({ apiKey: KEYS.xai }),
    startOpenRouterMock({ apiKey: KEYS.openrouter }),
    startVertexMock({ apiKey: KEYS.vertex }),
    startBedrockMock(AWS),
  ]);
  return { gemini, openai, anthropic, ollama, local, other, azure, xai, openrouter, vertex, bedrock };
}

/** Stop every mock. */
export async function stopMocks(m: Mocks): Promise<void> {
  await Promise.all(Object.values(m).map((s) => s.close()));
}

/** The environment a user with every provider would have, pointed at the mocks. */
export function envFor(m: Mocks): NodeJS.ProcessEnv {
  return {
    GEMINI_API_KEY: KEYS.gemini,
    GEMINI_BASE_URL: `${m.gemini.origin}/v1beta`,
    OPENAI_API_KEY: KEYS.openai,
    OPENAI_BASE_URL: `${m.openai.origin}/v1`,
    ANTHROPIC_API_KEY: KEYS.anthropic,
    ANTHROPIC_BASE_URL: `${m.anthropic.origin}/v1`,
    OLLAMA_HOST: m.ollama.origin,
    AZURE_API_KEY: KEYS.azure,
    AZURE_BASE_URL: `${m.azure.origin}/openai`,
    XAI_API_KEY: KEYS.xai,
    XAI_BASE_URL: `${m.xai.origin}/v1`,
    OPENROUTER_API_KEY: KEYS.openrouter,
    OPENROUTER_BASE_URL: `${m.openrouter.origin}/api/v1`,
    GOOGLE_VERTEX_API_KEY: KEYS.vertex,
    GOOGLE_VERTEX_BASE_URL: `${m.vertex.origin}/v1/projects/${VERTEX.project}/locations/${VERTEX.location}/publishers/google`,
    BEDROCK_BASE_URL: m.bedrock.origin,
    AWS_ACCESS_KEY_ID: AWS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: AWS.secretAccessKey,
    AWS_REGION: AWS.region,
  };
}

/**
 * Fast retries and generous timeouts, so only the tests about timing are about timing; no
 * cooldowns and no progress events, so only the tests about those see them.
 */
export const FAST: ConfigInput = {
  retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 3000 },
  timeouts: { firstChunkMs: 20_000, betweenChunksMs: 20_000, totalMs: 60_000, progressMs: 0 },
  cooldown: { defaultMs: 0 },
};

/** A router over the mocks; `overrides` are merged over {@link FAST}. Logs are captured in `logs()`. */
export function routerFor(m: Mocks, overrides: ConfigInput = {}, registry?: Registry) {
  const config = loadConfig({
    env: envFor(m),
    overrides: {
      ...FAST,
      ...overrides,
      retry: { ...FAST.retry, ...overrides.retry },
      timeouts: { ...FAST.timeouts, ...overrides.timeouts },
      providers: {
        compatible: {
          local: { baseURL: `${m.local.origin}/v1`, models: ['qwen2.5-coder'] },
          other: { baseURL: `${m.other.origin}/api/v1`, apiKey: KEYS.other, models: ['mixtral'] },
        },
        ...overrides.providers,
      },
    },
  });
  let captured = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      captured += chunk.toString();
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  const router = new ChatRouter(config, { logger, registry });
  return { router, config, logs: () => captured };
}

/** What {@link collect} gathers. */
export interface Collected {
  /** The events, without `progress` (timing-dependent) and with `finish.timing` moved to {@link timing}. */
  events: ChatEvent[];
  /** Every `progress` event, in order. */
  progress: ChatProgressEvent[];
  /** Every event as yielded, progress and timing included. */
  all: ChatEvent[];
  timing?: ChatTiming;
  error?: ChatError;
  /** Concatenated delta text. */
  text: string;
  /** Concatenated reasoning text. */
  reasoning: string;
}

/** Split a raw event list the way {@link collect} does. */
export function sortEvents(all: ChatEvent[], error?: ChatError): Collected {
  const events: ChatEvent[] = [];
  const progress: ChatProgressEvent[] = [];
  let timing: ChatTiming | undefined;
  for (const ev of all) {
    if (ev.type === 'progress') progress.push(ev);
    else if (ev.type === 'finish' && ev.timing) {
      const { timing: t, ...rest } = ev;
      timing = t;
      events.push(rest);
    } else events.push(ev);
  }
  const reasoning = events.map((e) => (e.type === 'reasoning' ? e.text : '')).join('');
  return { events, progress, all, timing, text: textOf(events), reasoning, ...(error ? { error } : {}) };
}

/** Everything a chat yields, or the error it ended with (with the events before it). */
export async function collect(gen: AsyncIterable<ChatEvent>): Promise<Collected> {
  const all: ChatEvent[] = [];
  try {
    for await (const ev of gen) all.push(ev);
  } catch (e) {
    if (!(e instanceof ChatError)) throw e;
    return sortEvents(all, e);
  }
  return sortEvents(all);
}

/** Concatenated delta text. */
export function textOf(events: ChatEvent[]): string {
  return events.map((e) => (e.type === 'delta' ? e.text : '')).join('');
}

/** A chat payload with one user message. */
export function ask(model: string | undefined, content = 'Say hello', extra: Record<string, unknown> = {}) {
  return { ...(model !== undefined ? { model } : {}), messages: [{ role: 'user', content }], ...extra };
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Resolve with `value`, or with 'timed out' after `ms` (for bounded waits, not timing checks). */
export function within<T>(p: Promise<T>, ms: number): Promise<T | 'timed out'> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<'timed out'>((r) => (timer = setTimeout(() => r('timed out'), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

export { Registry };
