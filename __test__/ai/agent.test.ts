/**
 * What an editor's agent panel relies on beyond plain text: routing of Ollama's `name:tag`
 * ids, `null` for absent fields, capability refusals, per-request fallback lists, the
 * context-length fallback, cooldowns (in `providers` data and metrics), the chat-wide
 * deadline, progress keep-alives, tool-choice mapping, redaction of the new providers'
 * secrets, and the new providers' configuration.
 */
import { generateKeyPairSync, verify } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { ChatError, ConfigError, METRIC_NAMES, loadConfig, readProfileCredentials, resolveRoute } from '../../src/ai';
import { createChatBackend } from '../../src/backend';
import { IpcError } from '../../src/errors';
import { VERTEX_OAUTH_TOKEN } from './mocks/cloud';
import { AWS, KEYS, type Mocks, Registry, VERTEX, ask, collect, routerFor, startMocks, stopMocks } from './helpers';

const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';
const imageMessage = { role: 'user', content: [{ type: 'image', mediaType: 'image/png', data: PNG }] };

async function setup(t: { teardown(fn: () => unknown): void }): Promise<Mocks> {
  const m = await startMocks();
  t.teardown(() => stopMocks(m));
  return m;
}

test('a bare name:tag id goes to Ollama, even one that starts like a cloud family', (t) => {
  const c = loadConfig({ env: { OPENAI_API_KEY: 'sk-123456789', OLLAMA_HOST: '127.0.0.1:11434', XAI_API_KEY: 'xai-123456789' } });
  t.deepEqual(resolveRoute('gpt-oss:20b', c), { provider: 'ollama', model: 'gpt-oss:20b' });
  t.deepEqual(resolveRoute('llama3.2:3b', c), { provider: 'ollama', model: 'llama3.2:3b' });
  t.deepEqual(resolveRoute('gpt-4o', c), { provider: 'openai', model: 'gpt-4o' });
  t.deepEqual(resolveRoute('grok-3-mini', c), { provider: 'xai', model: 'grok-3-mini' });
  // Bedrock ids carry a ":0" version but start with a vendor and a dot: not Ollama's.
  t.is(resolveRoute('anthropic.claude-3-5-haiku-20241022-v1:0', c).provider, 'openai');
  const noOllama = loadConfig({ env: { OPENAI_API_KEY: 'sk-123456789' } });
  const err = t.throws(() => resolveRoute('gpt-oss:20b', noOllama), { instanceOf: ChatError });
  t.is(err?.code, 'UNKNOWN_PROVIDER');
  t.regex(err!.message, /ollama/);
});

test('explicit null for optional fields is read as absent (the original UI sends it)', async (t) => {
  const m = await setup(t);
  const { router } = routerFor(m);
  const r = await collect(
    router.chat({
      model: null,
      models: null,
      system: null,
      temperature: null,
      maxTokens: null,
      tools: null,
      toolChoice: null,
      reasoning: null,
      providerOptions: null,
      messages: [{ role: 'user', content: 'hi' }],
    }),
  );
  t.is(r.error, undefined, r.error?.message);
  t.like(r.events[0], { type: 'start', provider: 'gemini' });
  t.false('temperature' in (m.gemini.requests[0].body.generationConfig ?? {}));
});

test('images to a provider that takes none are a clear BAD_REQUEST, and nothing is sent', async (t) => {
  const m = await setup(t);
  const { router } = routerFor(m, {
    providers: { compatible: { textonly: { baseURL: `${m.local.origin}/v1`, models: ['tiny'], images: false } } },
  });
  for (const model of ['echo', 'textonly/tiny']) {
    const r = await collect(router.chat({ model, messages: [imageMessage] }));
    t.is(r.error?.code, 'BAD_REQUEST', model);
    t.regex(r.error!.message, /does not accept images/);
    t.deepEqual(r.events, []);
  }
  t.is(m.local.requests.length, 0);
  const tools = await collect(router.chat(ask('echo', 'hi', { tools: [{ name: 'f', parameters: { type: 'object' } }] })));
  t.is(tools.error?.code, 'BAD_REQUEST');
  t.regex(tools.error!.message, /does not accept tools/);
});

