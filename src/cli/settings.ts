/**
 * Where the CLI's settings come from (flags, then the environment, then the config file, then
 * defaults), and the parsers of its option values.
 * @packageDocumentation
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { loadConfig } from '../ai/config';
import type { ConfigInput, ResolvedConfig } from '../ai/config';
import { defaultSocketPath } from '../ipc/paths';

/** The command's name, as installed in `node_modules/.bin`. */
export const NAME = 'lapce-ai-ipc';

/** The levels `--log-level` and `LAPCE_AI_LOG_LEVEL` accept (pino's). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** How long `serve` lets calls in flight finish after SIGINT/SIGTERM, unless `--shutdown-deadline` says otherwise. */
export const DEFAULT_SHUTDOWN_DEADLINE_MS = 5000;

/** Socket path: flag > `LAPCE_AI_SOCKET` > the default path. Passed on as the user wrote it. */
export function resolveSocket(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? nonEmpty(env.LAPCE_AI_SOCKET) ?? defaultSocketPath(env);
}

/**
 * Config file: flag > `LAPCE_AI_CONFIG` > `$XDG_CONFIG_HOME/lapce-ai/config.json` if it exists.
 * An explicitly named file must exist (loadConfig reports it); the implicit one is optional.
 */
export function resolveConfigFile(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = flag ?? nonEmpty(env.LAPCE_AI_CONFIG);
  if (explicit !== undefined) return explicit;
  const base = nonEmpty(env.XDG_CONFIG_HOME) ?? path.join(os.homedir(), '.config');
  const implicit = path.join(base, 'lapce-ai', 'config.json');
  return existsSync(implicit) ? implicit : undefined;
}

/** Load the provider configuration, flags given as the top layer. */
export function configFrom(opts: { config?: string; default?: string; fallback?: string[] }): { config: ResolvedConfig; file?: string } {
  const file = resolveConfigFile(opts.config);
  const overrides: ConfigInput = {};
  if (opts.default !== undefined) overrides.default = opts.default;
  if (opts.fallback !== undefined) overrides.fallback = opts.fallback;
  return { config: loadConfig({ file, overrides }), file };
}

export function nonEmpty(v: string | undefined): string | undefined {
  return v !== undefined && v.trim() !== '' ? v : undefined;
}

/** Commander parser: an integer. */
export function int(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n)) throw new InvalidArgumentError('not an integer');
  return n;
}

/** Commander parser: an integer >= 0. */
export function count(v: string): number {
  const n = int(v);
  if (n < 0) throw new InvalidArgumentError('must be 0 or more');
  return n;
}

/** Commander parser: a finite number. */
export function num(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('not a number');
  return n;
}

/** Commander parser: a TCP port (0 picks a free one). */
export function port(v: string): number {
  const n = int(v);
  if (n < 0 || n > 65535) throw new InvalidArgumentError('not a port (0-65535)');
  return n;
}

/** Commander parser: a comma-separated list. */
export function list(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Commander parser: a comma-separated list of uids. */
export function uids(v: string): number[] {
  const out = list(v).map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new InvalidArgumentError(`"${s}" is not a uid`);
    return n;
  });
  if (out.length === 0) throw new InvalidArgumentError('no uid given');
  return out;
}

const UNITS: Record<string, number> = {
  '': 1,
  k: 1 << 10,
  ki: 1 << 10,
  kib: 1 << 10,
  m: 1 << 20,
  mi: 1 << 20,
  mib: 1 << 20,
  g: 1 << 30,
  gi: 1 << 30,
  gib: 1 << 30,
};

/** Commander parser: a size in bytes, with an optional binary unit (`65536`, `64K`, `1MiB`). */
export function size(v: string): number {
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(v);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new InvalidArgumentError('not a size (bytes, or with K, M, G: 64K, 1M)');
  return Number(m[1]) * unit;
}

/** Commander parser: a ring size, a power of two (the transport's rule; the server checks it too). */
export function ringSize(v: string): number {
  const n = size(v);
  if (n <= 0 || (n & (n - 1)) !== 0) throw new InvalidArgumentError(`${n} bytes is not a power of two (e.g. 64K, 1M, 8M)`);
  return n;
}
