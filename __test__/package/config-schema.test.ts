/**
 * The config file's JSON Schema (docs/config.schema.json, shipped) and the example config
 * (examples/config.json, shipped): generated from, and accepted by, the zod schema the backend uses.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { loadConfig } from '../../src/ai/config';
import { configJsonSchema } from '../../src/cli/config-schema';

const ROOT = path.join(__dirname, '..', '..');

test('docs/config.schema.json is what `npm run schema` generates from ConfigFileSchema (no drift)', (t) => {
  const committed = JSON.parse(readFileSync(path.join(ROOT, 'docs', 'config.schema.json'), 'utf8'));
  t.deepEqual(committed, configJsonSchema(), 'run `npm run schema` and commit docs/config.schema.json');
});

test('the schema describes the config file: its sections, strict objects, the compatible map', (t) => {
  const s = configJsonSchema() as {
    $schema: string;
    type: string;
    additionalProperties: boolean;
    properties: Record<string, { properties?: Record<string, unknown> }>;
  };
  t.is(s.$schema, 'https://json-schema.org/draft/2020-12/schema');
  t.is(s.type, 'object');
  t.is(s.additionalProperties, false, 'unknown keys are errors, as loadConfig says');
  t.deepEqual(
    Object.keys(s.properties)
      .filter((k) => k !== '$schema')
      .sort(),
    ['contextFallback', 'cooldown', 'default', 'fallback', 'providers', 'retry', 'timeouts'],
  );
  t.deepEqual(Object.keys(s.properties.providers.properties!).sort(), [
    'anthropic',
    'azure',
    'bedrock',
    'compatible',
    'gemini',
    'ollama',
    'openai',
    'openrouter',
    'vertex',
    'xai',
  ]);
});

test('examples/config.json is a valid config', (t) => {
  const config = loadConfig({ file: path.join(ROOT, 'examples', 'config.json'), env: {} });
  t.is(config.default, 'anthropic');
  t.deepEqual(config.fallback, ['openai', 'local', 'echo']);
});

test('the CLI prints the same schema', async (t) => {
  const { runCli, cleanEnv } = await import('../chat/helpers');
  const r = await runCli(['config-schema'], cleanEnv());
  t.is(r.code, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), configJsonSchema());
});
