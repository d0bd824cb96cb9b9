/**
 * Mock of Anthropic Messages streaming (`POST /v1/messages`, headers `x-api-key` and
 * `anthropic-version: 2023-06-01`). Named SSE events: `message_start`, `content_block_start`,
 * `content_block_delta` (text_delta), `content_block_stop`, `message_delta` (stop_reason and
 * cumulative usage), `message_stop`, with `ping` interleaved; a mid-stream failure is
 * `event: error`. HTTP 529 means overloaded.
 */
import { type MockOptions, type MockServer, type WireFormat, splitUrl, startMock, textOf } from './harness';

const event = (name: string, obj: unknown) => `event: ${name}\ndata: ${JSON.stringify(obj)}\n\n`;

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

/** Anthropic's wire format. */
export const anthropicFormat: WireFormat = {
  name: 'anthropic',
  contentType: 'text/event-stream; charset=utf-8',
  check({ method, url, headers, body }, apiKey) {
    const problems: string[] = [];
    const p = splitUrl(url).path;
    if (method !== 'POST' || p !== '/v1/messages') return { problems: [`unexpected ${method} ${p}`], messages: [], notFound: true };
    if (headers['anthropic-version'] !== '2023-06-01') problems.push(`anthropic-version ${headers['anthropic-version']}`);
    if (body?.stream !== true) problems.push('stream is not true');
    if (typeof body?.model !== 'string') problems.push('model missing');
    if (typeof body?.max_tokens !== 'number') problems.push('max_tokens missing');
    if (!Array.isArray(body?.messages) || body.messages.length === 0) problems.push('messages missing');
    const messages: Array<{ role: string; content: string }> = [];
    if (body?.system !== undefined) messages.push({ role: 'system', content: textOf(body.system) });
    for (const m of body?.messages ?? []) {
      if (m.role !== 'user' && m.role !== 'assistant') problems.push(`bad role ${m.role}`);
      messages.push({ role: m.role, content: textOf(m.content) });
    }
    const unauthorized = apiKey !== undefined && headers['x-api-key'] !== apiKey;
    if (unauthorized) problems.push('bad x-api-key');
    return { model: body?.model, messages, problems, unauthorized };
  },
  open: (model) => [
    event('message_start', {
      type: 'message_start',
      message: {
        id: 'msg_mock',
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        // Placeholder counts, as the real API sends; the final ones come in message_delta.
        usage: { input_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 },
      },
    }),
    event('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
    event('ping', { type: 'ping' }),
  ],
  delta: (text) => event('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }),
  keepalive: () => event('ping', { type: 'ping' }),
  close: (_model, usage, finishReason) => [
    event('content_block_stop', { type: 'content_block_stop', index: 0 }),
    event('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: finishReason ?? 'end_turn', stop_sequence: null },
      usage: { input_tokens: usage.input, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: usage.output },
    }),
    event('message_stop', { type: 'message_stop' }),
  ],
  midError: (s) =>
    event('error', { type: 'error', error: { type: s.errorType ?? 'overloaded_error', message: s.message ?? 'Overloaded' } }),
  errorResponse: (s) => ({
    body: JSON.stringify({
      type: 'error',
      error: {
        type: ERROR_TYPES[s.status] ?? 'api_error',
        message: s.message ?? (s.status === 529 ? 'Overloaded' : `mock error ${s.status}`),
      },
    }),
    headers: { 'request-id': 'req_mock' },
  }),
};

/** Start an Anthropic mock; point the client's base URL at `${mock.origin}/v1`. */
export function startAnthropicMock(opts: MockOptions = {}): Promise<MockServer> {
  return startMock(anthropicFormat, opts);
}
