#!/usr/bin/env bash
# The test command from the README: set-up, then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh
cargo test --all-targets -- --test-threads=2
