/**
 * File descriptors: passing a channel's fds to a real child process over SCM_RIGHTS, and never
 * leaking one — not after closing many channels, not after a child is killed mid-stream.
 * Serial: the tests count this process's open fds.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { LinkMessage } from '../../benches/lib/bare-pair';
import type { Channel, ChannelOptions } from '../../src/transport/channel';
import { channelPair } from '../../src/transport/channel';
import { deferred, echoRoundTrip, fdCount, fdList, makeMessage, pair, PEER, settle, sizeOf, within } from './helpers';

test.serial('the child receives the three fds over SCM_RIGHTS and talks back over them', async (t) => {
  const p = await pair(t, PEER, { channel: { capacity: 8192 }, params: { role: 'echo' } });
  const info = await p.link.next('fdinfo');
  type Kinds = { memfd: number; eventfd: number; socket: number };
  const before = info.before as Kinds;
  const received = info.received as Kinds;
  const opened = info.opened as Kinds;
  // Two sealed ring memfds and one doorbell socket arrived with the init message (the other new
  // socket is the control connection itself), and no eventfd any more…
  t.is(received.memfd - before.memfd, 2, JSON.stringify(info));
  t.is(received.socket - before.socket, 2, JSON.stringify(info));
  t.is(received.eventfd, before.eventfd, JSON.stringify(info));
  // …and the child closed the memfds once it had mapped them, keeping its doorbell end.
  t.is(opened.memfd, before.memfd);
  t.is(opened.socket, received.socket);
  t.is(info.pid, p.child.pid);
  // The kernel vouches for who is at the other end of the control socket.
  const cred = p.link.stream.peerCredentials();
  t.is(cred.pid, p.child.pid ?? -1);
  t.is(cred.uid, process.getuid?.() ?? -1);
  const n = 2000;
  t.is(await echoRoundTrip(p.channel!, n, (i) => makeMessage(i, sizeOf(i, 5000))), n);
});

test.serial('no fd is left open after 50 channel pairs are closed', async (t) => {
  // One pair first, so that anything opened once per process (libuv internals) is open already.
  const [w0, w1] = channelPair({ capacity: 4096, wake: 'thread' });
  w0.close();
  w1.close();
  await settle();
  const before = fdCount();
  const listBefore = fdList();
  const variants: ChannelOptions[] = [
    { capacity: 4096 },
    { capacity: 65536, idle: 'sleep' },
    { capacity: 4096, wake: 'thread' },
    { capacity: 4096, zeroCopy: false },
    { capacity: 4096, idle: 'poll' },
  ];
  for (let i = 0; i < 50; i++) {
    const opts = variants[i % variants.length];
    const [a, b] = channelPair(opts);
    // Fds are really open while the pair is (each side: its doorbell end).
    if (i === 0) t.true(fdCount() >= before + 2, `${fdCount()} fds open with a pair, ${before} before`);
    b.onMessage((m) => void b.send(m.slice()));
    t.is(await echoRoundTrip(a, 50, (k) => makeMessage(k, sizeOf(k, 3000))), 50);
    if (i % 2) {
      a.close();
      b.close();
    } else {
      b.close();
      a.close();
    }
  }
  await settle();
  const after = fdCount();
  t.is(
    after,
    before,
    `leaked:\n${fdList()
      .filter((l) => !listBefore.includes(l))
      .join('\n')}`,
  );
});

test.serial('no fd is left open after a child is killed with SIGKILL mid-stream', async (t) => {
  // A first child, so that what the first spawn opens for good (libuv's signal pipe) is open.
  const warm = await pair(t, PEER, { channel: { capacity: 65536 }, params: { role: 'echo' } });
  await warm.close();
  await settle();
  const before = fdCount();
  const listBefore = fdList();
  for (let round = 0; round < 3; round++) {
    const p = await pair(t, PEER, { channel: { capacity: 65536 }, params: { role: 'stream', size: 1000 } });
    const ch = p.channel!;
    let n = 0;
    const flowing = deferred();
    ch.onMessage(() => {
      if (++n === 5000) flowing.resolve();
    });
    await within(flowing.promise, 20_000, 'the child to stream 5000 messages');
    const linkClosed = new Promise<void>((resolve) => p.link.once('close', () => resolve()));
    p.child.kill('SIGKILL');
    const exit = await within(p.exited, 10_000, 'the child to die');
    t.is(exit.signal, 'SIGKILL');
    // The control socket is what tells us the peer died.
    await within(linkClosed, 10_000, 'EOF on the control socket');
    ch.close();
    await p.close();
    t.true(n >= 5000);
  }
  await settle();
  t.is(
    fdCount(),
    before,
    `leaked:\n${fdList()
      .filter((l) => !listBefore.includes(l))
      .join('\n')}`,
  );
});

test.serial('ring mappings are unmapped once closed channels are collected', async (t) => {
  // Needs --expose-gc, which this worker does not have: run a node of our own.
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--expose-gc', '--import=tsx', path.join(__dirname, 'fixtures', 'gc-maps.ts')],
    {
      timeout: 30_000,
    },
  );
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as { before: number; open: number; afterGc: number };
  t.true(r.open >= 4, `a pair maps its two rings on each side (${r.open} mappings seen)`);
  t.is(r.afterGc, r.before, `ring mappings left after 50 closed pairs and gc(): ${r.afterGc}`);
});

test.serial('a child that closes its channel and leaves: end of stream, then EOF on the control socket', async (t) => {
  const p = await pair(t, PEER, { channel: { capacity: 4096 }, params: { role: 'sendclose', count: 10, max: 100 } });
  const closedLink = new Promise<void>((resolve) => p.link.once('close', () => resolve()));
  const sent: LinkMessage = await p.link.next('sent');
  t.is((sent.stats as { messagesSent: number }).messagesSent, 10);
  let n = 0;
  const ended = new Promise<unknown>((resolve) => p.channel!.onClose(resolve));
  p.channel!.onMessage(() => void n++);
  t.is(await within(ended, 10_000, 'end of stream'), undefined, 'a clean close carries no error');
  t.is(n, 10);
  await within(closedLink, 10_000, 'EOF on the control socket');
  const exit = await within(p.exited, 10_000, 'the child to exit');
  t.is(exit.code, 0);
});

/** Ring mappings of this process (lines of /proc/self/maps naming a ring memfd). */
function ringMappings(): number {
  return fs
    .readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes('/memfd:lapce-ai-ring')).length;
}

