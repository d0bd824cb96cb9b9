import test from 'ava';
import { APICallError } from '@ai-sdk/provider';
import { ChatError, type ChatErrorCode, backoffDelay, classifyError, geminiRetryDelayMs, parseRetryAfter, redact } from '../../src/ai';

const apiError = (statusCode: number | undefined, extra: Partial<ConstructorParameters<typeof APICallError>[0]> = {}) =>
  new APICallError({ message: `status ${statusCode}`, url: 'http://x/v1/chat', requestBodyValues: {}, statusCode, ...extra });

const statuses: Array<[number, ChatErrorCode, boolean]> = [
  [400, 'BAD_REQUEST', false],
  [401, 'AUTH', false],
  [403, 'AUTH', false],
  [404, 'BAD_REQUEST', false],
  [408, 'TIMEOUT', true],
  [409, 'RATE_LIMITED', true],
  [429, 'RATE_LIMITED', true],
  [500, 'SERVER_ERROR', true],
  [502, 'SERVER_ERROR', true],
  [504, 'SERVER_ERROR', true],
  [503, 'OVERLOADED', true],
  [529, 'OVERLOADED', true],
];
for (const [status, code, retryable] of statuses) {
  test(`HTTP ${status} → ${code} (retryable: ${retryable})`, (t) => {
    const e = classifyError(apiError(status), { provider: 'p' });
    t.is(e.code, code);
    t.is(e.retryable, retryable);
    t.is(e.httpStatus, status);
    t.is(e.provider, 'p');
  });
}

test('retry-after in seconds, as an HTTP date, and retry-after-ms', (t) => {
  t.is(parseRetryAfter({ 'retry-after': '7' }), 7000);
  t.is(parseRetryAfter({ 'Retry-After': '1.5' }), 1500);
  const now = Date.parse('2025-01-01T00:00:00Z');
  t.is(parseRetryAfter({ 'retry-after': 'Wed, 01 Jan 2025 00:00:30 GMT' }, now), 30_000);
  t.is(parseRetryAfter({ 'retry-after': 'Wed, 01 Jan 2024 00:00:30 GMT' }, now), 0, 'a date in the past means now');
  t.is(parseRetryAfter({ 'retry-after-ms': '250', 'retry-after': '9' }), 250, 'the finer header wins');
  t.is(parseRetryAfter(new Headers({ 'retry-after': '3' })), 3000);
  t.is(parseRetryAfter({ 'retry-after': 'soon' }), undefined);
  t.is(parseRetryAfter({}), undefined);
});

test('Gemini RetryInfo in the body gives the retry delay', (t) => {
  const body = {
    error: {
      code: 429,
      status: 'RESOURCE_EXHAUSTED',
      details: [
        { '@type': 'type.googleapis.com/google.rpc.QuotaFailure', violations: [] },
        { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '45.8s' },
      ],
    },
  };
  t.is(geminiRetryDelayMs(body), 45_800);
  t.is(geminiRetryDelayMs({ error: { details: [] } }), undefined);
  const e = classifyError(apiError(429, { responseBody: JSON.stringify(body) }), { provider: 'gemini' });
  t.is(e.code, 'RATE_LIMITED');
  t.is(e.retryAfterMs, 45_800);
});

test('an HTTP 429 carries the retry-after header into the error', (t) => {
  const e = classifyError(apiError(429, { responseHeaders: { 'retry-after': '2' } }));
  t.is(e.retryAfterMs, 2000);
});

test('Gemini API_KEY_INVALID (a 400) is an auth error', (t) => {
  const data = {
    error: {
      code: 400,
      status: 'INVALID_ARGUMENT',
      details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID' }],
    },
  };
  const e = classifyError(apiError(400, { data }), { provider: 'gemini' });
  t.is(e.code, 'AUTH');
  t.false(e.retryable);
});

test('OpenAI insufficient_quota is a 429 that is not retried', (t) => {
  const data = { error: { message: 'You exceeded your current quota', type: 'insufficient_quota', code: 'insufficient_quota' } };
  const e = classifyError(apiError(429, { data }));
  t.is(e.code, 'RATE_LIMITED');
  t.false(e.retryable);
});

