/**
 * Chat provider configuration: which providers exist (Gemini, OpenAI, Anthropic, Azure
 * OpenAI, Bedrock, Vertex AI, xAI, OpenRouter, Ollama, OpenAI-compatible servers, echo), their
 * endpoints and credentials, the default and fallback chain, the context-length fallback,
 * retry policy, cooldowns and timeouts. Precedence: overrides (command-line flags) >
 * environment > JSON config file > defaults. See `src/ai/CONFIG.md` for the file format with
 * examples.
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { IpcError } from '../errors';
import { formatZodError } from './types';

/** The kinds of provider this layer can talk to. */
export type ProviderKind =
  'gemini' | 'openai' | 'anthropic' | 'azure' | 'bedrock' | 'vertex' | 'xai' | 'openrouter' | 'ollama' | 'openai-compatible' | 'echo';

/** Names a compatible provider may not take: they already mean a built-in provider. */
export const BUILTIN_PROVIDER_NAMES = [
  'gemini',
  'openai',
  'anthropic',
  'azure',
  'bedrock',
  'vertex',
  'xai',
  'openrouter',
  'ollama',
  'echo',
] as const;

const ModelId = z.string().min(1);
const Url = z.url({ protocol: /^https?$/ });
const Ms = z.number().int().min(0);

/** Settings shared by every provider entry. */
const ModelsFields = {
  /** Models this provider offers; the first is its default unless `defaultModel` is set. */
  models: z.array(ModelId).optional(),
  /** Model used when a request names the provider but no model. */
  defaultModel: ModelId.optional(),
};

/** `providers.gemini`, `providers.openai`, `providers.anthropic`. */
const CloudProviderSchema = z.strictObject({
  /** The provider's API key (env `GEMINI_API_KEY`, `OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `XAI_API_KEY`); never logged or listed. */
  apiKey: z.string().min(1).optional(),
  /** API root including its version segment, e.g. `https://api.openai.com/v1`. */
  baseURL: Url.optional(),
  ...ModelsFields,
});

/** `providers.azure`: Azure OpenAI; models are deployment names. */
const AzureSchema = z.strictObject({
  /** Sent as the `api-key` header. */
  apiKey: z.string().min(1).optional(),
  /** `https://{resourceName}.openai.azure.com/openai` unless `baseURL` is given. */
  resourceName: z
    .string()
    .regex(/^[a-z0-9-]+$/i)
    .optional(),
  /** The `/openai` root, e.g. `https://my-resource.openai.azure.com/openai`. */
  baseURL: Url.optional(),
  /** `api-version` query parameter. */
  apiVersion: z.string().min(1).optional(),
  ...ModelsFields,
});

/** `providers.bedrock`: Amazon Bedrock (ConverseStream, SigV4). */
const BedrockSchema = z.strictObject({
  /** AWS region, e.g. `eu-west-1` (env `AWS_REGION`, `AWS_DEFAULT_REGION`; default `us-east-1`). */
  region: z
    .string()
    .regex(/^[a-z0-9-]+$/)
    .optional(),
  /** SigV4 access key id (env `AWS_ACCESS_KEY_ID`); with `secretAccessKey`, overrides the profile. */
  accessKeyId: z.string().min(1).optional(),
  /** SigV4 secret key (env `AWS_SECRET_ACCESS_KEY`); a secret, never logged or listed. */
  secretAccessKey: z.string().min(1).optional(),
  /** Session token of temporary credentials (env `AWS_SESSION_TOKEN`); a secret. */
  sessionToken: z.string().min(1).optional(),
  /** Profile of `~/.aws/credentials` used when no keys are given (default `AWS_PROFILE` or `default`). */
  profile: z.string().min(1).optional(),
  /** Bedrock API key (`AWS_BEARER_TOKEN_BEDROCK`), instead of SigV4 keys. */
  apiKey: z.string().min(1).optional(),
  /** Runtime endpoint, default `https://bedrock-runtime.{region}.amazonaws.com`. */
  baseURL: Url.optional(),
  ...ModelsFields,
});

