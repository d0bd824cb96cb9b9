/**
 * Writes `frames.json`: golden byte sequences of every control and data frame kind.
 *
 * Each golden is built here field by field from its layout table (little-endian integers,
 * UTF-8 text, raw bytes) WITHOUT the package's encoders, so that `golden.test.ts` checks the
 * encoders and decoders against an independent statement of the wire format (that of
 * docs/PROTOCOL.md). Another implementation (the Rust editor client) can use `frames.json`
 * the same way: every entry lists its field values, its layout, and the resulting hex.
 *
 * Run: `node --import=tsx __test__/ipc/golden/generate.ts` (only when the protocol changes on
 * purpose; review the diff).
 */
import fs from 'node:fs';
import path from 'node:path';

/** One field of a layout: name, wire type, value. */
type Seg =
  | [name: string, type: 'u8' | 'u16' | 'u32', value: number]
  | [name: string, type: 'utf8', value: string]
  | [name: string, type: 'bytes', hex: string];

function bytesOf(seg: Seg): Buffer {
  const [, type, value] = seg;
  switch (type) {
    case 'u8':
      return Buffer.from([value]);
    case 'u16': {
      const b = Buffer.alloc(2);
      b.writeUInt16LE(value);
      return b;
    }
    case 'u32': {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(value);
      return b;
    }
    case 'utf8':
      return Buffer.from(value, 'utf8');
    case 'bytes':
      return Buffer.from(value, 'hex');
  }
}

export function assemble(layout: Seg[]): Buffer {
  return Buffer.concat(layout.map(bytesOf));
}

const utf8Len = (s: string): number => Buffer.byteLength(s, 'utf8');

/** A control frame: `u32 length` (type + body), `u8 type`, body. */
function control(
  name: string,
  type: number,
  typeName: string,
  fields: Record<string, unknown>,
  body: Seg[],
  note: string,
): Record<string, unknown> {
  const bodyLen = assemble(body).length;
  const layout: Seg[] = [['length', 'u32', 1 + bodyLen], ['type', 'u8', type], ...body];
  return { name, type, typeName, note, fields, layout, hex: assemble(layout).toString('hex') };
}

/** A data frame: `u8 kind`, `u8 flags`, `u16 method length`, `u32 id`, method, payload. */
function data(
  name: string,
  kind: number,
  kindName: string,
  id: number,
  method: string,
  payload: { json: unknown } | { bytes: string } | null,
  note: string,
): Record<string, unknown> {
  const json = payload !== null && 'json' in payload;
  const payloadSeg: Seg[] =
    payload === null
      ? []
      : json
        ? [['payload (UTF-8 JSON)', 'utf8', JSON.stringify((payload as { json: unknown }).json)]]
        : [['payload (bytes)', 'bytes', (payload as { bytes: string }).bytes]];
  const layout: Seg[] = [
    ['kind', 'u8', kind],
    ['flags', 'u8', json ? 1 : 0],
    ['method length', 'u16', utf8Len(method)],
    ['id', 'u32', id],
    ...(method ? ([['method', 'utf8', method]] as Seg[]) : []),
    ...payloadSeg,
  ];
  return {
    name,
    kind,
    kindName,
    note,
    fields: { kind, flags: json ? 1 : 0, id, method, payload },
    layout,
    hex: assemble(layout).toString('hex'),
  };
}

const MAGIC = 0x4349414c; // "LAIC"

