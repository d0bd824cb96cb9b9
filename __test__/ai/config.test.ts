import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { CONFIG_DEFAULTS, ConfigError, listProviders, loadConfig } from '../../src/ai';

const dir = mkdtempSync(join(tmpdir(), 'lapce-ai-config-'));
let n = 0;
const file = (content: unknown) => {
  const p = join(dir, `config-${++n}.json`);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
};

test('with nothing configured, echo is the only provider and the default', (t) => {
  const c = loadConfig({ env: {} });
  t.is(c.default, 'echo');
  t.deepEqual(Object.keys(c.providers), ['echo']);
  t.deepEqual(c.fallback, []);
  t.deepEqual(c.retry, CONFIG_DEFAULTS.retry);
  t.deepEqual(c.timeouts, CONFIG_DEFAULTS.timeouts);
});

test('env keys configure providers with their default endpoints; empty variables are unset', (t) => {
  const c = loadConfig({ env: { GEMINI_API_KEY: 'g-key-123456', OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '  ' } });
  t.deepEqual(Object.keys(c.providers).sort(), ['echo', 'gemini']);
  t.is(c.providers.gemini.baseURL, 'https://generativelanguage.googleapis.com/v1beta');
  t.is(c.providers.gemini.defaultModel, 'gemini-2.5-flash');
  t.is(c.default, 'gemini', 'the first configured provider is the default');
});

test('ollama is configured only by OLLAMA_HOST or the file', (t) => {
  t.false('ollama' in loadConfig({ env: {} }).providers);
  const c = loadConfig({ env: { OLLAMA_HOST: '0.0.0.0:11434' } });
  t.is(c.providers.ollama.baseURL, 'http://127.0.0.1:11434', 'host:port and the 0.0.0.0 listen address are accepted');
  const f = loadConfig({ env: {}, file: file({ providers: { ollama: {} } }) });
  t.is(f.providers.ollama.baseURL, 'http://127.0.0.1:11434');
  t.is(f.providers.ollama.defaultModel, 'llama3.2');
});

test('precedence: overrides > env > file > defaults, field by field', (t) => {
  const path = file({
    default: 'openai',
    providers: { openai: { apiKey: 'file-key-123456', baseURL: 'http://file.example/v1', models: ['gpt-file'] } },
    retry: { maxAttempts: 5, baseDelayMs: 50 },
  });
  const c = loadConfig({
    file: path,
    env: { OPENAI_API_KEY: 'env-key-1234567' },
    overrides: { providers: { openai: { baseURL: 'http://flag.example/v1/' } }, retry: { baseDelayMs: 1 } },
  });
  t.is(c.providers.openai.apiKey, 'env-key-1234567', 'env beats file');
  t.is(c.providers.openai.baseURL, 'http://flag.example/v1', 'flags beat env and file; trailing slash dropped');
  t.deepEqual(c.providers.openai.models, ['gpt-file']);
  t.is(c.providers.openai.defaultModel, 'gpt-file', 'the first listed model is the default');
  t.deepEqual(c.retry, { maxAttempts: 5, baseDelayMs: 1, maxDelayMs: CONFIG_DEFAULTS.retry.maxDelayMs });
});

test('compatible providers, default and fallback from the file', (t) => {
  const c = loadConfig({
    env: { ANTHROPIC_API_KEY: 'a-key-1234567' },
    file: file({
      default: 'local',
      fallback: ['anthropic', 'echo'],
      providers: {
        compatible: {
          local: { baseURL: 'http://127.0.0.1:8080/v1', models: ['qwen'] },
          router: { baseURL: 'https://openrouter.example/api/v1', apiKey: 'or-key-1234567' },
        },
      },
    }),
  });
  t.is(c.default, 'local');
  t.deepEqual(c.fallback, ['anthropic', 'echo']);
  t.is(c.providers.local.kind, 'openai-compatible');
  t.is(c.providers.local.defaultModel, 'qwen');
  t.is(c.providers.router.defaultModel, undefined);
});

test('listProviders tells whether a key is set but never the key', (t) => {
  const c = loadConfig({
    env: { OPENAI_API_KEY: 'sk-listing-secret-999', OLLAMA_HOST: 'http://127.0.0.1:11434' },
    overrides: { fallback: ['ollama'] },
  });
  const list = listProviders(c);
  t.false(JSON.stringify(list).includes('sk-listing-secret-999'));
  const openai = list.find((p) => p.name === 'openai')!;
  t.like(openai, { kind: 'openai', hasKey: true, baseURL: 'https://api.openai.com/v1', isDefault: true });
  t.like(
    list.find((p) => p.name === 'ollama'),
    { hasKey: false, fallbackIndex: 0 },
  );
  t.like(
    list.find((p) => p.name === 'echo'),
    { kind: 'echo', hasKey: false, isDefault: false },
  );
});

const invalid: Array<[string, unknown, RegExp]> = [
  ['unknown key', { providers: { openai: { apikey: 'x' } } }, /providers\.openai\.apikey: unknown field/],
  ['bad URL', { providers: { openai: { baseURL: 'not a url' } } }, /providers\.openai\.baseURL/],
  ['bad retry', { retry: { maxAttempts: 0 } }, /retry\.maxAttempts/],
  ['negative timeout', { timeouts: { firstChunkMs: -1 } }, /timeouts\.firstChunkMs/],
  ['compatible without baseURL', { providers: { compatible: { x: {} } } }, /providers\.compatible\.x\.baseURL/],
  [
    'compatible named like a built-in',
    { providers: { compatible: { openai: { baseURL: 'http://a.b/v1' } } } },
    /providers\.compatible\.openai: name is taken/,
  ],
  ['default not configured', { default: 'anthropic' }, /default: provider "anthropic" is not configured/],
  ['fallback not configured', { fallback: ['echo', 'nope'] }, /fallback: provider "nope" is not configured/],
];
for (const [name, content, msg] of invalid) {
  test(`invalid config file is rejected naming the field: ${name}`, (t) => {
    const path = file(content);
    const err = t.throws(() => loadConfig({ env: {}, file: path }), { instanceOf: ConfigError });
    t.regex(err!.message, msg);
  });
}

test('a config file that is not JSON, or missing, names the file', (t) => {
  const path = file('{ "default": ');
  t.throws(() => loadConfig({ env: {}, file: path }), { instanceOf: ConfigError, message: new RegExp(`${path}.*not valid JSON`) });
  t.throws(() => loadConfig({ env: {}, file: join(dir, 'missing.json') }), { instanceOf: ConfigError, message: /cannot read config file/ });
});

test('invalid environment values are reported', (t) => {
  t.throws(() => loadConfig({ env: { OPENAI_BASE_URL: 'ftp://x' } }), {
    instanceOf: ConfigError,
    message: /environment: OPENAI_BASE_URL: not an http\(s\) URL/,
  });
  t.throws(() => loadConfig({ env: { OLLAMA_HOST: 'http://[bad' } }), { instanceOf: ConfigError, message: /OLLAMA_HOST/ });
});