/** `providers.vertex`: Google Vertex AI (Gemini models). */
const VertexSchema = z.strictObject({
  /** Google Cloud project id (env `GOOGLE_VERTEX_PROJECT`); not needed in express mode (`apiKey`). */
  project: z.string().min(1).optional(),
  /** Vertex region, e.g. `europe-west4` (env `GOOGLE_VERTEX_LOCATION`; default `us-central1`). */
  location: z.string().min(1).optional(),
  /** Service-account JSON file; without it, application default credentials. */
  credentialsFile: z.string().min(1).optional(),
  /** Vertex express-mode API key, instead of OAuth credentials. */
  apiKey: z.string().min(1).optional(),
  /** API root up to `/publishers/google` (or the express-mode root with `apiKey`). */
  baseURL: Url.optional(),
  ...ModelsFields,
});

/** `providers.openrouter`. */
const OpenRouterSchema = z.strictObject({
  /** OpenRouter API key (env `OPENROUTER_API_KEY`); never logged or listed. */
  apiKey: z.string().min(1).optional(),
  /** API root, default `https://openrouter.ai/api/v1` (env `OPENROUTER_BASE_URL`). */
  baseURL: Url.optional(),
  /** Default OpenRouter provider-routing preferences (`provider` of its API), e.g. `{"order": ["groq"]}`. */
  routing: z.record(z.string(), z.unknown()).optional(),
  ...ModelsFields,
});

/** `providers.ollama`. */
const OllamaSchema = z.strictObject({
  /** Server root, e.g. `http://127.0.0.1:11434` (no `/api`). */
  host: Url.optional(),
  ...ModelsFields,
});

/** One entry of `providers.compatible`: any server speaking OpenAI Chat Completions. */
const CompatibleSchema = z.strictObject({
  /** API root such that `{baseURL}/chat/completions` is the chat endpoint. */
  baseURL: Url,
  /** Sent as `Authorization: Bearer …`; leave out for local servers that need none. */
  apiKey: z.string().min(1).optional(),
  /** Whether the server's models accept images (default true); `false` fails image requests early with `BAD_REQUEST`. */
  images: z.boolean().optional(),
  /** Whether the server's models accept tools (default true); `false` fails tool requests early with `BAD_REQUEST`. */
  tools: z.boolean().optional(),
  ...ModelsFields,
});

/** A `provider/model` route, as `contextFallback` takes it. */
const RouteString = z.string().regex(/^[a-z0-9][a-z0-9_.-]*\/.+$/i, 'must be "provider/model"');

const ProviderName = z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/i, 'provider names are letters, digits, ".", "_" and "-" (no "/")');

/**
 * The JSON config file (and the shape of `overrides`). Every field is optional.
 *
 * ```json
 * {
 *   "default": "anthropic",
 *   "fallback": ["openai", "local"],
 *   "providers": {
 *     "gemini":    { "apiKey": "…", "baseURL": "https://generativelanguage.googleapis.com/v1beta", "models": ["gemini-2.5-flash"] },
 *     "openai":    { "apiKey": "…", "baseURL": "https://api.openai.com/v1", "models": ["gpt-4o-mini"] },
 *     "anthropic": { "apiKey": "…", "baseURL": "https://api.anthropic.com/v1", "defaultModel": "claude-sonnet-4-5" },
 *     "ollama":    { "host": "http://127.0.0.1:11434", "models": ["llama3.2"] },
 *     "compatible": { "local": { "baseURL": "http://127.0.0.1:8080/v1", "apiKey": "…", "models": ["qwen2.5"] } }
 *   },
 *   "retry":    { "maxAttempts": 3, "baseDelayMs": 500, "maxDelayMs": 20000 },
 *   "timeouts": { "firstChunkMs": 60000, "betweenChunksMs": 30000, "totalMs": 600000 }
 * }
 * ```
 *
 * - `default`: provider used when a request names no model or a model no prefix matches.
 * - `fallback`: providers tried in order, each with its default model, when the chosen one
 *   fails with a retryable error before its first token (after its own retries).
 * - `retry.maxAttempts`: tries per provider, first one included (1 = no retry).
 * - `timeouts.*`: milliseconds; 0 disables that timeout.
 */