test('mid-stream error objects without a status are typed', (t) => {
  const anth = classifyError({ type: 'overloaded_error', message: 'Overloaded' }, { provider: 'anthropic' });
  t.is(anth.code, 'OVERLOADED');
  t.true(anth.retryable);
  t.regex(anth.message, /overloaded_error.*Overloaded/);
  t.is(classifyError({ type: 'rate_limit_error', message: 'x' }).code, 'RATE_LIMITED');
  t.is(classifyError({ type: 'invalid_request_error', message: 'x' }).code, 'BAD_REQUEST');
  const oai = classifyError({ message: 'The server had an error', type: 'server_error', param: null, code: null }, { provider: 'openai' });
  t.is(oai.code, 'SERVER_ERROR');
  t.true(oai.retryable);
  t.is(classifyError({ error: { code: 503, status: 'UNAVAILABLE', message: 'busy' } }).code, 'OVERLOADED');
  const odd = classifyError({ type: 'constructor', message: 'what' });
  t.is(odd.code, 'PROVIDER_ERROR');
  t.false(odd.retryable);
});

test('network failures are retryable network errors; aborts are cancellations', (t) => {
  const refused = Object.assign(new TypeError('fetch failed'), {
    cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }),
  });
  const n = classifyError(refused, { provider: 'ollama' });
  t.is(n.code, 'NETWORK');
  t.true(n.retryable);
  const sdk = new APICallError({
    message: 'Cannot connect to API: connect ECONNREFUSED',
    url: 'u',
    requestBodyValues: {},
    cause: refused.cause,
  });
  t.is(classifyError(sdk).code, 'NETWORK');
  const abort = classifyError(new DOMException('This operation was aborted', 'AbortError'));
  t.is(abort.code, 'CANCELLED');
  t.false(abort.retryable);
});

test('a body that dies after HTTP 200 is a truncated stream', (t) => {
  const cause = Object.assign(new TypeError('terminated'), { cause: { code: 'UND_ERR_SOCKET' } });
  const e = classifyError(
    new APICallError({ message: 'Failed to process successful response', url: 'u', requestBodyValues: {}, statusCode: 200, cause }),
  );
  t.is(e.code, 'TRUNCATED');
  t.true(e.retryable);
});

test('keys are scrubbed from messages, known or by shape', (t) => {
  const key = 'my-very-secret-key-123';
  t.false(redact(`bad key ${key}!`, [key]).includes(key));
  t.false(redact('GET https://x/v1?key=AIzaSomething123&alt=sse').includes('AIzaSomething123'));
  t.false(redact('Authorization: Bearer abcdefghijklmnop').includes('abcdefghijklmnop'));
  t.false(redact('Incorrect API key provided: sk-proj-abcdefghijklmnopqrstu').includes('abcdefghijklmnopqrstu'));
  const e = classifyError(new Error(`boom with ${key}`), { secrets: [key] });
  t.false(e.message.includes(key));
  const again = classifyError(new ChatError('AUTH', `leaked ${key}`), { secrets: [key] });
  t.is(again.code, 'AUTH');
  t.false(again.message.includes(key));
});

test('backoff uses full jitter, a retry-after floor, and a cap', (t) => {
  const policy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1000 };
  t.is(
    backoffDelay(1, policy, undefined, () => 0.999),
    99,
  );
  t.is(
    backoffDelay(3, policy, undefined, () => 0.5),
    200,
  );
  t.is(
    backoffDelay(10, policy, undefined, () => 0.999),
    999,
    'the exponential is capped',
  );
  t.is(
    backoffDelay(1, policy, undefined, () => 0),
    0,
  );
  t.is(
    backoffDelay(1, policy, 700, () => 0),
    700,
    'retry-after is honoured',
  );
  t.is(
    backoffDelay(1, policy, 45_000, () => 0),
    1000,
    'but capped',
  );
});
