#!/usr/bin/env bash
# image/ci-image.sh: called by .ci/run BEFORE the tests, so that `cargo test --test
# image_boot` / `--test image_layout` find the images (and fail under CI if one is missing).
# Builds the static aarch64 binary (cached), the qemu-virt image twice from scratch with the
# hashes compared (reproducibility is checked on that one board only, to keep CI time
# reasonable: every board runs the same script), then every other supported board once; each
# compressed image must fit in 64 MiB.
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
echo "ci-image: qemu-virt reproducible (both builds sha256 ${hashes[0]})"
others=()
for f in boards/*.toml; do
  b=$(basename "$f" .toml)
  [ "$b" != qemu-virt ] && grep -q '^supported = true' "$f" && others+=("$b")
done
t0=$(date +%s)
bash image/build-image.sh "${others[@]}"
echo "ci-image: ${others[*]}: $(($(date +%s) - t0)) s"
over=0
for f in target/image/voipsensor-*-"$VERSION".img.zst; do
  size=$(stat -c %s "$f")
  echo "ci-image: $(basename "$f") $size bytes ($((size / 1048576)) MiB, budget 64 MiB)"
  [ "$size" -le $((64 * 1048576)) ] || { echo "ci-image: $f over 64 MiB" >&2; over=1; }
done
exit $over
