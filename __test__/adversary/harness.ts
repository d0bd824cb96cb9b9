/**
 * The adversarial suite's harness: builds (if needed) and runs the Rust adversary
 * (`crates/lapce_ai_adversary`), runs the real IpcServer in a child process, and measures what an
 * attack may leave behind in it: fds (`/proc/<pid>/fd`), memfd mappings (`/proc/<pid>/maps`),
 * sessions (the server's own count and the `$metrics` gauge) and RSS.
 *
 * `ADVERSARY_SOAK=1` multiplies every attack's iterations by 10.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { ExecutionContext } from 'ava';
import { IpcClient } from '../../src/ipc/client';
import type { IpcServerOptions } from '../../src/ipc/server';
import { Scope, sockPath, within } from '../ipc/helpers';
import type { Owner } from '../ipc/helpers';

export { Scope, sockPath, within };
export type { Owner };

/** The value of metric `name` in a prom-client JSON snapshot, summed over its series. */
export function metricValue(snapshot: unknown, name: string): number {
  const m = (snapshot as Array<{ name: string; values: Array<{ value: number }> }>).find((x) => x.name === name);
  return m ? m.values.reduce((a, v) => a + v.value, 0) : NaN;
}

/** A child process answering JSON-line commands on stdin. */
export class LineChild {
  readonly messages: Array<Record<string, unknown>> = [];
  readonly exited: Promise<void>;
  stderr = '';
  private nextId = 1;
  private waiters: Array<() => void> = [];

  constructor(readonly proc: ChildProcess) {
    this.exited = new Promise((r) => proc.once('exit', () => r()));
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        this.messages.push(JSON.parse(line));
      } catch {
        return;
      }
      for (const w of this.waiters.splice(0)) w();
    });
    proc.stderr?.on('data', (d: Buffer) => {
      if (this.stderr.length < 20_000) this.stderr += d.toString();
    });
    proc.stdin?.on('error', () => undefined);
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  /** The first message matching `pred`, waiting up to `ms`. */
  async next(pred: (m: Record<string, unknown>) => boolean, what: string, ms = 30_000): Promise<Record<string, unknown>> {
    const end = Date.now() + ms;
    for (;;) {
      const found = this.messages.find(pred);
      if (found) return found;
      if (this.proc.exitCode !== null || this.proc.signalCode !== null)
        throw new Error(`child exited while waiting for ${what}: ${this.stderr.slice(-2000)}`);
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, 100);
        this.waiters.push(() => {
          clearTimeout(timer);
          r();
        });
      });
    }
  }

  /** Sends a command and resolves with its reply. */
  cmd(cmd: string, ms = 30_000): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    this.proc.stdin!.write(JSON.stringify({ id, cmd }) + '\n');
    return this.next((m) => m.re === id, `reply to ${cmd}`, ms);
  }
}

const SERVER_SCRIPT = path.join(__dirname, 'fixtures', 'server.ts');
const VICTIM_SCRIPT = path.join(__dirname, 'fixtures', 'victim.ts');
const CHURN_SCRIPT = path.join(__dirname, 'fixtures', 'churn-client.ts');

/** Spawns a node script with tsx (with at most `nofile` open fds if given), killed when `owner` ends. */
function spawnScript(owner: Owner, script: string, env: Record<string, string>, nodeArgs: string[] = [], nofile?: number): LineChild {
  const argv = [...nodeArgs, '--import=tsx', script];
  const [cmd, args] = nofile ? ['prlimit', [`--nofile=${nofile}:${nofile}`, process.execPath, ...argv]] : [process.execPath, argv];
  const proc = spawn(cmd, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const child = new LineChild(proc);
  owner.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await child.exited;
  });
  return child;
}

