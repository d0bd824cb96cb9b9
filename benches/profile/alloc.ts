/**
 * Where the pipelined request path allocates: bytes per request by allocation site, from V8's
 * sampling heap profiler (counting objects the GC has already collected too), with 64 loops of
 * `await client.request()` against the peers suite's lapce-ai-ipc server for 2 s.
 *
 *   node --import=tsx benches/profile/alloc.ts
 */
import { Session } from 'node:inspector/promises';
import { PEERS } from '../peers/clients';

async function main(): Promise<void> {
  const def = PEERS.find((p) => p.id === 'lapce.bytes')!;
  const h = await def.start({ serverNodeArgs: [] });
  for (let i = 0; i < 5000; i++) await h.client.echo();
  const s = new Session();
  s.connect();
  await s.post('HeapProfiler.startSampling', {
    samplingInterval: 1024,
    includeObjectsCollectedByMinorGC: true,
    includeObjectsCollectedByMajorGC: true,
  } as never);
  const end = performance.now() + 2000;
  let n = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (performance.now() < end) {
        await h.client.echo();
        n++;
      }
    }),
  );
  const { profile } = (await s.post('HeapProfiler.stopSampling')) as { profile: any };
  const bySite = new Map<string, number>();
  const walk = (node: any) => {
    const cf = node.callFrame;
    const key = `${cf.functionName || '(anon)'} ${String(cf.url).replace(/^.*\/(dist|src|benches|node_modules)\//, '$1/')}:${cf.lineNumber + 1}`;
    bySite.set(key, (bySite.get(key) ?? 0) + node.selfSize);
    for (const c of node.children) walk(c);
  };
  walk(profile.head);
  console.log(`${n} requests`);
  for (const [k, v] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log((v / n).toFixed(1).padStart(8), 'B/req', k);
  await h.stop();
}
main();