export function build(): Record<string, unknown> {
  const helloName = 'lapce-editor';
  const rejectMsg = 'server is full (1 connections)';
  const goAwayMsg = 'server shutting down';
  const control_ = [
    control(
      'hello',
      1,
      'HELLO',
      { magic: MAGIC, minVersion: 2, maxVersion: 2, pid: 4242, features: 0, name: helloName },
      [
        ['magic ("LAIC")', 'u32', MAGIC],
        ['minVersion', 'u16', 2],
        ['maxVersion', 'u16', 2],
        ['pid', 'u32', 4242],
        ['features', 'u32', 0],
        ['name length', 'u16', utf8Len(helloName)],
        ['name', 'utf8', helloName],
      ],
      'client → server, first frame on the control socket',
    ),
    control(
      'hello_version_range',
      1,
      'HELLO',
      { magic: MAGIC, minVersion: 1, maxVersion: 3, pid: 0x01020304, features: 0x80000001, name: 'é' },
      [
        ['magic ("LAIC")', 'u32', MAGIC],
        ['minVersion', 'u16', 1],
        ['maxVersion', 'u16', 3],
        ['pid', 'u32', 0x01020304],
        ['features (unknown bits are ignored)', 'u32', 0x80000001],
        ['name length (bytes, not characters)', 'u16', utf8Len('é')],
        ['name', 'utf8', 'é'],
      ],
      'a client speaking versions 1..3, with feature bits the server does not know and a non-ASCII name',
    ),
    control(
      'welcome',
      2,
      'WELCOME',
      {
        version: 2,
        slot: 3,
        generation: 7,
        capacity: 1 << 20,
        maxMessage: 16 << 20,
        maxStreams: 64,
        features: 0,
        idleTimeoutMs: 30000,
        serverPid: 4321,
      },
      [
        ['version', 'u16', 2],
        ['reserved (0)', 'u16', 0],
        ['slot', 'u32', 3],
        ['generation', 'u32', 7],
        ['capacity (ring bytes per direction)', 'u32', 1 << 20],
        ['maxMessage', 'u32', 16 << 20],
        ['maxStreams', 'u32', 64],
        ['features', 'u32', 0],
        ['idleTimeoutMs (0: off)', 'u32', 30000],
        ['serverPid', 'u32', 4321],
      ],
      "server → client; travels with 3 fds (SCM_RIGHTS: ring s→c, ring c→s, the client's doorbell end) attached to its first byte",
    ),
    control(
      'ready',
      3,
      'READY',
      { slot: 3, generation: 7 },
      [
        ['slot', 'u32', 3],
        ['generation', 'u32', 7],
      ],
      'client → server: the fds are mapped and checked',
    ),
    control(
      'reject',
      4,
      'REJECT',
      { reason: 7, message: rejectMsg },
      [
        ['reason (7 = server_full)', 'u16', 7],
        ['message length', 'u16', utf8Len(rejectMsg)],
        ['message', 'utf8', rejectMsg],
      ],
      'either way; the sender closes the socket after it',
    ),
    control(
      'goaway',
      5,
      'GOAWAY',
      { deadlineMs: 5000, message: goAwayMsg },
      [
        ['deadlineMs', 'u32', 5000],
        ['message length', 'u16', utf8Len(goAwayMsg)],
        ['message', 'utf8', goAwayMsg],
      ],
      'server → client: start nothing new; the server closes after deadlineMs',
    ),
  ];
  const data_ = [
    data('request_json', 1, 'REQUEST', 1, 'echo', { json: { hello: 'world' } }, 'a JSON request'),
    data('request_bytes', 1, 'REQUEST', 2, 'blob', { bytes: '000102ff' }, 'a bytes request'),
    data('request_null', 1, 'REQUEST', 0xfffffffe, 'ping', { json: null }, 'no payload is sent as JSON null; a large id shows byte order'),
    data('request_utf8_method', 1, 'REQUEST', 5, 'chat/é', { json: [1, 'two'] }, 'method length counts UTF-8 bytes'),
    data('response_json', 2, 'RESPONSE', 1, '', { json: { hello: 'world' } }, 'the result of request 1'),
    data('response_bytes', 2, 'RESPONSE', 2, '', { bytes: 'deadbeef' }, 'a bytes result'),
    data(
      'error',
      3,
      'ERROR',
      3,
      '',
      { json: { code: 'UNKNOWN_METHOD', message: 'unknown method nope', retryable: false } },
      'request or stream 3 failed; payload is JSON {code, message, retryable, details?}',
    ),
    data('stream_open', 4, 'STREAM_OPEN', 4, 'chat', { json: { prompt: 'hi' } }, 'start stream 4'),
    data('stream_chunk_json', 5, 'STREAM_CHUNK', 4, '', { json: { delta: 'Hel' } }, 'one JSON item of stream 4'),
    data('stream_chunk_bytes', 5, 'STREAM_CHUNK', 4, '', { bytes: '6869' }, 'one bytes item of stream 4'),
    data('stream_end', 6, 'STREAM_END', 4, '', null, 'stream 4 finished; no payload'),
    data('cancel', 7, 'CANCEL', 4, '', null, 'client → server: abandon request or stream 4; no payload'),
    data(
      'stream_credit',
      8,
      'STREAM_CREDIT',
      4,
      '',
      { bytes: '00010000' + '00004000' },
      'client → server: stream 4 may send 256 more chunks and 4 MiB more payload bytes (u32 chunks, u32 bytes; flags 0, no method)',
    ),
    data(
      'connection_error',
      3,
      'ERROR',
      0,
      '',
      { json: { code: 'PROTOCOL_ERROR', message: 'id 7 is already in use', retryable: false } },
      'server → client, id 0: the session ends for this reason (sent before the closed word and the control socket EOF)',
    ),
  ];
  return {
    about:
      'Golden frames of the lapce-ai-ipc protocol (docs/PROTOCOL.md). All integers little-endian. ' +
      'Control frames: u32 length (of type + body), u8 type, body. Data frames (one per ring message): ' +
      'u8 kind, u8 flags (bit 0: payload is UTF-8 JSON), u16 method length, u32 id, method, payload. ' +
      'Each entry lists its field values, its layout field by field, and the exact bytes as hex. ' +
      'Generated by generate.ts from the layouts alone; checked against the encoders and decoders by golden.test.ts.',
    control: control_,
    data: data_,
  };
}

if (require.main === module) {
  const out = path.join(__dirname, 'frames.json');
  // One line per layout field, for reading the file side by side with docs/PROTOCOL.md.
  const text = JSON.stringify(build(), null, 2).replace(
    /\[\n\s+("(?:[^"\\]|\\.)*"),\n\s+("[a-z0-9]+"),\n\s+([^\n]+)\n\s+\]/g,
    '[$1, $2, $3]',
  );
  fs.writeFileSync(out, text + '\n');
  console.log(`wrote ${out}`);
}
