/**
 * Connecting to a running server, with advice when nothing listens at the socket.
 * @packageDocumentation
 */
import { IpcError } from '../errors';
import { IpcClient } from '../ipc/client';
import { CliError } from './errors';
import { describe } from './format';
import { NAME } from './settings';

/** Error codes that mean "no server there" (Node's, as `net` gives them, and the client's older form). */
const NOBODY = new Set(['ENOENT', 'ECONNREFUSED']);

/** Connect to the server at `socketPath` (as the user gave it). */
export async function connect(socketPath: string): Promise<IpcClient> {
  try {
    return await IpcClient.connect(socketPath, { name: `${NAME}-cli` });
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const cause = (e as { cause?: { code?: unknown } }).cause?.code;
    // Only "nothing listens" gets the advice; a rejected handshake (say, server full) does not.
    const nobody =
      NOBODY.has(String(code)) ||
      NOBODY.has(String(cause)) ||
      (e instanceof IpcError && e.code === 'CONNECTION_LOST' && /cannot connect/.test(e.message));
    if (nobody)
      throw new CliError(
        'CONNECTION_LOST',
        `no ${NAME} server is reachable at ${socketPath} (${(e as Error).message}).\nStart one with: ${NAME} serve --socket ${socketPath}`,
        { cause: e },
      );
    throw new CliError('CONNECTION_LOST', `cannot connect to the ${NAME} server at ${socketPath}: ${describe(e)}`, { cause: e });
  }
}
