/** The gRPC service of the `peers` suite: raw-bytes methods, so no protobuf work is measured. */
import type { ServiceDefinition } from '@grpc/grpc-js';

const raw = {
  requestSerialize: (b: Buffer) => b,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (b: Buffer) => b,
  responseDeserialize: (b: Buffer) => b,
};

/** echo and sink are unary; stream is server-streaming (request: u32 chunk count). */
export const GRPC_SERVICE: ServiceDefinition = {
  echo: { path: '/bench.Bench/Echo', requestStream: false, responseStream: false, ...raw },
  sink: { path: '/bench.Bench/Sink', requestStream: false, responseStream: false, ...raw },
  stream: { path: '/bench.Bench/Stream', requestStream: false, responseStream: true, ...raw },
};
