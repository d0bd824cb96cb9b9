/**
 * `lapce-ai-ipc providers`: the configured providers (never their keys), from this shell's
 * configuration or, with `--socket`, from the running server.
 * @packageDocumentation
 */
import { listProviders } from '../ai/config';
import type { ProviderInfo } from '../ai/config';
import { PROVIDERS_METHOD } from '../backend';
import type { ProvidersReply } from '../backend';
import { connect } from './connect';
import { table } from './format';
import { configFrom } from './settings';

/** Options of `providers`. */
export interface ProvidersOptions {
  config?: string;
  socket?: string;
  json?: boolean;
}

/** Print the providers. */
export async function providers(opts: ProvidersOptions): Promise<void> {
  let reply: ProvidersReply;
  let source: string;
  if (opts.socket !== undefined) {
    // Ask the running server: what it uses may differ from what this shell's env would give.
    const client = await connect(opts.socket);
    try {
      reply = await client.request<ProvidersReply>(PROVIDERS_METHOD);
    } finally {
      client.close();
    }
    source = `server at ${opts.socket}`;
  } else {
    const { config, file } = configFrom(opts);
    reply = { default: config.default, fallback: config.fallback, providers: listProviders(config) };
    source = file ? `the environment and ${file}` : 'the environment (no config file)';
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(reply, null, 2)}\n`);
    return;
  }
  const rows = reply.providers.map((p: ProviderInfo) => [
    p.name,
    p.kind,
    p.isDefault ? 'default' : p.fallbackIndex !== undefined ? `fallback ${p.fallbackIndex + 1}` : '',
    p.defaultModel ?? '-',
    p.kind === 'echo' ? 'offline' : p.hasKey ? 'key set' : 'no key',
    p.baseURL ?? '-',
  ]);
  process.stdout.write(
    `providers from ${source}\n${table(['name', 'kind', 'role', 'default model', 'auth', 'base URL'], rows).join('\n')}\n`,
  );
}
