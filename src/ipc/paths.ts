/**
 * Where the server listens by default, and the owner-only directory around it.
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { IpcError } from '../errors';

/**
 * The default socket path: `$XDG_RUNTIME_DIR/lapce-ai/ai.sock`, else `/tmp/lapce-ai-<uid>/ai.sock`.
 * The control socket itself is this path plus `.ctl`.
 */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const uid = os.userInfo().uid;
  const runtime = env.XDG_RUNTIME_DIR;
  return runtime ? path.join(runtime, 'lapce-ai', 'ai.sock') : path.join('/tmp', `lapce-ai-${uid}`, 'ai.sock');
}

/** The control socket's path for a socket path. */
export function controlPath(socketPath: string): string {
  return `${socketPath}.ctl`;
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
  if (st.uid !== os.userInfo().uid) throw new IpcError('INVALID_ARGUMENT', `${dir} belongs to uid ${st.uid}, not to us`);
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}
