#!/usr/bin/env bash
# The package as a user meets it. Builds the release binaries (x64 and arm64, old-glibc cross
# toolchain, stripped) and checks their glibc baseline; packs the tarballs (main and one per
# platform); installs main + linux-x64-gnu (the machine's own) into
# an empty project with no Rust toolchain on PATH; then, from that project: require, ESM import,
# tsc --noEmit of a typed example (module node16, nodenext, bundler; CJS and ESM files), running
# the compiled example, and `lapce-ai-ipc serve` + `chat` + `health` from the installed bin.
# Needs `npm ci` (or `npm run build:ts`) first: dist/ is what gets packed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
serve_pid=
cleanup() {
  if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "-- release binaries (one per napi target), stripped, glibc baseline 2.17"
# arm64 needs Rust's aarch64 standard library; rustup installs it if it is missing (no-op otherwise).
# rustup's own server may be out of reach (only the package registries are, on some machines): then
# the arm64 package is not built, and this says so loudly; x64, the machine's own, always is.
platforms=linux-x64-gnu
if rustup target add aarch64-unknown-linux-gnu >/dev/null; then
  platforms="$platforms linux-arm64-gnu"
else
  echo "NOTE: linux-arm64-gnu NOT built: Rust's aarch64 standard library is not installed and rustup could not fetch it"
fi
for platform in $platforms; do
  case $platform in linux-x64-gnu) triple=x86_64-unknown-linux-gnu machine=x86-64 ;; linux-arm64-gnu) triple=aarch64-unknown-linux-gnu machine=aarch64 ;; esac
  out="$work/$platform"
  node .ci/build-release.js --target "$triple" --out "$out"
  binary="$out/lapce-ai-ipc.$platform.node"
  .ci/check-glibc.sh "$binary" 2.17
  description=$(file -b "$binary")
  case $description in *"$machine"*", stripped"*) ;; *) echo "FAIL: $binary: $description (want $machine, stripped)"; exit 1 ;; esac
  cp "npm/$platform/package.json" "npm/$platform/README.md" LICENSE "$out/"
  (cd "$out" && npm pack --silent --pack-destination "$work" >/dev/null)
  tar tzf "$work/lapce-ai-ipc-$platform-"*.tgz >"$work/$platform.files"
  grep -qx "package/lapce-ai-ipc.$platform.node" "$work/$platform.files" || { echo "FAIL: the $platform tarball has no binary"; exit 1; }
done

echo "-- pack the main package"
# --ignore-scripts: `prepare` would rebuild everything; dist/ is built already.
npm pack --silent --ignore-scripts --pack-destination "$work" >/dev/null
main_tgz=$(ls "$work"/lapce-ai-ipc-[0-9]*.tgz)
platform_tgz=$(ls "$work"/lapce-ai-ipc-linux-x64-gnu-*.tgz)
tar tzf "$main_tgz" | sort >"$work/main.files"
for f in package/LICENSE package/README.md package/package.json package/index.d.ts package/dist/index.js package/dist/index.d.ts \
  package/dist/chat.js package/dist/chat.d.ts package/dist/cli.js package/docs/PROTOCOL.md package/docs/config.schema.json \
  package/src/ai/CONFIG.md package/examples/config.json; do
  grep -qx "$f" "$work/main.files" || { echo "FAIL: $f missing from $(basename "$main_tgz")"; exit 1; }
done
if grep -E '\.map$|^package/docs/api/|^package/index\.js$|\.node$|^package/src/.*\.ts$' "$work/main.files"; then
  echo "FAIL: the main tarball ships source maps, docs/api, napi's index.js, a binary or TypeScript sources (above)"
  exit 1
fi
echo "main $(du -k "$main_tgz" | cut -f1) KiB ($(wc -l <"$work/main.files") files); linux-x64-gnu $(du -k "$platform_tgz" | cut -f1) KiB"

