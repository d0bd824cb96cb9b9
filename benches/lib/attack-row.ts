/**
 * One attack's outcome as `benches/attacks.ts --json` prints it and the `attacks` suite reads it:
 * one shape and one way to print a footprint for both.
 */
import type { Footprint } from '../../__test__/adversary/harness';

/** An attack run `iterations` times, `clean` of them without the victim misbehaving. */
export interface AttackRow {
  role: 'client' | 'server';
  attack: string;
  iterations: number;
  clean: number;
  before?: Footprint;
  after?: Footprint;
  note: string;
  pass: boolean;
}

/** A server footprint as `fds/memfd maps/sessions/RSS MiB`, or `-` when there is none. */
export function footprintCell(f?: Footprint): string {
  return f ? `${f.fds}/${f.memfdMaps}/${f.sessions}/${(f.rssKb / 1024).toFixed(0)}` : '-';
}
