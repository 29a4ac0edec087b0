#!/usr/bin/env bash
# The whole-program benchmark: builds release, generates every capture in a temp dir
# (never in the repo), and prints ONE table (markdown) on stdout; progress on stderr.
#
#   bash benches/run.sh           # full run (tens of GB of temp files at most, ~20 min)
#   bash benches/run.sh --quick   # short sizes and durations, < 3 min with a warm build
#
# Throughput is frames / CPU seconds (user + sys) of the whole `voipsensor replay --summary`
# process pinned to one core (`taskset -c 0`), best of $BEST_OF (5; 3 with --quick: on this
# VM single runs of one file vary by up to 70 %, and noise only ever adds time); tshark the same way
# on the same file in the same run, best of 2 on the 1,000-call file, 1 on the 10,000. Peak RSS is /usr/bin/time's maximum resident set. The live part
# (root only) replays onto a veth into a network namespace of its own with tcpreplay and
# reads the kernel drop counters from `voipsensor run`'s health lines.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
# Assumed single-core speed ratio of this x86 machine to a Pi 4's Cortex-A72 at 1.5 GHz
# (same code, same clock-for-clock work): override with A72_RATIO=...
A72_RATIO=${A72_RATIO:-3}
PI4_BUDGET_NS=1900 # 1 GbE line rate of 238-byte mirrored G.711 frames: ~525,000/s

if [ $QUICK = 1 ]; then
  S1K=10 S10K=3 CHURN=(3000 100 3) FLOOD_CALLS=200 FLOOD_S=10 FLOOD_N=200000
  LIVE_S=3 LIVE_GEN_S=5 RATES=(50000 200000 400000) TSHARK_10K=1 BEST_OF=${BEST_OF:-3}
else
  S1K=30 S10K=10 CHURN=(3000 1000 3) FLOOD_CALLS=1000 FLOOD_S=30 FLOOD_N=1000000
  LIVE_S=60 LIVE_GEN_S=20 RATES=(100000 200000 300000 400000 500000 600000) TSHARK_10K=1
  BEST_OF=${BEST_OF:-5}
fi

log() { echo "bench: $*" >&2; }
need() { command -v "$1" >/dev/null || { echo "bench: $1 missing (bash .ci/setup.sh)" >&2; exit 1; }; }
need taskset
need tshark
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }

log "building release"
cargo build --release --quiet
V=$PWD/target/release/voipsensor
T=$(mktemp -d "${TMPDIR:-/tmp}/voipsensor-bench.XXXXXX")
NS=vs-b-perf-ns
cleanup() {
  ip netns del "$NS" 2>/dev/null || true
  ip link del vsperf0 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

ROWS=()
row() { ROWS+=("| $1 | $2 | $3 |"); }

# gen NAME ARGS...: a capture in $T; prints nothing.
gen() {
  local name=$1
  shift
  "$V" fixture "$T/$name.pcap" "$@" 2>"$T/$name.gen"
  log "$(cat "$T/$name.gen")"
}

# run_timed OUT CMD...: best-of-$BEST_OF CPU seconds and the peak RSS (KiB) in $CPU / $RSS.
run_timed() {
  local out=$1
  shift
  CPU=""
  RSS=0
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f "%U %S %M" -o "$T/time" taskset -c 0 "$@" >"$out" 2>/dev/null
    read -r u s m <"$T/time"
    local c
    c=$(echo "$u + $s" | bc -l)
    if [ -z "$CPU" ] || [ "$(echo "$c < $CPU" | bc -l)" = 1 ]; then CPU=$c; fi
    [ "$m" -gt "$RSS" ] && RSS=$m
  done
  # /usr/bin/time counts in 10 ms ticks: never divide by zero.
  [ "$(echo "$CPU < 0.01" | bc -l)" = 1 ] && CPU=0.01
  return 0
}

frames_of() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["frames"])' "$1"; }
mpps() { echo "scale=2; $1 / $2 / 1000000" | bc -l; }
mib() { echo "scale=1; $1 / 1024" | bc -l; }

# replay NAME [ARGS...]: $PPS (packets/s), $RSS (KiB), $FRAMES.
replay() {
  local name=$1
  shift
  RUNS=$BEST_OF run_timed "$T/$name.json" "$V" replay "$T/$name.pcap" --summary "$@"
  set -- "$name"
  FRAMES=$(frames_of "$T/$1.json")
  PPS=$(echo "$FRAMES / $CPU" | bc -l)
}

