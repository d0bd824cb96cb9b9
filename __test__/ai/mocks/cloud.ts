/**
 * Mocks of the providers that speak another provider's stream at their own URLs, with their
 * own credentials: Azure OpenAI and xAI and OpenRouter (OpenAI Chat Completions SSE), Vertex AI
 * (Gemini's SSE), and Amazon Bedrock (ConverseStream in binary event-stream frames, with the
 * SigV4 signature checked against the expected secret).
 */
import { AwsV4Signer } from 'aws4fetch';
import { encodeEventStreamMessage } from './fixtures';
import { geminiFormat } from './gemini';
import { type Frame, type MockOptions, type MockServer, type WireFormat, splitUrl, startMock, textOf } from './harness';
import { openaiFormat } from './openai';

/** Azure OpenAI: `/openai/deployments/{deployment}/chat/completions?api-version=…`, key in `api-key`. */
export function azureFormat(apiVersion = '2024-10-21'): WireFormat {
  const base = openaiFormat('/unused');
  return {
    ...base,
    name: 'azure',
    check(req, apiKey) {
      const { path, query } = splitUrl(req.url);
      const m = /^\/openai\/deployments\/([^/]+)\/chat\/completions$/.exec(path);
      if (req.method !== 'POST' || !m) return { problems: [`unexpected ${req.method} ${path}`], messages: [], notFound: true };
      const inner = openaiFormat(path).check(req, undefined) as ReturnType<WireFormat['check']> & { problems: string[] };
      const problems = [...inner.problems];
      if (query.get('api-version') !== apiVersion) problems.push(`api-version ${query.get('api-version')}`);
      if (req.headers.authorization) problems.push('Authorization header sent to Azure');
      const unauthorized = apiKey !== undefined && req.headers['api-key'] !== apiKey;
      if (unauthorized) problems.push('bad api-key header');
      return { ...inner, model: decodeURIComponent(m[1]), problems, unauthorized };
    },
  };
}

/** xAI: OpenAI Chat Completions at `/v1/chat/completions`, Bearer key. */
export const xaiFormat: WireFormat = { ...openaiFormat('/v1/chat/completions'), name: 'xai' };

/** OpenRouter: OpenAI Chat Completions at `/api/v1/chat/completions`, Bearer key. */
export const openrouterFormat: WireFormat = { ...openaiFormat('/api/v1/chat/completions'), name: 'openrouter' };

/** The OAuth access token the Vertex mock accepts as `Authorization: Bearer` (what the test's token endpoint issues). */
export const VERTEX_OAUTH_TOKEN = 'ya29.test-access-token';

/**
 * Vertex AI, express mode (key in `x-goog-api-key`) or OAuth (`Authorization: Bearer`):
 * `/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:streamGenerateContent?alt=sse`.
 */
export const vertexFormat: WireFormat = {
  ...geminiFormat,
  name: 'vertex',
  check(req, apiKey) {
    const { path, query } = splitUrl(req.url);
    const m = /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/google\/models\/([^/:]+):streamGenerateContent$/.exec(path);
    if (req.method !== 'POST' || !m) return { problems: [`unexpected ${req.method} ${path}`], messages: [], notFound: true };
    // Reuse Gemini's body checks by presenting the Gemini path.
    const inner = geminiFormat.check({ ...req, url: `/v1beta/models/${m[3]}:streamGenerateContent?${query}` }, undefined) as Awaited<
      ReturnType<WireFormat['check']>
    >;
    const oauth = req.headers.authorization === `Bearer ${VERTEX_OAUTH_TOKEN}`;
    const unauthorized = apiKey !== undefined && req.headers['x-goog-api-key'] !== apiKey && !oauth;
    return {
      ...inner,
      problems: [...inner.problems, ...(unauthorized ? ['neither a valid x-goog-api-key nor an OAuth token'] : [])],
      unauthorized,
    };
  },
};

/** Credentials the Bedrock mock verifies signatures against. */
export interface AwsTestCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  region: string;
}

const bedrockEvent = (type: string, body: unknown): Frame =>
  encodeEventStreamMessage({ ':event-type': type, ':content-type': 'application/json', ':message-type': 'event' }, body);

/**
 * Amazon Bedrock ConverseStream: `POST /model/{modelId}/converse-stream`, SigV4-signed
 * (service `bedrock`), answered in `application/vnd.amazon.eventstream` frames. The mock
 * recomputes the signature from the signed headers and the raw body with the known secret.
 */
