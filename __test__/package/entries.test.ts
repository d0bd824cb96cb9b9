/**
 * The package's public surface: what each entry of the `exports` map loads and exports.
 * Each check runs in a fresh Node process, so the module cache shows exactly what an entry pulls in.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';

const ROOT = path.join(__dirname, '..', '..');

interface Loaded {
  exports: string[];
  modules: string[];
}

const loaded = new Map<string, Loaded>();

/** Require `file` (a source entry) in a child process; report its export names and every module loaded. */
function load(file: string): Loaded {
  let l = loaded.get(file);
  if (!l) loaded.set(file, (l = spawnLoad(file)));
  return l;
}

function spawnLoad(file: string): Loaded {
  const script = `const m = require(${JSON.stringify(file)}); process.stdout.write(JSON.stringify({ exports: Object.keys(m).sort(), modules: Object.keys(require.cache) }));`;
  return JSON.parse(execFileSync(process.execPath, ['--import=tsx', '-e', script], { cwd: ROOT, encoding: 'utf8' })) as Loaded;
}

const isAi = (m: string) => m.includes(`${path.sep}src${path.sep}ai${path.sep}`) || /node_modules[\\/](ai|@ai-sdk)[\\/]/.test(m);

test('"." (the IPC library) loads neither src/ai nor the AI SDK', (t) => {
  const { modules } = load('./src/index.ts');
  t.true(
    modules.some((m) => m.endsWith(path.join('src', 'ipc', 'server.ts'))),
    'the check sees the modules it loads',
  );
  t.deepEqual(modules.filter(isAi), []);
  t.false(modules.some((m) => m.endsWith(path.join('src', 'backend.ts'))));
});

test('"./chat" is where the AI modules come in (so the check above can fail)', (t) => {
  const { modules } = load('./src/chat.ts');
  t.true(modules.some((m) => m.includes(`${path.sep}src${path.sep}ai${path.sep}`)));
  t.true(modules.some((m) => /node_modules[\\/]@ai-sdk[\\/]/.test(m)));
});

const INTERNALS = [
  'classifyError',
  'parseRetryAfter',
  'geminiRetryDelayMs',
  'redact',
  'backoffDelay',
  'echoReply',
  'LabeledHistogram',
  'ChatRequestSchema',
  'ChatMessageSchema',
  'ConfigFileSchema',
  'NativeEndpoint',
  'NativeFds',
  'NativeListener',
  'NativeControlStream',
];

test('"." exports the IPC API, createChannelFds included, and no internals', (t) => {
  const { exports } = load('./src/index.ts');
  for (const name of [
    'IpcServer',
    'IpcClient',
    'IpcError',
    'Channel',
    'channelPair',
    'createChannelFds',
    'defaultSocketPath',
    'controlPath',
  ])
    t.true(exports.includes(name), name);
  t.deepEqual(
    exports.filter((e) => INTERNALS.includes(e)),
    [],
  );
  t.false(exports.includes('attachChatBackend'), 'the chat backend is its own entry');
});

test('"./chat" exports the chat backend, its config and errors, and no internals', (t) => {
  const { exports } = load('./src/chat.ts');
  for (const name of [
    'attachChatBackend',
    'createChatBackend',
    'CHAT_METHOD',
    'PROVIDERS_METHOD',
    'loadConfig',
    'listProviders',
    'ConfigError',
    'ChatError',
    'ChatRouter',
  ])
    t.true(exports.includes(name), name);
  t.deepEqual(
    exports.filter((e) => INTERNALS.includes(e)),
    [],
  );
});

test('createChannelFds makes fds a Channel opens', async (t) => {
  const script = `
    const { createChannelFds, Channel } = require('./src/index.ts');
    const fds = createChannelFds(1 << 16);
    const held = fds.count;
    const ch = new Channel(fds, 'server', { capacity: 1 << 16 });
    process.stdout.write(JSON.stringify({ held, capacity: ch.capacity }));
    ch.close();`;
  const out = JSON.parse(execFileSync(process.execPath, ['--import=tsx', '-e', script], { cwd: ROOT, encoding: 'utf8' })) as {
    held: number;
    capacity: number;
  };
  t.true(out.held >= 3, `a channel has rings and a doorbell (${out.held} fds)`);
  t.is(out.capacity, 1 << 16);
});

test('package.json: commonjs, an exports map whose targets the build emits, metadata, no os lock on the root', (t) => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  t.is(pkg.type, 'commonjs');
  t.deepEqual(Object.keys(pkg.exports), ['.', './chat', './config.schema.json', './package.json']);
  for (const [entry, target] of Object.entries(pkg.exports as Record<string, string | { types: string; default: string }>)) {
    if (typeof target === 'string') {
      t.true(existsSync(path.join(ROOT, target)), `${entry} → ${target}`);
      continue;
    }
    // dist/X.js and dist/X.d.ts are compiled from src/X.ts (tsconfig.build.json: rootDir src).
    const src = target.default.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts');
    t.is(target.types, target.default.replace(/\.js$/, '.d.ts'));
    t.true(existsSync(path.join(ROOT, src)), `${entry} → ${src}`);
  }
  t.is(pkg.os, undefined, 'os/cpu/libc belong to the platform packages only');
  t.is(pkg.cpu, undefined);
  for (const key of ['license', 'repository', 'homepage', 'bugs', 'keywords']) t.truthy(pkg[key], key);
  t.true(existsSync(path.join(ROOT, 'LICENSE')));
  t.true(pkg.files.includes('!dist/**/*.map'), 'no source maps pointing at unshipped sources');
  t.false(
    pkg.files.some((f: string) => f === 'docs' || f.startsWith('docs/api')),
    'docs/api is not shipped',
  );
  // One platform package per napi target, each with the os/cpu/libc npm selects it by.
  for (const [dir, cpu] of [
    ['linux-x64-gnu', 'x64'],
    ['linux-arm64-gnu', 'arm64'],
  ]) {
    const platform = JSON.parse(readFileSync(path.join(ROOT, 'npm', dir, 'package.json'), 'utf8'));
    t.is(platform.name, `lapce-ai-ipc-${dir}`);
    t.deepEqual([platform.os, platform.cpu, platform.libc], [['linux'], [cpu], ['glibc']]);
    t.is(platform.version, pkg.version);
    t.is(platform.main, `lapce-ai-ipc.${dir}.node`);
  }
  t.is(pkg.napi.targets.length, 2);
});
