/**
 * `docs/bench/RESULTS.md`: the results of one `npm run bench` run as markdown, each table with
 * the command that produced it and the machine's load average. The README's Measured table is
 * taken from here.
 */
import type { PeersData } from '../peers';
import type { GateResult } from './gate';
import { type Row } from './report';

/** What run.ts writes to results.json, as far as this page needs it. */
export interface RunResults {
  date: string;
  node: string;
  platform: string;
  cpu: string;
  loadavg: number[];
  quick: boolean;
  command: string;
  suites: Record<string, { description: string; rows: Array<Row & { ratio: number | null; met: boolean | null }>; data?: unknown }>;
}

const n = (v: number): string => {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(0)} k`;
  if (a >= 1e3) return `${(v / 1e3).toFixed(1)} k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
};
const load = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ');

function peersSection(d: PeersData, command: string): string[] {
  const lines = [
    '## lapce-ai-ipc against the IPC a Node user would otherwise pick',
    '',
    `Command: \`${command}\`. Load average ${load(d.loadavg.start)} at the start, ${load(d.loadavg.end)} at the end.`,
    `Each server runs in its own process; the client is the bench process. ${d.plan.rounds} rounds interleave the peers;`,
    'each figure is the median over rounds, with the worst round (throughput) or best round (latency) in brackets.',
    'Round trips: sequential `await client.request()` of 64 B. Pipelined: 64 concurrent loops of `await client.request()`.',
    'Streams: `for await` over 50,000 chat-delta chunks (48 B). Large: 4 in flight, client → server, acknowledged.',
    'CPU: µs of CPU per message, client process / server process (user+sys, from `process.cpuUsage()` and `/proc/<pid>/stat`).',
    'On a 2-vCPU machine shared with other work, whether a polling lapce-ai-ipc client and its server run on one CPU or two',
    'decides its round trip from round to round (the steps in its CDF); the sleep table below pins them to show both cases.',
    '',
    '| transport | round trip p50 / p99 / p99.9 µs | pipelined req/s | CPU/req µs (client / server) | stream chunks/s (min) | CPU/chunk µs | 64 KiB msg/s, GB/s | 1 MiB msg/s, GB/s |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const p of d.peers) {
    const l64 = p.large['64k'];
    const l1m = p.large['1m'];
    lines.push(
      `| ${p.label} | ${n(p.rtt.p50.median)} / ${n(p.rtt.p99.median)} / ${n(p.rtt.p999.median)} (best p50 ${n(p.rtt.p50.min)}) ` +
        `| ${n(p.pipe.median)} (${n(p.pipe.min)}) | ${n(p.pipe.clientUsPerMsg)} / ${n(p.pipe.serverUsPerMsg)} ` +
        `| ${n(p.stream.median)} (${n(p.stream.min)}; ${p.stream.reps} streams) | ${n(p.stream.clientUsPerMsg)} / ${n(p.stream.serverUsPerMsg)} ` +
        `| ${n(l64.median)}, ${l64.gbps.median.toFixed(2)} (${l64.gbps.min.toFixed(2)}) | ${n(l1m.median)}, ${l1m.gbps.median.toFixed(2)} (${l1m.gbps.min.toFixed(2)}) |`,
    );
  }
  lines.push(
    '',
    'Every lapce-ai-ipc stream of the run, slowest first, with the server counters per chunk (from `$metrics`):',
    'a stream that collapses shows whether it paid doorbells (the client slept), wake-ups (the server slept) or a full ring.',
    '',
    '| peer | chunks/s | doorbells rung / chunk | doorbells suppressed / chunk | server wake-ups / chunk | ring-full waits / chunk |',
    '|---|---|---|---|---|---|',
  );
  for (const p of d.peers) {
    if (!p.streamRuns?.some((r) => r.counters)) continue;
    for (const r of [...p.streamRuns].sort((a, b) => a.rate - b.rate)) {
      const c = r.counters ?? {};
      const f = (k: string): string => (Number.isFinite(c[k]) ? c[k].toFixed(3) : '–');
      lines.push(
        `| ${p.label} | ${n(r.rate)} | ${f('doorbellsRung')} | ${f('doorbellsSuppressed')} | ${f('wakeups')} | ${f('ringFullWaits')} |`,
      );
    }
  }
  if ('skipped' in d.rust) lines.push('', `${d.rust.skipped}.`);
  else lines.push('', `Rust client (lapce_ai_client, against the lapce-ai-ipc bytes server): \`${JSON.stringify(d.rust)}\`.`);
  lines.push(
    '',
    '![64 B round trip CDF](latency-cdf.svg)',
    '',
    '![throughput](throughput.svg)',
    '',
    "### Never polling against the machine's floor",
    '',
    "lapce-ai-ipc with `channel: { idle: 'sleep' }` on both sides (every hop is a doorbell wake-up), and in the same run a C",
    'ping-pong between two processes blocked in `read()` (`benches/floor/floor.c`): each of its round trips is two wake-ups.',
    '',
    '| placement | idle sleep round trip p50 / p99 µs | floor: eventfd p50 / p99 µs | floor: socketpair p50 / p99 µs | ratio to eventfd floor | ratio to socketpair floor |',
    '|---|---|---|---|---|---|',
  );
  for (const s of d.sleep) {
    if ('skipped' in s.floor) {
      lines.push(`| ${s.placement} | ${n(s.p50.median)} / ${n(s.p99.median)} | ${s.floor.skipped} | | | |`);
      continue;
    }
    const f = s.floor;
    lines.push(
      `| ${s.placement} | ${n(s.p50.median)} / ${n(s.p99.median)} | ${n(f.eventfd.p50)} / ${n(f.eventfd.p99)} | ${n(f.socketpair.p50)} / ${n(f.socketpair.p99)} ` +
        `| ${(s.p50.median / f.eventfd.p50).toFixed(2)}x | ${(s.p50.median / f.socketpair.p50).toFixed(2)}x |`,
    );
  }
  return lines;
}

