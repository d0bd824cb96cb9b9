#!/usr/bin/env node
/**
 * The `lapce-ai-ipc` command line: run the AI chat backend, chat with it, read its metrics.
 *
 * ```text
 * lapce-ai-ipc serve     [--socket P] [--config F] [--default NAME] [--fallback A,B] [--log-level L]
 * lapce-ai-ipc chat      [--socket P] [--model M] [--system S] [--temperature T] [--max-tokens N] [--json] <prompt...>
 * lapce-ai-ipc stats     [--socket P] [--json | --prometheus]
 * lapce-ai-ipc providers [--config F] [--socket P] [--json]
 * lapce-ai-ipc demo      [--prompt TEXT]
 * ```
 *
 * Settings come from flags, then the environment, then the config file, then defaults:
 * - socket: `--socket`, `LAPCE_AI_SOCKET`, else `defaultSocketPath()`;
 * - config file: `--config`, `LAPCE_AI_CONFIG`, else `$XDG_CONFIG_HOME/lapce-ai/config.json`
 *   (`~/.config/…`) when it exists; provider keys and endpoints as in `src/ai/CONFIG.md`.
 *
 * Exit codes: 0 success, 1 failure (message on stderr), 130 interrupted. Commands set
 * `process.exitCode` and let the process end by itself, so output is never cut short.
 * @packageDocumentation
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import pino, { type Logger } from 'pino';
import {
  ConfigError,
  type ConfigInput,
  listProviders,
  loadConfig,
  METRIC_NAMES,
  type ChatEvent,
  type ProviderInfo,
  type ResolvedConfig,
} from './ai';
import { attachChatBackend, CHAT_METHOD, PROVIDERS_METHOD, type ProvidersReply } from './backend';
import { IpcError } from './errors';
import { IpcClient } from './ipc/client';
import { defaultSocketPath } from './ipc/paths';
import { IpcServer } from './ipc/server';

const NAME = 'lapce-ai-ipc';
/** How long `serve` lets chats in flight finish after SIGINT/SIGTERM. */
const SHUTDOWN_DEADLINE_MS = 5000;

/** A failure to report as one line on stderr (no stack: it is the user's problem to fix, not ours). */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

// ─── settings ────────────────────────────────────────────────────────────────

/** Socket path: flag > `LAPCE_AI_SOCKET` > the default path. */
export function resolveSocket(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? nonEmpty(env.LAPCE_AI_SOCKET) ?? defaultSocketPath(env);
}

/**
 * Config file: flag > `LAPCE_AI_CONFIG` > `$XDG_CONFIG_HOME/lapce-ai/config.json` if it exists.
 * An explicitly named file must exist (loadConfig reports it); the implicit one is optional.
 */
export function resolveConfigFile(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = flag ?? nonEmpty(env.LAPCE_AI_CONFIG);
  if (explicit !== undefined) return explicit;
  const base = nonEmpty(env.XDG_CONFIG_HOME) ?? path.join(os.homedir(), '.config');
  const implicit = path.join(base, 'lapce-ai', 'config.json');
  return existsSync(implicit) ? implicit : undefined;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v !== undefined && v.trim() !== '' ? v : undefined;
}

/** Load the provider configuration, flags given as the top layer. */
function configFrom(opts: { config?: string; default?: string; fallback?: string[] }): { config: ResolvedConfig; file?: string } {
  const file = resolveConfigFile(opts.config);
  const overrides: ConfigInput = {};
  if (opts.default !== undefined) overrides.default = opts.default;
  if (opts.fallback !== undefined) overrides.fallback = opts.fallback;
  return { config: loadConfig({ file, overrides }), file };
}

// ─── serve ───────────────────────────────────────────────────────────────────

interface ServeOptions {
  socket?: string;
  config?: string;
  default?: string;
  fallback?: string[];
  logLevel?: string;
}

