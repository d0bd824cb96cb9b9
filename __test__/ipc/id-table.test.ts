import test from 'ava';
import { IdTable } from '../../src/util/id-table';
import { rng } from '../transport/helpers';

/** Runs random operations against a Map and checks the table agrees after every one. */
function agreeWithMap(seed: number, pickId: (r: () => number, live: number[]) => number, ops: number): void {
  const r = rng(seed);
  const table = new IdTable<number>();
  const model = new Map<number, number>();
  for (let k = 0; k < ops; k++) {
    const live = [...model.keys()];
    const op = r() % 10;
    if (op < 5 || live.length === 0) {
      const id = pickId(r, live);
      table.set(id, k);
      model.set(id, k);
    } else if (op < 9) {
      const id = r() % 4 === 0 ? pickId(r, live) : live[r() % live.length];
      if (table.delete(id) !== model.delete(id)) throw new Error(`seed ${seed}: delete(${id}) disagreed at op ${k}`);
    } else {
      const id = pickId(r, live);
      if (table.get(id) !== model.get(id)) throw new Error(`seed ${seed}: get(${id}) disagreed at op ${k}`);
    }
    if (table.size !== model.size) throw new Error(`seed ${seed}: size ${table.size} != ${model.size} at op ${k}`);
  }
  for (const [id, v] of model) if (table.get(id) !== v || !table.has(id)) throw new Error(`seed ${seed}: lost ${id}`);
  const values = table.valuesCopy().sort((a, b) => a - b);
  const expected = [...model.values()].sort((a, b) => a - b);
  if (JSON.stringify(values) !== JSON.stringify(expected)) throw new Error(`seed ${seed}: valuesCopy disagrees`);
}

test('agrees with a Map under random ids, growth and backward-shift deletes', (t) => {
  for (let seed = 1; seed <= 40; seed++) agreeWithMap(seed, (r) => r() || 1, 3000);
  t.pass();
});

test('agrees with a Map for sequential ids, as a client hands them out', (t) => {
  for (let seed = 1; seed <= 20; seed++) {
    let next = 1;
    agreeWithMap(seed, (r, live) => (r() % 3 === 0 && live.length > 0 ? live[0] : next++), 3000);
  }
  t.pass();
});

test('agrees with a Map for ids a peer aims at few slots (multiples of 2^20, and near-duplicates)', (t) => {
  for (let seed = 1; seed <= 20; seed++) agreeWithMap(seed, (r) => (((r() % 4096) + 1) * 2 ** 20) >>> 0 || 1, 3000);
  for (let seed = 1; seed <= 20; seed++) agreeWithMap(seed, (r) => (r() % 200) + 1, 3000);
  t.pass();
});

test('holds many entries at once, and empties', (t) => {
  const table = new IdTable<string>();
  for (let id = 1; id <= 10_000; id++) table.set(id * 7919, `v${id}`);
  t.is(table.size, 10_000);
  t.is(table.get(7919 * 5000), 'v5000');
  t.is(table.get(7919 * 10_001), undefined);
  for (let id = 1; id <= 10_000; id += 2) t.true(table.delete(id * 7919));
  t.is(table.size, 5000);
  t.is(table.get(7919 * 5000), 'v5000');
  t.is(table.get(7919 * 4999), undefined);
  table.clear();
  t.is(table.size, 0);
  t.is(table.get(7919 * 5000), undefined);
  t.deepEqual(table.valuesCopy(), []);
});

test('refuses id 0 and numbers that are not u32; asking for them finds nothing', (t) => {
  const table = new IdTable<number>();
  for (const bad of [0, -1, 2 ** 32, 1.5, NaN]) {
    t.throws(() => table.set(bad, 1), { instanceOf: RangeError });
    t.is(table.get(bad), undefined);
    t.false(table.delete(bad));
  }
  table.set(0xffffffff, 9);
  t.is(table.get(0xffffffff), 9);
  t.is(table.get(-1), undefined, 'a negative id does not alias the u32 with the same bits');
});
