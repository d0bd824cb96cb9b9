/**
 * Google Vertex AI (Gemini models) through `@ai-sdk/google-vertex`: Gemini's stream format at
 * Vertex's URLs, `{location}-aiplatform.googleapis.com/v1beta1/projects/{project}/locations/
 * {location}/publishers/google/models/{model}:streamGenerateContent?alt=sse`. Credentials: a
 * service-account JSON file (`credentialsFile`, or `GOOGLE_APPLICATION_CREDENTIALS`) or
 * application default credentials, through google-auth-library, sent as a Bearer token; or an
 * express-mode API key in `x-goog-api-key`. Reasoning maps to `thinkingConfig` as on Gemini.
 * @packageDocumentation
 */
import { createVertex } from '@ai-sdk/google-vertex';
import { tappedFetch } from '../activity';
import type { ResolvedProvider } from '../config';
import { GOOGLE_STREAM_ERROR, aiSdkProvider } from './ai-sdk';
import { geminiThinking } from './gemini';
import { type ChatProvider, type ProviderDeps, secretsOf } from './provider';

/** Create the Vertex provider (`GOOGLE_VERTEX_PROJECT`, `GOOGLE_VERTEX_LOCATION`, `GOOGLE_VERTEX_API_KEY`, …). */
export function createVertexProvider(cfg: ResolvedProvider, deps: ProviderDeps = {}): ChatProvider {
  const v = cfg.vertex;
  const vertex = createVertex({
    // '' rather than undefined: the SDK would otherwise read GOOGLE_VERTEX_API_KEY itself.
    apiKey: cfg.apiKey ?? '',
    ...(v?.project ? { project: v.project } : {}),
    location: v?.location,
    ...(cfg.baseURL ? { baseURL: cfg.baseURL } : {}),
    googleAuthOptions: {
      ...(v?.credentialsFile ? { keyFile: v.credentialsFile } : {}),
      // google-auth-library fetches its OAuth token through gaxios; the same `fetch` as the
      // API calls (a proxy, or a test's loopback redirect) carries the token request too.
      ...(deps.fetch ? { clientOptions: { transporterOptions: { fetchImplementation: deps.fetch } } } : {}),
    },
    fetch: tappedFetch(deps.fetch),
  });
  return aiSdkProvider(
    {
      name: cfg.name,
      kind: 'vertex',
      defaultModel: cfg.defaultModel,
      secrets: secretsOf(cfg),
      streamError: GOOGLE_STREAM_ERROR,
      model: (id) => vertex(id),
      callOptions: (req) => geminiThinking(req, ['vertex', 'google']),
    },
    deps,
  );
}
