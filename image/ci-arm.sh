#!/usr/bin/env bash
# image/ci-arm.sh: the ARM part of CI, called by .ci/run (`bash image/ci-arm.sh`).
# Installs what it needs (apt-get, Debian 12), builds the static aarch64 and armv7 binaries
# (failing if not static or over 8 MiB), runs the test suites under qemu-user and compares
# `replay` output with x86_64 byte for byte. Prints timings; exit code non-zero on any failure.
set -euo pipefail
here=$(dirname "$0")
. "$here/arm-env.sh"
t0=$(date +%s)
bash "$here/build-arm.sh"
t1=$(date +%s)
bash "$here/arm-test.sh"
t2=$(date +%s)
for t in $VS_TARGETS; do
    bin="$VS_DIST/voipsensor-$t"
    echo "== $t"
    file "$bin"
    readelf -d "$bin" 2>&1
    echo "stripped size: $(stat -c %s "$bin") bytes (budget $VS_SIZE_BUDGET)"
done
echo "ci-arm: builds $((t1 - t0))s, qemu tests $((t2 - t1))s"
