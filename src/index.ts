/**
 * lapce-ai-ipc: shared-memory IPC for Node.js, and the AI-chat backend that runs on it.
 *
 * - {@link IpcServer} / {@link IpcClient}: request/response and streaming over memfd rings,
 *   with a Unix control socket for the handshake and liveness.
 * - {@link Channel}: the bare transport, one side of a pair of rings.
 * - `ChatRouter` and friends: AI provider routing (see `./ai`).
 * @packageDocumentation
 */
export { IpcError, type IpcErrorCode, type IpcErrorOptions } from './errors';
export { IpcServer, type IpcServerOptions, type CloseOptions } from './ipc/server';
export { IpcClient, type IpcClientOptions, type CallOptions, type ReconnectOptions } from './ipc/client';
export type { HandlerContext, PeerInfo, RequestHandler, StreamHandler } from './ipc/session';
export { defaultSocketPath, controlPath } from './ipc/paths';
export { Channel, channelPair, type ChannelOptions, type ChannelStats, type MessageHandler } from './transport/channel';
export type { IdleMode, Pollable } from './transport/idle';
export type { Payload } from './protocol/frame';
export type { Welcome } from './protocol/control';
export type { ServerMetrics } from './ipc/metrics';
export type { LabeledHistogram, HistogramSeries, MetricValue } from './ipc/request-histogram';
export type { NativeFds, NativeEndpointStats, PeerCredentials } from '../index';
export * from './ai';
export {
  attachChatBackend,
  createChatBackend,
  CHAT_METHOD,
  PROVIDERS_METHOD,
  type ChatBackend,
  type ChatBackendOptions,
  type ProvidersReply,
} from './backend';
