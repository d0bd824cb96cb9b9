/**
 * The JS ring writer against the golden ring bytes the Rust producer wrote
 * (`crates/lapce_ai_transport/tests/golden/`, `docs/PROTOCOL.md` §3.7): same header, same
 * records, same PAD, same fragments, byte for byte.
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import native = require('../../src/native');
import { HEADER_SIZE, OFF_TAIL } from '../../src/transport/layout';
import { RingWriter } from '../../src/transport/ring-writer';

const GOLDEN = path.join(__dirname, '..', '..', 'crates', 'lapce_ai_transport', 'tests', 'golden');
const CAPACITY = 4096;

/** Parses the golden hex format (see the comment lines of each file). */
function fromHex(text: string): Uint8Array {
  const size = Number(/^# Size: (\d+) bytes\.$/m.exec(text)?.[1]);
  const out = new Uint8Array(size);
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [off, hex] = line.split(' ');
    out.set(Buffer.from(hex, 'hex'), parseInt(off, 16));
  }
  return out;
}

function golden(name: string): Uint8Array {
  return fromHex(fs.readFileSync(path.join(GOLDEN, name), 'utf8'));
}

/** A fresh ring region as the creator leaves it: magic, layout version, capacity. */
function freshRegion(): ArrayBuffer {
  const region = new ArrayBuffer(HEADER_SIZE + CAPACITY);
  const v = new DataView(region);
  v.setUint32(0, native.RING_MAGIC, true);
  v.setUint32(4, native.RING_LAYOUT_VERSION, true);
  v.setUint32(8, CAPACITY, true);
  return region;
}

function payload(i: number, len: number): Uint8Array {
  return Uint8Array.from({ length: len }, (_, j) => (i * 37 + j) & 255);
}

function firstDifference(a: Uint8Array, b: Uint8Array): string {
  if (a.length !== b.length) return `sizes ${a.length} and ${b.length}`;
  const i = a.findIndex((x, k) => x !== b[k]);
  return i < 0 ? '' : `byte 0x${i.toString(16)}: 0x${a[i].toString(16)}, golden 0x${b[i].toString(16)}`;
}

test('a fresh ring header is the golden header', (t) => {
  t.is(firstDifference(new Uint8Array(freshRegion(), 0, HEADER_SIZE), golden('ring-header.hex')), '');
});

test('the JS writer leaves a ring byte for byte like the golden one (records, PAD, fragments)', (t) => {
  const region = freshRegion();
  const w = new RingWriter(region, CAPACITY, 0);
  for (let i = 1; i <= 3; i++) {
    t.is(w.write(payload(i, 1000), null, 0), 1000);
    w.publish();
  }
  // The consumer read and released the three messages.
  Atomics.store(new Int32Array(region, 0, HEADER_SIZE / 4), OFF_TAIL / 4, 3024);
  t.is(w.write(payload(4, 2500), null, 0), 2500);
  w.publish();
  t.is(firstDifference(new Uint8Array(region), golden('ring-4k-pad-fragmented.hex')), '');
});