/** Runs fixtures/churn-client.ts: `count` IpcClients opened and closed in one process; its own figures. */
export async function clientChurn(owner: Owner, socketPath: string, count: number): Promise<Record<string, unknown>> {
  const child = spawnScript(owner, CHURN_SCRIPT, { ADVERSARY_CHURN: JSON.stringify({ socketPath, count }) }, ['--max-semi-space-size=128']);
  return child.next((m) => m.type === 'result' || m.type === 'fatal', 'client churn result', 120_000);
}

/**
 * Library clients in a child process (fixtures/victim.ts), one hostile-server case at a time.
 * A crash or a hang of one case is reported for that case; the next case gets a fresh process.
 */
export class Victims {
  private child: LineChild | null = null;
  private nextId = 1;
  constructor(private readonly owner: Owner) {}

  private async live(): Promise<LineChild> {
    if (this.child && this.child.proc.exitCode === null && this.child.proc.signalCode === null) return this.child;
    this.child = spawnScript(this.owner, VICTIM_SCRIPT, {});
    await this.child.next((m) => m.type === 'ready', 'victim process ready', 60_000);
    return this.child;
  }

  /**
   * Runs one case. Resolves with the client's result, or with `{crashed}` / `{hung}` when the
   * process died or its event loop stopped answering (it is then killed).
   */
  async run(socketPath: string, timeoutMs = 3000, handshakeTimeoutMs = 3000): Promise<Record<string, unknown>> {
    const child = await this.live();
    const id = this.nextId++;
    child.proc.stdin!.write(JSON.stringify({ id, socketPath, timeoutMs, handshakeTimeoutMs }) + '\n');
    const verdict = async (): Promise<Record<string, unknown>> => {
      try {
        const r = await child.next((m) => m.re === id, 'client result', 20_000);
        const pid = this.nextId++;
        child.proc.stdin!.write(JSON.stringify({ id: pid, ping: true }) + '\n');
        await child.next((m) => m.re === pid, 'client event loop', 5_000);
        return r;
      } catch (e) {
        if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
          this.child = null;
          return { crashed: `exit ${child.proc.exitCode} signal ${child.proc.signalCode}`, stderr: child.stderr.slice(-2000) };
        }
        child.proc.kill('SIGKILL');
        this.child = null;
        return { hung: (e as Error).message, stderr: child.stderr.slice(-2000) };
      }
    };
    return verdict();
  }
}

const ROOT = path.join(__dirname, '..', '..');
/** Where cargo puts the adversary binary. */
export const ADVERSARY_BIN = path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, 'target'), 'release', 'lapce_ai_adversary');

/** 10 with `ADVERSARY_SOAK=1`, else 1: multiply iteration counts by it. */
export const SOAK = process.env.ADVERSARY_SOAK === '1' ? 10 : 1;

/** RSS growth over the baseline that still counts as "back to baseline" (V8 keeps some heap). */
export const RSS_TOLERANCE_KB = 48 * 1024;

/**
 * Builds the adversary if its binary is missing. Throws with a clear message when that fails,
 * so every test of the suite fails saying why instead of timing out.
 */