test('a fallback that cannot take the request is skipped', async (t) => {
  const m = await setup(t);
  m.openai.enqueue({ kind: 'status', status: 503 });
  const { router } = routerFor(m, { fallback: ['echo', 'anthropic'], retry: { maxAttempts: 1 } });
  const r = await collect(router.chat({ model: 'gpt-4o', messages: [imageMessage] }));
  t.is(r.error, undefined, r.error?.message);
  t.like(r.events[0], { type: 'start', provider: 'anthropic', fallbackFrom: [{ provider: 'openai', code: 'OVERLOADED' }] });
});

test('a per-request models list is tried in order before the configured chain', async (t) => {
  const m = await setup(t);
  m.openai.enqueue({ kind: 'status', status: 503 });
  m.anthropic.enqueue({ kind: 'status', status: 529 });
  const { router } = routerFor(m, { fallback: ['gemini'], retry: { maxAttempts: 1 } });
  const r = await collect(router.chat(ask('gpt-4o', 'hi', { models: ['claude-x', 'ollama/qwen3:8b'] })));
  t.is(r.error, undefined, r.error?.message);
  t.like(r.events[0], {
    type: 'start',
    provider: 'ollama',
    model: 'qwen3:8b',
    fallbackFrom: [
      { provider: 'openai', model: 'gpt-4o', code: 'OVERLOADED' },
      { provider: 'anthropic', model: 'claude-x', code: 'OVERLOADED' },
    ],
  });
  t.is(m.gemini.requests.length, 0, 'the configured chain comes after the request list');
  const alone = await collect(router.chat({ models: ['local/qwen2.5-coder'], messages: [{ role: 'user', content: 'x' }] }));
  t.like(alone.events[0], { type: 'start', provider: 'local', model: 'qwen2.5-coder' });
});

test('a context-length error goes to the configured larger model, and only there', async (t) => {
  const m = await setup(t);
  m.openai.enqueue({ kind: 'replay', fixture: 'openai/error-context-length.json', status: 400 });
  const { router } = routerFor(m, { contextFallback: 'anthropic/claude-long', fallback: ['gemini'] });
  const r = await collect(router.chat(ask('gpt-4o', 'a very long conversation')));
  t.is(r.error, undefined, r.error?.message);
  t.like(r.events[0], { type: 'start', provider: 'anthropic', model: 'claude-long', fallbackFrom: [{ code: 'CONTEXT_LENGTH' }] });
  t.is(m.openai.requests.length, 1, 'not retried: the same model cannot take it');

  m.openai.enqueue({ kind: 'replay', fixture: 'openai/error-context-length.json', status: 400 });
  const without = routerFor(m, { fallback: ['gemini'] }).router;
  const r2 = await collect(without.chat(ask('gpt-4o')));
  t.is(r2.error?.code, 'CONTEXT_LENGTH');
  t.is(m.gemini.requests.length, 0, 'a same-size fallback would fail the same way');
});

test('cooldown: a provider that answered 429 is skipped by new chats, visible in providers data and metrics, then tried again', async (t) => {
  const m = await setup(t);
  let now = 1_000_000;
  const registry = new Registry();
  m.openai.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '30' } });
  const { config } = routerFor(m, { fallback: ['anthropic'], retry: { maxAttempts: 1 }, cooldown: { defaultMs: 10_000 } });
  const backend = createChatBackend({ config, registry });
  // Same config, with a clock the test moves.
  const router = new (backend.router.constructor as typeof import('../../src/ai').ChatRouter)(config, { registry, now: () => now });
  const first = await collect(router.chat(ask('gpt-4o')));
  t.like(first.events[0], { type: 'start', provider: 'anthropic' });
  t.is(m.openai.requests.length, 1);

  const second = await collect(router.chat(ask('gpt-4o')));
  t.like(second.events[0], { type: 'start', provider: 'anthropic' });
  t.false('fallbackFrom' in second.events[0], 'openai was skipped, not tried');
  t.is(m.openai.requests.length, 1, 'no request to the cooling provider');

  const info = router.listProviders().find((p) => p.name === 'openai');
  t.is(info?.cooldownUntil, now + 30_000, 'for the retry-after it asked');
  t.is(info?.cooldownCode, 'RATE_LIMITED');
  t.deepEqual(router.activeCooldowns(), { openai: { until: now + 30_000, code: 'RATE_LIMITED' } });
  const text = await registry.metrics();
  t.regex(text, new RegExp(`^${METRIC_NAMES.cooldownSeconds}\\{provider="openai"\\} 30$`, 'm'));
  t.regex(text, new RegExp(`^${METRIC_NAMES.cooldowns}\\{provider="openai",code="RATE_LIMITED"\\} 1$`, 'm'));
  t.regex(text, new RegExp(`^${METRIC_NAMES.fallbacks}\\{from="openai",to="anthropic",code="RATE_LIMITED"\\} 1$`, 'm'));

  now += 30_001;
  const third = await collect(router.chat(ask('gpt-4o')));
  t.like(third.events[0], { type: 'start', provider: 'openai' });
  t.is(m.openai.requests.length, 2, 'tried again once the cooldown ended');
  t.deepEqual(router.activeCooldowns(), {});
  router.close();
  backend.router.close();
});