function gateSection(gate: GateResult[], command: string): string[] {
  return [
    '## CI gate (ratios against `net` in the same run)',
    '',
    `Command: \`${command}\`; floors in \`benches/lib/gate.ts\` (calibration: [CALIBRATION.md](CALIBRATION.md)).`,
    '',
    '| ratio | value | floor | |',
    '|---|---|---|---|',
    ...gate.map((g) => `| ${g.what} | ${g.ratio.toFixed(2)}x | ${g.floor}x | ${g.pass ? 'pass' : '**FAIL**'} |`),
  ];
}

function rowsSection(name: string, s: RunResults['suites'][string], command: string): string[] {
  return [
    `## ${name}: ${s.description}`,
    '',
    `Command: \`${command}\`.`,
    '',
    '| what | value | unit | vs baseline | note |',
    '|---|---|---|---|---|',
    ...s.rows.map(
      (r) =>
        `| ${r.what} | ${n(r.value)} | ${r.unit} | ${r.ratio === null ? '' : `${r.ratio.toFixed(1)}x`} | ${[r.target ? `target ${r.target.op} ${r.target.value}: ${r.met ? 'met' : 'missed'}` : '', r.note ?? ''].filter(Boolean).join('; ').replace(/\|/g, '\\|')} |`,
    ),
  ];
}

/** The whole page. */
export function resultsMarkdown(r: RunResults, gate: GateResult[] | null): string {
  const lines = [
    '# Benchmark results',
    '',
    '<!-- Generated by `npm run bench` (benches/lib/results-md.ts); do not edit by hand. -->',
    '',
    `Run ${r.date} on ${r.platform}, ${r.cpu}, Node ${r.node}; load average ${load(r.loadavg)} at the start${r.quick ? ' (quick run)' : ''}.`,
    'The machine was shared with other work while this ran: compare figures within one run, and see the load averages.',
    '',
  ];
  for (const [name, s] of Object.entries(r.suites)) {
    const cmd = `npm run bench -- --suite ${name}${r.quick ? ' --quick' : ''}`;
    if (name === 'peers' && s.data) lines.push(...peersSection(s.data as PeersData, cmd), '');
    else lines.push(...rowsSection(name, s, cmd), '');
  }
  if (gate) lines.push(...gateSection(gate, `npm run bench -- --suite peers${r.quick ? ' --quick' : ''}`), '');
  return lines.join('\n');
}