export function ensureAdversary(): void {
  if (fs.existsSync(ADVERSARY_BIN)) return;
  const r = spawnSync('cargo', ['build', '--release', '-p', 'lapce_ai_adversary'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0 || !fs.existsSync(ADVERSARY_BIN)) {
    throw new Error(
      `the adversary binary ${ADVERSARY_BIN} is not built and \`cargo build --release -p lapce_ai_adversary\` failed ` +
        `(status ${r.status}${r.error ? `, ${r.error.message}` : ''}); build it, then rerun the adversarial suite`,
    );
  }
}

/** One JSON line the adversary printed. */
export type AdvLine = Record<string, unknown> & { type: string; ok?: boolean };

/** A finished adversary run. */
export interface AdvRun {
  lines: AdvLine[];
  iterations: AdvLine[];
  done?: AdvLine;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs `lapce_ai_adversary client <socket> <attack> ...` to completion (killed after `timeoutMs`). */
export function runClientAttack(
  socketPath: string,
  attack: string,
  args: Record<string, number> = {},
  timeoutMs = 60_000,
): Promise<AdvRun> {
  const argv = ['client', socketPath, attack];
  for (const [k, v] of Object.entries(args)) argv.push(`--${k}`, String(v));
  return runAdversary(argv, timeoutMs);
}

/** Runs the adversary with `argv`, collecting its JSON lines. */
export function runAdversary(argv: string[], timeoutMs: number, onLine?: (l: AdvLine) => void): Promise<AdvRun> {
  const proc = spawn(ADVERSARY_BIN, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: AdvLine[] = [];
  let stderr = '';
  readline.createInterface({ input: proc.stdout }).on('line', (l) => {
    try {
      const m = JSON.parse(l) as AdvLine;
      lines.push(m);
      onLine?.(m);
    } catch {
      /* not ours */
    }
  });
  proc.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 10_000) stderr += d.toString();
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        lines,
        iterations: lines.filter((l) => l.type === 'iteration'),
        done: lines.find((l) => l.type === 'done'),
        code,
        signal,
        stderr,
      });
    });
  });
}

/** Starts the adversary as a process the caller kills (for kill -9 at random points). */
export function startAdversary(argv: string[]): { proc: ReturnType<typeof spawn>; lines: AdvLine[]; closed: Promise<void> } {
  const proc = spawn(ADVERSARY_BIN, argv, { stdio: ['ignore', 'pipe', 'ignore'] });
  const lines: AdvLine[] = [];
  readline.createInterface({ input: proc.stdout! }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as AdvLine);
    } catch {
      /* ignore */
    }
  });
  return { proc, lines, closed: new Promise((r) => proc.once('close', () => r())) };
}

/** What an attack may leave behind in the server process. */
export interface Footprint {
  fds: number;
  memfdMaps: number;
  sessions: number;
  pending: number;
  rssKb: number;
}

function countMemfdMaps(pid: number): number {
  try {
    return fs
      .readFileSync(`/proc/${pid}/maps`, 'utf8')
      .split('\n')
      .filter((l) => l.includes('memfd:')).length;
  } catch {
    return -1;
  }
}

function countFds(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}

/** CPU time (user + system) of `pid` so far, ms. */
export function cpuMs(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return -1;
  }
}

/** A real IpcServer (standard test handlers) in a child process, and how to measure it. */
export class Target {
  private constructor(
    readonly child: LineChild,
    readonly socketPath: string,
  ) {}

  /** Spawns the server (with `--expose-gc`, so RSS is measured after a full GC). */
  static async start(owner: Owner, options: IpcServerOptions = {}, nofile?: number, nodeArgs: string[] = []): Promise<Target> {
    const socketPath = sockPath(owner);
    const child = spawnScript(
      owner,
      SERVER_SCRIPT,
      { ADVERSARY_SERVER: JSON.stringify({ ...options, socketPath }) },
      ['--expose-gc', ...nodeArgs],
      nofile,
    );
    const listening = await child.next((m) => m.type === 'listening' || m.type === 'fatal', 'server listening');
    if (listening.type !== 'listening') throw new Error(`server did not start: ${JSON.stringify(listening)} ${child.stderr}`);
    const t = new Target(child, socketPath);
    // Warm up: the first client makes the server load lazily-required code and caches.
    await t.probe();
    return t;
  }

  get pid(): number {
    return this.child.pid;
  }

  /** True while the server process runs and answers its control pipe. */
  async alive(): Promise<boolean> {
    if (this.child.proc.exitCode !== null || this.child.proc.signalCode !== null) return false;
    try {
      await this.child.cmd('state', 5000);
      return true;
    } catch {
      return false;
    }
  }

  /** Why the server died, for messages. */
  death(): string {
    return `exit ${this.child.proc.exitCode} signal ${this.child.proc.signalCode}; stderr: ${this.child.stderr.slice(-3000)}`;
  }

