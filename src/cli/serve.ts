/**
 * `lapce-ai-ipc serve`: run the chat backend until SIGINT/SIGTERM, then shut down gracefully.
 * @packageDocumentation
 */
import { collectDefaultMetrics } from 'prom-client';
import { listProviders } from '../ai/config';
import { attachChatBackend } from '../backend';
import { IpcServer } from '../ipc/server';
import type { IpcServerOptions } from '../ipc/server';
import { CliError } from './errors';
import { createCliLogger } from './logger';
import { startMetricsHttp } from './metrics-http';
import type { MetricsHttp } from './metrics-http';
import { configFrom, resolveSocket } from './settings';
import { version } from './version';

/** Options of `serve`, as commander parses them. */
export interface ServeOptions {
  socket?: string;
  config?: string;
  default?: string;
  fallback?: string[];
  logLevel?: string;
  pretty?: boolean;
  shutdownDeadline: number;
  maxConnections?: number;
  allowUid?: number[];
  ringSize?: number;
  metricsPort?: number;
  metricsHost: string;
}

/** Run the backend until SIGINT/SIGTERM. */
export async function serve(opts: ServeOptions): Promise<void> {
  const logger = createCliLogger({ level: opts.logLevel, pretty: opts.pretty });
  const { config, file } = configFrom(opts);
  const socketPath = resolveSocket(opts.socket);
  const serverOptions: IpcServerOptions = { socketPath, logger };
  if (opts.maxConnections !== undefined) serverOptions.maxConnections = opts.maxConnections;
  // The server's own user always stays allowed: the flag adds users, it does not lock out the owner.
  if (opts.allowUid !== undefined) serverOptions.allowedUids = [...new Set([process.getuid?.() ?? 0, ...opts.allowUid])];
  if (opts.ringSize !== undefined) serverOptions.ringCapacity = opts.ringSize;
  const server = new IpcServer(serverOptions);
  attachChatBackend(server, { config, logger });
  await server.listen();

  const startedAt = Date.now();
  let stopping = false;
  let http: MetricsHttp | undefined;
  // The handlers go in before the readiness line below: whoever waits for that line may signal at once.
  const stopped = new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        // A second signal means "now": the user does not want to wait for the deadline.
        logger.warn({ signal }, 'second signal, exiting without waiting');
        process.exit(130);
      }
      stopping = true;
      logger.info({ signal, deadlineMs: opts.shutdownDeadline }, 'shutdown requested');
      server
        .close({ deadlineMs: opts.shutdownDeadline })
        .then(
          () => undefined,
          (e: unknown) => {
            logger.error({ err: e }, 'shutdown failed');
            process.exitCode = 1;
          },
        )
        .then(() => http?.close())
        .then(resolve, resolve);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });

  if (opts.metricsPort !== undefined) {
    collectDefaultMetrics({ register: server.registry });
    try {
      http = await startMetricsHttp({
        port: opts.metricsPort,
        host: opts.metricsHost,
        registry: server.registry,
        health: () => ({
          status: stopping ? 'stopping' : 'ok',
          socket: socketPath,
          pid: process.pid,
          version,
          uptimeSeconds: (Date.now() - startedAt) / 1000,
        }),
      });
    } catch (e) {
      await server.close({ deadlineMs: 0 });
      throw new CliError('INVALID_ARGUMENT', `cannot serve metrics on ${opts.metricsHost}:${opts.metricsPort}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  const providers = listProviders(config);
  logger.info(
    {
      socket: socketPath,
      configFile: file ?? null,
      default: config.default,
      fallback: config.fallback,
      providers: providers.map((p) => ({ name: p.name, kind: p.kind, baseURL: p.baseURL, hasKey: p.hasKey })),
      ...(http ? { metrics: `${http.url}/metrics`, health: `${http.url}/health` } : {}),
    },
    `providers active: ${providers.map((p) => p.name + (p.isDefault ? ' (default)' : '')).join(', ')}`,
  );

  await stopped;
  // Leave the signal handlers in place: a signal during the last turns must not kill us with
  // a non-zero status after a clean shutdown.
}
