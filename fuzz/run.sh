#!/usr/bin/env bash
# fuzz/run.sh [--seconds N | --runs N] [--sanitizer none] [TARGET...]: installs what is missing (the nightly
# toolchain, cargo-fuzz), writes the seed corpora from the project's fixture into
# fuzz/corpus/TARGET/, then runs each target in turn (one job, niced) and prints one
# `TARGET: N execs, 0 crashes` line per target (crashes: the artifacts in fuzz/artifacts/).
# Default: --seconds 20 per target, every target. Exit code 1 when any target crashed.
#
#   bash fuzz/run.sh --seconds 20                 # every target, 20 s each
#   bash fuzz/run.sh --runs 10000000 tracker      # one target, 10 M executions
#   bash fuzz/run.sh --sanitizer none --runs 10000000 frag  # ~10x faster: no ASan (the
#       fuzzed modules hold no `unsafe`; panics, overflow and debug assertions still fire)
set -euo pipefail
cd "$(dirname "$0")"
limit=(-max_total_time=20)
sanitizer=address
targets=()
while [ $# -gt 0 ]; do
    case $1 in
        --seconds) limit=("-max_total_time=$2"); shift 2 ;;
        --runs) limit=("-runs=$2"); shift 2 ;;
        --sanitizer) sanitizer=$2; shift 2 ;;
        -h | --help) sed -n 2,11p "$(basename "$0")"; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done
all=(decode frag tcp sip sdp rtp websocket tracker)
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

cargo +nightly run --quiet --bin seeds -- corpus

failed=0
for t in "${targets[@]}"; do
    log=$(mktemp)
    mkdir -p "artifacts/$t"
    # Optimised, with overflow checks and debug assertions on (a wrapped sum panics).
    nice -n 10 cargo +nightly fuzz build --debug-assertions -s "$sanitizer" "$t" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
    start=$(date +%s)
    set +e
    nice -n 10 cargo +nightly fuzz run --debug-assertions -s "$sanitizer" "$t" "corpus/$t" -- \
        -jobs=1 -workers=1 -print_final_stats=1 "${limit[@]}" >"$log" 2>&1
    rc=$?
    set -e
    secs=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    crashes=$(find "artifacts/$t" -type f | wc -l)
    echo "$t: ${execs:-0} execs, $crashes crashes (${secs} s, exit $rc, sanitizer $sanitizer)"
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        failed=1
        grep -m 20 -E 'panicked|ERROR|SUMMARY|artifact' "$log" >&2 || true
    fi
    rm -f "$log"
done
exit $failed
