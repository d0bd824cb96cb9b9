import test from 'ava';
import { ChatError, type ChatRequest, ChatRouter, loadConfig, normalizeChatRequest, parseChatRequest } from '../../src/ai';
import { IpcError } from '../../src/errors';
import { collect } from './helpers';

const echoRouter = () => new ChatRouter(loadConfig({ env: {} }));

const badRequests: Array<[string, unknown, RegExp]> = [
  ['no messages', { model: 'echo' }, /messages: /],
  ['empty messages', { messages: [] }, /messages: .*>=1|messages: .*at least 1|messages: .*1/i],
  ['bad role', { messages: [{ role: 'robot', content: 'hi' }] }, /messages\[0\]\.role/],
  ['content not a string', { messages: [{ role: 'user', content: 42 }] }, /messages\[0\]\.content/],
  ['unknown top-level key', { messages: [{ role: 'user', content: 'hi' }], temprature: 1 }, /temprature: unknown field/],
  ['unknown message key', { messages: [{ role: 'user', content: 'hi', name: 'x' }] }, /messages\[0\]\.name: unknown field/],
  ['temperature too high', { messages: [{ role: 'user', content: 'hi' }], temperature: 2.5 }, /temperature/],
  ['maxTokens zero', { messages: [{ role: 'user', content: 'hi' }], maxTokens: 0 }, /maxTokens/],
  ['maxTokens fractional', { messages: [{ role: 'user', content: 'hi' }], maxTokens: 1.5 }, /maxTokens/],
  ['empty model', { model: '', messages: [{ role: 'user', content: 'hi' }] }, /model/],
  ['not an object', 'hello', /\(root\)/],
];

for (const [name, payload, field] of badRequests) {
  test(`bad request rejected by the router with the field named: ${name}`, async (t) => {
    const { events, error } = await collect(echoRouter().chat(payload));
    t.deepEqual(events, [], 'nothing is streamed for an invalid request');
    t.true(error instanceof ChatError);
    t.is(error?.code, 'BAD_REQUEST');
    t.false(error?.retryable);
    t.regex(error!.message, field);
  });
}

test('a valid request parses, and system instructions are folded together', (t) => {
  const req = parseChatRequest({
    model: 'echo',
    system: 'Be brief.',
    messages: [
      { role: 'system', content: 'Answer in English.' },
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello' },
      { role: 'user', content: 'again' },
    ],
    temperature: 0.2,
    maxTokens: 100,
  });
  t.deepEqual(normalizeChatRequest(req), {
    system: 'Be brief.\n\nAnswer in English.',
    messages: [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello' },
      { role: 'user', content: 'again' },
    ],
    temperature: 0.2,
    maxTokens: 100,
  });
});

test('a request of only system messages is a bad request', async (t) => {
  const { error } = await collect(echoRouter().chat({ messages: [{ role: 'system', content: 'x' }] }));
  t.is(error?.code, 'BAD_REQUEST');
  t.regex(error!.message, /user or assistant/);
});

test('ChatError serialises to the wire form', (t) => {
  const e = new ChatError('RATE_LIMITED', 'slow down', { retryable: true, provider: 'openai', httpStatus: 429, retryAfterMs: 1000 });
  t.deepEqual(JSON.parse(JSON.stringify(e)), {
    code: 'RATE_LIMITED',
    message: 'slow down',
    retryable: true,
    details: { provider: 'openai', httpStatus: 429, retryAfterMs: 1000 },
  });
  t.is(e.retryAfterMs, 1000);
  t.true(e instanceof Error);
  t.true(e instanceof IpcError, 'one error model: every chat error is an IpcError');
  t.is(e.name, 'ChatError');
});

test('ChatRequest is the type a caller writes: optional fields may be left out', async (t) => {
  // Compiles only if every optional field is optional in the exported type (typecheck runs on tests).
  const req: ChatRequest = { model: 'echo', messages: [{ role: 'user', content: 'hi' }] };
  const { error, text } = await collect(echoRouter().chat(req));
  t.is(error, undefined);
  t.regex(text, /You said: hi/);
});
