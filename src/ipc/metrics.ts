/**
 * The server's metrics, kept in a prom-client registry: rendered as Prometheus text, as a JSON
 * snapshot, and served to clients through the built-in `$metrics` method.
 *
 * Per-message counters (messages, bytes, doorbells, full rings) are not incremented per
 * message: they are read from the channels' own counters when metrics are collected, so the
 * hot path pays nothing for them.
 * @packageDocumentation
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ChannelStats } from '../transport/channel';
import { LabeledHistogram } from './request-histogram';

/**
 * The names of the IPC metrics, defined once: the server registers them under these names and
 * readers (the CLI's `stats`, dashboards) import them instead of spelling them out.
 * @category IPC
 */
export const IPC_METRIC_NAMES = Object.freeze({
  /** Gauge: sessions open now. */
  connectionsActive: 'lapce_ipc_connections_active',
  /** Counter: sessions opened since start. */
  connectionsTotal: 'lapce_ipc_connections_total',
  /** Counter: handshakes refused, by `reason`. */
  connectionsRejected: 'lapce_ipc_connections_rejected_total',
  /** Counter: handshakes completed. */
  handshakes: 'lapce_ipc_handshakes_total',
  /** Counter: handshakes failed, by `reason`. */
  handshakeFailures: 'lapce_ipc_handshake_failures_total',
  /** Histogram: accept to READY. */
  handshakeSeconds: 'lapce_ipc_handshake_seconds',
  /** Histogram: request latency, by `method`. */
  requestSeconds: 'lapce_ipc_request_seconds',
  /** Gauge: streams in progress. */
  streamsActive: 'lapce_ipc_streams_active',
  /** Histogram: stream open to first chunk, by `method`. */
  streamFirstChunkSeconds: 'lapce_ipc_stream_first_chunk_seconds',
  /** Counter: ERROR frames sent, by `code`. */
  errors: 'lapce_ipc_errors_total',
  /** Counter: ring messages, by `direction`. */
  messages: 'lapce_ipc_messages_total',
  /** Counter: ring bytes, by `direction`. */
  bytes: 'lapce_ipc_bytes_total',
  /** Counter: sends that found the ring full and waited. */
  ringFullWaits: 'lapce_ipc_ring_full_waits_total',
  /** Counter: doorbells rung for a sleeping peer. */
  doorbellsRung: 'lapce_ipc_doorbells_rung_total',
  /** Counter: publishes that needed no doorbell. */
  doorbellsSuppressed: 'lapce_ipc_doorbells_suppressed_total',
  /** Counter: times a side woke from its doorbell. */
  wakeups: 'lapce_ipc_wakeups_total',
} as const);

const N = IPC_METRIC_NAMES;

/** Sums of channel counters, for live and already closed sessions. */
export interface TrafficSource {
  /** Sum of the counters of every channel ever opened by the server. */
  traffic(): ChannelStats;
}

/** The metric objects the server updates. */
export class ServerMetrics {
  readonly registry: Registry;
  readonly connectionsActive: Gauge;
  readonly connectionsTotal: Counter;
  readonly connectionsRejected: Counter<'reason'>;
  readonly handshakes: Counter;
  readonly handshakeFailures: Counter<'reason'>;
  readonly handshakeSeconds: Histogram;
  readonly requestSeconds: LabeledHistogram;
  readonly streamsActive: Gauge;
  readonly streamFirstChunkSeconds: Histogram<'method'>;
  readonly errors: Counter<'code'>;

  constructor(source: TrafficSource, registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    this.connectionsActive = new Gauge({ name: N.connectionsActive, help: 'Open sessions', registers });
    this.connectionsTotal = new Counter({ name: N.connectionsTotal, help: 'Sessions opened', registers });
    this.connectionsRejected = new Counter({
      name: N.connectionsRejected,
      help: 'Connections refused, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.handshakes = new Counter({ name: N.handshakes, help: 'Handshakes completed', registers });
    this.handshakeFailures = new Counter({
      name: N.handshakeFailures,
      help: 'Handshakes failed, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.handshakeSeconds = new Histogram({
      name: N.handshakeSeconds,
      help: 'Time from accepting a connection to READY',
      buckets: [50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 5e-3, 0.05, 0.5, 2],
      registers,
    });
    this.requestSeconds = new LabeledHistogram(
      N.requestSeconds,
      'Request handling time, from frame in to response out, by method',
      'method',
      [10e-6, 50e-6, 100e-6, 500e-6, 1e-3, 5e-3, 0.025, 0.1, 0.5, 2.5, 10],
      registry,
    );
    this.streamsActive = new Gauge({ name: N.streamsActive, help: 'Streams in progress', registers });
    this.streamFirstChunkSeconds = new Histogram({
      name: N.streamFirstChunkSeconds,
      help: 'Time from STREAM_OPEN to the first chunk, by method',
      labelNames: ['method'],
      buckets: [100e-6, 1e-3, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    this.errors = new Counter({ name: N.errors, help: 'Errors sent to clients, by code', labelNames: ['code'], registers });

    const fromTraffic = (name: string, help: string, pick: (t: ChannelStats) => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(pick(source.traffic()));
        },
      });
    };
    const directional = (name: string, help: string, inOf: (t: ChannelStats) => number, outOf: (t: ChannelStats) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ['direction'],
        registers,
        collect() {
          const t = source.traffic();
          this.reset();
          this.inc({ direction: 'in' }, inOf(t));
          this.inc({ direction: 'out' }, outOf(t));
        },
      });
    };
    directional(
      N.messages,
      'Ring messages, by direction as seen by the server',
      (t) => t.messagesReceived,
      (t) => t.messagesSent,
    );
    directional(
      N.bytes,
      'Ring message bytes, by direction as seen by the server',
      (t) => t.bytesReceived,
      (t) => t.bytesSent,
    );
    fromTraffic(N.ringFullWaits, 'Sends that found the ring full and waited', (t) => t.ringFullWaits);
    fromTraffic(N.doorbellsRung, 'Doorbells rung because the client slept', (t) => t.doorbellsRung);
    fromTraffic(N.doorbellsSuppressed, 'Publishes that needed no doorbell because the client was awake', (t) => t.doorbellsSuppressed);
    fromTraffic(N.wakeups, 'Times the server was woken by a client doorbell', (t) => t.wakeups);
  }

  /** Prometheus text exposition. */
  prometheus(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Adds `b` into `a`, field by field. */
export function addStats(a: ChannelStats, b: ChannelStats): void {
  for (const k of Object.keys(a) as Array<keyof ChannelStats>) a[k] += b[k];
}

/** All-zero counters. */
export function zeroStats(): ChannelStats {
  return {
    messagesSent: 0,
    bytesSent: 0,
    messagesReceived: 0,
    bytesReceived: 0,
    doorbellsRung: 0,
    doorbellsSuppressed: 0,
    ringFullWaits: 0,
    wakeups: 0,
  };
}
