/**
 * Amazon Bedrock through `@ai-sdk/amazon-bedrock`: `POST {endpoint}/model/{modelId}/converse-stream`,
 * signed with SigV4, answered in the binary `application/vnd.amazon.eventstream` framing
 * (the SDK decodes it with `@smithy/eventstream-codec`). Credentials, first found wins: the
 * config's keys, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, then the
 * profile (`profile`, `AWS_PROFILE`, or `default`) of `~/.aws/credentials`
 * (`AWS_SHARED_CREDENTIALS_FILE`); or a Bedrock API key as a Bearer token. Reasoning maps to
 * `reasoningConfig` with a token budget.
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createAmazonBedrock } from '@ai-sdk/amazon-bedrock';
import { BEDROCK_EXCEPTION_TYPE, tappedFetch } from '../activity';
import type { ResolvedProvider } from '../config';
import { ChatError } from '../types';
import { TERMINAL_FRAMES, aiSdkProvider, budgetFor } from './ai-sdk';
import { type ChatProvider, type ProviderDeps, secretsOf } from './provider';

/** SigV4 credentials. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/**
 * The `[profile]` section of an AWS shared credentials file (INI): `aws_access_key_id`,
 * `aws_secret_access_key`, `aws_session_token`. Undefined when the file or the profile is
 * missing or incomplete.
 */
export function readProfileCredentials(text: string, profile: string): AwsCredentials | undefined {
  let section: string | undefined;
  const values: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[\s*(?:profile\s+)?([^\]]+?)\s*\]$/.exec(line);
    if (head) {
      section = head[1];
      continue;
    }
    const kv = /^([A-Za-z_]+)\s*=\s*(.*)$/.exec(line);
    if (kv && section === profile) values[kv[1].toLowerCase()] = kv[2].trim();
  }
  if (!values.aws_access_key_id || !values.aws_secret_access_key) return undefined;
  return {
    accessKeyId: values.aws_access_key_id,
    secretAccessKey: values.aws_secret_access_key,
    ...(values.aws_session_token ? { sessionToken: values.aws_session_token } : {}),
  };
}

/** Create the Bedrock provider from its config entry. */
export function createBedrockProvider(cfg: ResolvedProvider, deps: ProviderDeps & { env?: NodeJS.ProcessEnv } = {}): ChatProvider {
  const b = cfg.bedrock ?? { region: 'us-east-1' };
  const env = deps.env ?? process.env;
  const credentials = async (): Promise<AwsCredentials> => {
    if (b.accessKeyId && b.secretAccessKey) {
      return {
        accessKeyId: b.accessKeyId,
        secretAccessKey: b.secretAccessKey,
        ...(b.sessionToken ? { sessionToken: b.sessionToken } : {}),
      };
    }
    const file = env.AWS_SHARED_CREDENTIALS_FILE || join(homedir(), '.aws', 'credentials');
    const profile = b.profile ?? (env.AWS_PROFILE || 'default');
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // No file: the error below says what to set.
    }
    const found = readProfileCredentials(text, profile);
    if (!found) {
      throw new ChatError(
        'AUTH',
        `${cfg.name}: no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or profile "${profile}" in ${file})`,
        {
          provider: cfg.name,
        },
      );
    }
    return found;
  };
  const bedrock = createAmazonBedrock({
    region: b.region,
    // '' rather than undefined: the SDK would otherwise read AWS_BEARER_TOKEN_BEDROCK itself.
    ...(cfg.apiKey ? { apiKey: cfg.apiKey } : { apiKey: '', credentialProvider: credentials }),
    ...(cfg.baseURL ? { baseURL: cfg.baseURL } : {}),
    fetch: tappedFetch(deps.fetch),
  });
  return aiSdkProvider(
    {
      name: cfg.name,
      kind: 'bedrock',
      defaultModel: cfg.defaultModel,
      secrets: secretsOf(cfg),
      terminal: TERMINAL_FRAMES.bedrock,
      errorType: BEDROCK_EXCEPTION_TYPE,
      model: (id) => bedrock(id),
      callOptions: (req) => {
        const r = req.reasoning;
        if (!r) return {};
        const reasoningConfig =
          r.enabled === false ? { type: 'disabled' } : { type: 'enabled', budgetTokens: Math.max(1024, budgetFor(r)) };
        return { providerOptions: { bedrock: { reasoningConfig } } };
      },
    },
    deps,
  );
}