test('cooldown with nobody else to ask fails fast with the wait, without a request', async (t) => {
  const m = await setup(t);
  m.anthropic.enqueue({ kind: 'status', status: 529 });
  const { router } = routerFor(m, { retry: { maxAttempts: 1 }, cooldown: { defaultMs: 60_000 } });
  const first = await collect(router.chat(ask('claude-x')));
  t.is(first.error?.code, 'OVERLOADED');
  const second = await collect(router.chat(ask('claude-x')));
  t.is(second.error?.code, 'OVERLOADED');
  t.true(second.error!.retryable);
  t.true(second.error!.retryAfterMs! > 50_000);
  t.regex(second.error!.message, /cooling down/);
  t.is(m.anthropic.requests.length, 1);
});

test('one deadline for the whole chat, across retries', async (t) => {
  const m = await setup(t);
  m.openai.enqueue({ kind: 'status', status: 500, headers: { 'retry-after-ms': '500' } }, { kind: 'hang', noHeaders: true });
  const { router } = routerFor(m, { retry: { maxAttempts: 5 }, timeouts: { totalMs: 4000 } });
  const r = await collect(router.chat(ask('gpt-4o')));
  t.is(r.error?.code, 'TIMEOUT');
  t.regex(r.error!.message, /no complete reply within 4000 ms/);
  t.is(m.openai.requests.length, 2, 'the second try was cut by the chat deadline, no third');
  t.deepEqual(await m.openai.requests[1].closed, { byClient: true });
  t.like(r.progress[0], { type: 'progress', state: 'retrying', provider: 'openai', code: 'SERVER_ERROR', delayMs: 500 });
});

test('progress: "working" while a provider sends only keep-alives', async (t) => {
  const m = await setup(t);
  // message_start, content_block_start and a ping, then silence: bytes, but nothing to show.
  m.anthropic.enqueue({ kind: 'hang' });
  const { router } = routerFor(m, { retry: { maxAttempts: 1 }, timeouts: { betweenChunksMs: 1200, progressMs: 300 } });
  const r = await collect(router.chat(ask('claude-x')));
  t.is(r.error?.code, 'TIMEOUT');
  t.regex(r.error!.message, /no next event within 1200 ms/, 'the keep-alive bytes counted as the first event');
  t.true(
    r.progress.some((p) => p.state === 'working'),
    'bytes without events: working',
  );
  const firstWorking = r.progress.findIndex((p) => p.state === 'working');
  t.true(
    r.progress.slice(firstWorking).every((p) => p.state === 'working' && p.provider === 'anthropic'),
    'never back to waiting',
  );
});

