/**
 * Azure OpenAI through `@ai-sdk/azure`, on Chat Completions with deployment URLs:
 * `{baseURL}/deployments/{deployment}/chat/completions?api-version=…`, the key in the
 * `api-key` header. A request's model is the deployment name. Same stream as OpenAI.
 * @packageDocumentation
 */
import { createAzure } from '@ai-sdk/azure';
import { tappedFetch } from '../activity';
import type { ResolvedProvider } from '../config';
import { TERMINAL_FRAMES, aiSdkProvider } from './ai-sdk';
import { openaiReasoning } from './openai';
import { type ChatProvider, type ProviderDeps, secretsOf } from './provider';

/** Create the Azure OpenAI provider (`AZURE_API_KEY`, `AZURE_RESOURCE_NAME` or `AZURE_BASE_URL`, `AZURE_API_VERSION`). */
export function createAzureProvider(cfg: ResolvedProvider, deps: ProviderDeps = {}): ChatProvider {
  const azure = createAzure({
    apiKey: cfg.apiKey ?? '',
    baseURL: cfg.baseURL,
    apiVersion: cfg.azure?.apiVersion,
    useDeploymentBasedUrls: true,
    fetch: tappedFetch(deps.fetch),
  });
  return aiSdkProvider(
    {
      name: cfg.name,
      kind: 'azure',
      defaultModel: cfg.defaultModel,
      secrets: secretsOf(cfg),
      model: (id) => azure.chat(id),
      // The chat model Azure bundles reads its options under `openai` (only newer lines also
      // read `azure`); send both so the effort arrives whichever line is installed.
      callOptions: (req) => {
        const o = openaiReasoning(req, 'openai').providerOptions;
        return o ? { providerOptions: { ...o, azure: o.openai } } : {};
      },
      terminal: TERMINAL_FRAMES.openai,
    },
    deps,
  );
}
