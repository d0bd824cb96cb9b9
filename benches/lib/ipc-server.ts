/**
 * The server process of the IPC benchmarks: an IpcServer with an `echo` request handler.
 * Environment `LAPCE_BENCH_IPC_SERVER` = JSON of IpcServerOptions (socketPath required).
 * Prints `{"type":"listening"}`; commands: `state` (connections, VmRSS kB), `gc` (full GC when
 * run with --expose-gc), `close`.
 */
import pino from 'pino';
import { IpcServer, type IpcServerOptions } from '../../dist/ipc/server';
import { out, serveCommands, vmRssKb } from './ipc-proc';

async function main(): Promise<void> {
  const opts = JSON.parse(process.env.LAPCE_BENCH_IPC_SERVER ?? '{}') as IpcServerOptions;
  const server = new IpcServer({ ...opts, logger: pino({ level: 'silent' }) });
  server.handle('echo', (p) => p);
  await server.listen();
  out({ type: 'listening', pid: process.pid });
  serveCommands(async (m) => {
    switch (m.cmd) {
      case 'state':
        return { connections: server.connections, rssKb: vmRssKb('self') };
      case 'gc': {
        const gc = (globalThis as { gc?: () => void }).gc;
        if (gc) {
          gc();
          await new Promise((r) => setTimeout(r, 50));
          gc();
        }
        return { rssKb: vmRssKb('self'), gc: !!gc };
      }
      case 'close':
        await server.close({ deadlineMs: 1000 });
        return { closed: true };
      default:
        throw new Error(`unknown command ${m.cmd}`);
    }
  });
}

main().catch((e) => {
  console.error('ipc bench server failed:', e);
  process.exit(1);
});
