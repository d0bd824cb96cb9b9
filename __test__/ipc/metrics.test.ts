/**
 * Real metrics after real traffic, through all three ways they are served: `server.metrics()`,
 * Prometheus text, and the built-in `$metrics` method (`client.serverMetrics()`). Plus the log
 * lines a server writes.
 */
import test from 'ava';
import { encodeFrame, FrameKind } from '../../src/protocol/frame';
import { captureLogger, connect, ipcError, metricValue, mutatedHandshake, probeEvent, startServer, waitFor } from './helpers';

test('after traffic every metric family shows it, in all three forms', async (t) => {
  const { logger, lines } = captureLogger('info');
  const srv = await startServer(t, { logger });
  const { server, socketPath } = srv;
  const client = await connect(t, socketPath, { name: 'metrics-client' });
  await waitFor(() => server.connections === 1, 'session open');

  // Requests, spaced out so that some find the server asleep (doorbells) and some awake.
  for (let i = 0; i < 20; i++) {
    await client.request('echo', { i });
    if (i % 5 === 0) await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(Array.from({ length: 30 }, (_, i) => client.request('echo', Buffer.alloc(100, i))));
  // A stream, observed while it runs.
  const ac = new AbortController();
  const chunks: unknown[] = [];
  const running = (async () => {
    try {
      for await (const c of client.stream('ticker', { tag: 'm-run', intervalMs: 5 }, { signal: ac.signal })) chunks.push(c);
    } catch {
      /* cancelled below */
    }
  })();
  await probeEvent(srv, (e) => e.event === 'started' && e.tag === 'm-run', 'stream started');
  await waitFor(() => chunks.length > 0, 'first chunk');
  t.is(metricValue(await server.metrics(), 'lapce_ipc_streams_active'), 1);
  ac.abort();
  await running;
  for await (const _ of client.stream('ticker', { tag: 'm-done', count: 5 }));
  // Errors.
  await ipcError(t, client.request('nope'));
  await ipcError(t, client.request('boom'));
  await ipcError(t, client.request('boom'));
  await waitFor(async () => metricValue(await server.metrics(), 'lapce_ipc_streams_active') === 0, 'streams to finish');

  const m = await server.metrics();
  t.is(metricValue(m, 'lapce_ipc_connections_active'), 1);
  t.is(metricValue(m, 'lapce_ipc_connections_total'), 1);
  t.is(metricValue(m, 'lapce_ipc_handshakes_total'), 1);
  t.is(metricValue(m, 'lapce_ipc_handshake_seconds', {}, 'lapce_ipc_handshake_seconds_count'), 1);
  t.true(metricValue(m, 'lapce_ipc_handshake_seconds', {}, 'lapce_ipc_handshake_seconds_sum') > 0);
  const calls = 20 + 30 + 2 + 3;
  t.true(metricValue(m, 'lapce_ipc_messages_total', { direction: 'in' }) >= calls, 'messages in');
  t.true(metricValue(m, 'lapce_ipc_messages_total', { direction: 'out' }) >= calls + 5, 'messages out');
  t.true(metricValue(m, 'lapce_ipc_bytes_total', { direction: 'in' }) > 30 * 100, 'bytes in');
  t.true(metricValue(m, 'lapce_ipc_bytes_total', { direction: 'out' }) > 30 * 100, 'bytes out');
  t.is(metricValue(m, 'lapce_ipc_request_seconds', { method: 'echo' }, 'lapce_ipc_request_seconds_count'), 50);
  t.true(metricValue(m, 'lapce_ipc_request_seconds', { method: 'echo' }, 'lapce_ipc_request_seconds_sum') > 0);
  t.is(metricValue(m, 'lapce_ipc_request_seconds', { method: 'echo', le: '+Inf' }, 'lapce_ipc_request_seconds_bucket'), 50);
  t.is(metricValue(m, 'lapce_ipc_request_seconds', { method: 'boom' }, 'lapce_ipc_request_seconds_count'), 2);
  t.is(metricValue(m, 'lapce_ipc_stream_first_chunk_seconds', { method: 'ticker' }, 'lapce_ipc_stream_first_chunk_seconds_count'), 2);
  t.is(metricValue(m, 'lapce_ipc_streams_active'), 0);
  t.true(metricValue(m, 'lapce_ipc_doorbells_rung_total') > 0, 'doorbells rung');
  t.true(metricValue(m, 'lapce_ipc_doorbells_suppressed_total') > 0, 'doorbells suppressed');
  t.true(metricValue(m, 'lapce_ipc_wakeups_total') > 0, 'wakeups');
  t.is(metricValue(m, 'lapce_ipc_errors_total', { code: 'UNKNOWN_METHOD' }), 1);
  t.is(metricValue(m, 'lapce_ipc_errors_total', { code: 'HANDLER_ERROR' }), 2);
  t.is(metricValue(m, 'lapce_ipc_errors_total', { code: 'CANCELLED' }), 1);
  t.is(metricValue(m, 'lapce_ipc_handshake_failures_total'), 0);

  // Prometheus text.
  const text = await server.prometheus();
  t.regex(text, /^lapce_ipc_connections_active 1$/m);
  t.regex(text, /^lapce_ipc_request_seconds_count\{method="echo"\} 50$/m);
  t.regex(text, /^lapce_ipc_request_seconds_bucket\{le="0\.1",method="echo"\} \d+$/m);
  t.regex(text, /^lapce_ipc_messages_total\{direction="in"\} [1-9]\d*$/m);
  t.regex(text, /^lapce_ipc_errors_total\{code="HANDLER_ERROR"\} 2$/m);
  t.regex(text, /^lapce_ipc_doorbells_rung_total [1-9]\d*$/m);
  t.regex(text, /^# TYPE lapce_ipc_request_seconds histogram$/m);

  // The built-in method, both formats.
  const remote = await client.serverMetrics();
  t.true(Array.isArray(remote));
  t.is(metricValue(remote, 'lapce_ipc_request_seconds', { method: 'echo' }, 'lapce_ipc_request_seconds_count'), 50);
  t.is(metricValue(remote, 'lapce_ipc_connections_active'), 1);
  t.true(metricValue(remote, 'lapce_ipc_messages_total', { direction: 'in' }) > calls);
  const remoteText = (await client.serverMetrics('prometheus')) as { text: string };
  t.regex(remoteText.text, /^lapce_ipc_handshakes_total 1$/m);
  t.regex(remoteText.text, /^lapce_ipc_request_seconds_count\{method="\$metrics"\} [1-9]$/m);

  client.close();
  await waitFor(() => server.connections === 0, 'session closed');
  t.is(metricValue(await server.metrics(), 'lapce_ipc_connections_active'), 0);

  // Logs: info lines only for lifecycle events, none per message.
  const info = lines.filter((l) => (l.level as number) >= 30).map((l) => l.msg);
  t.deepEqual([...new Set(info)].sort(), ['connection accepted', 'connection closed', 'lapce-ai-ipc server listening']);
  t.like(
    lines.find((l) => l.msg === 'connection accepted'),
    { slot: 0, peerPid: process.pid, clientName: 'metrics-client' },
  );
  t.like(
    lines.find((l) => l.msg === 'connection closed'),
    { slot: 0, peerPid: process.pid },
  );
});

test('sends that find the ring full are counted', async (t) => {
  const { server, socketPath } = await startServer(t, { ringCapacity: 4096 });
  const client = await connect(t, socketPath, { channel: {} });
  const big = Buffer.alloc(3000, 7);
  const replies = await Promise.all(Array.from({ length: 64 }, () => client.request('echo', big)));
  t.true(replies.every((r) => Buffer.compare(r as Buffer, big) === 0));
  const m = await server.metrics();
  t.true(metricValue(m, 'lapce_ipc_ring_full_waits_total') > 0);
  t.true(metricValue(m, 'lapce_ipc_bytes_total', { direction: 'out' }) >= 64 * 3000);
});

/**
 * A session that ends because its channel closed (the client closed its rings before its
 * control socket, or the ring was corrupt) keeps its traffic in the metrics: the server reads the
 * channel's counters after `Channel.close()`. (This was a bug: the native endpoint reported
 * zeros once closed, and messages/bytes in of that session vanished.)
 */
test('a session ended by its channel keeps its traffic in the metrics', async (t) => {
  const { server, socketPath } = await startServer(t);
  const { channel, conn } = await mutatedHandshake(socketPath, (h) => h);
  t.teardown(() => conn.close());
  await waitFor(() => server.connections === 1, 'session open');
  const replies: Uint8Array[] = [];
  channel.onMessage((m) => replies.push(m.slice()));
  for (let i = 1; i <= 10; i++) await channel.send(encodeFrame(FrameKind.Request, i, 'echo', { i }));
  await waitFor(() => replies.length === 10, 'replies');
  const inBefore = metricValue(await server.metrics(), 'lapce_ipc_messages_total', { direction: 'in' });
  t.is(inBefore, 10);
  channel.close();
  await waitFor(() => server.connections === 0, 'server to end the session');
  t.is(metricValue(await server.metrics(), 'lapce_ipc_messages_total', { direction: 'in' }), 10);
});
