/**
 * Finds and loads the compiled Rust binding for this platform, or says plainly why it cannot.
 *
 * napi-rs's generated loader tries every platform it knows and ends with "npm has a bug related to
 * optional dependencies", which is the wrong advice on macOS, Windows or an arm64 box for which no
 * binary is built. This loader knows the platforms this package is built for (the `napi.targets` of
 * its package.json, one source) and, when it cannot load one, names the platform it detected, the
 * ones that are supported, and what to do.
 *
 * Order of candidates for a supported platform:
 * 1. `LAPCE_AI_IPC_NATIVE_PATH` (or napi-rs's `NAPI_RS_NATIVE_LIBRARY_PATH`), if set: that file only;
 * 2. `lapce-ai-ipc.<platform>.node` in the package root (a clone after `npm run build:native`);
 * 3. the platform package `lapce-ai-ipc-<platform>` (an installed package), whose version must match.
 * @internal
 * @packageDocumentation
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { IpcError } from './errors';

/** What the loader needs to know about the running process (injectable for tests). */
export interface HostInfo {
  platform: NodeJS.Platform;
  arch: string;
  /** `glibc` or `musl` on Linux; undefined elsewhere. */
  libc?: 'glibc' | 'musl';
  /** The glibc version the process runs with (Linux glibc only), e.g. `2.31`. */
  glibcVersion?: string;
}

/** How to load modules and inspect files (injectable for tests). */
export interface LoaderDeps {
  env: NodeJS.ProcessEnv;
  /** The package root (where package.json and a locally built `.node` live). */
  root: string;
  require: (id: string) => unknown;
  exists: (file: string) => boolean;
}

/** Facts about this package that the loader uses, read from its package.json. */
export interface PackageFacts {
  name: string;
  version: string;
  binaryName: string;
  /** Platform keys with a build, e.g. `linux-x64-gnu` (from `napi.targets`). */
  supported: string[];
}

/** Rust target triple → napi-rs platform key (`<platform>-<arch>[-<abi>]`). */
export function platformKeyOfTriple(triple: string): string {
  const [cpu, , sys, abi] = triple.split('-');
  const arch = ({ x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm' } as Record<string, string>)[cpu] ?? cpu;
  const platform = sys === 'darwin' ? 'darwin' : sys === 'windows' ? 'win32' : sys;
  const libc = abi?.startsWith('musl')
    ? 'musl'
    : abi?.startsWith('gnu') && platform === 'linux'
      ? 'gnu'
      : abi === 'msvc'
        ? 'msvc'
        : undefined;
  return [platform, arch, libc].filter(Boolean).join('-');
}

/** The platform key of a host, e.g. `linux-x64-gnu`, `linux-arm64-musl`, `darwin-arm64`. */
export function platformKey(host: HostInfo): string {
  if (host.platform === 'linux') return `linux-${host.arch}-${host.libc === 'musl' ? 'musl' : 'gnu'}`;
  if (host.platform === 'win32') return `win32-${host.arch}-msvc`;
  return `${host.platform}-${host.arch}`;
}

/** Reads the running process's platform, architecture and C library. */
export function detectHost(): HostInfo {
  const host: HostInfo = { platform: process.platform, arch: process.arch };
  if (process.platform !== 'linux') return host;
  // Node's report names the glibc it runs with; musl builds of Node have no such field.
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  if (header?.glibcVersionRuntime) {
    host.libc = 'glibc';
    host.glibcVersion = header.glibcVersionRuntime;
  } else {
    host.libc = existsSync('/etc/alpine-release') || lddSaysMusl() ? 'musl' : 'glibc';
  }
  return host;
}

function lddSaysMusl(): boolean {
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl');
  } catch {
    return false;
  }
}

/** This package's facts, from the package.json next to `root`. */
export function readPackageFacts(root: string): PackageFacts {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    napi: { binaryName: string; targets: string[] };
  };
  return { name: pkg.name, version: pkg.version, binaryName: pkg.napi.binaryName, supported: pkg.napi.targets.map(platformKeyOfTriple) };
}

