/**
 * A message sent in two parts, `head` then `body` (a frame's header and a large payload, see
 * `Channel.sendParts`): the one definition of its length, for the framing and the transport.
 * @packageDocumentation
 */

/** Bytes of the message `head` followed by `body` (null: `head` alone). */
export function partsLength(head: Uint8Array, body: Uint8Array | null): number {
  return body === null ? head.length : head.length + body.length;
}
