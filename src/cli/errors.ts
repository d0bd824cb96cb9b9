/**
 * The CLI's error: a failure reported as one line on stderr, with the exit status to use.
 * @packageDocumentation
 */
import { IpcError } from '../errors';
import type { IpcErrorCode, IpcErrorOptions } from '../errors';

/** Options of {@link CliError}. */
export interface CliErrorOptions extends IpcErrorOptions {
  /** Process exit status (default 1; 130 after Ctrl-C). */
  exitCode?: number;
}

/**
 * A failure the user can fix (a bad flag, no server at the socket, Ctrl-C), printed without a
 * stack. An {@link IpcError} like every error of this package, so `--json` prints it the same way.
 */
export class CliError extends IpcError {
  /** Process exit status. */
  readonly exitCode: number;

  constructor(code: IpcErrorCode, message: string, options: CliErrorOptions = {}) {
    super(code, message, options);
    this.name = 'CliError';
    this.exitCode = options.exitCode ?? 1;
  }
}
