/**
 * `lapce-ai-ipc stats`: the running server's metrics, summarised, as JSON, or as Prometheus text.
 * @packageDocumentation
 */
import { connect } from './connect';
import { formatStats, summarizeMetrics } from './metrics-summary';
import { resolveSocket } from './settings';

/** Options of `stats`. */
export interface StatsOptions {
  socket?: string;
  json?: boolean;
  prometheus?: boolean;
}

/** Print the server's metrics. */
export async function stats(opts: StatsOptions): Promise<void> {
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
