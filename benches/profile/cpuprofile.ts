/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): self time per function and per area
 * of the code (src/ipc, src/transport, node internals, GC, native), so a profile can be read in a
 * terminal and quoted in a request.
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a function lives, for the per-area totals. */
function area(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const m = /\/((?:src|dist)\/[a-z]+|benches\/[a-z]+|node_modules\/[^/]+)\//.exec(url);
  if (m) return m[1];
  if (url.startsWith('node:')) return 'node:internal';
  return path.basename(url);
}

function label(n: ProfileNode): string {
  const { functionName, url, lineNumber } = n.callFrame;
  const file = url ? `${url.replace(/^.*\/(src|dist|benches|node_modules)\//, '$1/').replace(/^file:\/\//, '')}:${lineNumber + 1}` : '';
  return `${functionName || '(anonymous)'} ${file}`.trim();
}

/**
 * Self time (ms) per function and per area, inclusive time of the top functions, and the total
 * sampled time, from one profile. With `ops` (operations done while profiling) each line also
 * says µs per operation.
 */
export function summarise(file: string, top = 25, ops = 0): string {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + p.timeDeltas[i] / 1000);
  const total = p.timeDeltas.reduce((a, b) => a + b, 0) / 1000;
  const fn = new Map<string, number>();
  const ar = new Map<string, number>();
  for (const [id, ms] of self) {
    const n = byId.get(id)!;
    const l = label(n);
    fn.set(l, (fn.get(l) ?? 0) + ms);
    const a = area(n.callFrame.url, n.callFrame.functionName);
    ar.set(a, (ar.get(a) ?? 0) + ms);
  }
  // Inclusive time: each sample counts once for every distinct function on its stack.
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const seen = new Set<string>();
    for (let id: number | undefined = p.samples[i]; id !== undefined; id = parent.get(id)) {
      const l = label(byId.get(id)!);
      if (seen.has(l)) continue;
      seen.add(l);
      incl.set(l, (incl.get(l) ?? 0) + p.timeDeltas[i] / 1000);
    }
  }
  const idle = ar.get('(idle)') ?? 0;
  const busy = total - idle;
  const perOp = (ms: number): string => (ops > 0 ? `  ${((ms * 1000) / ops).toFixed(3).padStart(7)} µs/op` : '');
  const pct = (ms: number): string => `${((100 * ms) / busy).toFixed(1).padStart(5)}%${perOp(ms)}`;
  const lines = [
    `${path.basename(file)}: ${total.toFixed(0)} ms sampled, ${busy.toFixed(0)} ms not idle (percentages of that)`,
    '',
    'by area:',
  ];
  for (const [a, ms] of [...ar]
    .filter(([a]) => a !== '(idle)')
    .sort((x, y) => y[1] - x[1])
    .slice(0, 12)) {
    lines.push(`  ${pct(ms)} ${ms.toFixed(0).padStart(6)} ms  ${a}`);
  }
  lines.push('', `top ${top} functions by self time:`);
  for (const [l, ms] of [...fn]
    .filter(([l]) => !l.startsWith('(idle)'))
    .sort((x, y) => y[1] - x[1])
    .slice(0, top)) {
    lines.push(`  ${pct(ms)} ${ms.toFixed(0).padStart(6)} ms  ${l}`);
  }
  lines.push('', `top ${top} functions by inclusive time (src/ and dist/ only):`);
  for (const [l, ms] of [...incl]
    .filter(([l]) => / (src|dist)\//.test(l))
    .sort((x, y) => y[1] - x[1])
    .slice(0, top)) {
    lines.push(`  ${pct(ms)} ${ms.toFixed(0).padStart(6)} ms  ${l}`);
  }
  return lines.join('\n');
}
