/**
 * What a person wants to know from the server's metrics: a digest of the `$metrics` JSON (IPC
 * traffic and errors, per-provider chat counts), shared by `stats` and `demo`.
 * @packageDocumentation
 */
import { METRIC_NAMES } from '../ai/metrics';
import { IPC_METRIC_NAMES } from '../ipc/metrics';
import { NAME } from './settings';
import { bytes, codes, table } from './format';

/** prom-client's JSON form of one metric. */
interface MetricJson {
  name: string;
  type: string;
  values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>;
}

/** What a person wants to know from the metrics. */
export interface MetricsSummary {
  /** Open IPC connections. */
  connectionsActive: number;
  /** IPC connections since the server started. */
  connectionsTotal: number;
  /** Streams in progress. */
  streamsActive: number;
  /** Ring messages received. */
  messagesIn: number;
  /** Ring messages sent. */
  messagesOut: number;
  /** Ring bytes received. */
  bytesIn: number;
  /** Ring bytes sent. */
  bytesOut: number;
  /** IPC errors sent to clients, by code (chat errors included, under their chat code). */
  errors: Record<string, number>;
  /** Per provider that has seen a request. */
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
  const ipc = IPC_METRIC_NAMES;
  return {
    connectionsActive: sum(ipc.connectionsActive),
    connectionsTotal: sum(ipc.connectionsTotal),
    streamsActive: sum(ipc.streamsActive),
    messagesIn: sum(ipc.messages, (l) => l.direction === 'in'),
    messagesOut: sum(ipc.messages, (l) => l.direction === 'out'),
    bytesIn: sum(ipc.bytes, (l) => l.direction === 'in'),
    bytesOut: sum(ipc.bytes, (l) => l.direction === 'out'),
    errors: byLabel(ipc.errors, 'code'),
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
