/**
 * The native loader (src/native-loader.ts): which binary it picks, and what it says when it cannot
 * load one. Hosts and module lookups are injected, so every platform can be tried on this machine.
 */
import path from 'node:path';
import test from 'ava';
import { IpcError } from '../../src/errors';
import { loadNative, platformKey, platformKeyOfTriple, readPackageFacts } from '../../src/native-loader';
import type { HostInfo, LoaderDeps, PackageFacts } from '../../src/native-loader';

const ROOT = path.join(__dirname, '..', '..');
const PKG: PackageFacts = { name: 'lapce-ai-ipc', version: '0.1.0', binaryName: 'lapce-ai-ipc', supported: ['linux-x64-gnu'] };
const LINUX_X64: HostInfo = { platform: 'linux', arch: 'x64', libc: 'glibc', glibcVersion: '2.31' };

/** Lookups over a fake file system: `files` exist, `modules` load (a function throws its error). */
function deps(files: string[], modules: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): LoaderDeps & { required: string[] } {
  const required: string[] = [];
  return {
    env,
    root: '/pkg',
    required,
    exists: (f) => files.includes(f),
    require: (id) => {
      required.push(id);
      if (!(id in modules)) throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
      const m = modules[id];
      if (typeof m === 'function') return (m as () => unknown)();
      return m;
    },
  };
}

function unsupported(t: import('ava').ExecutionContext, host: HostInfo, detected: string): IpcError {
  const e = t.throws(() => loadNative(host, PKG, deps([], {})), { instanceOf: IpcError }) as IpcError;
  t.is(e.code, 'UNSUPPORTED_PLATFORM');
  t.true(e.message.includes(`detected ${detected}`), e.message);
  t.true(e.message.includes('built for: linux-x64-gnu'), e.message);
  t.false(/npm has a bug/.test(e.message));
  return e;
}

test('package.json napi.targets is the one list of supported platforms', (t) => {
  const facts = readPackageFacts(ROOT);
  t.deepEqual(facts.supported, ['linux-x64-gnu', 'linux-arm64-gnu']);
  t.is(facts.binaryName, 'lapce-ai-ipc');
});

test('triples map to napi platform keys', (t) => {
  t.is(platformKeyOfTriple('x86_64-unknown-linux-gnu'), 'linux-x64-gnu');
  t.is(platformKeyOfTriple('aarch64-unknown-linux-musl'), 'linux-arm64-musl');
  t.is(platformKeyOfTriple('aarch64-apple-darwin'), 'darwin-arm64');
  t.is(platformKeyOfTriple('x86_64-pc-windows-msvc'), 'win32-x64-msvc');
  t.is(platformKey({ platform: 'linux', arch: 'arm64', libc: 'musl' }), 'linux-arm64-musl');
});

test('macOS: names the platform, the supported ones, and that it needs Linux', (t) => {
  const e = unsupported(t, { platform: 'darwin', arch: 'arm64' }, 'darwin-arm64');
  t.regex(e.message, /Linux-only kernel features/);
  t.regex(e.message, /container, WSL 2 or a VM/);
  t.deepEqual(e.details, { platform: 'darwin-arm64', supported: ['linux-x64-gnu'] });
});

test('Windows: the same clear refusal', (t) => {
  unsupported(t, { platform: 'win32', arch: 'x64' }, 'win32-x64-msvc');
});

test('Linux on another architecture or musl: says which, and how to build one', (t) => {
  const arm = unsupported(t, { platform: 'linux', arch: 'arm64', libc: 'glibc', glibcVersion: '2.35' }, 'linux-arm64-gnu (glibc 2.35)');
  t.regex(arm.message, /build it from a clone/);
  unsupported(t, { platform: 'linux', arch: 'riscv64', libc: 'glibc' }, 'linux-riscv64-gnu (glibc)');
  unsupported(t, { platform: 'linux', arch: 'x64', libc: 'musl' }, 'linux-x64-musl (musl)');
});

test('a clone: the local build in the package root wins over the platform package', (t) => {
  const d = deps(['/pkg/lapce-ai-ipc.linux-x64-gnu.node'], {
    '/pkg/lapce-ai-ipc.linux-x64-gnu.node': { local: true },
    'lapce-ai-ipc-linux-x64-gnu': {},
  });
  t.deepEqual(loadNative(LINUX_X64, PKG, d), { local: true });
  t.deepEqual(d.required, ['/pkg/lapce-ai-ipc.linux-x64-gnu.node']);
});

test('an installed package: the platform package of the same version', (t) => {
  const d = deps([], {
    'lapce-ai-ipc-linux-x64-gnu': { installed: true },
    'lapce-ai-ipc-linux-x64-gnu/package.json': { version: '0.1.0' },
  });
  t.deepEqual(loadNative(LINUX_X64, PKG, d), { installed: true });
});

test('platform package missing: says so and how to install it, not "npm has a bug"', (t) => {
  const e = t.throws(() => loadNative(LINUX_X64, PKG, deps([], {})), { instanceOf: IpcError }) as IpcError;
  t.is(e.code, 'NATIVE_LOAD_FAILED');
  t.regex(e.message, /linux-x64-gnu \(glibc 2\.31\)/);
  t.regex(e.message, /the platform package lapce-ai-ipc-linux-x64-gnu is not installed/);
  t.regex(e.message, /npm install lapce-ai-ipc-linux-x64-gnu@0\.1\.0/);
  t.regex(e.message, /--omit=optional/);
  t.false(/npm has a bug/.test(e.message));
});

test('platform package of another version: refused, with both versions named', (t) => {
  const d = deps([], { 'lapce-ai-ipc-linux-x64-gnu': {}, 'lapce-ai-ipc-linux-x64-gnu/package.json': { version: '0.0.9' } });
  const e = t.throws(() => loadNative(LINUX_X64, PKG, d), { instanceOf: IpcError }) as IpcError;
  t.is(e.code, 'NATIVE_LOAD_FAILED');
  t.regex(e.message, /version 0\.0\.9, but lapce-ai-ipc is 0\.1\.0/);
});

test('a binary that needs a newer glibc: the error names both versions', (t) => {
  const dlopen = () => {
    throw new Error("/lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.34' not found (required by lapce-ai-ipc.linux-x64-gnu.node)");
  };
  const d = deps([], { 'lapce-ai-ipc-linux-x64-gnu': dlopen });
  const e = t.throws(() => loadNative({ ...LINUX_X64, glibcVersion: '2.28' }, PKG, d), { instanceOf: IpcError }) as IpcError;
  t.is(e.code, 'NATIVE_LOAD_FAILED');
  t.regex(e.message, /needs glibc 2\.34 or later; this system has 2\.28/);
  t.true(e.cause instanceof Error);
});

test('LAPCE_AI_IPC_NATIVE_PATH loads that file only, and a bad one is a clear error', (t) => {
  const d = deps([], { '/opt/x.node': { override: true } }, { LAPCE_AI_IPC_NATIVE_PATH: '/opt/x.node' });
  t.deepEqual(loadNative({ platform: 'darwin', arch: 'arm64' }, PKG, d), { override: true });
  const bad = t.throws(() => loadNative(LINUX_X64, PKG, deps([], {}, { LAPCE_AI_IPC_NATIVE_PATH: '/opt/missing.node' })), {
    instanceOf: IpcError,
  }) as IpcError;
  t.is(bad.code, 'NATIVE_LOAD_FAILED');
  t.regex(bad.message, /\/opt\/missing\.node/);
});
