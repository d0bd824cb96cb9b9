/**
 * `summarizeMetrics` (shared by `stats` and `demo`) against a real server's `$metrics`: the
 * metric names it reads are the ones the server registers, so a renamed metric fails here.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import pino from 'pino';
import { loadConfig } from '../../src/ai/config';
import { attachChatBackend, CHAT_METHOD } from '../../src/backend';
import { formatStatsLine, summarizeMetrics } from '../../src/cli/metrics-summary';
import { IpcClient } from '../../src/ipc/client';
import { IpcServer } from '../../src/ipc/server';

test('a request, a stream and a chat show up in the summary of the server metrics', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lapce-pkg-summary-'));
  const server = new IpcServer({ socketPath: path.join(dir, 's.sock'), logger: pino({ level: 'silent' }) });
  server.handle('echo', (x: unknown) => x);
  attachChatBackend(server, { config: loadConfig({ env: {} }) });
  await server.listen();
  const client = await IpcClient.connect(path.join(dir, 's.sock'));
  t.teardown(async () => {
    client.close();
    await server.close({ deadlineMs: 0 });
    rmSync(dir, { recursive: true, force: true });
  });
  await client.request('echo', { hello: 'world' });
  await t.throwsAsync(client.request('no-such-method'));
  for await (const ev of client.stream(CHAT_METHOD, { model: 'echo', messages: [{ role: 'user', content: 'hi' }] })) void ev;

  const s = summarizeMetrics(await server.metrics());
  t.is(s.connectionsActive, 1);
  t.is(s.connectionsTotal, 1);
  t.is(s.streamsActive, 0);
  t.true(s.messagesIn >= 3, `messages in: ${s.messagesIn}`);
  t.true(s.messagesOut >= 3, `messages out: ${s.messagesOut}`);
  t.true(s.bytesIn > 0 && s.bytesOut > 0);
  t.deepEqual(s.errors, { UNKNOWN_METHOD: 1 });
  t.is(s.providers.length, 1);
  t.like(s.providers[0], { provider: 'echo', requests: 1, errors: {} });
  t.true(s.providers[0].tokensOut > 0);
  t.regex(formatStatsLine(s), /^metrics: echo: 1 request\(s\), \d+ tokens in \/ \d+ out/);
});
