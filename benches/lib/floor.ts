/**
 * The machine's own sleeping round trip (`benches/floor/floor.c`): compiled with `cc` into
 * `.bench/` at bench time and run in the same run as the figures it is compared with.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './script';

/** Round-trip percentiles of one ping-pong, µs. */
export interface FloorStats {
  n: number;
  p50: number;
  p99: number;
  p999: number;
  min: number;
}

/** Results of the floor program: each round trip is two cross-process wake-ups. */
export interface Floor {
  eventfd: FloorStats;
  socketpair: FloorStats;
}

const SOURCE = path.join(ROOT, 'benches', 'floor', 'floor.c');

/**
 * Builds (if needed) and runs the floor ping-pong, optionally with its two processes pinned to
 * `cpus`; returns the reason instead if it cannot be built.
 */
export function measureFloor(roundTrips: number, outDir: string, cpus?: [number, number]): Floor | { skipped: string } {
  const bin = path.join(outDir, 'floor');
  try {
    fs.mkdirSync(outDir, { recursive: true });
    const stale = !fs.existsSync(bin) || fs.statSync(bin).mtimeMs < fs.statSync(SOURCE).mtimeMs;
    if (stale) execFileSync(process.env.CC ?? 'cc', ['-O2', '-Wall', '-o', bin, SOURCE], { stdio: 'pipe' });
  } catch (e) {
    return { skipped: `cannot compile ${path.relative(process.cwd(), SOURCE)} with cc: ${(e as Error).message.split('\n')[0]}` };
  }
  return JSON.parse(execFileSync(bin, [String(roundTrips), ...(cpus ?? []).map(String)], { encoding: 'utf8', timeout: 120_000 })) as Floor;
}
