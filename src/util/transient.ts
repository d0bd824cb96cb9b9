/**
 * The one record of which memory is transient: ring memory and reassembly buffers (a handler's
 * view of a received message) and the reused frame-encoding buffer. Views of these are valid
 * only for a moment and change afterwards, so `Channel.send`/`sendParts` copy such a view when it
 * has to wait in the send queue; any other data is the caller's to keep unchanged until sent.
 * @packageDocumentation
 */

/** ArrayBuffers whose views are transient (see the module comment). */
export const TRANSIENT = new WeakSet<ArrayBufferLike>();
