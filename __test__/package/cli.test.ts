/**
 * The packaging side of the CLI (src/cli/): version, option checking, logs, the `--json` error
 * event, `serve`'s tuning flags, the HTTP metrics and health endpoint, the `health` command and
 * the demo. Each runs the CLI as a user does, as a child process; serially, so the suite adds at
 * most one CLI process (and its server) at a time to the load of the other suites.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import pino from 'pino';
import { IpcServer } from '../../src/ipc/server';
import { cleanEnv, finished, runCli, spawnCli, waitForOutput } from '../chat/helpers';

const ROOT = path.join(__dirname, '..', '..');
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function tempSocket(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lapce-pkg-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'ai.sock');
}

test.serial('--version prints the package version', async (t) => {
  const r = await runCli(['--version'], cleanEnv());
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `${VERSION}\n`);
});

test.serial('an invalid --log-level is a usage error naming the valid levels, not a stack trace', async (t) => {
  const r = await runCli(['serve', '--socket', tempSocket(t), '--log-level', 'loud'], cleanEnv());
  t.is(r.code, 1);
  t.regex(r.stderr, /argument 'loud' is invalid.*fatal, error, warn, info, debug, trace, silent/s);
  t.false(r.stderr.includes('    at '), 'no stack');
});

test.serial('an invalid LAPCE_AI_LOG_LEVEL is a clear error too', async (t) => {
  const r = await runCli(['serve', '--socket', tempSocket(t)], cleanEnv({ LAPCE_AI_LOG_LEVEL: 'loud' }));
  t.is(r.code, 1);
  t.is(
    r.stderr,
    'lapce-ai-ipc: invalid log level "loud" (LAPCE_AI_LOG_LEVEL); use one of: fatal, error, warn, info, debug, trace, silent\n',
  );
});

test.serial('serve rejects a ring size that is not a power of two, and a bad uid, before starting', async (t) => {
  const ring = await runCli(['serve', '--socket', tempSocket(t), '--ring-size', '3M'], cleanEnv());
  t.is(ring.code, 1);
  t.regex(ring.stderr, /3145728 bytes is not a power of two/);
  const uid = await runCli(['serve', '--socket', tempSocket(t), '--allow-uid', 'root'], cleanEnv());
  t.is(uid.code, 1);
  t.regex(uid.stderr, /"root" is not a uid/);
});

test.serial('chat --json prints an error event on stdout when it fails', async (t) => {
  const socket = tempSocket(t);
  const r = await runCli(['chat', '--json', '--socket', socket, 'hi'], cleanEnv());
  t.is(r.code, 1);
  const lines = r.stdout.trim().split('\n');
  t.is(lines.length, 1, r.stdout);
  const ev = JSON.parse(lines[0]) as { type: string; code: string; message: string; retryable: boolean };
  t.is(ev.type, 'error');
  t.is(ev.code, 'CONNECTION_LOST');
  // ERROR_CODES marks CONNECTION_LOST retryable: once a server listens, the same command works.
  t.is(ev.retryable, true);
  t.true(ev.message.includes(socket));
  t.regex(r.stderr, /no lapce-ai-ipc server is reachable/);
});

test.serial('health fails with status 1 when nothing listens', async (t) => {
  const r = await runCli(['health', '--socket', tempSocket(t)], cleanEnv());
  t.is(r.code, 1);
  t.regex(r.stderr, /no lapce-ai-ipc server is reachable/);
});

test.serial(
  'serve: tuning flags, JSON logs at info, /metrics with process and IPC metrics, /health, health command, chat --json',
  async (t) => {
    const socket = tempSocket(t);
    const env = cleanEnv();
    const serve = spawnCli(
      [
        'serve',
        '--socket',
        socket,
        '--metrics-port',
        '0',
        '--ring-size',
        '256K',
        '--max-connections',
        '8',
        '--allow-uid',
        '12345',
        '--shutdown-deadline',
        '500',
      ],
      env,
    );
    const done = finished(serve);
    t.teardown(() => {
      if (serve.exitCode === null && serve.signalCode === null) serve.kill('SIGKILL');
    });
    const log = await waitForOutput(serve, 'stderr', 'providers active');
    // Not a TTY and no --pretty: one JSON object per line, at info.
    const lines = log
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: number; msg: string; metrics?: string; health?: string });
    t.true(lines.every((l) => l.level === 30));
    const active = lines.find((l) => l.msg.startsWith('providers active'))!;
    t.regex(active.metrics!, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);

    // --allow-uid adds a user; the server's own stays allowed, so this client gets in.
    const health = await runCli(['health', '--json', '--socket', socket], env);
    t.is(health.code, 0, health.stderr);
    t.like(JSON.parse(health.stdout), { status: 'ok', socket });

    const chat = await runCli(['chat', '--json', '--socket', socket, '--model', 'echo', 'hi'], env);
    t.is(chat.code, 0, chat.stderr);
    const types = chat.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { type: string }).type);
    t.is(types[0], 'start');
    t.is(types.at(-1), 'finish');
    t.true(types.slice(1, -1).every((x) => x === 'delta') && types.length > 2, types.join());

    const metrics = await fetch(active.metrics!);
    t.is(metrics.status, 200);
    t.regex(metrics.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await metrics.text();
    t.regex(text, /^process_cpu_user_seconds_total \d/m, "prom-client's default process metrics");
    t.regex(text, /^nodejs_heap_size_used_bytes \d/m);
    t.regex(text, /^lapce_ipc_connections_total [2-9]/m, 'IPC metrics: the health and chat connections');
    t.regex(text, /^lapce_ai_provider_requests_total\{provider="echo"\} 1$/m, 'provider metrics');

    const h = await fetch(active.health!);
    t.is(h.status, 200);
    t.like((await h.json()) as object, { status: 'ok', socket, version: VERSION });
    t.is((await fetch(active.metrics!.replace('/metrics', '/nope'))).status, 404);

    serve.kill('SIGTERM');
    const r = await done;
    t.is(r.code, 0, r.stderr);
    t.regex(r.stderr, /"deadlineMs":500/);
    await t.throwsAsync(fetch(active.health!), undefined, 'the HTTP endpoint closed with the server');
  },
);

test.serial('serve --pretty writes human-readable lines', async (t) => {
  const serve = spawnCli(['serve', '--socket', tempSocket(t), '--pretty'], cleanEnv());
  const done = finished(serve);
  const log = await waitForOutput(serve, 'stderr', 'providers active');
  serve.kill('SIGTERM');
  t.is((await done).code, 0);
  t.regex(log, /INFO.*\(lapce-ai-ipc\): providers active: echo \(default\)/);
  t.throws(() => JSON.parse(log.split('\n')[0]));
});

test.serial('demo: the one offline end-to-end job', async (t) => {
  const r = await runCli(['demo', '--prompt', 'ping'], cleanEnv());
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^reply: {2}\[echo provider\] You said: ping$/m);
  t.regex(r.stdout, /metrics: echo: 1 request\(s\)/);
  t.regex(r.stdout, /server: shut down cleanly\n$/);
});

test.serial('chat --json: a provider failure is an error event with the provider and the retry hint', async (t) => {
  const socket = tempSocket(t);
  const config = path.join(path.dirname(socket), 'config.json');
  // Port 9 (discard) on loopback: nothing listens, so the provider's connect is refused at once.
  writeFileSync(
    config,
    JSON.stringify({
      default: 'local',
      providers: { compatible: { local: { baseURL: 'http://127.0.0.1:9/v1', models: ['m'] } } },
      retry: { maxAttempts: 1 },
    }),
  );
  const env = cleanEnv();
  const serve = spawnCli(['serve', '--socket', socket, '--config', config], env);
  const done = finished(serve);
  await waitForOutput(serve, 'stderr', 'providers active');
  const r = await runCli(['chat', '--json', '--socket', socket, 'hi'], env);
  serve.kill('SIGTERM');
  await done;
  t.is(r.code, 1);
  const ev = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { type: string; code: string; provider?: string; retryable: boolean };
  t.is(ev.type, 'error');
  t.is(ev.provider, 'local');
  t.true(ev.code.length > 0);
  t.true(ev.retryable, 'a refused connection may succeed later');
  t.regex(r.stderr, /\(provider local\)/);
});

test.serial('chat text mode: a fallback that answered and a tool call get one stderr line each; the reply stays on stdout', async (t) => {
  // A scripted server speaking the chat stream's events, so the CLI's printing is tested alone.
  const socket = tempSocket(t);
  const server = new IpcServer({ socketPath: socket, logger: pino({ level: 'silent' }) });
  server.handleStream('chat', async function* () {
    yield {
      type: 'start',
      provider: 'anthropic',
      model: 'claude-x',
      fallbackFrom: [
        { provider: 'openai', model: 'gpt-x', code: 'OVERLOADED', message: 'busy' },
        { provider: 'local', model: 'm', code: 'NETWORK', message: 'down' },
      ],
    };
    yield { type: 'delta', text: 'Hi' };
    yield { type: 'tool-call', id: 'call_1', name: 'read_file', arguments: '{"path":"a.txt"}' };
    yield { type: 'finish', finishReason: 'tool-calls', usage: { inputTokens: 1, outputTokens: 1 } };
  });
  await server.listen();
  t.teardown(() => server.close({ deadlineMs: 0 }));
  const r = await runCli(['chat', '--socket', socket, 'hi'], cleanEnv());
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'Hi\n');
  t.is(
    r.stderr,
    'lapce-ai-ipc: fallback: openai/gpt-x failed (OVERLOADED), then local/m failed (NETWORK); answered by anthropic/claude-x\n' +
      'lapce-ai-ipc: tool call read_file {"path":"a.txt"} (id call_1)\n',
  );
});