echo "-- install into an empty project, no Rust toolchain on PATH"
app="$work/app"
mkdir -p "$app"
cd "$app"
npm init -y >/dev/null
nopath=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v -e cargo -e rustup | paste -sd: -)
export PATH=$nopath
if command -v cargo >/dev/null || command -v rustc >/dev/null; then echo "FAIL: a Rust toolchain is still on PATH"; exit 1; fi
typescript=$(node -p "require('$root/package.json').devDependencies.typescript")
types_node=$(node -p "require('$root/package.json').devDependencies['@types/node']")
npm install --no-audit --no-fund --prefer-offline --loglevel=error "$main_tgz" "$platform_tgz" "typescript@$typescript" "@types/node@$types_node" >/dev/null
node -e "
  const assert = require('node:assert');
  const ipc = require('lapce-ai-ipc');
  assert.strictEqual(typeof ipc.IpcServer, 'function');
  const fds = ipc.createChannelFds(1 << 16);
  new ipc.Channel(fds, 'server', { capacity: 1 << 16 }).close();
  const loaded = Object.keys(require.cache);
  assert.ok(!loaded.some((m) => /node_modules\/(ai|@ai-sdk)\//.test(m) || m.includes('/dist/ai/')), 'the IPC entry loaded AI modules');
  const chat = require('lapce-ai-ipc/chat');
  assert.strictEqual(typeof chat.attachChatBackend, 'function');
  assert.strictEqual(require('lapce-ai-ipc/package.json').name, 'lapce-ai-ipc');
  assert.strictEqual(require('lapce-ai-ipc/config.schema.json').type, 'object');
  console.log('require: ok');
"
node --input-type=module -e "
  import assert from 'node:assert';
  import { IpcServer, IpcClient, channelPair } from 'lapce-ai-ipc';
  import { attachChatBackend, loadConfig } from 'lapce-ai-ipc/chat';
  assert.strictEqual(typeof IpcServer, 'function');
  assert.strictEqual(typeof IpcClient.connect, 'function');
  assert.strictEqual(typeof attachChatBackend, 'function');
  assert.strictEqual(loadConfig({ env: {} }).default, 'echo');
  const [a, b] = channelPair({ capacity: 1 << 16 });
  a.close(); b.close();
  console.log('ESM import: ok');
"

echo "-- tsc --noEmit of the typed example (CJS .ts and ESM .mts)"
cp "$root/examples/library.ts" example.ts
cp "$root/examples/library.ts" example.mts
for mode in node16:node16 nodenext:nodenext preserve:bundler; do
  module=${mode%%:*}
  resolution=${mode##*:}
  cat >"tsconfig.$resolution.json" <<EOF
{ "compilerOptions": { "module": "$module", "moduleResolution": "$resolution", "target": "ES2022", "strict": true,
  "esModuleInterop": true, "types": ["node"], "noEmit": true, "skipLibCheck": false }, "files": ["example.ts", "example.mts"] }
EOF
  npx tsc -p "tsconfig.$resolution.json"
  echo "tsc module=$module moduleResolution=$resolution: ok"
done
npx tsc --module node16 --moduleResolution node16 --target ES2022 --strict --esModuleInterop --types node --outDir out example.ts example.mts
node out/example.js | tee "$work/example.out"
node out/example.mjs >>"$work/example.out"
test "$(grep -c '"sum":3,"counted":\[0,1,2\],"reply":"\[echo provider\] You said: hi"' "$work/example.out")" = 2

echo "-- the installed bin: serve, chat, health"
bin=./node_modules/.bin/lapce-ai-ipc
test "$($bin --version)" = "$(node -p "require('$root/package.json').version")"
sock="$work/ai.sock"
$bin serve --socket "$sock" 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 1 100); do grep -q 'providers active' "$work/serve.log" 2>/dev/null && break; sleep 0.2; done
grep -q 'providers active' "$work/serve.log" || { cat "$work/serve.log"; echo "FAIL: serve did not start"; exit 1; }
reply=$($bin chat --socket "$sock" --model echo hi)
test "$reply" = "[echo provider] You said: hi" || { echo "FAIL: chat replied: $reply"; exit 1; }
$bin health --socket "$sock"
kill -TERM "$serve_pid"
wait "$serve_pid"
serve_pid=
echo "package check: ok"
