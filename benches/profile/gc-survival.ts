/**
 * How much of the young generation survives each scavenge while requests are pipelined: the
 * measure behind `src/util/id-table.ts`. A client (this process, re-run as a child under
 * `--trace-gc-nvp`) makes 64 loops of `await request()` for 2 s against an `IpcServer` in
 * another process; both carry a ballast of 200,000 live objects first, the heap of an
 * application of some size (the `ai` SDK loaded, say), without which V8 rarely shows the
 * problem. Prints, per process, the median and 90th percentile of `new_space_survived` per
 * scavenge and the request rate. Survivors are what a scavenge copies: a healthy request
 * path leaves tens of KB, whatever its allocation rate.
 *
 *   node .bench/js/benches/profile/gc-survival.js [--async] [--no-ballast]
 *   node --import=tsx benches/profile/gc-survival.ts [--async] [--no-ballast]
 *
 * `--async`: the server's handler is `async` (a call then waits in the session's table).
 */
import { fork, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as Lib from '../../dist';
import { LOADER_ARGS } from '../lib/script';

const ROLE = process.env.GC_SURVIVAL_ROLE;
const ASYNC = process.argv.includes('--async');
const BALLAST = !process.argv.includes('--no-ballast');

/**
 * Live objects an application of some size holds, made before the package is loaded (as an
 * application's own modules and data would be), kept reachable for the process's life.
 */
const ballast: unknown[] = [];
if (ROLE && BALLAST) for (let i = 0; i < 200_000; i++) ballast.push({ i, s: `x${i}` });
// Loaded after the ballast, on purpose (see above).
const { IpcClient, IpcServer } = (ROLE ? require('../../dist') : {}) as typeof Lib;

async function server(socketPath: string): Promise<void> {
  const s = new IpcServer({ socketPath });
  if (ASYNC) s.handle('echo', async (p) => p);
  else s.handle('echo', (p) => p);
  await s.listen();
  process.send?.('ready');
  process.on('message', () => void s.close({ deadlineMs: 0 }).then(() => process.exit(0)));
}

async function client(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lapce-gc-'));
  const socketPath = path.join(dir, 'ai.sock');
  const srv = fork(__filename, process.argv.slice(2), {
    env: { ...process.env, GC_SURVIVAL_ROLE: 'server', GC_SURVIVAL_SOCKET: socketPath },
    execArgv: [...LOADER_ARGS, '--trace-gc-nvp'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let serverLog = '';
  srv.stderr?.on('data', (d: Buffer) => (serverLog += d.toString()));
  srv.stdout?.on('data', (d: Buffer) => (serverLog += d.toString()));
  await new Promise<void>((resolve) => srv.once('message', () => resolve()));
  const c = await IpcClient.connect(socketPath);
  const payload = Buffer.alloc(64, 0xab);
  for (let i = 0; i < 5000; i++) await c.request('echo', payload);
  console.log('--- measured');
  const end = performance.now() + 2000;
  let n = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (performance.now() < end) {
        await c.request('echo', payload);
        n++;
      }
    }),
  );
  console.log(`--- done ${n / 2} req/s`);
  c.close();
  srv.send('stop');
  await new Promise((r) => srv.once('exit', r));
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`--- server\n${serverLog}`);
}

/** Median and p90 of `new_space_survived` over the scavenges of one trace. */
function survival(trace: string): string {
  const xs = [...trace.matchAll(/gc=s .*?new_space_survived=(\d+)/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
  if (xs.length === 0) return 'no scavenges';
  const at = (q: number): number => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))];
  return `${xs.length} scavenges, survived per scavenge: median ${(at(0.5) / 1024).toFixed(0)} KiB, p90 ${(at(0.9) / 1024).toFixed(0)} KiB`;
}

function main(): void {
  // The parent re-runs itself under --trace-gc-nvp and reads the traces (stdout: the client's,
  // after the measured marker; the server's is appended by the child).
  const r = spawnSync(process.execPath, [...LOADER_ARGS, '--trace-gc-nvp', __filename, ...process.argv.slice(2)], {
    env: { ...process.env, GC_SURVIVAL_ROLE: 'client' },
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  });
  if (r.status !== 0) {
    console.error(r.stderr);
    process.exit(r.status ?? 1);
  }
  const out = r.stdout;
  const measured = out.slice(out.indexOf('--- measured'), out.indexOf('--- done'));
  const rate = /--- done (\S+) req\/s/.exec(out)?.[1];
  const serverTrace = out.slice(out.indexOf('--- server'));
  console.log(`handler ${ASYNC ? 'async' : 'sync'}, ballast ${BALLAST ? '200k objects' : 'none'}: ${Number(rate).toFixed(0)} req/s`);
  console.log(`  client: ${survival(measured)}`);
  console.log(`  server: ${survival(serverTrace)} (whole run)`);
}

if (ROLE === 'server') void server(process.env.GC_SURVIVAL_SOCKET as string);
else if (ROLE === 'client') void client();
else main();
