/**
 * A client process of the IPC benchmarks, for holding many connections at once.
 * Commands: `open {socketPath, count, batch}` opens `count` connections (`batch` handshakes at a
 * time), makes one `echo` request on each, and keeps them open; `close` closes them all.
 */
import { IpcClient } from '../../dist/ipc/client';
import { out, serveCommands } from './ipc-proc';

const clients: IpcClient[] = [];

serveCommands(async (m) => {
  switch (m.cmd) {
    case 'open': {
      const { socketPath, count, batch } = m as unknown as { socketPath: string; count: number; batch: number };
      for (let start = 0; start < count; start += batch) {
        await Promise.all(
          Array.from({ length: Math.min(batch, count - start) }, async (_, k) => {
            const c = await IpcClient.connect(socketPath, { name: `bench-${process.pid}-${start + k}` });
            clients.push(c);
            await c.request('echo', { i: start + k });
          }),
        );
      }
      return { open: clients.length };
    }
    case 'close':
      for (const c of clients.splice(0)) c.close();
      return { closed: true };
    default:
      throw new Error(`unknown command ${m.cmd}`);
  }
});
out({ type: 'ready', pid: process.pid });
