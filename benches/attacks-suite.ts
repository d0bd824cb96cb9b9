/**
 * The adversary's attack report (`benches/attacks.ts`, by the adversary helper) as a suite of
 * `npm run bench`: runs it as a child (`--json`), one row per attack with the iterations that
 * ran clean and the server's footprint (fds / memfd mappings / sessions / RSS MiB) before →
 * after. The suite fails when an attack left something behind. About 3 minutes, so not part of
 * `--quick` unless asked for (`--suite attacks`).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { footprintCell as fp } from './lib/attack-row';
import type { AttackRow } from './lib/attack-row';
import type { BenchContext, Row, Suite } from './lib/report';
import { sourceScript, TSX_ARGS } from './lib/script';

const SCRIPT = sourceScript('attacks');

async function run(ctx: BenchContext): Promise<Row[]> {
  ctx.log('running benches/attacks.ts --json (hostile clients and servers from crates/lapce_ai_adversary)');
  const r = spawnSync(process.execPath, [...TSX_ARGS, SCRIPT, '--json'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 900_000,
    maxBuffer: 64 << 20,
  });
  const last = r.stdout?.trim().split('\n').pop();
  // `attacks.ts --json` ends with one line: `{"rows": [...], "idle": {...}}`.
  if (!last?.startsWith('{')) throw new Error(`attacks.ts printed no report (exit ${r.status}, signal ${r.signal})`);
  const attacks = (JSON.parse(last) as { rows: AttackRow[] }).rows;
  const rows: Row[] = attacks.map((a) => ({
    id: `attacks.${a.role}.${a.attack}`,
    what: `hostile ${a.role === 'client' ? 'client' : 'server'}: ${a.attack}, iterations run clean`,
    value: a.clean,
    unit: `of ${a.iterations}`,
    better: 'higher',
    target: { op: '>=', value: a.iterations },
    note: [
      a.role === 'client' ? `server fds/memfd maps/sessions/RSS MiB ${fp(a.before)} → ${fp(a.after)}` : 'client process: exit, no hang',
      a.pass ? 'pass' : 'FAIL',
      a.note,
    ]
      .filter(Boolean)
      .join('; '),
  }));
  const failed = attacks.filter((a) => !a.pass).map((a) => a.attack);
  if (failed.length > 0) {
    console.log(rows.map((x) => `${x.id}: ${x.value} ${x.unit}; ${x.note}`).join('\n'));
    throw new Error(`attacks left something behind or were not handled: ${failed.join(', ')}`);
  }
  return rows;
}

export const suite: Suite = {
  name: 'attacks',
  description: 'the adversary: hostile clients and servers, iterations run clean, server footprint before → after',
  run,
};