  /** A fresh well-behaved client: connects, checks an `echo` reply and `$metrics`, closes. */
  async probe(tag: unknown = 'probe', timeoutMs = 10_000): Promise<{ sessionsSeen: number }> {
    const c = await within(IpcClient.connect(this.socketPath, { name: 'adversary-probe' }), timeoutMs, 'probe connect');
    try {
      const r = await within(c.request('echo', { tag }), timeoutMs, 'probe echo');
      if (JSON.stringify(r) !== JSON.stringify({ tag })) throw new Error(`probe got a wrong reply ${JSON.stringify(r)}`);
      const m = await within(c.request('$metrics', { format: 'json' }), timeoutMs, 'probe $metrics');
      return { sessionsSeen: metricValue(m, 'lapce_ipc_connections_active') };
    } finally {
      c.close();
    }
  }

  /** The server's footprint now, after a full GC unless `gc` is false. */
  async footprint(gc = true): Promise<Footprint> {
    if (gc) await this.child.cmd('gc', 10_000);
    const s = (await this.child.cmd('state', 10_000)) as { connections: number; pending: number };
    return {
      fds: countFds(this.pid),
      memfdMaps: countMemfdMaps(this.pid),
      sessions: s.connections,
      pending: s.pending,
      rssKb: rssKb(this.pid),
    };
  }

  /** A baseline: the footprint once two readings 200 ms apart agree (clients of earlier steps gone). */
  async baseline(ms = 5000): Promise<Footprint> {
    const end = Date.now() + ms;
    let a = await this.footprint();
    for (;;) {
      await new Promise((r) => setTimeout(r, 200));
      const b = await this.footprint();
      const same = a.fds === b.fds && a.memfdMaps === b.memfdMaps && a.sessions === b.sessions && a.pending === b.pending;
      if ((same && b.sessions === 0) || Date.now() > end) return b;
      a = b;
    }
  }

