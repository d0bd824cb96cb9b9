/**
 * Mock of Ollama's native chat endpoint (`POST /api/chat`): NDJSON, one object per line,
 * `done: false` for content, a final line with `done: true`, `done_reason`,
 * `prompt_eval_count` and `eval_count`. A failure in mid-stream is a `{"error":"…"}` line
 * while the HTTP status stays 200.
 */
import { type MockOptions, type MockServer, type WireFormat, splitUrl, startMock } from './harness';

const CREATED_AT = '2025-01-01T00:00:00.000000000Z';
const line = (obj: unknown) => `${JSON.stringify(obj)}\n`;

/** Ollama's wire format. */
export const ollamaFormat: WireFormat = {
  name: 'ollama',
  contentType: 'application/x-ndjson',
  check({ method, url, body }) {
    const problems: string[] = [];
    const p = splitUrl(url).path;
    if (method !== 'POST' || p !== '/api/chat') return { problems: [`unexpected ${method} ${p}`], messages: [], notFound: true };
    if (typeof body?.model !== 'string') problems.push('model missing');
    if (body?.stream === false) problems.push('stream is false');
    if (!Array.isArray(body?.messages) || body.messages.length === 0) problems.push('messages missing');
    const messages = (body?.messages ?? []).map((m: any) => {
      if (typeof m.content !== 'string') problems.push('content is not a string');
      return { role: m.role, content: m.content };
    });
    return { model: body?.model, messages, problems };
  },
  open: () => [],
  delta: (text, model) => line({ model, created_at: CREATED_AT, message: { role: 'assistant', content: text }, done: false }),
  close: (model, usage, finishReason) => [
    line({
      model,
      created_at: CREATED_AT,
      message: { role: 'assistant', content: '' },
      done_reason: finishReason ?? 'stop',
      done: true,
      total_duration: 4_883_583_458,
      load_duration: 1_334_875,
      prompt_eval_count: usage.input,
      prompt_eval_duration: 342_546_000,
      eval_count: usage.output,
      eval_duration: 4_535_599_000,
    }),
  ],
  midError: (s) => line({ error: s.message ?? 'an error was encountered while running the model: unexpected EOF' }),
  errorResponse: (s) => ({ body: JSON.stringify({ error: s.message ?? `mock error ${s.status}` }) }),
};

/** Start an Ollama mock; point `OLLAMA_HOST` at `mock.origin`. */
export function startOllamaMock(opts: MockOptions = {}): Promise<MockServer> {
  return startMock(ollamaFormat, opts);
}