test.serial('closing 1000 channels unmaps their rings and closes their fds at once, without garbage collection', async (t) => {
  await settle();
  const maps0 = ringMappings();
  const fds0 = fdCount();
  const pairs: Array<[Channel, Channel]> = [];
  for (let i = 0; i < 500; i++) pairs.push(channelPair({ capacity: 4096 }));
  // Every channel maps its two rings (four mappings per pair) and holds its doorbell end.
  t.true(ringMappings() - maps0 >= 4 * 500, `${ringMappings() - maps0} ring mappings with 500 pairs open`);
  const views = pairs.map(([a]) => new Uint8Array((a as unknown as { backend: { rx: ArrayBuffer } }).backend.rx));
  for (const [a, b] of pairs) {
    a.close();
    b.close();
  }
  // Within 100 ms of the last close, and with no gc() run: nothing is left.
  const deadline = performance.now() + 100;
  while ((ringMappings() > maps0 || fdCount() > fds0) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  t.is(ringMappings(), maps0, 'ring mappings left after closing 1000 channels');
  t.is(fdCount(), fds0, 'fds left after closing 1000 channels');
  // Views made before closing were detached: they read as empty, never as freed memory.
  t.true(views.every((v) => v.length === 0));
});

test.serial('a child killed with SIGKILL closes our channel by itself: its doorbell end hangs up', async (t) => {
  const p = await pair(t, PEER, { channel: { capacity: 65536 }, params: { role: 'echo' } });
  const ch = p.channel!;
  await p.link.next('fdinfo');
  t.is(await echoRoundTrip(ch, 100, (i) => makeMessage(i, 64)), 100);
  const whenClosed = new Promise<unknown>((resolve) => ch.onClose(resolve));
  ch.onMessage(() => undefined);
  p.child.kill('SIGKILL');
  // No `closed` word was set (the child never got to), and we do not close it ourselves: the
  // kernel closing the child's doorbell end is what ends the channel.
  t.is(await within(whenClosed, 10_000, 'the channel to close on doorbell EOF'), undefined);
  t.true(ch.closed);
});