export const ConfigFileSchema = z.strictObject({
  /** Where an editor finds the file's JSON Schema (`docs/config.schema.json` of the package); ignored by the backend. */
  $schema: z.string().optional(),
  /** Provider used when a request names no model, or a model no rule routes; default `echo` when nothing else is configured. */
  default: ProviderName.optional(),
  /**
   * Providers tried in order, each with its default model, when the chosen one fails with a
   * retryable error before its first token (after its own retries).
   */
  fallback: z.array(ProviderName).optional(),
  /** The providers, by built-in name; listing one configures it even without a key (e.g. a proxy that adds it). */
  providers: z
    .strictObject({
      /** Google Gemini API (generativelanguage.googleapis.com). */
      gemini: CloudProviderSchema.optional(),
      /** OpenAI API. */
      openai: CloudProviderSchema.optional(),
      /** Anthropic Messages API. */
      anthropic: CloudProviderSchema.optional(),
      /** Azure OpenAI; configured only by its own settings or `AZURE_*` variables. */
      azure: AzureSchema.optional(),
      /** Amazon Bedrock; generic AWS credentials in the environment do not configure it on their own. */
      bedrock: BedrockSchema.optional(),
      /** Google Vertex AI; generic Google credentials in the environment do not configure it on their own. */
      vertex: VertexSchema.optional(),
      /** xAI (Grok) API. */
      xai: CloudProviderSchema.optional(),
      /** OpenRouter, one key for many vendors' models. */
      openrouter: OpenRouterSchema.optional(),
      /** A local or remote Ollama server (env `OLLAMA_HOST`). */
      ollama: OllamaSchema.optional(),
      /**
       * OpenAI-compatible servers (llama.cpp, vLLM, LM Studio, …) by a name of your choice, which
       * requests then use as `name/model`; a built-in provider's name is rejected.
       */
      compatible: z.record(ProviderName, CompatibleSchema).optional(),
    })
    .optional(),
  /** Where a chat goes when its model's context is too short for the conversation. */
  contextFallback: RouteString.optional(),
  /** Per-provider circuit breaker after 429/5xx, see {@link CooldownPolicy}. */
  cooldown: z
    .strictObject({
      /** How long a provider that answered 429/5xx is skipped when it gave no retry-after; 0 = no cooldowns. */
      defaultMs: Ms.optional(),
      /** Cap on a cooldown, whatever retry-after asked. */
      maxMs: Ms.optional(),
    })
    .optional(),
  /** Retries of one provider before falling back, see {@link RetryPolicy}. */
  retry: z
    .strictObject({
      /** Tries per provider, the first included, 1 to 10 (1 = no retry; default 3). */
      maxAttempts: z.number().int().min(1).max(10).optional(),
      /** Backoff base in ms (default 500): try n waits a random time up to `baseDelayMs·2^(n-1)`. */
      baseDelayMs: Ms.optional(),
      /** Cap on any wait in ms, a provider's retry-after included (default 20000). */
      maxDelayMs: Ms.optional(),
    })
    .optional(),
  /** Stream timeouts in milliseconds, 0 disabling one, see {@link Timeouts}. */
  timeouts: z
    .strictObject({
      /** Until the provider's first event of any kind (default 60000). */
      firstChunkMs: Ms.optional(),
      /** Longest silence between two provider events (default 30000). */
      betweenChunksMs: Ms.optional(),
      /** The whole chat, across retries and fallbacks (default 600000). */
      totalMs: Ms.optional(),
      /** A `progress` event after this long with nothing else to show (default 5000). */
      progressMs: Ms.optional(),
    })
    .optional(),
});

/**
 * The JSON config file, and `overrides`: every field optional, unknown fields rejected by name.
 * Each field is described on its property below; [CONFIG.md](./CONFIG.md) has a full example, the
 * environment variables and the precedence (`overrides` > environment > file > defaults).
 * @interface
 */
export type ConfigInput = z.infer<typeof ConfigFileSchema>;

