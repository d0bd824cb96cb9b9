/**
 * Where the server listens by default, and the owner-only directory around it.
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MAX_SOCKET_PATH_BYTES } from '../defaults';
import { IpcError } from '../errors';

/**
 * The default socket path: `$XDG_RUNTIME_DIR/lapce-ai/ai.sock`, else `/tmp/lapce-ai-<uid>/ai.sock`.
 * The control socket itself is this path plus `.ctl`.
 * @category IPC
 */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const uid = ownUid();
  const runtime = env.XDG_RUNTIME_DIR;
  return runtime ? path.join(runtime, 'lapce-ai', 'ai.sock') : path.join('/tmp', `lapce-ai-${uid}`, 'ai.sock');
}

/** Suffix of the control socket: the socket path `P` names the control socket `P.ctl`. */
export const CONTROL_SUFFIX = '.ctl';

/**
 * The control socket's path for a socket path given as `P` or `P.ctl`.
 * @category IPC
 */
export function controlPath(socketPath: string): string {
  return socketPath.endsWith(CONTROL_SUFFIX) ? socketPath : `${socketPath}${CONTROL_SUFFIX}`;
}

/**
 * Checks a socket path a user gave (`P` or `P.ctl`, both name the control socket `P.ctl`)
 * before anything is tried: the control path must fit in `sun_path` (at most
 * {@link MAX_SOCKET_PATH_BYTES} bytes), and neither spelling may be a directory. Throws
 * INVALID_ARGUMENT saying which rule the path breaks.
 */
export function resolveSocketPath(socketPath: string): { socketPath: string; controlPath: string } {
  const resolved = checkSocketPathSyntax(socketPath);
  refuseDirectory(socketPath);
  return resolved;
}

/**
 * The checks of {@link resolveSocketPath} that need no system call (a string, no NUL, fits in
 * `sun_path`). A client runs only these before connecting and {@link refuseDirectory} when the
 * connect fails: a connect to a directory fails anyway, so the two `stat`s are paid only then,
 * not on every connect.
 */
export function checkSocketPathSyntax(socketPath: string): { socketPath: string; controlPath: string } {
  if (typeof socketPath !== 'string' || socketPath.length === 0)
    throw new IpcError('INVALID_ARGUMENT', 'socket path must be a non-empty string');
  if (socketPath.includes('\0')) throw new IpcError('INVALID_ARGUMENT', 'socket path must not contain a NUL byte');
  const ctl = controlPath(socketPath);
  const bytes = Buffer.byteLength(ctl, 'utf8');
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new IpcError(
      'INVALID_ARGUMENT',
      `socket path ${socketPath} is too long: the control socket ${ctl} is ${bytes} bytes, a Unix socket path holds at most ${MAX_SOCKET_PATH_BYTES}`,
      { details: { path: socketPath, bytes, limit: MAX_SOCKET_PATH_BYTES } },
    );
  }
  return { socketPath, controlPath: ctl };
}

/** Throws INVALID_ARGUMENT when `P` or its control path `P.ctl` is a directory. */
export function refuseDirectory(socketPath: string): void {
  for (const p of new Set([socketPath, controlPath(socketPath)])) {
    let st: fs.Stats | undefined;
    try {
      // Usually only one spelling exists: a missing path must not cost a thrown error.
      st = fs.statSync(p, { throwIfNoEntry: false });
    } catch {
      st = undefined;
    }
    if (st?.isDirectory())
      throw new IpcError('INVALID_ARGUMENT', `socket path ${p} is a directory; give a file path such as ${path.join(p, 'ai.sock')}`);
  }
}

/**
 * Makes sure the socket's directory exists (created 0700). With `strict` (the default path),
 * it must also belong to us and only we may enter it: a directory owned by someone else (say,
 * planted in /tmp) is refused, and ours is tightened to 0700. A directory the user chose is
 * left as it is.
 */
export function ensureSocketDir(socketPath: string, strict: boolean): void {
  const dir = path.dirname(socketPath);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!strict) return;
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new IpcError('INVALID_ARGUMENT', `${dir} is not a directory`);
  if (st.uid !== ownUid()) throw new IpcError('INVALID_ARGUMENT', `${dir} belongs to uid ${st.uid}, not to us`);
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

/** This process's uid; unlike `os.userInfo()` it needs no passwd entry (`docker run -u 1234`). */
function ownUid(): number {
  return process.getuid?.() ?? 0;
}
