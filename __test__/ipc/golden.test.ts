/**
 * Golden byte sequences (`golden/frames.json`): for every control and data frame kind, the
 * encoder must reproduce the golden bytes exactly and the decoder must parse them back to the
 * documented field values. The goldens are assembled from their layout tables alone (see
 * `golden/generate.ts`), so they state the wire format independently of the code under test.
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import {
  ControlFrameReader,
  ControlType,
  decodeGoAway,
  decodeHello,
  decodeReady,
  decodeReject,
  decodeWelcome,
  encodeGoAway,
  encodeHello,
  encodeReady,
  encodeReject,
  encodeWelcome,
} from '../../src/protocol/control';
import { decodeCredit, decodeFrame, decodePayload, encodeCredit, encodeFrame, FrameKind } from '../../src/protocol/frame';
import { assemble, build } from './golden/generate';

interface Golden {
  name: string;
  typeName?: string;
  kindName?: string;
  type?: number;
  kind?: number;
  fields: Record<string, any>;
  layout: Parameters<typeof assemble>[0];
  hex: string;
}

const file = JSON.parse(fs.readFileSync(path.join(__dirname, 'golden', 'frames.json'), 'utf8')) as { control: Golden[]; data: Golden[] };

test('frames.json is what generate.ts writes (regenerate on purpose only)', (t) => {
  t.deepEqual(file, JSON.parse(JSON.stringify(build())));
});

test('every golden is the concatenation of its layout', (t) => {
  for (const g of [...file.control, ...file.data]) t.is(assemble(g.layout).toString('hex'), g.hex, g.name);
});

test('the goldens cover every control frame type and every data frame kind', (t) => {
  const types = new Set(file.control.map((g) => g.type));
  for (const v of Object.values(ControlType).filter((v) => typeof v === 'number')) t.true(types.has(v as number), `control type ${v}`);
  const kinds = new Set(file.data.map((g) => g.kind));
  for (const v of Object.values(FrameKind).filter((v) => typeof v === 'number')) t.true(kinds.has(v as number), `data kind ${v}`);
});

const controlCodecs: Record<number, { encode: (f: any) => Buffer; decode: (body: Buffer) => unknown }> = {
  [ControlType.Hello]: { encode: encodeHello, decode: decodeHello },
  [ControlType.Welcome]: { encode: encodeWelcome, decode: decodeWelcome },
  [ControlType.Ready]: { encode: encodeReady, decode: decodeReady },
  [ControlType.Reject]: { encode: encodeReject, decode: decodeReject },
  [ControlType.GoAway]: { encode: encodeGoAway, decode: decodeGoAway },
};

for (const g of file.control) {
  test(`control ${g.typeName} (${g.name}): encoder reproduces the golden, decoder parses it back`, (t) => {
    const codec = controlCodecs[g.type as number];
    t.is(codec.encode(g.fields).toString('hex'), g.hex);
    const bytes = Buffer.from(g.hex, 'hex');
    // Fed one byte at a time, the reader still finds exactly one whole frame.
    const reader = new ControlFrameReader();
    const frames = [];
    for (let i = 0; i < bytes.length; i++) frames.push(...reader.push(bytes.subarray(i, i + 1)));
    t.is(frames.length, 1);
    t.is(frames[0].type as number, g.type as number);
    t.deepEqual(codec.decode(Buffer.from(frames[0].body)), g.fields);
  });
}

for (const g of file.data) {
  test(`data ${g.kindName} (${g.name}): encoder reproduces the golden, decoder parses it back`, (t) => {
    const f = g.fields as {
      kind: FrameKind;
      flags: number;
      id: number;
      method: string;
      payload: { json: unknown } | { bytes: string } | null;
    };
    const payload = f.payload === null ? undefined : 'json' in f.payload ? f.payload.json : Buffer.from(f.payload.bytes, 'hex');
    t.is(Buffer.from(encodeFrame(f.kind, f.id, f.method, payload)).toString('hex'), g.hex);
    const frame = decodeFrame(Buffer.from(g.hex, 'hex'));
    t.is(frame.kind, f.kind);
    t.is(frame.flags, f.flags);
    t.is(frame.id, f.id);
    t.is(frame.method, f.method);
    if (f.payload === null) t.is(frame.payload.length, 0);
    else if ('json' in f.payload) t.deepEqual(decodePayload(frame), f.payload.json);
    else t.is(Buffer.from(decodePayload(frame) as Buffer).toString('hex'), f.payload.bytes);
  });
}

test('STREAM_CREDIT: encodeCredit writes the golden, decodeCredit reads its increments', (t) => {
  const g = file.data.find((x) => x.name === 'stream_credit')!;
  t.is(encodeCredit(4, 256, 4 << 20).toString('hex'), g.hex);
  const f = decodeFrame(Buffer.from(g.hex, 'hex'));
  t.is(f.kind, FrameKind.StreamCredit);
  t.deepEqual(decodeCredit(f.payload), { chunks: 256, bytes: 4 << 20 });
  // Largest increments survive the u32 round trip.
  t.deepEqual(decodeCredit(decodeFrame(encodeCredit(9, 0xffffffff, 0x80000000)).payload), { chunks: 0xffffffff, bytes: 0x80000000 });
});

test('id 0 is accepted only on an ERROR (the connection-level error)', (t) => {
  const g = file.data.find((x) => x.name === 'connection_error')!;
  const f = decodeFrame(Buffer.from(g.hex, 'hex'));
  t.is(f.id, 0);
  t.is((decodePayload(f) as { code: string }).code, 'PROTOCOL_ERROR');
  t.throws(() => decodeFrame(encodeFrame(FrameKind.Response, 0, '', null)), { code: 'PROTOCOL_ERROR' } as never);
});

test('decoders refuse what the goldens do not allow', (t) => {
  const hex = (name: string) => Buffer.from(file.data.find((g) => g.name === name)!.hex, 'hex');
  const bad = (mutate: (b: Buffer) => void, base = 'request_json') => {
    const b = hex(base);
    mutate(b);
    return b;
  };
  const cases: Array<[string, Buffer]> = [
    ['kind 0', bad((b) => (b[0] = 0))],
    ['kind 9', bad((b) => (b[0] = 9))],
    ['reserved flag bit 7', bad((b) => (b[1] = 0x81))],
    ['id 0 on a request', bad((b) => b.writeUInt32LE(0, 4))],
    ['method length 256', Buffer.concat([bad((b) => b.writeUInt16LE(256, 2)), Buffer.alloc(300, 0x61)])],
    ['non-UTF-8 method', bad((b) => (b[8] = 0xff))],
    ['credit with a method', bad((b) => b.writeUInt16LE(1, 2), 'stream_credit')],
    ['unknown flag', bad((b) => (b[1] = 2))],
    ['id 0', bad((b) => b.writeUInt32LE(0, 4))],
    ['request without method', bad((b) => b.writeUInt16LE(0, 2))],
    ['response with method', bad((b) => b.writeUInt16LE(1, 2), 'response_json')],
    ['method past the end', bad((b) => b.writeUInt16LE(200, 2))],
    ['short header', hex('cancel').subarray(0, 7)],
  ];
  for (const [what, b] of cases) t.throws(() => decodeFrame(b), { code: 'PROTOCOL_ERROR' } as never, what);
  const badJson = bad((b) => (b[b.length - 1] = 0x20), 'response_json');
  t.throws(() => decodePayload(decodeFrame(badJson)), { code: 'BAD_PAYLOAD' } as never);
  // Control: a WELCOME one byte short, a READY one byte long.
  const welcome = Buffer.from(file.control.find((g) => g.name === 'welcome')!.hex, 'hex');
  t.throws(() => decodeWelcome(welcome.subarray(5, welcome.length - 1)), { code: 'PROTOCOL_ERROR' } as never);
  const ready = Buffer.from(file.control.find((g) => g.name === 'ready')!.hex, 'hex');
  t.throws(() => decodeReady(Buffer.concat([ready.subarray(5), Buffer.of(0)])), { code: 'PROTOCOL_ERROR' } as never);
});