function describeHost(host: HostInfo): string {
  const libc = host.platform === 'linux' ? ` (${host.libc ?? 'unknown libc'}${host.glibcVersion ? ` ${host.glibcVersion}` : ''})` : '';
  return `${platformKey(host)}${libc}`;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Loads the binding for `host`, or throws an {@link IpcError}:
 * `UNSUPPORTED_PLATFORM` when no binary is built for it, `NATIVE_LOAD_FAILED` when one is built
 * but is missing or does not load. The message says what was detected and what to do.
 */
export function loadNative(host: HostInfo, pkg: PackageFacts, deps: LoaderDeps): unknown {
  const override = deps.env.LAPCE_AI_IPC_NATIVE_PATH || deps.env.NAPI_RS_NATIVE_LIBRARY_PATH;
  if (override) {
    try {
      return deps.require(path.resolve(override));
    } catch (e) {
      throw new IpcError(
        'NATIVE_LOAD_FAILED',
        `${pkg.name}: cannot load the native binary named by the environment (${override}): ${message(e)}`,
        {
          cause: e,
          details: { platform: platformKey(host), path: override },
        },
      );
    }
  }

  const key = platformKey(host);
  const supported = pkg.supported.join(', ');
  if (!pkg.supported.includes(key)) {
    const advice =
      host.platform === 'linux'
        ? `It needs Linux with memfd and SO_PEERCRED, on one of the supported platforms above; on another architecture or C library, build it from a clone of the repository (npm ci builds the binary for the host) and point LAPCE_AI_IPC_NATIVE_PATH at the .node file.`
        : `It uses Linux-only kernel features (memfd, SCM_RIGHTS with sealed shared memory, SO_PEERCRED), so it cannot run on ${host.platform}; run it inside Linux (a container, WSL 2 or a VM), or load it only on Linux in a cross-platform app (the package installs everywhere; only this require fails).`;
    throw new IpcError(
      'UNSUPPORTED_PLATFORM',
      `${pkg.name}: no native binary for this platform: detected ${describeHost(host)}; built for: ${supported}. ${advice}`,
      {
        details: { platform: key, supported: pkg.supported },
      },
    );
  }

  const tried: string[] = [];
  const local = path.join(deps.root, `${pkg.binaryName}.${key}.node`);
  if (deps.exists(local)) {
    try {
      return deps.require(local);
    } catch (e) {
      throw loadFailure(host, pkg, `the local build ${local} does not load: ${message(e)}`, e);
    }
  }
  tried.push(`no local build ${path.basename(local)}`);

  const platformPkg = `${pkg.name}-${key}`;
  let binding: unknown;
  try {
    binding = deps.require(platformPkg);
  } catch (e) {
    const notInstalled = (e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && message(e).includes(platformPkg);
    if (!notInstalled) throw loadFailure(host, pkg, `the platform package ${platformPkg} does not load: ${message(e)}`, e);
    tried.push(`the platform package ${platformPkg} is not installed`);
    throw loadFailure(
      host,
      pkg,
      `${tried.join('; ')}. Install it with \`npm install ${platformPkg}@${pkg.version}\` (npm installs it by itself unless optional dependencies are omitted: --omit=optional, --no-optional, or a lockfile made on another OS); in a clone, run \`npm run build:native\`.`,
      e,
    );
  }
  const version = (deps.require(`${platformPkg}/package.json`) as { version?: string }).version;
  if (version !== pkg.version) {
    throw loadFailure(
      host,
      pkg,
      `the platform package ${platformPkg} is version ${version}, but ${pkg.name} is ${pkg.version}; install the same version of both (\`npm install ${platformPkg}@${pkg.version}\`).`,
    );
  }
  return binding;
}

function loadFailure(host: HostInfo, pkg: PackageFacts, what: string, cause?: unknown): IpcError {
  // A binary built against a newer glibc than the host's fails with this loader message.
  const glibc = cause !== undefined ? /GLIBC_([0-9.]+)' not found/.exec(message(cause)) : null;
  const hint = glibc ? ` The binary needs glibc ${glibc[1]} or later; this system has ${host.glibcVersion ?? 'an older one'}.` : '';
  return new IpcError('NATIVE_LOAD_FAILED', `${pkg.name}: cannot load the native binary for ${describeHost(host)}: ${what}${hint}`, {
    cause,
    details: { platform: platformKey(host) },
  });
}