export function bedrockFormat(creds?: AwsTestCredentials): WireFormat {
  return {
    name: 'bedrock',
    contentType: 'application/vnd.amazon.eventstream',
    async check(req) {
      const problems: string[] = [];
      const { path } = splitUrl(req.url);
      const m = /^\/model\/([^/]+)\/converse-stream$/.exec(path);
      if (req.method !== 'POST' || !m) return { problems: [`unexpected ${req.method} ${path}`], messages: [], notFound: true };
      const messages: Array<{ role: string; content: string }> = [];
      if (Array.isArray(req.body?.system)) messages.push({ role: 'system', content: textOf(req.body.system) });
      for (const msg of req.body?.messages ?? []) messages.push({ role: msg.role, content: textOf(msg.content) });
      if (!Array.isArray(req.body?.messages) || req.body.messages.length === 0) problems.push('messages missing');
      let unauthorized = false;
      if (creds) {
        const auth = String(req.headers.authorization ?? '');
        const a =
          /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/bedrock\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
            auth,
          );
        if (!a || a[1] !== creds.accessKeyId || a[3] !== creds.region) {
          unauthorized = true;
          problems.push(`bad Authorization ${auth.slice(0, 60)}`);
        } else {
          const signed = a[4].split(';');
          const headers: Record<string, string> = {};
          for (const h of signed) if (h !== 'host') headers[h] = String(req.headers[h] ?? '');
          const signer = new AwsV4Signer({
            method: req.method,
            url: `${req.origin}${req.url}`,
            headers,
            body: req.raw,
            accessKeyId: creds.accessKeyId,
            secretAccessKey: creds.secretAccessKey,
            sessionToken: creds.sessionToken,
            service: 'bedrock',
            region: creds.region,
            datetime: String(req.headers['x-amz-date'] ?? ''),
          });
          const expected = (await signer.sign()).headers.get('authorization');
          if (expected !== auth) {
            unauthorized = true;
            problems.push('SigV4 signature does not match');
          }
          if (creds.sessionToken && req.headers['x-amz-security-token'] !== creds.sessionToken) problems.push('session token missing');
        }
      }
      return { model: decodeURIComponent(m[1]), messages, problems, unauthorized };
    },
    open: () => [bedrockEvent('messageStart', { role: 'assistant' })],
    delta: (text) => bedrockEvent('contentBlockDelta', { contentBlockIndex: 0, delta: { text } }),
    close: (_model, usage, finishReason) => [
      bedrockEvent('contentBlockStop', { contentBlockIndex: 0 }),
      bedrockEvent('messageStop', { stopReason: finishReason ?? 'end_turn' }),
      bedrockEvent('metadata', {
        usage: { inputTokens: usage.input, outputTokens: usage.output, totalTokens: usage.input + usage.output },
        metrics: { latencyMs: 100 },
      }),
    ],
    midError: (s) =>
      encodeEventStreamMessage(
        { ':exception-type': s.errorType ?? 'throttlingException', ':content-type': 'application/json', ':message-type': 'exception' },
        { message: s.message ?? 'Too many requests, please wait before trying again.' },
      ),
    errorResponse: (s) => ({
      body: JSON.stringify({ message: s.message ?? `mock error ${s.status}` }),
      headers: {
        'x-amzn-errortype':
          s.status === 429 ? 'ThrottlingException' : s.status === 403 ? 'AccessDeniedException' : 'InternalServerException',
      },
    }),
  };
}

/** Start an Azure mock; point `baseURL` at `${mock.origin}/openai`. */
export const startAzureMock = (opts: MockOptions = {}): Promise<MockServer> => startMock(azureFormat(), opts);
/** Start an xAI mock; `baseURL` `${mock.origin}/v1`. */
export const startXaiMock = (opts: MockOptions = {}): Promise<MockServer> => startMock(xaiFormat, opts);
/** Start an OpenRouter mock; `baseURL` `${mock.origin}/api/v1`. */
export const startOpenRouterMock = (opts: MockOptions = {}): Promise<MockServer> => startMock(openrouterFormat, opts);
/** Start a Vertex mock; `baseURL` `${mock.origin}/v1/projects/P/locations/L/publishers/google`. */
export const startVertexMock = (opts: MockOptions = {}): Promise<MockServer> => startMock(vertexFormat, opts);
/** Start a Bedrock mock checking SigV4 against `creds`; `baseURL` `mock.origin`. */
export const startBedrockMock = (creds?: AwsTestCredentials, opts: MockOptions = {}): Promise<MockServer> =>
  startMock(bedrockFormat(creds), opts);
