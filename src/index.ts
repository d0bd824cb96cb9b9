/**
 * lapce-ai-ipc: shared-memory IPC for Node.js.
 *
 * - {@link IpcServer} / {@link IpcClient}: request/response and streaming over memfd rings,
 *   with a Unix control socket for the handshake and liveness.
 * - {@link Channel}: the bare transport, one side of a pair of rings ({@link channelPair} in one
 *   process, or {@link createChannelFds} and `new Channel(fds, side)` for fds passed to a peer).
 *
 * The AI chat backend is a separate entry, `lapce-ai-ipc/chat`, so that this one loads neither the
 * AI SDK nor the provider code.
 * @packageDocumentation
 * @module lapce-ai-ipc
 */
import native = require('./native');

export { IpcError, HandshakeError, ERROR_CODES } from './errors';
export type { IpcErrorCode, IpcErrorOptions, ErrorCodeInfo, KnownErrorCode, IpcErrorJSON } from './errors';
export { RejectReason } from './protocol/reject';
export type { RejectReasonName } from './protocol/reject';
export { IPC_METRIC_NAMES } from './ipc/metrics';
export type { ChannelTuning } from './ipc/options';
export type { StreamWindow } from './defaults';
export { IpcServer } from './ipc/server';
export type { IpcServerOptions, CloseOptions } from './ipc/server';
export { IpcClient } from './ipc/client';
export type { IpcClientOptions, CallOptions, ReconnectOptions, StreamOptions } from './ipc/client';
export type { HandlerContext, HandlerOptions, PayloadKind, PeerInfo, RequestHandler, StreamHandler } from './ipc/session';
export { defaultSocketPath, controlPath } from './ipc/paths';
export { Channel, channelPair, createReassemblyBudget } from './transport/channel';
export type { ChannelOptions, ChannelStats, MessageHandler, ReassemblyBudget, SendOptions } from './transport/channel';
export type { IdleMode, Pollable } from './transport/idle';
export type { Payload } from './protocol/frame';
export type { Welcome } from './protocol/control';

/**
 * The file descriptors of one channel (its shared-memory rings and doorbell), owned by this
 * process until a {@link Channel} takes them or {@link ChannelFds.close | close} is called.
 * @category Transport
 */
export interface ChannelFds {
  /** How many descriptors are still held (0 once a Channel took them or they were closed). */
  readonly count: number;
  /** Closes every descriptor now instead of at garbage collection. */
  close(): void;
}

/**
 * Creates the fds of a new channel whose rings hold `capacity` bytes each (a power of two),
 * with this side's mappings already made (they go when the set is closed or collected, or
 * with the channel opened from it). Open this side with `new Channel(fds, 'server', { capacity })`
 * (the same capacity); the peer opens its copies, received
 * over a Unix socket with SCM_RIGHTS, with `new Channel(fds, 'client', { capacity })`.
 * @category Transport
 * @example
 * ```ts
 * import { Channel, createChannelFds } from 'lapce-ai-ipc';
 * const fds = createChannelFds(1 << 20);
 * // … send duplicates of the fds to the peer process, then:
 * const side = new Channel(fds, 'server', { capacity: 1 << 20 });
 * ```
 */
export function createChannelFds(capacity: number): ChannelFds {
  return native.createChannelFds(capacity);
}
