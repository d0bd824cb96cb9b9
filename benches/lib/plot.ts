/**
 * SVG plots of the `peers` suite, rendered headlessly: vega-lite compiles a spec to vega, and a
 * vega View with `renderer: 'none'` writes SVG without a canvas or a browser.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { PeersData } from '../peers';

type Spec = Record<string, unknown>;

async function toSvg(spec: Spec): Promise<string> {
  const vl = await import('vega-lite');
  const vega = await import('vega');
  const view = new vega.View(vega.parse(vl.compile(spec as never).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

const FONT = { config: { font: 'sans-serif', view: { stroke: null }, axis: { labelLimit: 320 }, legend: { labelLimit: 320 } } };

/** One colour per peer, the same in every plot (lapce-ai-ipc in blues). */
const PALETTE = ['#08519c', '#4292c6', '#e6550d', '#31a354', '#de2d26', '#756bb1', '#8c6d31', '#9ecae1'];

function colour(d: PeersData, extra: string[] = []): { scale: { domain: string[]; range: string[] } } {
  const domain = [...d.peers.map((p) => p.label), ...extra];
  return { scale: { domain, range: PALETTE.slice(0, domain.length) } };
}

const sleepLabel = (placement: string): string => `lapce-ai-ipc, JSON, idle 'sleep' (${placement})`;

/** Round-trip CDFs of every peer (log-scale latency), plus lapce-ai-ipc never polling. */
function cdfSpec(d: PeersData, title: string): Spec {
  const values: Array<{ peer: string; us: number; q: number }> = [];
  for (const p of d.peers) for (const [us, q] of p.cdf) values.push({ peer: p.label, us, q });
  for (const s of d.sleep) {
    if (s.placement === 'same-cpu') continue;
    for (const [us, q] of s.cdf) values.push({ peer: sleepLabel(s.placement), us, q });
  }
  const extra = d.sleep.filter((s) => s.placement !== 'same-cpu').map((s) => sleepLabel(s.placement));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: '64 B round trip, cumulative distribution', subtitle: title },
    width: 640,
    height: 360,
    data: { values },
    mark: { type: 'line', point: { size: 12 }, interpolate: 'monotone' },
    encoding: {
      x: { field: 'us', type: 'quantitative', scale: { type: 'log' }, title: 'round trip (µs, log scale)' },
      y: { field: 'q', type: 'quantitative', title: 'fraction of round trips ≤ x', scale: { domain: [0, 1] } },
      color: {
        field: 'peer',
        type: 'nominal',
        title: null,
        ...colour(d, extra),
        legend: { orient: 'bottom', columns: 2, labelLimit: 400, columnPadding: 24 },
      },
    },
    ...FONT,
  };
}

const METRICS = [
  'pipelined requests, 64 loops of await request() (k req/s)',
  'stream of 50k chat deltas (k chunks/s)',
  '64 KiB messages, 4 in flight (GB/s)',
  '1 MiB messages, 4 in flight (GB/s)',
];

/** Throughput of every peer: pipelined requests, stream chunks, 64 KiB and 1 MiB messages. */
function throughputSpec(d: PeersData, title: string): Spec {
  const values: Array<{ peer: string; metric: string; value: number; min: number }> = [];
  for (const p of d.peers) {
    values.push({ peer: p.label, metric: METRICS[0], value: p.pipe.median / 1e3, min: p.pipe.min / 1e3 });
    values.push({ peer: p.label, metric: METRICS[1], value: p.stream.median / 1e3, min: p.stream.min / 1e3 });
    values.push({ peer: p.label, metric: METRICS[2], value: p.large['64k'].gbps.median, min: p.large['64k'].gbps.min });
    values.push({ peer: p.label, metric: METRICS[3], value: p.large['1m'].gbps.median, min: p.large['1m'].gbps.min });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: 'Throughput (bar: median over rounds; tick: minimum)', subtitle: title },
    data: { values },
    facet: {
      row: {
        field: 'metric',
        type: 'nominal',
        title: null,
        sort: METRICS,
        header: { labelAngle: 0, labelOrient: 'top', labelAnchor: 'start', labelFontWeight: 'bold', labelFontSize: 12 },
      },
    },
    spec: {
      width: 420,
      height: { step: 16 },
      layer: [
        {
          mark: 'bar',
          encoding: { x: { field: 'value', type: 'quantitative', title: null }, color: { field: 'peer', ...colour(d), legend: null } },
        },
        { mark: { type: 'tick', color: 'black', thickness: 2 }, encoding: { x: { field: 'min', type: 'quantitative' } } },
        {
          mark: { type: 'text', align: 'left', dx: 4 },
          encoding: { x: { field: 'value', type: 'quantitative' }, text: { field: 'value', type: 'quantitative', format: ',.3~r' } },
        },
      ],
      encoding: { y: { field: 'peer', type: 'nominal', title: null, sort: null } },
    },
    resolve: { scale: { x: 'independent' } },
    ...FONT,
  };
}

/** Writes `latency-cdf.svg` and `throughput.svg` into `dir`; returns their paths. */
export async function writePlots(d: PeersData, dir: string, title: string): Promise<string[]> {
  fs.mkdirSync(dir, { recursive: true });
  const out: string[] = [];
  for (const [name, spec] of [
    ['latency-cdf.svg', cdfSpec(d, title)],
    ['throughput.svg', throughputSpec(d, title)],
  ] as const) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, await toSvg(spec));
    out.push(file);
  }
  return out;
}
