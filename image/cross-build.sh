#!/usr/bin/env bash
# image/cross-build.sh: the Docker path, for machines with Docker/Podman and `cross`.
#
#   bash image/cross-build.sh aarch64-unknown-linux-gnu      # or armv7-unknown-linux-gnueabihf
#
# Runs `cross build --locked --release --bin voipsensor --target TARGET` with cross.toml (whose
# pre-build installs the static libpcap; tests/cross_config.rs keeps it in step with
# image/targets.env), strips symbols, and applies the same checks as image/build-arm.sh:
# no dynamic section, no NEEDED entries, at most 8 MiB. Output: target/cross-dist/voipsensor-TARGET
# (cross.toml is not named Cross.toml, so CROSS_CONFIG points cross at it.)
set -euo pipefail
. "$(dirname "$0")/arm-env.sh"
[ $# -ge 1 ] || vs_die "usage: $0 TARGET   (one of: $VS_TARGETS)"
t=$1
vs_check_target "$t"
command -v cross >/dev/null || vs_die "cross is not installed (cargo install cross), or use image/build-arm.sh"
cd "$VS_ROOT"
export CROSS_CONFIG="$VS_ROOT/cross.toml"
cross build --locked --release --bin voipsensor --target "$t" --config 'profile.release.strip="symbols"'
out="$VS_ROOT/target/cross-dist/voipsensor-$t"
mkdir -p "$(dirname "$out")"
cp "$VS_ROOT/target/$t/release/voipsensor" "$out"
vs_check_static "$out"
vs_log "$(file -b "$out"), $(stat -c %s "$out") bytes"
