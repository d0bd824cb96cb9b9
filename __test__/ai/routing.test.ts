import test from 'ava';
import { ChatError, loadConfig, resolveRoute } from '../../src/ai';

const all = loadConfig({
  env: { GEMINI_API_KEY: 'g-123456', OPENAI_API_KEY: 'o-123456', ANTHROPIC_API_KEY: 'a-123456', OLLAMA_HOST: 'http://127.0.0.1:11434' },
  overrides: {
    default: 'ollama',
    providers: {
      compatible: { local: { baseURL: 'http://127.0.0.1:8080/v1', models: ['qwen'] }, bare: { baseURL: 'http://127.0.0.1:8081/v1' } },
    },
  },
});
const echoOnly = loadConfig({ env: {} });

const routes: Array<[string | undefined, string, string]> = [
  ['gemini-2.5-pro', 'gemini', 'gemini-2.5-pro'],
  ['gpt-4o-mini', 'openai', 'gpt-4o-mini'],
  ['o1', 'openai', 'o1'],
  ['o3-mini', 'openai', 'o3-mini'],
  ['o4-mini-high', 'openai', 'o4-mini-high'],
  ['claude-sonnet-4-5', 'anthropic', 'claude-sonnet-4-5'],
  ['openai/gpt-4.1', 'openai', 'gpt-4.1'],
  ['anthropic/claude-x', 'anthropic', 'claude-x'],
  ['local/qwen/coder:7b', 'local', 'qwen/coder:7b'],
  ['local/', 'local', 'qwen'],
  ['local', 'local', 'qwen'],
  ['echo/anything', 'echo', 'anything'],
  ['echo', 'echo', 'echo'],
  ['ollama/gpt-oss:20b', 'ollama', 'gpt-oss:20b'],
  ['llama3.1:8b', 'ollama', 'llama3.1:8b'],
  ['omni-model', 'ollama', 'omni-model'],
  [undefined, 'ollama', 'llama3.2'],
];
for (const [model, provider, routed] of routes) {
  test(`route ${model ?? '(no model)'} → ${provider}/${routed}`, (t) => {
    t.deepEqual(resolveRoute(model, all), { provider, model: routed });
  });
}

test('with only echo configured, everything unprefixed goes to echo', (t) => {
  t.deepEqual(resolveRoute(undefined, echoOnly), { provider: 'echo', model: 'echo' });
  t.deepEqual(resolveRoute('my-model', echoOnly), { provider: 'echo', model: 'my-model' });
});

const unknown: Array<[string, RegExp]> = [
  ['gpt-4o', /needs provider "openai", which is not configured/],
  ['o3', /provider "openai"/],
  ['claude-3-opus', /provider "anthropic"/],
  ['gemini-pro', /provider "gemini"/],
  ['nowhere/model', /provider "nowhere"/],
  ['meta-llama/llama-3', /provider "meta-llama"/],
];
for (const [model, msg] of unknown) {
  test(`route ${model} to an unconfigured provider → unknown_provider`, (t) => {
    const err = t.throws(() => resolveRoute(model, echoOnly), { instanceOf: ChatError });
    t.is(err!.code, 'UNKNOWN_PROVIDER');
    t.false(err!.retryable);
    t.regex(err!.message, msg);
  });
}

test('a provider without a default model needs an explicit model', (t) => {
  t.deepEqual(resolveRoute('bare/mistral', all), { provider: 'bare', model: 'mistral' });
  const err = t.throws(() => resolveRoute('bare', all), { instanceOf: ChatError });
  t.is(err!.code, 'NO_PROVIDER');
  t.regex(err!.message, /bare\/<model>/);
});