test('tool choice is mapped per provider; Ollama gets no tools for "none"', async (t) => {
  const m = await setup(t);
  const tools = [{ name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } }];
  const { router } = routerFor(m);
  await collect(router.chat(ask('gpt-4o', 'x', { tools, toolChoice: 'required' })));
  await collect(router.chat(ask('gpt-4o', 'x', { tools, toolChoice: { name: 'get_weather' } })));
  t.is(m.openai.requests[0].body.tool_choice, 'required');
  t.deepEqual(m.openai.requests[1].body.tool_choice, { type: 'function', function: { name: 'get_weather' } });
  await collect(router.chat(ask('claude-x', 'x', { tools, toolChoice: { name: 'get_weather' } })));
  t.deepEqual(m.anthropic.requests[0].body.tool_choice, { type: 'tool', name: 'get_weather' });
  t.is(m.anthropic.requests[0].body.tools[0].input_schema.properties.location.type, 'string');
  await collect(router.chat(ask('ollama/qwen3', 'x', { tools, toolChoice: 'none' })));
  await collect(router.chat(ask('ollama/qwen3', 'x', { tools })));
  t.false('tools' in m.ollama.requests[0].body);
  t.is(m.ollama.requests[1].body.tools[0].function.name, 'get_weather');
});

test('the new providers never leak their secrets into errors or logs', async (t) => {
  const m = await setup(t);
  for (const k of ['azure', 'xai', 'openrouter', 'vertex', 'bedrock'] as const) m[k].enqueue({ kind: 'status', status: 401 });
  const { router, logs } = routerFor(m, { retry: { maxAttempts: 1 } });
  const secrets = [KEYS.azure, KEYS.xai, KEYS.openrouter, KEYS.vertex, AWS.secretAccessKey];
  for (const model of ['azure/dep', 'xai/grok-3', 'openrouter/x/y', 'vertex/gemini-2.5-flash', 'bedrock/amazon.nova-lite-v1:0']) {
    const r = await collect(router.chat(ask(model)));
    t.is(r.error?.code, 'AUTH', model);
    for (const s of secrets) t.false(JSON.stringify(r.error).includes(s) || r.error!.message.includes(s), `${model} error`);
  }
  for (const s of secrets) t.false(logs().includes(s), 'logs');
  // The request carried a signature, never the secret itself.
  const auth = String(m.bedrock.requests[0].headers.authorization);
  t.regex(auth, /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/us-east-1\/bedrock\/aws4_request/);
  t.false(JSON.stringify(m.bedrock.requests[0].headers).includes(AWS.secretAccessKey));
});

test('bedrock: a request signed with the wrong secret is refused by SigV4 as AUTH', async (t) => {
  const m = await setup(t);
  const { router } = routerFor(m, {
    retry: { maxAttempts: 1 },
    providers: { bedrock: { accessKeyId: AWS.accessKeyId, secretAccessKey: 'not-the-secret-0123456789' } },
  });
  const r = await collect(router.chat(ask('bedrock/amazon.nova-lite-v1:0')));
  t.is(r.error?.code, 'AUTH');
  t.deepEqual(m.bedrock.requests[0].problems, ['SigV4 signature does not match']);
});

test('bedrock: credentials from a shared-credentials profile sign the request', async (t) => {
  const m = await setup(t);
  const dir = mkdtempSync(join(tmpdir(), 'lapce-aws-'));
  const file = join(dir, 'credentials');
  writeFileSync(
    file,
    `[default]\naws_access_key_id = WRONG\naws_secret_access_key = wrong\n\n[work]\naws_access_key_id = ${AWS.accessKeyId}\naws_secret_access_key = ${AWS.secretAccessKey}\n`,
  );
  t.deepEqual(readProfileCredentials(`[profile work]\naws_access_key_id=A\naws_secret_access_key=B\naws_session_token=C\n`, 'work'), {
    accessKeyId: 'A',
    secretAccessKey: 'B',
    sessionToken: 'C',
  });
  const saved = process.env.AWS_SHARED_CREDENTIALS_FILE;
  process.env.AWS_SHARED_CREDENTIALS_FILE = file;
  t.teardown(() => {
    if (saved === undefined) delete process.env.AWS_SHARED_CREDENTIALS_FILE;
    else process.env.AWS_SHARED_CREDENTIALS_FILE = saved;
  });
  const config = loadConfig({
    env: { BEDROCK_BASE_URL: m.bedrock.origin, AWS_REGION: AWS.region, AWS_PROFILE: 'work' },
    overrides: { retry: { maxAttempts: 1 } },
  });
  const { ChatRouter } = await import('../../src/ai');
  const r = await collect(new ChatRouter(config).chat(ask('bedrock/amazon.nova-lite-v1:0')));
  t.is(r.error, undefined, r.error?.message);
  t.deepEqual(m.bedrock.requests[0].problems, []);
  const missing = loadConfig({
    env: { BEDROCK_BASE_URL: m.bedrock.origin, AWS_PROFILE: 'nobody' },
    overrides: { retry: { maxAttempts: 1 } },
  });
  const r2 = await collect(new ChatRouter(missing).chat(ask('bedrock/amazon.nova-lite-v1:0')));
  t.is(r2.error?.code, 'AUTH');
  t.regex(r2.error!.message, /no AWS credentials .*profile "nobody"/);
});

