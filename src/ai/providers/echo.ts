/**
 * The built-in offline provider: answers every request by echoing the last user message,
 * deterministically, so the whole chat path can be exercised without a network or a key.
 * The reply says plainly that it comes from the echo provider, so nobody mistakes it for a
 * model's answer. It takes neither images nor tools (the router refuses those with
 * `BAD_REQUEST`), since it cannot honour them.
 * @packageDocumentation
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { ChatError, type NormalizedChatRequest, type ProviderEvent, textOfContent } from '../types';
import type { ChatProvider } from './provider';

/** The prefix of every echo reply. */
export const ECHO_PREFIX = '[echo provider] You said: ';

/** Words as the echo provider counts tokens: runs of non-space characters. */
export function countWords(text: string): number {
  return text.match(/\S+/g)?.length ?? 0;
}

/** The full reply the echo provider gives to `req` (before any `maxTokens` cut). */
export function echoReply(req: NormalizedChatRequest): string {
  const lastUser = [...req.messages].reverse().find((m) => m.role === 'user');
  return `${ECHO_PREFIX}${lastUser ? textOfContent(lastUser.content) : ''}`;
}

/**
 * Split text into chunks of one word plus its trailing space. Lossless: the chunks join
 * back to the input exactly.
 */
export function echoChunks(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

/** Create the echo provider. */
export function createEchoProvider(name = 'echo'): ChatProvider {
  return {
    name,
    kind: 'echo',
    defaultModel: 'echo',
    capabilities: { images: false, tools: false },
    async *stream(req: NormalizedChatRequest, _model: string, signal: AbortSignal): AsyncGenerator<ProviderEvent> {
      const inputTokens =
        countWords(req.system ?? '') +
        req.messages.reduce((n, m) => n + countWords(m.role === 'user' ? textOfContent(m.content) : m.content), 0);
      const all = echoChunks(echoReply(req));
      const chunks = req.maxTokens !== undefined ? all.slice(0, req.maxTokens) : all;
      for (const text of chunks) {
        // One event-loop turn per chunk, so it streams like a real provider and can be cancelled.
        await nextTurn();
        if (signal.aborted) throw new ChatError('CANCELLED', 'request cancelled', { provider: name });
        yield { type: 'delta', text };
      }
      yield {
        type: 'finish',
        finishReason: chunks.length < all.length ? 'length' : 'stop',
        usage: { inputTokens, outputTokens: chunks.reduce((n, c) => n + countWords(c), 0) },
      };
    },
  };
}
