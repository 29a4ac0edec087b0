#!/usr/bin/env bash
# image/build-arm.sh: build voipsensor as a fully static ARM binary on Debian 12, no Docker.
#
#   bash image/build-arm.sh aarch64-unknown-linux-gnu       # Raspberry Pi 3/4/400/5/Zero 2 W, ARM64 PCs
#   bash image/build-arm.sh armv7-unknown-linux-gnueabihf   # 32-bit Raspberry Pi OS userlands
#   bash image/build-arm.sh                                 # both
#
# On a fresh Debian 12 (as root) it first installs what it needs with apt-get (the package list
# is image/targets.env), builds a static libpcap from Debian's source package, then runs
# `cargo build --release` with Debian's Rust 1.96 (rustc-web). Output, stripped:
#   target/arm/dist/voipsensor-<target>
# It fails loudly if the binary has a dynamic section or NEEDED entries, or if the stripped
# binary is over 8 MiB. Environment: VS_NO_INSTALL=1 skips apt; VS_TARGET_DIR moves target/arm;
# CARGO_BUILD_JOBS limits parallelism.
set -euo pipefail
. "$(dirname "$0")/arm-env.sh"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || read -r -a targets <<<"$VS_TARGETS"
for t in "${targets[@]}"; do vs_check_target "$t"; done

vs_install
mkdir -p "$VS_DIST"
summary=()
for t in "${targets[@]}"; do
    start=$(date +%s)
    vs_build_libpcap "$t" >/dev/null
    (
        vs_target_env "$t"
        vs_log "cargo build --release ${VS_CARGO_ARGS[*]}"
        cd "$VS_ROOT"
        "$VS_CARGO" build --locked --release --bin voipsensor "${VS_CARGO_ARGS[@]}"
    ) || vs_die "cargo build for $t failed"
    secs=$(( $(date +%s) - start ))
    gnu=$(vs_get "$t" GNU)
    raw="$(vs_release_dir "$t")/voipsensor"
    out="$VS_DIST/voipsensor-$t"
    "$gnu-strip" -o "$out" "$raw"
    vs_check_static "$out"
    vs_log "$(file -b "$out")"
    vs_log "readelf -d: $(readelf -d "$out" 2>&1 | tr -s '\n' ' ')"
    summary+=("$(printf '%-32s %5ss  unstripped %9s B  stripped %9s B (%s MiB)' "$t" "$secs" \
        "$(stat -c %s "$raw")" "$(stat -c %s "$out")" \
        "$(awk -v s="$(stat -c %s "$out")" 'BEGIN { printf "%.2f", s / 1048576 }')")")
done
vs_log "static and within budget ($VS_SIZE_BUDGET bytes):"
printf '  %s\n' "${summary[@]}" >&2