test('config: new providers from their own variables; ConfigError is an IpcError with CONFIG_INVALID', (t) => {
  const c = loadConfig({
    env: {
      AZURE_API_KEY: 'az-123456789',
      AZURE_RESOURCE_NAME: 'my-res',
      AWS_BEARER_TOKEN_BEDROCK: 'br-123456789',
      GOOGLE_VERTEX_PROJECT: 'proj',
      XAI_API_KEY: 'xai-123456789',
      OPENROUTER_API_KEY: 'or-123456789',
      AWS_ACCESS_KEY_ID: 'AKID-only-is-not-enough',
    },
  });
  t.is(c.providers.azure.baseURL, 'https://my-res.openai.azure.com/openai');
  t.is(c.providers.azure.azure?.apiVersion, '2024-10-21');
  t.is(c.providers.bedrock.apiKey, 'br-123456789');
  t.is(c.providers.vertex.vertex?.location, 'us-central1');
  t.is(c.providers.xai.baseURL, 'https://api.x.ai/v1');
  t.is(c.providers.openrouter.baseURL, 'https://openrouter.ai/api/v1');
  t.false(
    'bedrock' in loadConfig({ env: { AWS_ACCESS_KEY_ID: 'A', AWS_SECRET_ACCESS_KEY: 'B' } }).providers,
    'generic AWS keys alone do not configure Bedrock',
  );
  const err = t.throws(() => loadConfig({ env: {}, overrides: { providers: { azure: { apiKey: 'k-123456' } } } }), {
    instanceOf: ConfigError,
  });
  t.true(err instanceof IpcError);
  t.is(err?.code, 'CONFIG_INVALID');
  t.regex(err!.message, /providers\.azure: needs resourceName or baseURL/);
  t.throws(() => loadConfig({ env: {}, overrides: { contextFallback: 'nobody/model' } }), {
    message: /contextFallback: provider "nobody"/,
  });
});

test('timing: time to first event and to first text are reported apart, and in metrics', async (t) => {
  const m = await setup(t);
  const registry = new Registry();
  m.anthropic.enqueue({ kind: 'replay', fixture: 'anthropic/thinking.sse', delayMs: 150 });
  const { router } = routerFor(m, {}, registry);
  const r = await collect(router.chat(ask('claude-x', 'gcd?', { reasoning: { budgetTokens: 1024 } })));
  t.is(r.error, undefined);
  t.true(r.timing!.firstEventMs! < r.timing!.firstTextMs!, `${r.timing!.firstEventMs} < ${r.timing!.firstTextMs}`);
  t.true(r.timing!.firstTextMs! <= r.timing!.totalMs);
  const text = await registry.metrics();
  t.regex(text, new RegExp(`^${METRIC_NAMES.firstEvent}_count\\{provider="anthropic"\\} 1$`, 'm'));
  t.regex(text, new RegExp(`^${METRIC_NAMES.firstToken}_count\\{provider="anthropic"\\} 1$`, 'm'));
});

