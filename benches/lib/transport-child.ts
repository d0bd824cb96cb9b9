/**
 * The child process of the transport benchmarks (`benches/transport.ts`). It connects through
 * {@link connectToParent} and then does what the parent's commands say, replying on the control
 * link once it is ready. It answers `cpu` requests (in `connectToParent`) at any time.
 *
 * Commands:
 * - `pong`: echo every channel message back;
 * - `sink {count}`: count channel messages, touching the first and last byte of each, and
 *   report `sunk` when `count` have arrived;
 * - `net-pong {path}` / `net-sink {path, count}`: the same over a Unix socket with 4-byte
 *   length-prefixed frames;
 * - `ipc-pong`: echo child_process IPC messages.
 */
import net from 'node:net';
import { Channel } from '../../src/transport/channel';
import { connectToParent, type LinkMessage } from './bare-pair';
import { FrameParser } from './frames';

async function main(): Promise<void> {
  const side = await connectToParent();
  const { link } = side;
  const ch = side.fds ? new Channel(side.fds, 'client', side.channelOptions ?? {}) : null;
  link.once('close', () => ch?.close());
  let sock: net.Socket | null = null;

  link.on('message', (m: LinkMessage) => {
    switch (m.type) {
      case 'pong': {
        const c = ch!;
        c.onMessage((msg) => {
          if (!c.trySend(msg)) void c.send(msg.slice());
        });
        link.reply(m, { type: 'ready' });
        return;
      }
      case 'sink': {
        const c = ch!;
        const count = m.count as number;
        let n = 0;
        let sum = 0;
        c.onMessage((msg) => {
          // Touch the message, as a consumer would.
          sum += msg.length > 0 ? msg[0] + msg[msg.length - 1] : 0;
          if (++n === count) {
            link.send({ type: 'sunk', count: n, sum });
            c.onMessage(null);
          }
        });
        link.reply(m, { type: 'ready' });
        return;
      }
      case 'net-pong': {
        const s = net.connect(m.path as string, () => link.reply(m, { type: 'ready' }));
        sock = s;
        const parser = new FrameParser((frame, len) => {
          const out = Buffer.allocUnsafe(4 + len);
          out.writeUInt32LE(len, 0);
          frame!.copy(out, 4);
          s.write(out);
        }, true);
        s.on('data', (d: Buffer) => parser.push(d));
        s.on('error', () => undefined);
        return;
      }
      case 'net-sink': {
        const count = m.count as number;
        let n = 0;
        const s = net.connect(m.path as string, () => link.reply(m, { type: 'ready' }));
        sock = s;
        const parser = new FrameParser(() => {
          if (++n === count) link.send({ type: 'sunk', count: n });
        }, false);
        s.on('data', (d: Buffer) => parser.push(d));
        s.on('error', () => undefined);
        return;
      }
      case 'net-close': {
        sock?.destroy();
        sock = null;
        link.reply(m, { type: 'closed' });
        return;
      }
      case 'ipc-pong': {
        process.on('message', (msg) => process.send!(msg));
        link.reply(m, { type: 'ready' });
        return;
      }
    }
  });
  link.once('close', () => {
    sock?.destroy();
    if (process.connected) process.disconnect();
  });
}

main().catch((e) => {
  console.error('transport bench child failed:', e);
  process.exit(1);
});
