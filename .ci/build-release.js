#!/usr/bin/env node
// Builds the release binary of one platform package (npm/<platform>), stripped.
// - glibc targets (x86_64, aarch64): linked against glibc 2.17 with napi-rs's cross toolchain
//   (`napi build --use-napi-cross`), so they load on Ubuntu 18.04+, Debian 9+, RHEL/CentOS 7+,
//   Amazon Linux 2;
// - musl (x86_64-unknown-linux-musl): linked by musl-gcc (Debian's musl-tools) against musl's libc.so.
//
// The glibc toolchains come from the npm registry as `@napi-rs/cross-toolchain-x64-target-<arch>`.
// napi's own download step fetches that package at the version of `@napi-rs/cross-toolchain`
// (1.0.5 here), which is not published for this target (only 1.0.0 is), and it decompresses with
// `@napi-rs/lzma`, whose Linux binary is not installed here. So this script fetches the newest
// published toolchain package with `npm pack`, unpacks it with tar/xz into the cache directory napi
// looks in (~/.napi-rs/cross-toolchain/<version>/<triple>), then lets napi do the rest.
//
// If the toolchain cannot be had, it falls back to a plain host build (linked against the host's
// glibc) and says so; `.ci/check-glibc.sh` then fails CI, because the package would not load on
// older distributions.
//
// Usage: node .ci/build-release.js [--target TRIPLE] [--out DIR]
//   (defaults: x86_64-unknown-linux-gnu, npm/<platform of the triple>)
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const arg = (name, dflt) => (process.argv.indexOf(name) > 0 ? process.argv[process.argv.indexOf(name) + 1] : dflt);
const triple = arg('--target', 'x86_64-unknown-linux-gnu');
const [cpu, , , abi] = triple.split('-');
const platform = `linux-${{ x86_64: 'x64', aarch64: 'arm64' }[cpu]}-${abi.startsWith('musl') ? 'musl' : 'gnu'}`;
const toolchainPackage = `@napi-rs/cross-toolchain-x64-target-${cpu}`;
const outDir = path.resolve(root, arg('--out', `npm/${platform}`));
const napi = path.join(root, 'node_modules', '.bin', 'napi');
const common = ['build', '--platform', '--release', '--no-js', '--target', triple, '--manifest-path', 'crates/lapce_ai_ipc_binding/Cargo.toml'];

function run(cmd, args, opts = {}) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  // `napi build --strip` passes `-C link-arg=-s`, which does not strip here; cargo's own profile
  // setting strips with every linker.
  const env = { ...process.env, CARGO_PROFILE_RELEASE_STRIP: 'symbols' };
  return execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env, ...opts });
}

/** Puts the toolchain where `napi build --use-napi-cross` looks for it; returns false if it cannot. */
function provideToolchain() {
  const crossPkg = require.resolve('@napi-rs/cross-toolchain/package.json', { paths: [path.join(root, 'node_modules', '@napi-rs', 'cli')] });
  const napiVersion = JSON.parse(fs.readFileSync(crossPkg, 'utf8')).version;
  const dest = path.join(os.homedir(), '.napi-rs', 'cross-toolchain', napiVersion, triple);
  if (fs.existsSync(path.join(dest, 'package.json'))) return true;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'napi-cross-'));
  try {
    const tgz = execFileSync('npm', ['pack', `${toolchainPackage}@latest`, '--silent'], { cwd: tmp, encoding: 'utf8' }).trim().split('\n').pop();
    execFileSync('tar', ['xzf', tgz], { cwd: tmp });
    const xz = fs.readdirSync(path.join(tmp, 'package')).find((f) => f.endsWith('.tar.xz'));
    if (!xz) throw new Error(`${tgz} holds no .tar.xz toolchain`);
    fs.mkdirSync(dest, { recursive: true });
    execFileSync('tar', ['xJf', path.join(tmp, 'package', xz), '-C', dest]);
    console.log(`cross toolchain ${tgz} unpacked into ${dest}`);
    return true;
  } catch (e) {
    fs.rmSync(dest, { recursive: true, force: true });
    console.error(`cannot provide the cross toolchain (${e.message.split('\n')[0]})`);
    return false;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

fs.mkdirSync(outDir, { recursive: true });
const tmpOut = fs.mkdtempSync(path.join(os.tmpdir(), 'lapce-release-'));
// Its own target dir: the cross toolchain's compiler would otherwise invalidate the host build's cache.
const targetDir = path.join(root, 'target', 'cross');
if (abi.startsWith('musl')) {
  // napi adds `-C target-feature=-crt-static` for musl, so the addon links musl's libc.so dynamically, as Node on Alpine does.
  const linker = `CARGO_TARGET_${triple.toUpperCase().replace(/-/g, '_')}_LINKER`;
  run(napi, [...common, '--target-dir', targetDir, '-o', tmpOut], { env: { ...process.env, CARGO_PROFILE_RELEASE_STRIP: 'symbols', [linker]: 'musl-gcc', CC: 'musl-gcc' } });
  console.log('release build: musl-gcc');
} else if (provideToolchain()) {
  run(napi, [...common, '--use-napi-cross', '--target-dir', targetDir, '-o', tmpOut]);
  console.log('release build: cross toolchain (glibc 2.17 sysroot)');
} else {
  run(napi, [...common, '--target-dir', targetDir, '-o', tmpOut]);
  console.warn('release build: FALLBACK host build, linked against the host glibc (the cross toolchain was not available)');
}
const binary = fs.readdirSync(tmpOut).find((f) => f.endsWith('.node'));
fs.copyFileSync(path.join(tmpOut, binary), path.join(outDir, binary));
fs.rmSync(tmpOut, { recursive: true, force: true });
console.log(`${path.relative(root, path.join(outDir, binary))}: ${fs.statSync(path.join(outDir, binary)).size} bytes`);
