/**
 * Mock of OpenAI Chat Completions streaming (`POST /v1/chat/completions`, `Authorization: Bearer`).
 * Also serves as the mock for OpenAI-compatible servers, which speak the same format.
 * `data: {chat.completion.chunk}` lines; the usage chunk (`choices: []`) only when the request
 * set `stream_options.include_usage`; then `data: [DONE]`.
 */
import { type MockOptions, type MockServer, type WireFormat, splitUrl, startMock, textOf } from './harness';

const frame = (obj: unknown) => `data: ${JSON.stringify(obj)}\n\n`;
const CREATED = 1_735_689_600;

const chunk = (model: string, choices: unknown[], usage: unknown = null) => ({
  id: 'chatcmpl-mock',
  object: 'chat.completion.chunk',
  created: CREATED,
  model,
  system_fingerprint: 'fp_mock',
  choices,
  usage,
});

const ERROR_TYPES: Record<number, { type: string; code: string | null }> = {
  400: { type: 'invalid_request_error', code: null },
  401: { type: 'invalid_request_error', code: 'invalid_api_key' },
  429: { type: 'requests', code: 'rate_limit_exceeded' },
  500: { type: 'server_error', code: null },
  503: { type: 'server_error', code: null },
};

/** Build the OpenAI wire format; `path` lets a compatible mock sit under another prefix. */
export function openaiFormat(path = '/v1/chat/completions'): WireFormat {
  return {
    name: 'openai',
    contentType: 'text/event-stream; charset=utf-8',
    check({ method, url, headers, body }, apiKey) {
      const problems: string[] = [];
      const p = splitUrl(url).path;
      if (method !== 'POST' || p !== path) return { problems: [`unexpected ${method} ${p}`], messages: [], notFound: true };
      if (body?.stream !== true) problems.push('stream is not true');
      if (typeof body?.model !== 'string') problems.push('model missing');
      if (!Array.isArray(body?.messages) || body.messages.length === 0) problems.push('messages missing');
      const messages = (body?.messages ?? []).map((m: any) => ({ role: m.role, content: textOf(m.content) }));
      const unauthorized = apiKey !== undefined && headers.authorization !== `Bearer ${apiKey}`;
      if (unauthorized) problems.push('bad Authorization header');
      return { model: body?.model, messages, problems, unauthorized };
    },
    open: (model) => [
      frame(chunk(model, [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }])),
    ],
    delta: (text, model) => frame(chunk(model, [{ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }])),
    close(model, usage, finishReason, req) {
      const frames = [frame(chunk(model, [{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason ?? 'stop' }]))];
      if (req.body?.stream_options?.include_usage) {
        frames.push(
          frame(
            chunk(model, [], {
              prompt_tokens: usage.input,
              completion_tokens: usage.output,
              total_tokens: usage.input + usage.output,
              prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
              completion_tokens_details: {
                reasoning_tokens: 0,
                audio_tokens: 0,
                accepted_prediction_tokens: 0,
                rejected_prediction_tokens: 0,
              },
            }),
          ),
        );
      }
      frames.push('data: [DONE]\n\n');
      return frames;
    },
    midError: (s) =>
      frame({
        error: {
          message: s.message ?? 'The server had an error while processing your request. Sorry about that!',
          type: s.errorType ?? 'server_error',
          param: null,
          code: null,
        },
      }),
    errorResponse(s) {
      const t = ERROR_TYPES[s.status] ?? { type: 'server_error', code: null };
      const message =
        s.message ?? (s.status === 429 ? 'Rate limit reached for requests. Please try again later.' : `mock error ${s.status}`);
      return { body: JSON.stringify({ error: { message, type: t.type, param: null, code: t.code } }) };
    },
  };
}

/** Start an OpenAI mock; point the client's base URL at `${mock.origin}/v1`. */
export function startOpenAIMock(opts: MockOptions = {}): Promise<MockServer> {
  return startMock(openaiFormat(), opts);
}