/** One provider as the router will use it. Secrets: `apiKey` and `bedrock.secretAccessKey`/`sessionToken`. */
export interface ResolvedProvider {
  /** Name requests use (`name/model`): the built-in name, or the `compatible` entry's key. */
  name: string;
  /** Which client talks to it; several names can share a kind (every `compatible` entry). */
  kind: ProviderKind;
  /** API root (cloud and compatible) or server root (ollama); undefined for echo. */
  baseURL?: string;
  /** A secret: keep it out of logs and replies ({@link listProviders} reports only `hasKey`). */
  apiKey?: string;
  /** Models configured for it, possibly empty (any model id is still accepted as `name/model`). */
  models: string[];
  /** Model used when a request names only the provider: `defaultModel`, else the first of `models`, else a built-in default. */
  defaultModel?: string;
  /** Whether the provider accepts images; absent = yes. */
  images?: boolean;
  /** Whether the provider accepts tools; absent = yes. */
  tools?: boolean;
  /** Azure OpenAI settings (`kind` `azure` only). */
  azure?: {
    /** Resource whose `https://{resourceName}.openai.azure.com/openai` is the root, unless `baseURL` is set. */
    resourceName?: string;
    /** `api-version` query parameter sent with every request. */
    apiVersion: string;
  };
  /** Amazon Bedrock settings (`kind` `bedrock` only). */
  bedrock?: {
    /** AWS region of the runtime endpoint. */
    region: string;
    /** SigV4 access key id; with `secretAccessKey`, used instead of the profile. */
    accessKeyId?: string;
    /** A secret, like `apiKey`. */
    secretAccessKey?: string;
    /** A secret: the session token of temporary credentials. */
    sessionToken?: string;
    /** Profile of `~/.aws/credentials` read when no keys are given. */
    profile?: string;
  };
  /** Google Vertex AI settings (`kind` `vertex` only). */
  vertex?: {
    /** Google Cloud project id; absent in express mode (`apiKey`). */
    project?: string;
    /** Vertex region. */
    location: string;
    /** Service-account JSON file; absent = application default credentials. */
    credentialsFile?: string;
  };
  /** OpenRouter settings (`kind` `openrouter` only). */
  openrouter?: {
    /** Default provider-routing preferences, sent as OpenRouter's `provider` field with every request. */
    routing?: Record<string, unknown>;
  };
}

/** Per-provider cooldown (circuit breaker) after 429/5xx. */
export interface CooldownPolicy {
  /** Cooldown when the provider named no wait; 0 turns cooldowns off. */
  defaultMs: number;
  /** Cap on any cooldown. */
  maxMs: number;
}

/** Retry policy per provider. */
export interface RetryPolicy {
  /** Tries per provider, the first included. */
  maxAttempts: number;
  /** Backoff base: try n waits a random time in [0, baseDelayMs·2^(n-1)] (full jitter). */
  baseDelayMs: number;
  /** Cap on any wait, including one asked for by the provider. */
  maxDelayMs: number;
}

/** Stream timeouts in milliseconds; 0 disables. */
export interface Timeouts {
  /** From sending a try to the provider's first event of any kind (text, reasoning, tool, keep-alive). */
  firstChunkMs: number;
  /** Longest silence between two provider events of any kind. */
  betweenChunksMs: number;
  /** The whole chat, across retries and fallbacks. */
  totalMs: number;
  /** A `progress` event after this much time with nothing else to show; 0 = none. */
  progressMs: number;
}

/** The configuration {@link ChatRouter} runs on. */
export interface ResolvedConfig {
  /** Name of the default provider (always configured; `echo` when nothing else is). */
  default: string;
  /** Fallback chain of configured provider names. */
  fallback: string[];
  /** Configured providers by name; always includes `echo`. */
  providers: Record<string, ResolvedProvider>;
  /** Retries of one provider before the next is tried. */
  retry: RetryPolicy;
  /** Stream deadlines of each try and of the whole chat. */
  timeouts: Timeouts;
  /** How long a provider answering 429/5xx is skipped by new chats. */
  cooldown: CooldownPolicy;
  /** `provider/model` for a chat whose conversation is too long for its model. */
  contextFallback?: string;
}

