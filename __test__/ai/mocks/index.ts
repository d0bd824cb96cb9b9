/**
 * Mock AI providers on 127.0.0.1, speaking each provider's streaming wire format, for tests
 * and benchmarks. Start one, point the provider's base URL at it, script its replies with
 * `enqueue`, and read what it received from `requests`.
 *
 * ```ts
 * const mock = await startOpenAIMock({ apiKey: 'sk-test' })
 * mock.enqueue({ kind: 'flood', count: 100_000 })   // benchmark: N tiny chunks, no delays
 * // OPENAI_BASE_URL = `${mock.origin}/v1`
 * ```
 */
export {
  DEFAULT_CHUNKS,
  DEFAULT_USAGE,
  MockServer,
  startMock,
  type MockOptions,
  type MockScript,
  type MockUsage,
  type RecordedRequest,
  type WireFormat,
} from './harness';
export { anthropicFormat, startAnthropicMock } from './anthropic';
export { geminiFormat, startGeminiMock } from './gemini';
export { ollamaFormat, startOllamaMock } from './ollama';
export { openaiFormat, startOpenAIMock } from './openai';
