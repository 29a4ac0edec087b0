#!/usr/bin/env bash
# The main job from the README: build, generate the demo capture, replay it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh
cargo build --release --quiet
mkdir -p target/demo
./target/release/voipsensor fixture target/demo/demo.pcap
./target/release/voipsensor replay target/demo/demo.pcap "$@"