/** Built-in defaults. */
export const DEFAULTS = {
  retry: { maxAttempts: 3, baseDelayMs: 500, maxDelayMs: 20_000 } satisfies RetryPolicy,
  timeouts: { firstChunkMs: 60_000, betweenChunksMs: 30_000, totalMs: 600_000, progressMs: 5_000 } satisfies Timeouts,
  cooldown: { defaultMs: 30_000, maxMs: 300_000 } satisfies CooldownPolicy,
  baseURL: {
    gemini: 'https://generativelanguage.googleapis.com/v1beta',
    openai: 'https://api.openai.com/v1',
    anthropic: 'https://api.anthropic.com/v1',
    xai: 'https://api.x.ai/v1',
    openrouter: 'https://openrouter.ai/api/v1',
    ollama: 'http://127.0.0.1:11434',
  },
  model: {
    gemini: 'gemini-2.5-flash',
    openai: 'gpt-4o-mini',
    anthropic: 'claude-sonnet-4-5',
    vertex: 'gemini-2.5-flash',
    bedrock: 'anthropic.claude-3-5-haiku-20241022-v1:0',
    xai: 'grok-3-mini',
    openrouter: 'openrouter/auto',
    ollama: 'llama3.2',
    echo: 'echo',
  },
  azureApiVersion: '2024-10-21',
  bedrockRegion: 'us-east-1',
  vertexLocation: 'us-central1',
} as const;

/** A configuration that cannot be used; the message names the file and field. Code `CONFIG_INVALID`. */
export class ConfigError extends IpcError {
  constructor(message: string) {
    super('CONFIG_INVALID', message);
    this.name = 'ConfigError';
  }
}

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /** Path of a JSON config file, shaped as {@link ConfigInput}; a missing or invalid one throws {@link ConfigError}. */
  file?: string;
  /** Environment to read keys and endpoints from; defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Highest-precedence settings, e.g. from command-line flags. */
  overrides?: ConfigInput;
}

/**
 * Resolve the configuration: `overrides` > `env` > `file` > defaults.
 *
 * Environment: see CONFIG.md (`GEMINI_*`, `OPENAI_*`, `ANTHROPIC_*`, `AZURE_*`, `AWS_*` and
 * `BEDROCK_BASE_URL`, `GOOGLE_VERTEX_*`, `XAI_*`, `OPENROUTER_*`, `OLLAMA_HOST`). A provider is
 * configured when its own variables are set or the file/overrides list it; `echo` always.
 * Without an explicit `default`, the first configured provider in the order gemini, openai,
 * anthropic, azure, vertex, bedrock, xai, openrouter, compatible (file order), ollama is the
 * default, else `echo`.
 *
 * @throws {ConfigError} unreadable or invalid file, or `default`/`fallback` naming a provider
 *   that is not configured.
 */
export function loadConfig(opts: LoadConfigOptions = {}): ResolvedConfig {
  const env = opts.env ?? process.env;
  const file = opts.file !== undefined ? readConfigFile(opts.file) : {};
  const overrides = opts.overrides !== undefined ? validate(opts.overrides, 'overrides') : {};
  const merged = mergeConfig(mergeConfig(file, fromEnv(env)), overrides);
  return resolve(merged);
}

/** Parse and validate a config file. @throws {ConfigError} */
export function readConfigFile(path: string): ConfigInput {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  return validate(json, `config file ${path}`);
}

function validate(input: unknown, where: string): ConfigInput {
  const parsed = ConfigFileSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(`${where}: ${formatZodError(parsed.error)}`);
  const names = Object.keys(parsed.data.providers?.compatible ?? {});
  const clash = names.find((n) => (BUILTIN_PROVIDER_NAMES as readonly string[]).includes(n));
  if (clash) throw new ConfigError(`${where}: providers.compatible.${clash}: name is taken by a built-in provider`);
  return parsed.data;
}

