#!/usr/bin/env bash
# image/ci-image.sh: called by .ci/run BEFORE the tests, so that `cargo test --test
# image_boot` finds the qemu-virt image (and fails under CI if it is missing). Builds the
# static aarch64 binary (cached), then the image twice from scratch and compares the hashes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash image/build-arm.sh aarch64-unknown-linux-gnu
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
z=target/image/voipsensor-qemu-virt-$VERSION.img.zst
hashes=()
for run in 1 2; do
  rm -rf target/image/work "$z" "$z.sha256"
  t0=$(date +%s)
  bash image/build-image.sh qemu-virt
  hashes+=("$(cut -d' ' -f1 "$z.sha256")")
  echo "ci-image: build $run: $(($(date +%s) - t0)) s, sha256 ${hashes[-1]}"
done
[ "${hashes[0]}" = "${hashes[1]}" ] || { echo "ci-image: NOT reproducible: ${hashes[0]} != ${hashes[1]}" >&2; exit 1; }
size=$(stat -c %s "$z")
echo "ci-image: reproducible (both builds sha256 ${hashes[0]}); compressed size $size bytes ($((size / 1048576)) MiB, budget 64 MiB)"
[ "$size" -le $((64 * 1048576)) ] || { echo "ci-image: over 64 MiB" >&2; exit 1; }