# ---- throughput: 1,000 and 10,000 concurrent calls, and tshark on the same files ----
for n in 1000 10000; do
  secs=$S1K
  [ $n = 10000 ] && secs=$S10K
  gen "c$n" --scenario long --calls $n --seconds "$secs" --call-seconds 30 --vlan 100 --loss 0.01
  # 10,000 calls need tables past the defaults (4,096 calls): sized so none is evicted.
  caps=()
  if [ $n = 10000 ]; then
    printf '[sensor]\nsite = "bench"\n[tracker]\nmax_calls = 12288\nmax_streams = 24576\nmax_media_endpoints = 49152\n' >"$T/10k.toml"
    caps=(--config "$T/10k.toml")
  fi
  replay "c$n" "${caps[@]}"
  vs_pps=$PPS
  vs_cpu=$CPU
  row "replay --summary, $n concurrent G.711 calls (VLAN, 1 % loss), $FRAMES frames${caps:+ (12,288-call tables)}" \
    "$(mpps "$FRAMES" "$CPU") M packets/s" "$(echo "scale=0; 1000000000 / $vs_pps" | bc -l) ns/packet, peak RSS $(mib "$RSS") MiB"
  [ $n = 1000 ] && NS_PER_PKT=$(echo "1000000000 / $vs_pps" | bc -l) && BASE_PPS=$vs_pps
  if [ $n = 1000 ] || [ $TSHARK_10K = 1 ]; then
    log "tshark on c$n"
    tries=2
    [ $n = 10000 ] && tries=1
    RUNS=$tries run_timed "$T/tshark.out" tshark -n -q -r "$T/c$n.pcap" -z rtp,streams
    tcpu=$CPU
    row "tshark -q -z rtp,streams, same $n-call file" "$(mpps "$FRAMES" "$tcpu") M packets/s" \
      "voipsensor is $(echo "scale=1; $tcpu / $vs_cpu" | bc -l)x faster; tshark peak RSS $(mib "$RSS") MiB"
  fi
  rm -f "$T/c$n.pcap"
done

# ---- memory: 1 call, churned calls, each flood ----
gen one --scenario long --calls 1 --seconds 10
replay one
BASE_RSS=$RSS
START_CPU=$CPU
row "peak RSS, 1 call (default capacities: 4096 calls, 8192 streams)" "$(mib "$RSS") MiB" "the baseline below"
# Signed, one decimal ("+0.3", "-0.1"): the change of a peak RSS over the 1-call baseline.
over() { printf '%+.1f' "$(echo "scale=3; ($1 - $BASE_RSS) * 100 / $BASE_RSS" | bc -l)"; }

gen churn --scenario long --calls "${CHURN[0]}" --seconds "${CHURN[1]}" --call-seconds "${CHURN[2]}" --codec none
calls=$(sed -n 's/.* frames, \([0-9]*\) calls.*/\1/p' "$T/churn.gen")
replay churn
row "peak RSS, $calls churned calls (signalling only, ${CHURN[0]} at a time)" "$(mib "$RSS") MiB" "$(over "$RSS") % over 1 call"
rm -f "$T/churn.pcap"

gen normal --scenario long --calls $FLOOD_CALLS --seconds $FLOOD_S
replay normal
NORMAL_PPS=$PPS
row "replay, $FLOOD_CALLS calls without a flood (reference for the floods)" "$(mpps "$FRAMES" "$CPU") M packets/s" "peak RSS $(mib "$RSS") MiB ($(over "$RSS") %)"
# A SIP flood costs its SIP parsing whatever the tables hold; what a full table adds is
# measured by the same file with tables large enough that nothing is evicted. Both sides
# less their start-up (faulting in the tables, measured on the 1-call capture with the same
# tables), as the large tables take seconds to fault in.
ROOM_CALLS=$((FLOOD_N + FLOOD_N / 10 + 4 * FLOOD_CALLS))
printf '[sensor]\nsite = "bench"\n[tracker]\nmax_calls = %d\nmax_media_endpoints = %d\n' \
  "$ROOM_CALLS" $((2 * ROOM_CALLS)) >"$T/room.toml"
RUNS=$BEST_OF run_timed "$T/one-room.json" "$V" replay "$T/one.pcap" --summary --config "$T/room.toml"
ROOM_START_CPU=$CPU
# room NAME FULL_CPU: NAME replayed with room.toml, against its default-table CPU seconds.
room() {
  local full_net room_net evicted
  full_net=$(echo "$2 - $START_CPU" | bc -l)
  replay "$1" --config "$T/room.toml"
  room_net=$(echo "$CPU - $ROOM_START_CPU" | bc -l)
  evicted=$(python3 -c 'import json,sys; t=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["tables"]; print(t["calls"]["evicted"] + t["media_endpoints"]["evicted"])' "$T/$1.json")
  row "  the same, tables with room for every call ($ROOM_CALLS calls, $((2 * ROOM_CALLS)) endpoints; $evicted evicted)" \
    "$(mpps "$FRAMES" "$room_net") M packets/s less start-up" \
    "with every table full: $(echo "scale=0; $room_net * 100 / $full_net" | bc -l) % of this throughput ($(mpps "$FRAMES" "$full_net") M packets/s less start-up); peak RSS $(mib "$RSS") MiB"
}
for kind in call-ids call-ids-sdp invite-pairs ssrcs-one-port ssrcs-ports tcp-partial fragments tiny-tcp; do
  gen "f-$kind" --scenario "flood-$kind" --calls $FLOOD_CALLS --seconds $FLOOD_S --flood-count $FLOOD_N
  replay "f-$kind"
  row "flood $kind: $FLOOD_N units + $FLOOD_CALLS calls, $FRAMES frames" \
    "$(mpps "$FRAMES" "$CPU") M packets/s ($(echo "scale=0; $PPS * 100 / $NORMAL_PPS" | bc -l) % of normal)" \
    "peak RSS $(mib "$RSS") MiB ($(over "$RSS") % over 1 call)"
  case $kind in call-ids | call-ids-sdp | invite-pairs) room "f-$kind" "$CPU" ;; esac
  rm -f "$T/f-$kind.pcap"