/** The environment as a config layer. Empty variables count as unset. */
function fromEnv(env: NodeJS.ProcessEnv): ConfigInput {
  const get = (k: string) => (env[k] !== undefined && env[k]!.trim() !== '' ? env[k]!.trim() : undefined);
  const url = (k: string, value = get(k)) => {
    if (value !== undefined && !Url.safeParse(value).success) throw new ConfigError(`environment: ${k}: not an http(s) URL`);
    return value;
  };
  const cloud = (key: string, urlVar: string) => {
    const entry = { apiKey: get(key), baseURL: url(urlVar) };
    return entry.apiKey !== undefined || entry.baseURL !== undefined ? stripUndefined(entry) : undefined;
  };
  const ollamaHost = get('OLLAMA_HOST');
  const some = <T extends object>(o: T): T | undefined => {
    const t = stripUndefined(o);
    return Object.keys(t).length ? t : undefined;
  };
  // Azure, Bedrock and Vertex are configured by their own variables only: generic AWS or
  // Google credentials in the environment are read once the provider is configured, but do
  // not configure it on their own (they are often there for other tools).
  const azure = some({ apiKey: get('AZURE_API_KEY'), resourceName: get('AZURE_RESOURCE_NAME'), baseURL: url('AZURE_BASE_URL') });
  const bedrockOwn = some({ apiKey: get('AWS_BEARER_TOKEN_BEDROCK'), baseURL: url('BEDROCK_BASE_URL') });
  const vertexOwn = some({
    project: get('GOOGLE_VERTEX_PROJECT'),
    apiKey: get('GOOGLE_VERTEX_API_KEY'),
    baseURL: url('GOOGLE_VERTEX_BASE_URL'),
  });
  const providers = stripUndefined({
    gemini: cloud('GEMINI_API_KEY', 'GEMINI_BASE_URL'),
    openai: cloud('OPENAI_API_KEY', 'OPENAI_BASE_URL'),
    anthropic: cloud('ANTHROPIC_API_KEY', 'ANTHROPIC_BASE_URL'),
    azure: azure && { ...azure, ...some({ apiVersion: get('AZURE_API_VERSION') }) },
    bedrock: bedrockOwn && {
      ...bedrockOwn,
      ...some({
        region: get('AWS_REGION') ?? get('AWS_DEFAULT_REGION'),
        accessKeyId: get('AWS_ACCESS_KEY_ID'),
        secretAccessKey: get('AWS_SECRET_ACCESS_KEY'),
        sessionToken: get('AWS_SESSION_TOKEN'),
        profile: get('AWS_PROFILE'),
      }),
    },
    vertex: vertexOwn && {
      ...vertexOwn,
      ...some({ location: get('GOOGLE_VERTEX_LOCATION'), credentialsFile: get('GOOGLE_APPLICATION_CREDENTIALS') }),
    },
    xai: cloud('XAI_API_KEY', 'XAI_BASE_URL'),
    openrouter: cloud('OPENROUTER_API_KEY', 'OPENROUTER_BASE_URL'),
    ollama: ollamaHost !== undefined ? { host: url('OLLAMA_HOST', normalizeOllamaHost(ollamaHost)) } : undefined,
  });
  return Object.keys(providers).length ? { providers } : {};
}

