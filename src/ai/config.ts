/**
 * Chat provider configuration: which providers exist, their endpoints and keys, the default
 * and fallback chain, retry policy and timeouts.
 *
 * Precedence: overrides (command-line flags) > environment > JSON config file > defaults.
 * See `src/ai/CONFIG.md` for the file format with examples.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { formatZodError } from './types';

/** The kinds of provider this layer can talk to. */
export type ProviderKind = 'gemini' | 'openai' | 'anthropic' | 'ollama' | 'openai-compatible' | 'echo';

/** Names a compatible provider may not take: they already mean a built-in provider. */
export const BUILTIN_PROVIDER_NAMES = ['gemini', 'openai', 'anthropic', 'ollama', 'echo'] as const;

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
  apiKey: z.string().min(1).optional(),
  /** API root including its version segment, e.g. `https://api.openai.com/v1`. */
  baseURL: Url.optional(),
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
  apiKey: z.string().min(1).optional(),
  ...ModelsFields,
});

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
  default: ProviderName.optional(),
  fallback: z.array(ProviderName).optional(),
  providers: z
    .strictObject({
      gemini: CloudProviderSchema.optional(),
      openai: CloudProviderSchema.optional(),
      anthropic: CloudProviderSchema.optional(),
      ollama: OllamaSchema.optional(),
      compatible: z.record(ProviderName, CompatibleSchema).optional(),
    })
    .optional(),
  retry: z
    .strictObject({
      maxAttempts: z.number().int().min(1).max(10).optional(),
      baseDelayMs: Ms.optional(),
      maxDelayMs: Ms.optional(),
    })
    .optional(),
  timeouts: z
    .strictObject({
      firstChunkMs: Ms.optional(),
      betweenChunksMs: Ms.optional(),
      totalMs: Ms.optional(),
    })
    .optional(),
});

/** The config file / overrides shape (all optional). */
export type ConfigInput = z.infer<typeof ConfigFileSchema>;

/** One provider as the router will use it. `apiKey` is the only secret in the config. */
export interface ResolvedProvider {
  name: string;
  kind: ProviderKind;
  /** API root (cloud and compatible) or server root (ollama); undefined for echo. */
  baseURL?: string;
  apiKey?: string;
  models: string[];
  defaultModel?: string;
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
  /** From sending the request to the first text chunk. */
  firstChunkMs: number;
  /** Longest silence between two chunks. */
  betweenChunksMs: number;
  /** Whole reply, per attempt. */
  totalMs: number;
}

/** The configuration {@link ChatRouter} runs on. */
export interface ResolvedConfig {
  /** Name of the default provider (always configured; `echo` when nothing else is). */
  default: string;
  /** Fallback chain of configured provider names. */
  fallback: string[];
  /** Configured providers by name; always includes `echo`. */
  providers: Record<string, ResolvedProvider>;
  retry: RetryPolicy;
  timeouts: Timeouts;
}

/** Built-in defaults. */
export const DEFAULTS = {
  retry: { maxAttempts: 3, baseDelayMs: 500, maxDelayMs: 20_000 } satisfies RetryPolicy,
  timeouts: { firstChunkMs: 60_000, betweenChunksMs: 30_000, totalMs: 600_000 } satisfies Timeouts,
  baseURL: {
    gemini: 'https://generativelanguage.googleapis.com/v1beta',
    openai: 'https://api.openai.com/v1',
    anthropic: 'https://api.anthropic.com/v1',
    ollama: 'http://127.0.0.1:11434',
  },
  model: {
    gemini: 'gemini-2.5-flash',
    openai: 'gpt-4o-mini',
    anthropic: 'claude-sonnet-4-5',
    ollama: 'llama3.2',
    echo: 'echo',
  },
} as const;

/** A configuration that cannot be used; the message names the file and field. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /** Path of a JSON config file ({@link ConfigFileSchema}). */
  file?: string;
  /** Environment to read keys and endpoints from; defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Highest-precedence settings, e.g. from command-line flags. */
  overrides?: ConfigInput;
}

