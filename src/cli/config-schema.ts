/**
 * `lapce-ai-ipc config-schema`: the JSON Schema of the config file, generated from the zod schema
 * the backend validates with (`ConfigFileSchema`), so editors can complete and check a config.
 * `npm run schema` writes it to `docs/config.schema.json`, which the package ships.
 * @packageDocumentation
 */
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigFileSchema } from '../ai/config';

/** The JSON Schema of the config file (the input form: every field optional where zod has a default). */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ConfigFileSchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
  return {
    ...schema,
    title: 'lapce-ai-ipc chat backend configuration',
    description: 'Providers, default and fallback chain, retries and timeouts (see CONFIG.md).',
  };
}

/** Print the schema, or write it to `output`. */
export function configSchema(opts: { output?: string }): void {
  const text = `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
  if (opts.output) writeFileSync(opts.output, text);
  else process.stdout.write(text);
}