/** `OLLAMA_HOST` is often written as `host:port` or `0.0.0.0:11434`, as the ollama CLI accepts. */
function normalizeOllamaHost(v: string): string {
  let url = /^https?:\/\//i.test(v) ? v : `http://${v}`;
  // 0.0.0.0 is a listen address; connect over loopback instead.
  url = url.replace(/^(https?:\/\/)0\.0\.0\.0(?=[:/]|$)/i, '$1127.0.0.1');
  return url.replace(/\/+$/, '');
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Deep-merge two config layers; `top` wins field by field, arrays are replaced whole. */
export function mergeConfig(base: ConfigInput, top: ConfigInput): ConfigInput {
  const mergeObj = <T extends object>(a: T | undefined, b: T | undefined): T | undefined =>
    a === undefined ? b : b === undefined ? a : ({ ...a, ...stripUndefined(b) } as T);
  const bp = base.providers ?? {};
  const tp = top.providers ?? {};
  const compatNames = new Set([...Object.keys(bp.compatible ?? {}), ...Object.keys(tp.compatible ?? {})]);
  const compatible = compatNames.size
    ? Object.fromEntries([...compatNames].map((n) => [n, mergeObj(bp.compatible?.[n], tp.compatible?.[n])!]))
    : undefined;
  const providers = stripUndefined({
    gemini: mergeObj(bp.gemini, tp.gemini),
    openai: mergeObj(bp.openai, tp.openai),
    anthropic: mergeObj(bp.anthropic, tp.anthropic),
    azure: mergeObj(bp.azure, tp.azure),
    bedrock: mergeObj(bp.bedrock, tp.bedrock),
    vertex: mergeObj(bp.vertex, tp.vertex),
    xai: mergeObj(bp.xai, tp.xai),
    openrouter: mergeObj(bp.openrouter, tp.openrouter),
    ollama: mergeObj(bp.ollama, tp.ollama),
    compatible,
  });
  return stripUndefined({
    default: top.default ?? base.default,
    fallback: top.fallback ?? base.fallback,
    providers: Object.keys(providers).length ? providers : undefined,
    contextFallback: top.contextFallback ?? base.contextFallback,
    retry: mergeObj(base.retry, top.retry),
    timeouts: mergeObj(base.timeouts, top.timeouts),
    cooldown: mergeObj(base.cooldown, top.cooldown),
  });
}

function resolve(cfg: ConfigInput): ResolvedConfig {
  const providers: Record<string, ResolvedProvider> = {};
  const add = (
    name: string,
    kind: ProviderKind,
    entry: { apiKey?: string; baseURL?: string; models?: string[]; defaultModel?: string } | undefined,
    baseURL: string | undefined,
    model?: string,
    extra: Partial<ResolvedProvider> = {},
  ) => {
    if (!entry) return;
    const models = entry.models ?? [];
    const root = entry.baseURL ?? baseURL;
    providers[name] = stripUndefined({
      name,
      kind,
      baseURL: root !== undefined ? stripSlash(root) : undefined,
      apiKey: entry.apiKey,
      models,
      defaultModel: entry.defaultModel ?? models[0] ?? model,
      ...extra,
    });
  };
  const p = cfg.providers ?? {};
  add('gemini', 'gemini', p.gemini, DEFAULTS.baseURL.gemini, DEFAULTS.model.gemini);
  add('openai', 'openai', p.openai, DEFAULTS.baseURL.openai, DEFAULTS.model.openai);
  add('anthropic', 'anthropic', p.anthropic, DEFAULTS.baseURL.anthropic, DEFAULTS.model.anthropic);
  if (p.azure) {
    if (!p.azure.baseURL && !p.azure.resourceName) throw new ConfigError('providers.azure: needs resourceName or baseURL');
    const baseURL = p.azure.baseURL ?? `https://${p.azure.resourceName}.openai.azure.com/openai`;
    add('azure', 'azure', p.azure, baseURL, undefined, {
      azure: stripUndefined({ resourceName: p.azure.resourceName, apiVersion: p.azure.apiVersion ?? DEFAULTS.azureApiVersion }),
    });
  }
  if (p.vertex) {
    add('vertex', 'vertex', p.vertex, p.vertex.baseURL, DEFAULTS.model.vertex, {
      vertex: stripUndefined({
        project: p.vertex.project,
        location: p.vertex.location ?? DEFAULTS.vertexLocation,
        credentialsFile: p.vertex.credentialsFile,
      }),
    });
  }
  if (p.bedrock) {
    const b = p.bedrock;
    if (b.apiKey === undefined && (b.accessKeyId === undefined) !== (b.secretAccessKey === undefined)) {
      throw new ConfigError('providers.bedrock: accessKeyId and secretAccessKey go together');
    }
    add('bedrock', 'bedrock', b, b.baseURL, DEFAULTS.model.bedrock, {
      bedrock: stripUndefined({
        region: b.region ?? DEFAULTS.bedrockRegion,
        accessKeyId: b.accessKeyId,
        secretAccessKey: b.secretAccessKey,
        sessionToken: b.sessionToken,
        profile: b.profile,
      }),
    });
  }
  add('xai', 'xai', p.xai, DEFAULTS.baseURL.xai, DEFAULTS.model.xai);
  add('openrouter', 'openrouter', p.openrouter, DEFAULTS.baseURL.openrouter, DEFAULTS.model.openrouter, {
    ...(p.openrouter?.routing ? { openrouter: { routing: p.openrouter.routing } } : {}),
  });
  for (const [name, entry] of Object.entries(p.compatible ?? {})) {
    add(name, 'openai-compatible', entry, entry.baseURL, undefined, stripUndefined({ images: entry.images, tools: entry.tools }));
  }
  if (p.ollama) {
    const models = p.ollama.models ?? [];
    providers.ollama = {
      name: 'ollama',
      kind: 'ollama',
      baseURL: stripSlash(p.ollama.host ?? DEFAULTS.baseURL.ollama),
      models,
      defaultModel: p.ollama.defaultModel ?? models[0] ?? DEFAULTS.model.ollama,
    };
  }
  providers.echo = { name: 'echo', kind: 'echo', models: [DEFAULTS.model.echo], defaultModel: DEFAULTS.model.echo };

  const configured = Object.keys(providers);
  const def = cfg.default ?? configured.find((n) => n !== 'echo') ?? 'echo';
  if (!providers[def]) throw new ConfigError(`default: provider "${def}" is not configured (configured: ${configured.join(', ')})`);
  const fallback = cfg.fallback ?? [];
  const missing = fallback.find((n) => !providers[n]);
  if (missing) throw new ConfigError(`fallback: provider "${missing}" is not configured (configured: ${configured.join(', ')})`);

  if (cfg.contextFallback !== undefined) {
    const name = cfg.contextFallback.slice(0, cfg.contextFallback.indexOf('/'));
    if (!providers[name])
      throw new ConfigError(`contextFallback: provider "${name}" is not configured (configured: ${configured.join(', ')})`);
  }

  return stripUndefined({
    default: def,
    fallback: [...new Set(fallback)],
    providers,
    retry: { ...DEFAULTS.retry, ...stripUndefined(cfg.retry ?? {}) },
    timeouts: { ...DEFAULTS.timeouts, ...stripUndefined(cfg.timeouts ?? {}) },
    cooldown: { ...DEFAULTS.cooldown, ...stripUndefined(cfg.cooldown ?? {}) },
    contextFallback: cfg.contextFallback,
  });
}

function stripSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/** What {@link listProviders} tells about a provider: never the key itself. */
export interface ProviderInfo {
  /** Name requests use (`name/model`). */
  name: string;
  /** Which client talks to it. */
  kind: ProviderKind;
  /** Endpoint it is reached at, so a user can tell a proxy or local server from the vendor's API. */
  baseURL?: string;
  /** Whether an API key (or Bedrock secret key) is set; the key itself is never reported. */
  hasKey: boolean;
  /** Model used when a request names only this provider. */
  defaultModel?: string;
  /** Models configured for it, for a model picker; possibly empty. */
  models: string[];
  /** Whether it serves requests that name no model. */
  isDefault: boolean;
  /** Position in the fallback chain, if it is in it. */
  fallbackIndex?: number;
  /** When a cooldown is running (see `ChatRouter.listProviders`): epoch ms it ends, and why. */
  cooldownUntil?: number;
  /** The chat error code that started the running cooldown. */
  cooldownCode?: string;
}

/** The configured providers, safe to print or send to the editor. */
export function listProviders(config: ResolvedConfig): ProviderInfo[] {
  return Object.values(config.providers).map((p) => {
    const idx = config.fallback.indexOf(p.name);
    return stripUndefined({
      name: p.name,
      kind: p.kind,
      baseURL: p.baseURL,
      hasKey: p.apiKey !== undefined || p.bedrock?.secretAccessKey !== undefined,
      defaultModel: p.defaultModel,
      models: [...p.models],
      isDefault: p.name === config.default,
      fallbackIndex: idx >= 0 ? idx : undefined,
    });
  });
}
