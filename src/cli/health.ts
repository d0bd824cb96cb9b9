/**
 * `lapce-ai-ipc health`: is a server answering at the socket? Connects (the full handshake),
 * makes one call, and exits 0 if both worked, 1 otherwise: for scripts and container health checks.
 * @packageDocumentation
 */
import { performance } from 'node:perf_hooks';
import { connect } from './connect';
import { summarizeMetrics } from './metrics-summary';
import { resolveSocket } from './settings';

/** Options of `health`. */
export interface HealthOptions {
  socket?: string;
  json?: boolean;
}

/** What `health --json` prints. */
export interface HealthResult {
  status: 'ok';
  socket: string;
  /** Time to connect and handshake. */
  connectMs: number;
  /** Time of one call (the built-in `$metrics`). */
  callMs: number;
  connectionsActive: number;
}

/** Check the server at the socket. */
export async function health(opts: HealthOptions): Promise<void> {
  const socket = resolveSocket(opts.socket);
  const t0 = performance.now();
  const client = await connect(socket);
  const t1 = performance.now();
  try {
    const metrics = await client.serverMetrics('json');
    const t2 = performance.now();
    const r: HealthResult = {
      status: 'ok',
      socket,
      connectMs: round(t1 - t0),
      callMs: round(t2 - t1),
      connectionsActive: summarizeMetrics(metrics).connectionsActive,
    };
    process.stdout.write(
      opts.json
        ? `${JSON.stringify(r)}\n`
        : `ok: server at ${socket} answered (connect ${r.connectMs} ms, call ${r.callMs} ms, ${r.connectionsActive} connection(s) open)\n`,
    );
  } finally {
    client.close();
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
