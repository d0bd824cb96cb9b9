/**
 * CPU placement of benchmark processes. On a 2-vCPU VM where both processes run decides
 * wake-up costs (same CPU: a context switch; other CPU: an IPI and maybe a VM exit), so
 * measurements that depend on it are taken free and pinned.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';

/** Where the two processes run: anywhere (the scheduler decides), or pinned. */
export type Placement = 'free' | 'same-cpu' | 'cross-cpu';

/** Whether pinning works here (`taskset` present, at least two CPUs). */
export function canPin(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'pipe' });
    return os.cpus().length >= 2;
  } catch {
    return false;
  }
}

/** Pins every thread of `pid` to `cpu`; returns the previous mask (hex), for {@link unpin}. */
export function pin(pid: number, cpu: number): string {
  const out = execFileSync('taskset', ['-p', String(pid)], { encoding: 'utf8' });
  const mask = out.trim().split(/\s+/).pop()!;
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'pipe' });
  return mask;
}

/** Restores every thread of `pid` to `mask` (as returned by {@link pin}). */
export function unpin(pid: number, mask: string): void {
  execFileSync('taskset', ['-a', '-p', mask, String(pid)], { stdio: 'pipe' });
}
