/**
 * The `lapce-ai-ipc` command line: run the AI chat backend, chat with it, read its metrics.
 *
 * ```text
 * lapce-ai-ipc serve     [--socket P] [--config F] [--default NAME] [--fallback A,B] [--log-level L] [--pretty]
 *                        [--shutdown-deadline MS] [--max-connections N] [--allow-uid U,V] [--ring-size BYTES]
 *                        [--metrics-port PORT] [--metrics-host HOST]
 * lapce-ai-ipc chat      [--socket P] [--model M] [--system S] [--temperature T] [--max-tokens N] [--json] <prompt...>
 * lapce-ai-ipc stats     [--socket P] [--json | --prometheus]
 * lapce-ai-ipc health    [--socket P] [--json]
 * lapce-ai-ipc providers [--config F] [--socket P] [--json]
 * lapce-ai-ipc demo      [--prompt TEXT]
 * lapce-ai-ipc config-schema [--output F]
 * ```
 *
 * Settings come from flags, then the environment, then the config file, then defaults:
 * - socket: `--socket`, `LAPCE_AI_SOCKET`, else `defaultSocketPath()`;
 * - config file: `--config`, `LAPCE_AI_CONFIG`, else `$XDG_CONFIG_HOME/lapce-ai/config.json`
 *   (`~/.config/…`) when it exists; provider keys and endpoints as in `src/ai/CONFIG.md`.
 *
 * Exit codes: 0 success, 1 failure or usage error (message on stderr), 130 interrupted. Commands
 * set `process.exitCode` and let the process end by itself, so output is never cut short.
 * @packageDocumentation
 */
import { Command, CommanderError, Option } from 'commander';
import { defaultSocketPath } from '../ipc/paths';
import type { ChatCliOptions } from './chat';
import type { DemoOptions } from './demo';
import { CliError } from './errors';
import { describe } from './format';
import type { HealthOptions } from './health';
import type { ProvidersOptions } from './providers';
import type { ServeOptions } from './serve';
import { count, DEFAULT_SHUTDOWN_DEADLINE_MS, int, list, LOG_LEVELS, NAME, num, port, ringSize, uids } from './settings';
import type { StatsOptions } from './stats';
import { version } from './version';

// Each command's module is loaded when the command runs: `--version`, `health` or `stats` need
// neither the AI SDK nor the logger.
const socketOption = () => new Option('-s, --socket <path>', `server socket path (env LAPCE_AI_SOCKET; default ${defaultSocketPath()})`);
const configOption = () =>
  new Option('-c, --config <file>', 'JSON config file (env LAPCE_AI_CONFIG; default $XDG_CONFIG_HOME/lapce-ai/config.json if present)');
const logLevelOption = (dflt: string) =>
  new Option('--log-level <level>', `log level (env LAPCE_AI_LOG_LEVEL; default ${dflt})`).choices(LOG_LEVELS);
const prettyOption = () => new Option('--pretty', 'human-readable log lines (default when stderr is a terminal; JSON lines otherwise)');

/** The commander program (exits are thrown as CommanderError, never `process.exit`). */
export function buildProgram(): Command {
  const program = new Command(NAME)
    .description('AI chat backend over shared-memory IPC: run it, chat with it, read its metrics')
    .version(version, '-V, --version', 'print the version')
    .showHelpAfterError()
    .exitOverride();
  program
    .command('serve')
    .description('run the chat backend; logs the active providers; SIGINT/SIGTERM shut it down gracefully')
    .addOption(socketOption())
    .addOption(configOption())
    .option('--default <provider>', 'default provider (overrides the config file)')
    .option('--fallback <providers>', 'comma-separated fallback chain (overrides the config file)', list)
    .addOption(logLevelOption('info'))
    .addOption(prettyOption())
    .option('--shutdown-deadline <ms>', 'on SIGINT/SIGTERM, how long calls in flight may finish', count, DEFAULT_SHUTDOWN_DEADLINE_MS)
    .option('--max-connections <n>', 'most clients connected at once (default: the server default)', count)
    .option('--allow-uid <uids>', "comma-separated uids allowed to connect, besides the server's own", uids)
    .option('--ring-size <bytes>', 'capacity of each shared-memory ring, a power of two (e.g. 1M, 8M)', ringSize)
    .option('--metrics-port <port>', 'serve GET /metrics (Prometheus) and GET /health over HTTP on this port (0: any free port)', port)
    .option('--metrics-host <host>', 'address for --metrics-port', '127.0.0.1')
    .action(async (opts: ServeOptions) => (await import('./serve')).serve(opts));
  program
    .command('chat')
    .description('send a prompt ("-" reads it from stdin) and stream the reply to stdout')
    .argument('<prompt...>', 'the prompt')
    .addOption(socketOption())
    .option('-m, --model <model>', 'provider/model, a bare model id (gpt-*, claude-*, gemini-*), or a provider name')
    .option('--system <text>', 'system prompt')
    .option('--temperature <t>', 'sampling temperature (0-2)', num)
    .option('--max-tokens <n>', 'upper bound on reply tokens', int)
    .option('--json', 'print every stream event as a JSON line (and {"type":"error",...} on failure) instead of the text')
    .action(async (prompt: string[], opts: ChatCliOptions) => (await import('./chat')).chat(prompt, opts));
  program
    .command('stats')
    .description("print the running server's metrics (IPC and per provider)")
    .addOption(socketOption())
    .addOption(new Option('--json', 'raw JSON (prom-client form)').conflicts('prometheus'))
    .option('--prometheus', 'Prometheus text exposition')
    .action(async (opts: StatsOptions) => (await import('./stats')).stats(opts));
  program
    .command('health')
    .description('check that a server answers at the socket (handshake and one call); exit status 0 if it does')
    .addOption(socketOption())
    .option('--json', 'JSON output')
    .action(async (opts: HealthOptions) => (await import('./health')).health(opts));
  program
    .command('providers')
    .description('list the configured providers (never their keys); with --socket, those of the running server')
    .addOption(configOption())
    .option('-s, --socket <path>', 'ask the server at this socket instead of reading the local configuration')
    .option('--json', 'JSON output')
    .action(async (opts: ProvidersOptions) => (await import('./providers')).providers(opts));
  program
    .command('demo')
    .description(
      'offline end-to-end demo: temporary server with the echo provider, a chat from a separate process, metrics, clean shutdown',
    )
    .option('-p, --prompt <text>', 'what to say', 'Hello from the lapce-ai-ipc demo!')
    .addOption(logLevelOption('warn'))
    .addOption(prettyOption())
    .action(async (opts: DemoOptions) => (await import('./demo')).demo(opts));
  program
    .command('config-schema')
    .description('print the JSON Schema of the config file (generated from the schema the backend validates with)')
    .option('-o, --output <file>', 'write it to this file instead of stdout')
    .action(async (opts: { output?: string }) => (await import('./config-schema')).configSchema(opts));
  return program;
}

/** Run the CLI with `argv` (node-style: the first two entries are skipped). Sets `process.exitCode`. */
export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander has printed the usage error, the help or the version already.
      process.exitCode = e.exitCode;
      return;
    }
    process.stderr.write(`${NAME}: ${describe(e)}\n`);
    process.exitCode = e instanceof CliError ? e.exitCode : 1;
  }
}