/**
 * Resolve the configuration: `overrides` > `env` > `file` > defaults.
 *
 * Environment: `GEMINI_API_KEY`, `GEMINI_BASE_URL`, `OPENAI_API_KEY`, `OPENAI_BASE_URL`,
 * `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`, `OLLAMA_HOST`. A cloud provider is configured
 * when it has a key or is listed in the file/overrides; ollama when `OLLAMA_HOST` is set or it
 * is listed; `echo` always. Without an explicit `default`, the first configured of gemini,
 * openai, anthropic, compatible (in file order), ollama is the default, else `echo`.
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
  const providers = stripUndefined({
    gemini: cloud('GEMINI_API_KEY', 'GEMINI_BASE_URL'),
    openai: cloud('OPENAI_API_KEY', 'OPENAI_BASE_URL'),
    anthropic: cloud('ANTHROPIC_API_KEY', 'ANTHROPIC_BASE_URL'),
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
    ollama: mergeObj(bp.ollama, tp.ollama),
    compatible,
  });
  return stripUndefined({
    default: top.default ?? base.default,
    fallback: top.fallback ?? base.fallback,
    providers: Object.keys(providers).length ? providers : undefined,
    retry: mergeObj(base.retry, top.retry),
    timeouts: mergeObj(base.timeouts, top.timeouts),
  });
}

function resolve(cfg: ConfigInput): ResolvedConfig {
  const providers: Record<string, ResolvedProvider> = {};
  const add = (
    name: string,
    kind: ProviderKind,
    entry: z.infer<typeof CloudProviderSchema> | undefined,
    baseURL: string,
    model?: string,
  ) => {
    if (!entry) return;
    const models = entry.models ?? [];
    providers[name] = stripUndefined({
      name,
      kind,
      baseURL: stripSlash(entry.baseURL ?? baseURL),
      apiKey: entry.apiKey,
      models,
      defaultModel: entry.defaultModel ?? models[0] ?? model,
    });
  };
  const p = cfg.providers ?? {};
  add('gemini', 'gemini', p.gemini, DEFAULTS.baseURL.gemini, DEFAULTS.model.gemini);
  add('openai', 'openai', p.openai, DEFAULTS.baseURL.openai, DEFAULTS.model.openai);
  add('anthropic', 'anthropic', p.anthropic, DEFAULTS.baseURL.anthropic, DEFAULTS.model.anthropic);
  for (const [name, entry] of Object.entries(p.compatible ?? {})) add(name, 'openai-compatible', entry, entry.baseURL);
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

  return {
    default: def,
    fallback: [...new Set(fallback)],
    providers,
    retry: { ...DEFAULTS.retry, ...stripUndefined(cfg.retry ?? {}) },
    timeouts: { ...DEFAULTS.timeouts, ...stripUndefined(cfg.timeouts ?? {}) },
  };
}

function stripSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/** What {@link listProviders} tells about a provider: never the key itself. */
export interface ProviderInfo {
  name: string;
  kind: ProviderKind;
  baseURL?: string;
  hasKey: boolean;
  defaultModel?: string;
  models: string[];
  isDefault: boolean;
  /** Position in the fallback chain, if it is in it. */
  fallbackIndex?: number;
}

/** The configured providers, safe to print or send to the editor. */
export function listProviders(config: ResolvedConfig): ProviderInfo[] {
  return Object.values(config.providers).map((p) => {
    const idx = config.fallback.indexOf(p.name);
    return stripUndefined({
      name: p.name,
      kind: p.kind,
      baseURL: p.baseURL,
      hasKey: p.apiKey !== undefined,
      defaultModel: p.defaultModel,
      models: [...p.models],
      isDefault: p.name === config.default,
      fallbackIndex: idx >= 0 ? idx : undefined,
    });
  });
}
