/**
 * What a benchmark suite returns, and how rows are printed.
 */

/** CPU time spent by the processes of a measurement, and the wall time it took. */
export interface CpuReport {
  /** user+sys of this (the parent) process, ms. */
  parentMs: number;
  /** user+sys of the child process, ms. */
  childMs: number;
  /** Wall time of the measurement, ms. */
  wallMs: number;
}

/** One measured figure. */
export interface Row {
  /** Stable id (for baselines and results.json). */
  id: string;
  /** What was measured. */
  what: string;
  value: number;
  unit: string;
  /** Whether a lower or a higher value is better. */
  better: 'lower' | 'higher';
  /** Id of the row this one is compared against. */
  baseline?: string;
  /** The goal, if there is one. */
  target?: { op: '<=' | '>='; value: number };
  cpu?: CpuReport;
  note?: string;
}

/** Handed to every suite. */
export interface BenchContext {
  /** Roughly 10x fewer iterations (CI smoke). */
  quick: boolean;
  /** Progress output (stderr), so the table on stdout stays clean. */
  log: (msg: string) => void;
  /** Stores data beside the suite's rows in results.json (`suites.<name>.data`), e.g. for plots. */
  attach?: (data: unknown) => void;
}

/** A benchmark suite: a module that can be registered in `benches/run.ts`. */
export interface Suite {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<Row[]>;
}

/** How much better `row` is than its baseline (>1: better), or null. */
export function ratio(row: Row, rows: Row[]): number | null {
  if (!row.baseline) return null;
  const base = rows.find((r) => r.id === row.baseline);
  if (!base || !(base.value > 0) || !(row.value > 0)) return null;
  return row.better === 'lower' ? base.value / row.value : row.value / base.value;
}

/** Whether the row meets its target (null: no target). */
export function meets(row: Row): boolean | null {
  if (!row.target) return null;
  return row.target.op === '<=' ? row.value <= row.target.value : row.value >= row.target.value;
}

function fmtValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

function fmtCpu(c?: CpuReport): string {
  if (!c) return '';
  const total = c.parentMs + c.childMs;
  const cores = c.wallMs > 0 ? total / c.wallMs : 0;
  const ms = (v: number) => v.toFixed(v < 10 ? 1 : 0);
  return `${ms(total)} ms (${ms(c.parentMs)}+${ms(c.childMs)}) = ${cores.toFixed(2)} cores`;
}

/** Renders rows as a plain-text table. */
export function formatTable(title: string, rows: Row[]): string {
  const head = ['what', 'value', 'unit', 'vs baseline', 'CPU (parent+child) / wall', 'note'];
  const body = rows.map((r) => {
    const q = ratio(r, rows);
    const m = meets(r);
    const target = r.target ? `target ${r.target.op} ${r.target.value}: ${m ? 'met' : 'MISSED'}` : '';
    const note = [target, r.note ?? ''].filter(Boolean).join('; ');
    return [r.what, fmtValue(r.value), r.unit, q === null ? '' : `${q.toFixed(1)}x`, fmtCpu(r.cpu), note];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 1 || i === 3 ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join(' | ')
      .trimEnd();
  const sep = widths.map((w) => '-'.repeat(w)).join('-|-');
  return [`## ${title}`, '', line(head), sep, ...body.map(line)].join('\n');
}

/** Percentile (0..100) of an already sorted array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}