/** Run the backend until SIGINT/SIGTERM, then shut down gracefully. */
async function serve(opts: ServeOptions): Promise<void> {
  // Synchronous stderr: log lines are few, and none may be lost when the process ends.
  const logger = pino(
    { name: NAME, level: opts.logLevel ?? process.env.LAPCE_AI_LOG_LEVEL ?? 'info' },
    pino.destination({ dest: 2, sync: true }),
  );
  const { config, file } = configFrom(opts);
  const socketPath = resolveSocket(opts.socket);
  const server = new IpcServer({ socketPath, logger });
  attachChatBackend(server, { config, logger });
  await server.listen();

  const providers = listProviders(config);
  logger.info(
    {
      socket: socketPath,
      configFile: file ?? null,
      default: config.default,
      fallback: config.fallback,
      providers: providers.map((p) => ({ name: p.name, kind: p.kind, baseURL: p.baseURL, hasKey: p.hasKey })),
    },
    `providers active: ${providers.map((p) => p.name + (p.isDefault ? ' (default)' : '')).join(', ')}`,
  );

  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        // A second signal means "now": the user does not want to wait for the deadline.
        logger.warn({ signal }, 'second signal, exiting without waiting');
        process.exit(130);
      }
      stopping = true;
      logger.info({ signal, deadlineMs: SHUTDOWN_DEADLINE_MS }, 'shutdown requested');
      server.close({ deadlineMs: SHUTDOWN_DEADLINE_MS }).then(resolve, (e) => {
        logger.error({ err: (e as Error).message }, 'shutdown failed');
        process.exitCode = 1;
        resolve();
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  // Leave the signal handlers in place: a signal during the last turns must not kill us with
  // a non-zero status after a clean shutdown.
}

// ─── chat ────────────────────────────────────────────────────────────────────

interface ChatCliOptions {
  socket?: string;
  model?: string;
  system?: string;
  temperature?: number;
  maxTokens?: number;
  json?: boolean;
}

/** Send one prompt and stream the reply to stdout as it arrives. */
async function chat(promptWords: string[], opts: ChatCliOptions): Promise<void> {
  const prompt = promptWords.length === 1 && promptWords[0] === '-' ? readFileSync(0, 'utf8') : promptWords.join(' ');
  const socketPath = resolveSocket(opts.socket);
  const client = await connect(socketPath);
  const request = {
    ...(opts.model !== undefined ? { model: opts.model } : {}),
    messages: [{ role: 'user', content: prompt }],
    ...(opts.system !== undefined ? { system: opts.system } : {}),
    ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
    ...(opts.maxTokens !== undefined ? { maxTokens: opts.maxTokens } : {}),
  };
  // Ctrl-C cancels the stream, which aborts the provider's request on the server.
  const interrupt = new AbortController();
  const onSigint = () => interrupt.abort();
  process.once('SIGINT', onSigint);
  let midLine = false;
  try {
    for await (const ev of client.stream<ChatEvent>(CHAT_METHOD, request, { signal: interrupt.signal })) {
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(ev)}\n`);
      } else if (ev.type === 'delta') {
        process.stdout.write(ev.text);
        midLine = !ev.text.endsWith('\n');
      }
    }
    if (!opts.json) process.stdout.write('\n');
  } catch (e) {
    // Keep the partial reply on its own line, so the error does not look like part of it.
    if (midLine) process.stdout.write('\n');
    if (interrupt.signal.aborted) throw new CliError('interrupted', 130);
    throw e;
  } finally {
    process.removeListener('SIGINT', onSigint);
    client.close();
  }
}

/** Connect, turning "nothing listens there" into advice. */
async function connect(socketPath: string): Promise<IpcClient> {
  try {
    return await IpcClient.connect(socketPath, { name: `${NAME}-cli` });
  } catch (e) {
    // Only a refused connect means nobody listens; a rejected handshake (say, server full) does not.
    const nobody = e instanceof IpcError && e.code === 'CONNECTION_LOST' && /cannot connect/.test(e.message);
    if (nobody)
      throw new CliError(
        `no ${NAME} server is reachable at ${socketPath} (${e.message}).\nStart one with: ${NAME} serve --socket ${socketPath}`,
      );
    throw new CliError(`cannot connect to the ${NAME} server at ${socketPath}: ${describe(e)}`);
  }
}

// ─── stats ───────────────────────────────────────────────────────────────────

/** prom-client's JSON form of one metric. */
interface MetricJson {
  name: string;
  type: string;
  values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>;
}

/** What a person wants to know from the metrics. */
export interface MetricsSummary {
  connectionsActive: number;
  connectionsTotal: number;
  streamsActive: number;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** IPC errors sent to clients, by code (chat errors included, under their chat code). */
  errors: Record<string, number>;
  providers: Array<{
    provider: string;
    requests: number;
    errors: Record<string, number>;
    tokensIn: number;
    tokensOut: number;
    /** Mean time to first token in ms, if any try produced one. */
    firstTokenMeanMs?: number;
  }>;
}

/** Digest the server's JSON metrics (from `$metrics`) into a {@link MetricsSummary}. */
export function summarizeMetrics(metrics: unknown): MetricsSummary {
  const list = Array.isArray(metrics) ? (metrics as MetricJson[]) : [];
  const byName = new Map(list.map((m) => [m.name, m]));
  const values = (name: string) => byName.get(name)?.values ?? [];
  const sum = (name: string, where: (l: Record<string, string | number>) => boolean = () => true) =>
    values(name).reduce((n, v) => (where(v.labels) ? n + v.value : n), 0);
  const byLabel = (name: string, label: string, where: (l: Record<string, string | number>) => boolean = () => true) => {
    const out: Record<string, number> = {};
    for (const v of values(name))
      if (where(v.labels) && v.value > 0) out[String(v.labels[label])] = (out[String(v.labels[label])] ?? 0) + v.value;
    return out;
  };

  const names = new Set<string>();
  for (const n of [METRIC_NAMES.requests, METRIC_NAMES.errors, METRIC_NAMES.tokens])
    for (const v of values(n)) names.add(String(v.labels.provider));
  const providers = [...names].sort().map((provider) => {
    const mine = (l: Record<string, string | number>) => l.provider === provider;
    const ft = values(METRIC_NAMES.firstToken).filter((v) => mine(v.labels));
    const ftSum = ft.filter((v) => v.metricName?.endsWith('_sum')).reduce((n, v) => n + v.value, 0);
    const ftCount = ft.filter((v) => v.metricName?.endsWith('_count')).reduce((n, v) => n + v.value, 0);
    return {
      provider,
      requests: sum(METRIC_NAMES.requests, mine),
      errors: byLabel(METRIC_NAMES.errors, 'code', mine),
      tokensIn: sum(METRIC_NAMES.tokens, (l) => mine(l) && l.direction === 'in'),
      tokensOut: sum(METRIC_NAMES.tokens, (l) => mine(l) && l.direction === 'out'),
      ...(ftCount > 0 ? { firstTokenMeanMs: (ftSum / ftCount) * 1000 } : {}),
    };
  });
  return {
    connectionsActive: sum('lapce_ipc_connections_active'),
    connectionsTotal: sum('lapce_ipc_connections_total'),
    streamsActive: sum('lapce_ipc_streams_active'),
    messagesIn: sum('lapce_ipc_messages_total', (l) => l.direction === 'in'),
    messagesOut: sum('lapce_ipc_messages_total', (l) => l.direction === 'out'),
    bytesIn: sum('lapce_ipc_bytes_total', (l) => l.direction === 'in'),
    bytesOut: sum('lapce_ipc_bytes_total', (l) => l.direction === 'out'),
    errors: byLabel('lapce_ipc_errors_total', 'code'),
    providers,
  };
}

/** The human-readable `stats` report. */
export function formatStats(s: MetricsSummary, socketPath: string): string {
  const lines = [
    `${NAME} server at ${socketPath}`,
    `  connections  ${s.connectionsActive} active (this one included), ${s.connectionsTotal} since start`,
    `  streams      ${s.streamsActive} active`,
    `  ring         ${s.messagesIn} messages in, ${s.messagesOut} out (${bytes(s.bytesIn)} in, ${bytes(s.bytesOut)} out)`,
    `  errors       ${codes(s.errors)}`,
    '',
  ];
  if (s.providers.length === 0) {
    lines.push('providers: no chat request has reached a provider yet');
  } else {
    lines.push(
      ...table(
        ['provider', 'requests', 'errors', 'tokens in', 'tokens out', 'first token (mean)'],
        s.providers.map((p) => [
          p.provider,
          String(p.requests),
          codes(p.errors),
          String(p.tokensIn),
          String(p.tokensOut),
          p.firstTokenMeanMs !== undefined ? `${p.firstTokenMeanMs.toFixed(1)} ms` : '-',
        ]),
      ),
    );
  }
  return lines.join('\n');
}

/** One line for the demo: what the server did. */
export function formatStatsLine(s: MetricsSummary): string {
  const p = s.providers
    .map(
      (x) =>
        `${x.provider}: ${x.requests} request(s), ${x.tokensIn} tokens in / ${x.tokensOut} out${x.firstTokenMeanMs !== undefined ? `, first token ${x.firstTokenMeanMs.toFixed(1)} ms` : ''}`,
    )
    .join('; ');
  return `metrics: ${p || 'no provider requests'}; ${s.connectionsTotal} IPC connection(s), ${s.messagesOut} ring messages sent, errors: ${codes(s.errors)}`;
}

async function stats(opts: { socket?: string; json?: boolean; prometheus?: boolean }): Promise<void> {
  const socketPath = resolveSocket(opts.socket);
  const client = await connect(socketPath);
  try {
    if (opts.prometheus) {
      const { text } = (await client.serverMetrics('prometheus')) as { text: string };
      process.stdout.write(text);
    } else {
      const json = await client.serverMetrics('json');
      process.stdout.write(opts.json ? `${JSON.stringify(json, null, 2)}\n` : `${formatStats(summarizeMetrics(json), socketPath)}\n`);
    }
  } finally {
    client.close();
  }
}

// ─── providers ───────────────────────────────────────────────────────────────

async function providersCmd(opts: { config?: string; socket?: string; json?: boolean }): Promise<void> {
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

// ─── demo ────────────────────────────────────────────────────────────────────

/**
 * The main job on a fresh machine: a server on a temporary socket with the offline echo
 * provider, a chat from a separate process through the real client (this CLI's `chat`), the
 * reply, a metrics line, and a clean shutdown. Ignores provider keys in the environment, so
 * it never goes online.
 */
async function demo(opts: { prompt: string }): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lapce-ai-demo-'));
  const socketPath = path.join(dir, 'ai.sock');
  const logger = pino({ level: 'warn' }, pino.destination({ dest: 2, sync: true }));
  const server = new IpcServer({ socketPath, logger });
  try {
    attachChatBackend(server, { config: loadConfig({ env: {} }), logger });
    await server.listen();
    process.stdout.write(`server: listening on ${socketPath} (pid ${process.pid}), provider: echo (offline, no key needed)\n`);
    process.stdout.write(`client: ${NAME} chat --model echo ${JSON.stringify(opts.prompt)}\n`);
    process.stdout.write('reply:  ');
    const code = await runSelf(['chat', '--socket', socketPath, '--model', 'echo', opts.prompt]);
    if (code !== 0) throw new CliError(`the chat client exited with status ${code}`);
    process.stdout.write(`${formatStatsLine(summarizeMetrics(await server.metrics()))}\n`);
  } finally {
    await server.close({ deadlineMs: 1000 });
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write('server: shut down cleanly\n');
}

/** Run this CLI in a child process (same node flags, so it works from source under tsx too); its stdout streams into ours. */
function runSelf(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, __filename, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.on('data', (b: Buffer) => process.stdout.write(b));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

// ─── formatting helpers ──────────────────────────────────────────────────────

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

function codes(c: Record<string, number>): string {
  const entries = Object.entries(c);
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(' ') : 'none';
}

function bytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/** One line saying what went wrong, with the typed error's code and where it came from. */
function describe(e: unknown): string {
  if (e instanceof CliError || e instanceof ConfigError) return e.message;
  if (e instanceof IpcError) {
    const d = e.details as { provider?: string; httpStatus?: number } | undefined;
    const where = [d?.provider && `provider ${d.provider}`, d?.httpStatus && `HTTP ${d.httpStatus}`].filter(Boolean).join(', ');
    return `${e.code}: ${e.message}${where ? ` (${where})` : ''}${e.retryable ? ' [retryable]' : ''}`;
  }
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}

// ─── program ─────────────────────────────────────────────────────────────────

function int(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('not an integer');
  return n;
}

function num(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('not a number');
  return n;
}

function list(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

const socketOption = () => new Option('-s, --socket <path>', `server socket path (env LAPCE_AI_SOCKET; default ${defaultSocketPath()})`);
const configOption = () =>
  new Option('-c, --config <file>', 'JSON config file (env LAPCE_AI_CONFIG; default $XDG_CONFIG_HOME/lapce-ai/config.json if present)');

/** The commander program (exits are thrown as CommanderError, never `process.exit`). */
export function buildProgram(): Command {
  const program = new Command(NAME)
    .description('AI chat backend over shared-memory IPC: run it, chat with it, read its metrics')
    .showHelpAfterError()
    .exitOverride();
  program
    .command('serve')
    .description('run the chat backend; logs the active providers; SIGINT/SIGTERM shut it down gracefully')
    .addOption(socketOption())
    .addOption(configOption())
    .option('--default <provider>', 'default provider (overrides the config file)')
    .option('--fallback <providers>', 'comma-separated fallback chain (overrides the config file)', list)
    .option('--log-level <level>', 'pino log level (env LAPCE_AI_LOG_LEVEL; default info)')
    .action((opts: ServeOptions) => serve(opts));
  program
    .command('chat')
    .description('send a prompt ("-" reads it from stdin) and stream the reply to stdout')
    .argument('<prompt...>', 'the prompt')
    .addOption(socketOption())
    .option('-m, --model <model>', 'provider/model, a bare model id (gpt-*, claude-*, gemini-*), or a provider name')
    .option('--system <text>', 'system prompt')
    .option('--temperature <t>', 'sampling temperature (0-2)', num)
    .option('--max-tokens <n>', 'upper bound on reply tokens', int)
    .option('--json', 'print every stream event as a JSON line instead of the text')
    .action((prompt: string[], opts: ChatCliOptions) => chat(prompt, opts));
  program
    .command('stats')
    .description("print the running server's metrics (IPC and per provider)")
    .addOption(socketOption())
    .addOption(new Option('--json', 'raw JSON (prom-client form)').conflicts('prometheus'))
    .option('--prometheus', 'Prometheus text exposition')
    .action((opts: { socket?: string; json?: boolean; prometheus?: boolean }) => stats(opts));
  program
    .command('providers')
    .description('list the configured providers (never their keys); with --socket, those of the running server')
    .addOption(configOption())
    .option('-s, --socket <path>', 'ask the server at this socket instead of reading the local configuration')
    .option('--json', 'JSON output')
    .action((opts: { config?: string; socket?: string; json?: boolean }) => providersCmd(opts));
  program
    .command('demo')
    .description(
      'offline end-to-end demo: temporary server with the echo provider, a chat from a separate process, metrics, clean shutdown',
    )
    .option('-p, --prompt <text>', 'what to say', 'Hello from the lapce-ai-ipc demo!')
    .action((opts: { prompt: string }) => demo(opts));
  return program;
}

/** Run the CLI with `argv` (node-style: the first two entries are skipped). Sets `process.exitCode`. */
export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander has printed the usage error or help already.
      process.exitCode = e.exitCode;
      return;
    }
    process.stderr.write(`${NAME}: ${describe(e)}\n`);
    process.exitCode = e instanceof CliError ? e.exitCode : 1;
  }
}

if (require.main === module) void main();
