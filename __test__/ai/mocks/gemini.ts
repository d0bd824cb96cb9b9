/**
 * Mock of the Gemini API's streaming endpoint:
 * `POST /v1beta/models/{model}:streamGenerateContent?alt=sse`, key in `x-goog-api-key`.
 * Bare `data:` lines separated by CRLF CRLF, no event names and no `[DONE]`; the last chunk
 * carries `finishReason` and the full `usageMetadata`, and the stream ends when the
 * connection closes.
 */
import { type MockOptions, type MockServer, type WireFormat, splitUrl, startMock, textOf } from './harness';

const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

const frame = (obj: unknown) => `data: ${JSON.stringify(obj)}\r\n\r\n`;

const chunk = (model: string, candidate: Record<string, unknown>, usageMetadata?: unknown) => ({
  candidates: [{ index: 0, ...candidate }],
  ...(usageMetadata ? { usageMetadata } : {}),
  modelVersion: model,
  responseId: 'mock-gemini-response',
});

/** Gemini's wire format. */
export const geminiFormat: WireFormat = {
  name: 'gemini',
  contentType: 'text/event-stream',
  check({ method, url, headers, body }, apiKey) {
    const problems: string[] = [];
    const { path, query } = splitUrl(url);
    const m = /^\/v1beta\/models\/([^/:]+):streamGenerateContent$/.exec(path);
    if (method !== 'POST' || !m) return { problems: [`unexpected ${method} ${path}`], messages: [], notFound: true };
    if (query.get('alt') !== 'sse') problems.push('missing alt=sse');
    if (query.has('key')) problems.push('API key sent in the URL');
    const messages: Array<{ role: string; content: string }> = [];
    if (body?.systemInstruction) messages.push({ role: 'system', content: textOf(body.systemInstruction.parts) });
    if (!Array.isArray(body?.contents) || body.contents.length === 0) problems.push('contents missing');
    for (const c of body?.contents ?? []) {
      if (c.role !== 'user' && c.role !== 'model') problems.push(`bad role ${c.role}`);
      messages.push({ role: c.role === 'model' ? 'assistant' : c.role, content: textOf(c.parts) });
    }
    const unauthorized = apiKey !== undefined && headers['x-goog-api-key'] !== apiKey;
    if (unauthorized) problems.push('bad x-goog-api-key');
    return { model: decodeURIComponent(m[1]), messages, problems, unauthorized };
  },
  open: () => [],
  delta: (text, model) => frame(chunk(model, { content: { parts: [{ text }], role: 'model' } })),
  close: (model, usage, finishReason) => [
    frame(
      chunk(
        model,
        { content: { parts: [{ text: '' }], role: 'model' }, finishReason: finishReason ?? 'STOP' },
        {
          promptTokenCount: usage.input,
          candidatesTokenCount: usage.output,
          totalTokenCount: usage.input + usage.output,
          promptTokensDetails: [{ modality: 'TEXT', tokenCount: usage.input }],
        },
      ),
    ),
  ],
  midError(s) {
    const code = s.code ?? 503;
    const error = {
      code,
      message: s.message ?? 'The model is overloaded. Please try again later.',
      status: s.errorType ?? STATUS_NAMES[code] ?? 'UNKNOWN',
    };
    // Unframed: the JSON arrives as-is, outside any `data:` line, which SSE parsers skip.
    return s.framed === false ? `${JSON.stringify({ error }, null, 2)}\n` : frame({ error });
  },
  errorResponse(s) {
    // A bad key is a 400 on Gemini, recognisable only by the ErrorInfo reason.
    if (s.status === 401) {
      return {
        status: 400,
        body: JSON.stringify({
          error: {
            code: 400,
            message: 'API key not valid. Please pass a valid API key.',
            status: 'INVALID_ARGUMENT',
            details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com' }],
          },
        }),
      };
    }
    const details: unknown[] = [];
    if (s.status === 429) {
      details.push({
        '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
        violations: [
          {
            quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests',
            quotaId: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier',
          },
        ],
      });
    }
    if (s.retryDelay) details.push({ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: s.retryDelay });
    return {
      body: JSON.stringify({
        error: {
          code: s.status,
          message:
            s.message ??
            (s.status === 429
              ? 'You exceeded your current quota, please check your plan and billing details.'
              : 'Internal error encountered.'),
          status: STATUS_NAMES[s.status] ?? 'UNKNOWN',
          ...(details.length ? { details } : {}),
        },
      }),
    };
  },
};

/** Start a Gemini mock; point the client's base URL at `${mock.origin}/v1beta`. */
export function startGeminiMock(opts: MockOptions = {}): Promise<MockServer> {
  return startMock(geminiFormat, opts);
}
