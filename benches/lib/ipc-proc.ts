/**
 * Child processes of the IPC benchmarks (`benches/ipc.ts`), driven by JSON lines: commands on
 * stdin (`{"id":n,"cmd":...}`), replies (`{"re":n,...}`) and events on stdout. A child exits when
 * its stdin closes, so none outlives a failed run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import readline from 'node:readline';
import type { CpuReport } from './report';
import { LOADER_ARGS } from './script';

export class JsonChild extends EventEmitter {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly messages: Array<Record<string, unknown>> = [];
  private nextId = 1;
  private stderr = '';

  private constructor(readonly proc: ChildProcess) {
    super();
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      let m: Record<string, unknown>;
      try {
        m = JSON.parse(line);
      } catch {
        return;
      }
      this.messages.push(m);
      if (this.messages.length > 1000) this.messages.shift();
      this.emit('message', m);
    });
    proc.stderr!.on('data', (d: Buffer) => {
      if (this.stderr.length < 20_000) this.stderr += d.toString();
    });
    proc.stdin!.on('error', () => undefined);
  }

  /** Spawns `node [nodeArgs] --import=tsx script` with `env` added. */
  static spawn(script: string, env: Record<string, string>, nodeArgs: string[] = []): JsonChild {
    const proc = spawn(process.execPath, [...nodeArgs, ...LOADER_ARGS, script], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    return new JsonChild(proc);
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  /** The next message matching `pred` (including those already received). */
  next(pred: (m: Record<string, unknown>) => boolean, what: string, timeoutMs = 300_000): Promise<Record<string, unknown>> {
    const found = this.messages.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (m: Record<string, unknown>): void => {
        if (!pred(m)) return;
        cleanup();
        resolve(m);
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('message', on);
      };
      this.on('message', on);
      void this.exited.then((r) => {
        cleanup();
        reject(new Error(`child exited (${JSON.stringify(r)}) while waiting for ${what}: ${this.stderr.slice(-2000)}`));
      });
    });
  }

  /** Sends a command and resolves with its reply (rejects if the reply carries `error`). */
  async cmd(cmd: string, extra: Record<string, unknown> = {}, timeoutMs = 300_000): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const reply = this.next((m) => m.re === id, `reply to ${cmd}`, timeoutMs);
    this.proc.stdin!.write(JSON.stringify({ id, cmd, ...extra }) + '\n');
    const r = await reply;
    if (typeof r.error === 'string') throw new Error(`${cmd}: ${r.error}`);
    return r;
  }

  /** user+sys CPU of the child so far, µs (from /proc, so it costs the child nothing). */
  cpuMicros(): number {
    return procCpuMicros(this.pid);
  }

  /** VmRSS of the child, kB. */
  rssKb(): number {
    return vmRssKb(this.pid);
  }

  async close(graceMs = 3000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.stdin!.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** user+sys CPU of process `pid` (all its threads) so far, µs, from /proc/<pid>/stat. */
export function procCpuMicros(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat (indices 11 and 12 after the comm field).
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / CLOCK_TICKS;
}

/** Something whose CPU time can be read: a {@link JsonChild}, or `{ cpuMicros: () => procCpuMicros(pid) }`. */
export interface CpuSource {
  cpuMicros(): number;
}

/** CPU of this process and of a child, and the time, at the start of a measurement. */
export interface CpuMark {
  parent: NodeJS.CpuUsage;
  child: number;
  t: number;
}

/** Marks the start of a measurement. */
export const markCpu = (child: CpuSource): CpuMark => ({ parent: process.cpuUsage(), child: child.cpuMicros(), t: performance.now() });

/** CPU both processes spent, and the wall time, since `a`. */
export function cpuSince(a: CpuMark, child: CpuSource): CpuReport {
  const b = markCpu(child);
  return {
    parentMs: (b.parent.user + b.parent.system - a.parent.user - a.parent.system) / 1000,
    childMs: (b.child - a.child) / 1000,
    wallMs: b.t - a.t,
  };
}

/** Clock ticks per second for /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const CLOCK_TICKS = 100;

export function vmRssKb(pid: number | 'self'): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Writes a JSON line to stdout (child side). */
export function out(msg: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(msg) + '\n');
}

/** Child side: calls `handle` for each command line; exits when stdin closes. */
export function serveCommands(handle: (m: { id: number; cmd: string; [k: string]: unknown }) => Promise<Record<string, unknown>>): void {
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', async (line) => {
    if (!line.trim()) return;
    const m = JSON.parse(line) as { id: number; cmd: string };
    try {
      out({ re: m.id, ...(await handle(m)) });
    } catch (e) {
      out({ re: m.id, error: (e as Error).stack ?? String(e) });
    }
  });
  rl.on('close', () => process.exit(0));
}