  /**
   * Waits (up to `ms`) for the footprint to return to `base`: no more fds or memfd mappings, the
   * same sessions and pending handshakes, RSS within {@link RSS_TOLERANCE_KB}. Returns the final footprint and
   * how long it took; throws with both footprints when it does not return.
   */
  async settle(base: Footprint, ms = 10_000, gc = true): Promise<{ after: Footprint; tookMs: number }> {
    const start = Date.now();
    let after = await this.footprint(gc);
    // Fewer fds than the baseline is no leak: the server keeps a pool of channel fd sets made
    // ahead of need, which an attack may drain.
    const back = (f: Footprint): boolean =>
      f.fds <= base.fds &&
      f.memfdMaps <= base.memfdMaps &&
      f.sessions === base.sessions &&
      f.pending === base.pending &&
      f.rssKb <= base.rssKb + RSS_TOLERANCE_KB;
    while (!back(after)) {
      if (Date.now() - start > ms) {
        throw new Error(
          `server footprint did not return to baseline within ${ms} ms: before ${JSON.stringify(base)}, after ${JSON.stringify(after)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
      after = await this.footprint(gc);
    }
    return { after, tookMs: Date.now() - start };
  }
}

/**
 * The standard after-attack checks: the server is alive, a fresh client is served (and the
 * `$metrics` gauge shows only that client), and fds, mappings, sessions and RSS return to
 * `base`. Logs the figures.
 */
export async function assertRecovered(t: ExecutionContext, target: Target, base: Footprint, label: string, gc = true): Promise<Footprint> {
  if (!(await target.alive())) {
    t.fail(`${label}: the server process died: ${target.death()}`);
    return base;
  }
  // First the attack's own sessions must go; then a fresh client must be served, and be the
  // only session `$metrics` counts; then its session must go too.
  const { tookMs } = await target.settle(base, 10_000, gc);
  const { sessionsSeen } = await target.probe(label);
  const { after } = await target.settle(base, 10_000, gc);
  t.log(
    `${gc ? '(after a full GC) ' : '(no GC) '}` +
      `${label}: fds ${base.fds} -> ${after.fds}, memfd maps ${base.memfdMaps} -> ${after.memfdMaps}, sessions ${base.sessions} -> ${after.sessions} ` +
      `($metrics during the probe: ${sessionsSeen}), RSS ${(base.rssKb / 1024).toFixed(1)} -> ${(after.rssKb / 1024).toFixed(1)} MiB; the attack's leftovers were gone ${tookMs} ms after it ended`,
  );
  t.is(sessionsSeen, base.sessions + 1, `${label}: $metrics must count only the probe's own session`);
  return after;
}

/** Fails with every iteration whose `ok` is not true (showing the first few in full). */
export function assertIterationsOk(t: ExecutionContext, run: AdvRun, label: string, expected?: number): void {
  t.truthy(run.done, `${label}: the adversary did not finish (exit ${run.code} ${run.signal}); stderr: ${run.stderr}`);
  if (expected !== undefined) t.is(run.iterations.length, expected, `${label}: iterations run`);
  const bad = run.iterations.filter((l) => l.ok !== true);
  t.deepEqual(bad.slice(0, 5), [], `${label}: ${bad.length} of ${run.iterations.length} iterations saw the server misbehave`);
}

/** p-th percentile (0..100) of `xs`. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** One server per test file, restarted when an attack killed it (that attack's test has failed). */
export class TargetPool {
  private target: Target | null = null;
  constructor(
    private readonly scope: Scope,
    private readonly options: IpcServerOptions = {},
  ) {}

  /** A pool whose server is `target` (started by the caller with its own options). */
  static of(scope: Scope, target: Target): TargetPool {
    const p = new TargetPool(scope);
    p.target = target;
    return p;
  }

  /**
   * The live server, or a fresh one when it died or an earlier attack left sessions behind
   * (that attack's test has failed; the next one starts from a clean server).
   */
  async get(): Promise<Target> {
    if (this.target && (await this.target.alive())) {
      const f = await this.target.footprint(false);
      if (f.sessions === 0 && f.pending <= 0) return this.target;
    }
    this.target = await Target.start(this.scope, this.options);
    return this.target;
  }
}

/**
 * Runs a client attack against a live server and does the standard checks: every iteration
 * `ok`, the server alive, a fresh client served, and the footprint back to its baseline.
 * Returns the run for attack-specific assertions.
 */
export async function clientAttack(
  t: ExecutionContext,
  pool: TargetPool,
  attack: string,
  args: Record<string, number> = {},
  opts: { expectIterations?: number; timeoutMs?: number; checkIterations?: boolean; gc?: boolean } = {},
): Promise<{ run: AdvRun; target: Target; base: Footprint; after: Footprint }> {
  // Soak runs take minutes per attack; the quick mode stays within ava's default.
  if (SOAK > 1) t.timeout(20 * 60_000);
  const target = await pool.get();
  const base = await target.baseline();
  const cpu0 = cpuMs(target.pid);
  const started = Date.now();
  const run = await runClientAttack(target.socketPath, attack, args, (opts.timeoutMs ?? 90_000) * SOAK);
  const wall = Date.now() - started;
  const cpu = cpuMs(target.pid) - cpu0;
  t.log(
    `${attack}: ${run.iterations.length} iterations (${run.done?.ok ?? '?'} ok) in ${wall} ms; server CPU ${cpu.toFixed(0)} ms (${((100 * cpu) / Math.max(1, wall)).toFixed(0)}%)`,
  );
  const failures = run.iterations.filter((l) => l.ok !== true);
  for (const l of failures.slice(0, 3)) t.log(`  not ok: ${JSON.stringify(l)}`);
  if (opts.checkIterations !== false) assertIterationsOk(t, run, attack, opts.expectIterations);
  const after = await assertRecovered(t, target, base, attack, opts.gc ?? true);
  return { run, target, base, after };
}
