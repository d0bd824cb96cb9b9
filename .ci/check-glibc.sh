#!/usr/bin/env bash
# Fails if a native binary needs a newer glibc than the baseline (default 2.17, the cross toolchain's
# sysroot). Reads the versioned symbols the binary imports (`objdump -T`), e.g. GLIBC_2.14.
# Usage: .ci/check-glibc.sh FILE.node [BASELINE]
set -euo pipefail
file=$1
baseline=${2:-2.17}
need=$(objdump -T "$file" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
if [ -z "$need" ]; then echo "check-glibc: $file imports no versioned glibc symbols"; exit 1; fi
highest=$(printf '%s\n%s\n' "$need" "$baseline" | sort -V | tail -1)
if [ "$highest" != "$baseline" ]; then
  echo "check-glibc: FAIL: $file needs glibc $need, above the baseline $baseline:"
  objdump -T "$file" | grep "GLIBC_$need" | sed 's/^/  /'
  exit 1
fi
echo "check-glibc: ok: $file needs glibc $need (baseline $baseline)"