done

row "heap allocations per packet in steady state" "0" "proved by \`cargo test --test alloc\` (counting allocator)"

# ---- ns per packet against the Pi 4 budget ----
pi=$(echo "$NS_PER_PKT * $A72_RATIO" | bc -l)
row "ns/packet here (1,000 calls) → Pi 4 estimate at ${A72_RATIO}x slower per core" \
  "$(printf %.0f "$NS_PER_PKT") ns → ~$(printf %.0f "$pi") ns" \
  "$(echo "scale=0; $pi * 100 / $PI4_BUDGET_NS" | bc -l) % of the 1.9 µs budget (525 k packets/s at 1 GbE)"

# ---- live: highest tcpreplay rate with 0 kernel drops for $LIVE_S s ----
if [ "$(id -u)" -ne 0 ] || ! command -v tcpreplay >/dev/null; then
  row "live capture" "skipped" "needs root and tcpreplay"
else
  gen live --scenario long --calls 1000 --seconds $LIVE_GEN_S --call-seconds 30
  ip link add vsperf0 type veth peer name vsperf1
  ip netns add "$NS"
  ip link set vsperf1 netns "$NS"
  ip link set vsperf0 up mtu 9000
  ip netns exec "$NS" ip link set vsperf1 up mtu 9000
  best=0
  best_note="none of the rates ${RATES[*]} without drops"
  for rate in "${RATES[@]}"; do
    ip netns exec "$NS" taskset -c 0 "$V" run -i vsperf1 --stdout --health-interval-s 1 --buffer-mb 64 >"$T/live.out" 2>"$T/live.err" &
    pid=$!
    sleep 1.5
    rss1=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
    timeout $((LIVE_S + 60)) taskset -c 1 tcpreplay -K -i vsperf0 --pps="$rate" --loop=0 --duration="$LIVE_S" "$T/live.pcap" >"$T/tcpreplay.out" 2>&1 || true
    sleep 2
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
    kill -TERM $pid
    wait $pid || true
    sent=$(sed -n 's/.*Actual: \([0-9]*\) packets.*/\1/p' "$T/tcpreplay.out" | head -1)
    read -r drops seen < <(python3 - "$T/live.out" <<'EOF'
import json, sys
drops, frames = 0, 0
def walk(v):
    global drops
    if isinstance(v, dict):
        for k, x in v.items():
            if k in ("dropped_kernel", "dropped_interface") and isinstance(x, int):
                drops = max(drops, x)
            walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    walk(d)
    if isinstance(d.get("frames"), int):
        frames = max(frames, d["frames"])
print(drops, frames)
EOF
    )
    achieved=$(echo "${sent:-0} / $LIVE_S" | bc)
    log "live: asked $rate pps, sent ${sent:-?} ($achieved/s), kernel drops $drops, RSS at 1 s $rss1 KiB, peak $hwm KiB"
    if [ "$drops" = 0 ] && [ "${sent:-0}" -gt 0 ]; then
      # The highest rate tcpreplay achieved: asked for more, it may deliver less.
      [ "$achieved" -le "$best" ] && continue
      best=$achieved
      best_note="0 kernel drops; RSS $(mib "$rss1") MiB at 1 s, peak $(mib "$hwm") MiB ($(printf '%+.1f' "$(echo "scale=3; ($hwm - $rss1) * 100 / $rss1" | bc -l)") %)"
    else
      best_note="$best_note; at $rate asked ($achieved/s sent): $drops kernel drops"
      break
    fi
  done
  row "live: highest tcpreplay rate into a veth that \`run\` sustains for $LIVE_S s" "$best packets/s" "$best_note"
fi

CPU_MODEL=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
echo
echo "voipsensor benchmark ($([ $QUICK = 1 ] && echo quick || echo full)), $(date -u +%Y-%m-%d), $CPU_MODEL, $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo
echo "| what | figure | notes |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
