/**
 * `serve --metrics-port`: an HTTP endpoint for Prometheus (`GET /metrics`, the server's registry:
 * IPC, provider and prom-client's default process metrics) and for liveness checks (`GET /health`).
 * @packageDocumentation
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** What `GET /health` reports. */
export interface HealthReport {
  /** `ok` while serving; `stopping` once shutdown began (answered with HTTP 503). */
  status: 'ok' | 'stopping';
  /** Extra facts (socket path, pid, uptime, version). */
  [key: string]: unknown;
}

/** Options of {@link startMetricsHttp}. */
export interface MetricsHttpOptions {
  port: number;
  /** Default 127.0.0.1: metrics are for the local scraper unless the operator says otherwise. */
  host?: string;
  registry: Registry;
  health: () => HealthReport;
}

/** A running metrics endpoint. */
export interface MetricsHttp {
  /** e.g. `http://127.0.0.1:9464`. */
  readonly url: string;
  close(): Promise<void>;
}

/** Starts the endpoint; resolves once it listens. */
export async function startMetricsHttp(opts: MetricsHttpOptions): Promise<MetricsHttp> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (url === '/metrics') {
      opts.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
        (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${e.message}\n`),
      );
    } else if (url === '/health') {
      const report = opts.health();
      res.writeHead(report.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(report)}\n`);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /health\n');
    }
  });
  // A scraper that never reads must not hold sockets open forever.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
