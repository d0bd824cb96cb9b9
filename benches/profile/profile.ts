/**
 * Profiles lapce-ai-ipc as users call it, both processes under `node --cpu-prof`:
 *
 *   node --import=tsx benches/profile/profile.ts <scenario> [seconds]
 *   node .bench/js/benches/profile/profile.js <scenario> [seconds]   # compiled (npm run bench builds it)
 *
 * Scenarios: pipe-bytes, pipe-json (64 loops of `await request()`), rtt-json (sequential),
 * rtt-sleep (sequential, JSON, `idle: 'sleep'` on both sides),
 * stream-bytes, stream-json (`for await` over 50k-chunk streams), large-64k, large-1m (4 in
 * flight, client → server), handshake (connect + close in a loop). The client re-runs itself
 * as a child under `--cpu-prof`; the server runs under `--cpu-prof` too. Profiles land in
 * `.bench/prof/<scenario>/{client,server}/` (open them in Chrome DevTools) and a summary of each
 * (self time by area and by function) is printed. With `--no-cpu-prof` the same scenario runs
 * without the profiler, e.g. under `perf stat -e task-clock,context-switches,page-faults --`.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { IpcClient } from '../../dist';
import { LAPCE_SLEEP, PEERS, type PeerClient } from '../peers/clients';
import { STREAM_CHUNKS } from '../peers/workload';
import { summarise } from './cpuprofile';
import { LOADER_ARGS, ROOT } from '../lib/script';

const SCENARIOS = [
  'pipe-bytes',
  'pipe-json',
  'rtt-json',
  'rtt-sleep',
  'stream-bytes',
  'stream-json',
  'large-64k',
  'large-1m',
  'handshake',
] as const;
type Scenario = (typeof SCENARIOS)[number];

async function drive(scenario: Scenario, seconds: number, c: PeerClient, socketPath: string, prof: boolean): Promise<string> {
  const end = performance.now() + seconds * 1000;
  let count = 0;
  const loops = async (depth: number, call: () => Promise<unknown>): Promise<void> => {
    await Promise.all(
      Array.from({ length: depth }, async () => {
        while (performance.now() < end) {
          await call();
          count++;
        }
      }),
    );
  };
  const t0 = performance.now();
  switch (scenario) {
    case 'pipe-bytes':
    case 'pipe-json':
      await loops(64, () => c.echo());
      break;
    case 'rtt-json':
    case 'rtt-sleep':
      await loops(1, () => c.echo());
      break;
    case 'stream-bytes':
    case 'stream-json':
      while (performance.now() < end) {
        for await (const _ of c.stream(STREAM_CHUNKS)) count++;
      }
      break;
    case 'large-64k':
    case 'large-1m': {
      const buf = Buffer.alloc(scenario === 'large-1m' ? 1 << 20 : 64 << 10, 7);
      await loops(4, () => c.sink(buf));
      break;
    }
    case 'handshake':
      while (performance.now() < end) {
        const k = await IpcClient.connect(socketPath);
        k.close();
        count++;
      }
      break;
  }
  const s = (performance.now() - t0) / 1000;
  fs.mkdirSync(path.join(ROOT, '.bench', 'prof', scenario), { recursive: true });
  fs.writeFileSync(path.join(ROOT, '.bench', 'prof', scenario, 'ops'), String(count));
  return `${scenario}: ${count} operations in ${s.toFixed(2)} s = ${(count / s).toFixed(0)}/s${prof ? ' (under the profiler)' : ''}`;
}

async function child(scenario: Scenario, seconds: number, dir: string, prof: boolean): Promise<void> {
  const json = scenario.endsWith('json');
  const def = scenario === 'rtt-sleep' ? LAPCE_SLEEP : PEERS.find((p) => p.id === (json ? 'lapce.json' : 'lapce.bytes'))!;
  const h = await def.start({ serverNodeArgs: prof ? ['--cpu-prof', `--cpu-prof-dir=${path.join(dir, 'server')}`] : [] });
  try {
    // Warm up (JIT) before the measured part; the profile covers both.
    for (let i = 0; i < 2000; i++) await h.client.echo();
    console.log(await drive(scenario, seconds, h.client, h.socketPath!, prof));
  } finally {
    await h.stop();
  }
}

function main(): void {
  const prof = !process.argv.includes('--no-cpu-prof');
  const [scenario, secs, role] = process.argv.slice(2).filter((a) => a !== '--no-cpu-prof') as [
    Scenario,
    string | undefined,
    string | undefined,
  ];
  if (!SCENARIOS.includes(scenario)) {
    console.error(`usage: node --import=tsx benches/profile/profile.ts <${SCENARIOS.join('|')}> [seconds]`);
    process.exit(2);
  }
  const seconds = Number(secs ?? 5);
  const dir = path.join(ROOT, '.bench', 'prof', scenario);
  if (role === 'child' || !prof) {
    child(scenario, seconds, dir, prof).then(
      () => process.exit(0),
      (e) => {
        console.error(e);
        process.exit(1);
      },
    );
    return;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const r = spawnSync(
    process.execPath,
    ['--cpu-prof', `--cpu-prof-dir=${path.join(dir, 'client')}`, ...LOADER_ARGS, __filename, scenario, String(seconds), 'child'],
    { stdio: 'inherit' },
  );
  if (r.status !== 0) process.exit(r.status ?? 1);
  for (const side of ['client', 'server']) {
    const sideDir = path.join(dir, side);
    const files = fs.existsSync(sideDir) ? fs.readdirSync(sideDir).filter((f) => f.endsWith('.cpuprofile')) : [];
    if (files.length === 0) console.log(`${side}: no profile written`);
    const ops = Number(fs.readFileSync(path.join(dir, 'ops'), 'utf8'));
    // One profile per thread (tsx runs its loader hooks in a worker): the largest is the main thread.
    const main = files.sort((a, b) => fs.statSync(path.join(sideDir, b)).size - fs.statSync(path.join(sideDir, a)).size)[0];
    if (main) console.log(`\n== ${side} (main thread; ${ops} measured operations) ==\n${summarise(path.join(sideDir, main), 25, ops)}`);
  }
}

main();