test('vertex: a service-account JSON is exchanged for an OAuth token (signed JWT), sent as Bearer', async (t) => {
  const m = await setup(t);
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const dir = mkdtempSync(join(tmpdir(), 'lapce-vertex-'));
  const saFile = join(dir, 'sa.json');
  const email = 'chat-test@test-project.iam.gserviceaccount.com';
  writeFileSync(
    saFile,
    JSON.stringify({
      type: 'service_account',
      project_id: VERTEX.project,
      private_key_id: 'k1',
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
      client_email: email,
      client_id: '1',
      token_uri: 'https://oauth2.googleapis.com/token',
    }),
  );
  // Google's token endpoint, on loopback: checks the JWT's RS256 signature and claims.
  const claims: Array<Record<string, unknown>> = [];
  const tokenServer = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const form = new URLSearchParams(body);
      const [h, p, sig] = String(form.get('assertion')).split('.');
      const ok = verify('RSA-SHA256', Buffer.from(`${h}.${p}`), publicKey, Buffer.from(sig, 'base64url'));
      const c = JSON.parse(Buffer.from(p, 'base64url').toString());
      claims.push(c);
      if (!ok || form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_grant"}');
        return;
      }
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ access_token: VERTEX_OAUTH_TOKEN, expires_in: 3599, token_type: 'Bearer' }));
    });
  });
  await new Promise<void>((r) => tokenServer.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => tokenServer.close(() => r())));
  const tokenURL = `http://127.0.0.1:${(tokenServer.address() as AddressInfo).port}/token`;
  const redirect: typeof fetch = (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    return fetch(url.startsWith('https://oauth2.googleapis.com/token') ? tokenURL : input, init);
  };
  const config = loadConfig({
    env: {},
    overrides: {
      retry: { maxAttempts: 1 },
      providers: {
        vertex: {
          project: VERTEX.project,
          location: VERTEX.location,
          credentialsFile: saFile,
          baseURL: `${m.vertex.origin}/v1/projects/${VERTEX.project}/locations/${VERTEX.location}/publishers/google`,
        },
      },
    },
  });
  const { ChatRouter } = await import('../../src/ai');
  m.vertex.enqueue({ kind: 'replay', fixture: 'vertex/text.sse' });
  const r = await collect(new ChatRouter(config, { fetch: redirect }).chat(ask('vertex/gemini-2.5-flash')));
  t.is(r.error, undefined, r.error?.message);
  t.is(r.text, 'Hello! How can I help you today?');
  t.is(m.vertex.requests[0].headers.authorization, `Bearer ${VERTEX_OAUTH_TOKEN}`);
  t.false('x-goog-api-key' in m.vertex.requests[0].headers);
  t.like(claims[0], { iss: email, scope: 'https://www.googleapis.com/auth/cloud-platform' });
});

test('openrouter: configured provider routing and a request providerOptions pass through to the body', async (t) => {
  const m = await setup(t);
  const { router } = routerFor(m, { providers: { openrouter: { routing: { order: ['groq', 'together'], allow_fallbacks: false } } } });
  m.openrouter.enqueue({ kind: 'replay', fixture: 'openrouter/text.sse' });
  const r = await collect(
    router.chat(
      ask('openrouter/meta-llama/llama-3.3-70b-instruct', 'hi', { providerOptions: { openrouter: { transforms: ['middle-out'] } } }),
    ),
  );
  t.is(r.error, undefined, r.error?.message);
  const body = m.openrouter.requests[0].body;
  t.is(body.model, 'meta-llama/llama-3.3-70b-instruct');
  t.deepEqual(body.provider, { order: ['groq', 'together'], allow_fallbacks: false });
  t.deepEqual(body.transforms, ['middle-out']);
  t.is(m.openrouter.requests[0].headers.authorization, `Bearer ${KEYS.openrouter}`);
});

test('azure: deployment URL, api-version and the api-key header', async (t) => {
  const m = await setup(t);
  const { router } = routerFor(m);
  m.azure.enqueue({ kind: 'replay', fixture: 'azure/text.sse' });
  const r = await collect(router.chat(ask('azure/my-gpt4o-deployment')));
  t.is(r.error, undefined, r.error?.message);
  const req = m.azure.requests[0];
  t.is(req.url, '/openai/deployments/my-gpt4o-deployment/chat/completions?api-version=2024-10-21');
  t.is(req.headers['api-key'], KEYS.azure);
  t.deepEqual(req.problems, []);
});
