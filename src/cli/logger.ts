/**
 * The CLI's logger: pino on stderr, human-readable (pino-pretty) when stderr is a terminal or with
 * `--pretty`, JSON lines otherwise (for log collectors). Synchronous: lines are few, and none may
 * be lost when the process ends.
 * @packageDocumentation
 */
import pino from 'pino';
import type { Logger } from 'pino';
import pretty from 'pino-pretty';
import { CliError } from './errors';
import { LOG_LEVELS, NAME } from './settings';

/** Options of {@link createCliLogger}. */
export interface CliLoggerOptions {
  /** From `--log-level`; else `LAPCE_AI_LOG_LEVEL`; else `info`. */
  level?: string;
  /** Force human-readable lines; default: when stderr is a TTY. */
  pretty?: boolean;
  env?: NodeJS.ProcessEnv;
}

/** Checks a level name, whether it came from a flag or the environment. */
export function checkLevel(level: string, source: string): string {
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    throw new CliError('INVALID_ARGUMENT', `invalid log level "${level}" (${source}); use one of: ${LOG_LEVELS.join(', ')}`);
  return level;
}

/** A logger writing to stderr. */
export function createCliLogger(opts: CliLoggerOptions = {}): Logger {
  const env = opts.env ?? process.env;
  const level =
    opts.level !== undefined
      ? checkLevel(opts.level, '--log-level')
      : env.LAPCE_AI_LOG_LEVEL
        ? checkLevel(env.LAPCE_AI_LOG_LEVEL, 'LAPCE_AI_LOG_LEVEL')
        : 'info';
  const human = opts.pretty ?? process.stderr.isTTY === true;
  const stream = human
    ? pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY === true, ignore: 'pid,hostname' })
    : pino.destination({ dest: 2, sync: true });
  return pino({ name: NAME, level }, stream);
}
