/**
 * The `lapce-ai-ipc` CLI as a user runs it: `serve` in one child process, `chat`, `stats` and
 * `providers` in others, against the mock providers in this process.
 *
 * The tests sharing the server run serially, in order: each leaves the server's counters in a
 * known state for the next, and the last one shuts the server down.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { METRIC_NAMES } from '../../src/ai';
import { AWS, MOCK_PROVIDER_NAMES, envFor, startMocks, stopMocks } from '../ai/helpers';
import { KEYS, type Mocks, cleanEnv, finished, mockConfigInput, runCli, spawnCli, tempDir, waitForOutput, within } from './helpers';

interface Context {
  m: Mocks;
  dir: string;
  socket: string;
  env: NodeJS.ProcessEnv;
  serve: ChildProcess;
  serveDone: ReturnType<typeof finished>;
}
const test = anyTest as TestFn<Context>;

test.before(async (t) => {
  const m = await startMocks();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lapce-chat-cli-'));
  const socket = path.join(dir, 'ai.sock');
  // The file says `local` is the default; the --default flag below must win over it.
  const configFile = path.join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify({ ...mockConfigInput(m, { fallback: ['anthropic'] }), default: 'local' }));
  const env = cleanEnv(envFor(m));
  const serve = spawnCli(['serve', '--socket', socket, '--config', configFile, '--default', 'openai'], env);
  const serveDone = finished(serve);
  await waitForOutput(serve, 'stderr', 'providers active');
  t.context = { m, dir, socket, env, serve, serveDone };
});

test.after.always(async (t) => {
  const c = t.context;
  // Only if a failed test left it running.
  if (c.serve && c.serve.exitCode === null && c.serve.signalCode === null) c.serve.kill('SIGKILL');
  if (c.m) await stopMocks(c.m);
  if (c.dir) rmSync(c.dir, { recursive: true, force: true });
});

test.serial('providers --socket asks the running server: the --default flag won over the file', async (t) => {
  const r = await runCli(['providers', '--socket', t.context.socket, '--json'], t.context.env);
  t.is(r.code, 0, r.stderr);
  const reply = JSON.parse(r.stdout);
  t.is(reply.default, 'openai', '--default beats the config file');
  t.deepEqual(reply.fallback, ['anthropic']);
  t.deepEqual(reply.providers.map((p: { name: string }) => p.name).sort(), MOCK_PROVIDER_NAMES);
  for (const key of [...Object.values(KEYS), AWS.secretAccessKey]) t.false(r.stdout.includes(key));
});

test.serial('chat streams the reply of the default provider to stdout', async (t) => {
  const r = await runCli(['chat', '--socket', t.context.socket, 'Say', 'hello'], t.context.env);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'Hello, world!\n');
  t.is(r.stderr, '');
  t.deepEqual(t.context.m.openai.requests.at(-1)?.messages, [{ role: 'user', content: 'Say hello' }]);
});

test.serial('chat --model routes by prefix and by provider name', async (t) => {
  const claude = await runCli(['chat', '--socket', t.context.socket, '--model', 'claude-x', 'hi'], t.context.env);
  t.is(claude.code, 0, claude.stderr);
  t.is(claude.stdout, 'Hello, world!\n');
  t.is(t.context.m.anthropic.requests.length, 1);
  const echo = await runCli(['chat', '--socket', t.context.socket, '--model', 'echo', 'ping pong'], t.context.env);
  t.is(echo.code, 0, echo.stderr);
  t.is(echo.stdout, '[echo provider] You said: ping pong\n');
});

test.serial('chat --json prints the stream events, usage included', async (t) => {
  const r = await runCli(['chat', '--socket', t.context.socket, '--json', '--model', 'ollama/llama3.2', 'hi'], t.context.env);
  t.is(r.code, 0, r.stderr);
  const events = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.deepEqual(events[0], { type: 'start', provider: 'ollama', model: 'llama3.2' });
  t.like(events.at(-1), { type: 'finish', finishReason: 'stop', usage: { inputTokens: 11, outputTokens: 4 } });
});

test.serial('a bad request fails with exit code 1 and a clear message', async (t) => {
  const r = await runCli(['chat', '--socket', t.context.socket, '--temperature', '9', 'hi'], t.context.env);
  t.is(r.code, 1);
  t.is(r.stdout, '');
  t.regex(r.stderr, /BAD_REQUEST: invalid chat request: temperature/);
});

test.serial('a provider failure after retries and fallback is reported with its code and provider', async (t) => {
  // openai fails retryably three times (all its tries), then the fallback fails too.
  t.context.m.openai.enqueue({ kind: 'status', status: 500 }, { kind: 'status', status: 500 }, { kind: 'status', status: 500 });
  t.context.m.anthropic.enqueue({ kind: 'status', status: 529 }, { kind: 'status', status: 529 }, { kind: 'status', status: 529 });
  const r = await runCli(['chat', '--socket', t.context.socket, 'hi'], t.context.env);
  t.is(r.code, 1);
  t.regex(r.stderr, /OVERLOADED: .*\(provider anthropic, HTTP 529\) \[retryable\]/);
});

test.serial('stats prints IPC and per-provider metrics, as a summary and as JSON', async (t) => {
  const r = await runCli(['stats', '--socket', t.context.socket], t.context.env);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /connections\s+1 active/);
  // openai: 1 ok (chat) + 3 failed tries; anthropic: 1 ok + 3 failed tries (fallback).
  t.regex(r.stdout, /^openai\s+4\s+SERVER_ERROR=3\s+11\s+4\s+\d+\.\d ms$/m);
  t.regex(r.stdout, /^anthropic\s+4\s+OVERLOADED=3\s+11\s+4\s+\d+\.\d ms$/m);
  t.regex(r.stdout, /^echo\s+1\s+none\s+2\s+6\s+/m);
  t.regex(r.stdout, /errors\s+.*BAD_REQUEST=1/);

  // The environment variable stands in for --socket.
  const json = await runCli(['stats', '--json'], { ...t.context.env, LAPCE_AI_SOCKET: t.context.socket });
  t.is(json.code, 0, json.stderr);
  const metrics = JSON.parse(json.stdout) as Array<{ name: string; values: Array<{ value: number; labels: Record<string, string> }> }>;
  const requests = metrics.find((x) => x.name === METRIC_NAMES.requests);
  t.is(requests?.values.find((v) => v.labels.provider === 'ollama')?.value, 1);
  t.truthy(metrics.find((x) => x.name === 'lapce_ipc_connections_total'));

  const prom = await runCli(['stats', '--socket', t.context.socket, '--prometheus'], t.context.env);
  t.regex(prom.stdout, /^lapce_ai_provider_errors_total\{provider="openai",code="SERVER_ERROR"\} 3$/m);
});

test.serial('Ctrl-C during chat cancels the stream: exit 130, the provider connection is closed', async (t) => {
  const { m } = t.context;
  // The second chunk is 30 s away: only the cancel can end this chat in time.
  m.openai.enqueue({ kind: 'stream', chunks: ['Hel', 'lo'], delayMs: 30_000 });
  const before = m.openai.requests.length;
  const chat = spawnCli(['chat', '--socket', t.context.socket, 'hi'], t.context.env);
  const done = finished(chat);
  await waitForOutput(chat, 'stdout', 'Hel');
  chat.kill('SIGINT');
  const r = await done;
  t.is(r.code, 130);
  t.is(r.stdout, 'Hel\n', 'the partial reply, then a newline');
  t.regex(r.stderr, /interrupted/);
  t.is(m.openai.requests.length, before + 1);
  t.deepEqual(await within(m.openai.requests[before].closed, 10_000), { byClient: true });
});

test.serial('chat - reads the prompt from stdin', async (t) => {
  const r = await runCli(['chat', '--socket', t.context.socket, '--model', 'echo', '-'], t.context.env, 'from a pipe');
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, '[echo provider] You said: from a pipe\n');
});

test.serial('SIGTERM shuts serve down gracefully: exit code 0, socket removed', async (t) => {
  t.context.serve.kill('SIGTERM');
  const r = await t.context.serveDone;
  t.is(r.code, 0, r.stderr);
  t.false(existsSync(`${t.context.socket}.ctl`));
  const logs = r.stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { msg: string; providers?: unknown[] });
  const active = logs.find((l) => l.msg.startsWith('providers active'));
  t.regex(active?.msg ?? '', /openai \(default\)/);
  t.true(logs.some((l) => l.msg === 'server closed'));
  for (const key of Object.values(KEYS)) t.false(r.stderr.includes(key), 'a key leaked into the logs');
  t.false(r.stderr.includes('Say hello'), 'a prompt leaked into the logs');
});

test('chat with no server running fails with exit code 1 and says how to start one', async (t) => {
  const socket = path.join(tempDir(t), 'nobody.sock');
  const r = await runCli(['chat', '--socket', socket, 'hi'], cleanEnv());
  t.is(r.code, 1);
  t.is(r.stdout, '');
  t.regex(r.stderr, /no lapce-ai-ipc server is reachable at .*nobody\.sock/);
  t.regex(r.stderr, /Start one with: lapce-ai-ipc serve --socket .*nobody\.sock/);
});

test('stats with no server running fails with exit code 1', async (t) => {
  const r = await runCli(['stats', '--socket', path.join(tempDir(t), 'nobody.sock')], cleanEnv());
  t.is(r.code, 1);
  t.regex(r.stderr, /no lapce-ai-ipc server is reachable/);
});

test('providers without a server reads the local configuration: echo alone on a fresh machine', async (t) => {
  const r = await runCli(['providers', '--json'], cleanEnv());
  t.is(r.code, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { default: 'echo', fallback: [], providers: [{ name: 'echo', kind: 'echo', isDefault: true }] });
});

test('an invalid config file is refused with the field named', async (t) => {
  const file = path.join(tempDir(t), 'bad.json');
  writeFileSync(file, JSON.stringify({ retry: { maxAttempts: 0 } }));
  const r = await runCli(['providers', '--config', file], cleanEnv());
  t.is(r.code, 1);
  t.regex(r.stderr, /bad\.json: retry\.maxAttempts/);
});

test('demo runs the whole job offline and exits 0', async (t) => {
  // Provider keys in the environment must not make the demo go online.
  const r = await runCli(
    ['demo', '--prompt', 'is anyone there'],
    cleanEnv({ OPENAI_API_KEY: 'sk-not-used', OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' }),
  );
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^reply: {2}\[echo provider\] You said: is anyone there$/m);
  t.regex(r.stdout, /^metrics: echo: 1 request\(s\), 3 tokens in \/ 7 out, first token \d+\.\d ms; 1 IPC connection\(s\)/m);
  t.regex(r.stdout, /server: shut down cleanly/);
});
