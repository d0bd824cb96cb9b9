/**
 * The native control socket's connect never blocks the event loop (review R4): a listener whose
 * accept queue is full makes it fail at once with `ACCEPT_QUEUE_FULL`, for the caller to retry
 * with a timer.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import native = require('../../src/native');
import type { NativeControlStream } from '../../index';

test('connect to a listener whose accept queue is full fails at once with ACCEPT_QUEUE_FULL', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lapce-ai-ctl-'));
  const sock = path.join(dir, 'full.sock');
  const server = net.createServer();
  // listen() binds and listens synchronously; libuv only accepts once this turn returns, so
  // until then the queue (backlog 1) fills exactly as with a server that never accepts.
  server.listen({ path: sock, backlog: 1 });
  const held: NativeControlStream[] = [];
  let failure: unknown;
  try {
    for (let i = 0; i < 64 && failure === undefined; i++) {
      try {
        held.push(native.NativeControlStream.connect(sock));
      } catch (e) {
        failure = e;
      }
    }
  } finally {
    for (const s of held) s.close();
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  }
  t.true(held.length >= 1, 'the queue had room for the first connects');
  t.is((failure as { code?: string } | undefined)?.code, 'ACCEPT_QUEUE_FULL', String(failure));
  t.regex(String((failure as Error).message), /EAGAIN/);
});
