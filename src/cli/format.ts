/**
 * Text formatting shared by the commands: tables, error lines, sizes.
 * @packageDocumentation
 */
import { IpcError } from '../errors';

/** Left-aligned columns, two spaces apart. */
export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** `A=1 B=2`, or `none`. */
export function codes(c: Record<string, number>): string {
  const entries = Object.entries(c);
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(' ') : 'none';
}

/** A byte count for people. */
export function bytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/** One line saying what went wrong, with the typed error's code and where it came from. */
export function describe(e: unknown): string {
  if (e instanceof IpcError) {
    if (e.name === 'CliError' || e.code === 'CONFIG_INVALID') return e.message;
    const d = e.details as { provider?: string; httpStatus?: number } | undefined;
    const where = [d?.provider && `provider ${d.provider}`, d?.httpStatus && `HTTP ${d.httpStatus}`].filter(Boolean).join(', ');
    return `${e.code}: ${e.message}${where ? ` (${where})` : ''}${e.retryable ? ' [retryable]' : ''}`;
  }
  // ConfigError (until it is an IpcError) and other errors with a message the user can act on.
  if (e instanceof Error && e.name === 'ConfigError') return e.message;
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}

/** The JSON form of any error, for `--json` output. */
export function errorJson(e: unknown): { code: string; message: string; retryable: boolean; details?: Record<string, unknown> } {
  if (e instanceof IpcError) return e.toJSON();
  const err = e as { code?: unknown; message?: unknown; name?: string; retryable?: unknown };
  return {
    code: typeof err?.code === 'string' ? err.code : err?.name === 'ConfigError' ? 'CONFIG_INVALID' : 'INTERNAL',
    message: typeof err?.message === 'string' ? err.message : String(e),
    retryable: err?.retryable === true,
  };
}
