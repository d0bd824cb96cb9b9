/**
 * The IPC layer over the copying fallback (`zeroCopy: false`, what a V8 sandbox such as
 * Electron's forces): requests, a message larger than the ring, a flow-controlled stream and a
 * protocol error's id-0 ERROR behave as on the zero-copy path.
 */
import test from 'ava';
import { decodePayload, encodeFrame, FrameKind } from '../../src/protocol/frame';
import { connect, rawFrame, rawSession, startServer, waitFor } from './helpers';

test('copying fallback on both sides: requests, a fragmented message, a windowed stream, an id-0 protocol error', async (t) => {
  const { server, socketPath } = await startServer(t, { ringCapacity: 16 << 10, channel: { zeroCopy: false } });
  const client = await connect(t, socketPath, { channel: { zeroCopy: false }, streamWindow: { chunks: 3 } });
  t.deepEqual(await client.request('echo', { a: [1, 'b'] }), { a: [1, 'b'] });
  const big = Buffer.alloc(100 << 10, 9);
  t.true(((await client.request('echo', big)) as Buffer).equals(big), 'a message 6x the ring, in fragments');
  const got: number[] = [];
  for await (const c of client.stream<{ i: number }>('ticker', { tag: 'copy', count: 200 })) got.push(c.i);
  t.deepEqual(
    got,
    Array.from({ length: 200 }, (_, i) => i),
  );

  const raw = await rawSession(t, socketPath);
  await raw.send(encodeFrame(FrameKind.Request, 3, 'echo', 'fine'));
  t.is(decodePayload(await raw.frameFor(3, 'reply')), 'fine');
  await raw.send(rawFrame(FrameKind.StreamEnd, 0, 4, ''));
  const err = await raw.frameFor(0, 'id-0 error');
  t.is((decodePayload(err) as { code: string }).code, 'PROTOCOL_ERROR');
  await raw.ended();
  await waitFor(() => server.connections === 1, 'only the good client left');
  t.is(await client.request('echo', 'after'), 'after');
});
