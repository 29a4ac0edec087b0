#!/usr/bin/env bash
# image/arm-test.sh: prove voipsensor behaves on ARM exactly as on x86_64, without Docker.
#
#   bash image/arm-test.sh                                  # both targets
#   bash image/arm-test.sh armv7-unknown-linux-gnueabihf    # one
#
# For each target:
#  1. builds the crate's whole test suite (`cargo test --release --no-run --target T`) and runs
#     every test executable (unit and integration tests) under qemu-user (qemu-aarch64-static /
#     qemu-arm-static, called explicitly: binfmt_misc is not relied upon);
#  2. writes the project's own fixture captures with the ARM binary and with the x86_64 binary
#     and compares them byte for byte;
#  3. replays those fixtures and every capture in ../shared/pcaps (when present) with both
#     binaries and compares stdout (the JSON lines) and the exit code byte for byte.
# Builds (or brings up to date) the static ARM binaries first, with image/build-arm.sh.
# Leaves outputs in target/arm/compare/. Exits non-zero on any failure or difference.
set -euo pipefail
. "$(dirname "$0")/arm-env.sh"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || read -r -a targets <<<"$VS_TARGETS"
for t in "${targets[@]}"; do vs_check_target "$t"; done
vs_install

SHARED_PCAPS=${VS_SHARED_PCAPS:-$VS_ROOT/../shared/pcaps}
# Which test targets each ARM target compiles and runs. aarch64 (every supported board) runs
# the whole suite. armv7 (32-bit userlands only) runs the unit tests of the library and binary
# (where pointer width and alignment matter) and the capture-driven suites; its other
# integration suites are listed as not run (reason below): compiling and running them under
# qemu-user would lengthen CI's ARM phase, already its longest (the cost has not been
# measured since the test build shares the release build's dependencies).
# VS_ARM_FULL=1 runs everything on both.
test_scope() { # TARGET -> cargo test-target arguments (empty: --all-targets minus benches)
    if [ "${VS_ARM_FULL:-0}" = 1 ] || [ "$1" != armv7-unknown-linux-gnueabihf ]; then return; fi
    echo "--lib --bins --test shared_captures --test rtp_conformance --test rtp_streams --test call_rules --test quality --test alloc"
}
# Test executables (by name, without cargo's hash) not run under qemu-user; see below.
VS_QEMU_SKIP_TESTS=${VS_QEMU_SKIP_TESTS-live faults selftest image_boot report memory_flat}
# Why each is not run under qemu-user (reported by .ci/run's closing line, apart from skips).
not_run_reason() {
    case "$1" in
        live | faults) echo "live capture needs ethtool ioctls qemu-user does not emulate" ;;
        selftest) echo "its interface check opens a capture: the ethtool ioctl qemu-user does not emulate" ;;
        image_boot) echo "boots the image in qemu-system: the aarch64 binary runs there on an emulated CPU already" ;;
        memory_flat) echo "measures the process's resident memory: under qemu-user that is the emulator's, and madvise(MADV_POPULATE_WRITE) is not passed through" ;;
        report) echo "drives the host's Chromium; the report's Rust code is the same on every target (replay is compared byte for byte)" ;;
        *) echo "listed in VS_QEMU_SKIP_TESTS" ;;
    esac
}
CMP="$VS_TARGET_DIR/compare"
# Test binaries deliberately not run under qemu-user (target, binary, tests, why): .ci/run.
NOT_RUN="$VS_ROOT/target/test-not-run.log"
mkdir -p "$VS_ROOT/target" && : >"$NOT_RUN"
rm -rf "$CMP" && mkdir -p "$CMP/x86_64"
report=()
failed=0

# --- the x86_64 reference binary, from the same sources ------------------------------------
# By default the host's own dev build in target/debug (the one `.ci/test.sh` just built and
# tested, so CI pays nothing for it; overflow checks are on there, which makes it the stricter
# reference). VS_HOST_REFERENCE=release builds a release one with Debian's toolchain instead.
vs_log "building the x86_64 reference binary (${VS_HOST_REFERENCE:-dev})"
host_start=$(date +%s)
if [ "${VS_HOST_REFERENCE:-dev}" = release ]; then
    (cd "$VS_ROOT" && CARGO_TARGET_DIR="$VS_TARGET_DIR" "$VS_CARGO" build --locked --release --bin voipsensor) \
        || vs_die "host build failed"
    HOST_BIN="$VS_TARGET_DIR/release/voipsensor"
else
    (cd "$VS_ROOT" && env -u RUSTC cargo build --locked --bin voipsensor) || vs_die "host build failed"
    HOST_BIN="$VS_ROOT/target/debug/voipsensor"
fi
report+=("x86_64 reference build (${VS_HOST_REFERENCE:-dev}): $(( $(date +%s) - host_start ))s")

# Fixture scenarios: name and arguments of `voipsensor fixture OUT ...`.
FIXTURES=("demo|--scenario demo" "long|--scenario long --calls 8 --seconds 12")
have_fixture=1
"$HOST_BIN" fixture --help >/dev/null 2>&1 || { have_fixture=0; vs_log "no 'fixture' subcommand: skipping fixtures"; }

# Captures to replay: the fixtures (written below) and the shared ones.
captures=()
if [ $have_fixture = 1 ]; then
    for f in "${FIXTURES[@]}"; do
        name=${f%%|*}
        # shellcheck disable=SC2086
        RUST_LOG=off "$HOST_BIN" fixture "$CMP/x86_64/fixture-$name.pcap" ${f#*|} >/dev/null \
            || vs_die "x86_64: voipsensor fixture $name failed"
        captures+=("$CMP/x86_64/fixture-$name.pcap")
    done
fi
if [ -d "$SHARED_PCAPS" ]; then
    while IFS= read -r f; do captures+=("$f"); done \
        < <(find "$SHARED_PCAPS" -maxdepth 2 -type f \( -name '*.pcap' -o -name '*.pcapng' \) | sort)
else
    vs_log "no shared captures at $SHARED_PCAPS: replaying the fixtures only"
fi
[ ${#captures[@]} -gt 0 ] || vs_die "nothing to replay"

replay() { # BIN_PREFIX... -- CAPTURE OUT: stdout to OUT, exit code appended to OUT.rc
    local out=${*: -1} cap=${*: -2:1}
    local cmd=("${@:1:$#-2}")
    set +e
    RUST_LOG=off "${cmd[@]}" replay "$cap" >"$out.raw" 2>"$out.err"
    echo $? >"$out.rc"
    set -e
    # The one figure that is the machine's, not the traffic's: a table slot's size in bytes
    # (pointers and usize are 4 bytes on armv7). Everything else must match byte for byte.
    sed -E 's/"bytes_per_slot":[0-9]+/"bytes_per_slot":"(layout)"/g' "$out.raw" >"$out"
}

for cap in "${captures[@]}"; do
    replay "$HOST_BIN" "$cap" "$CMP/x86_64/$(basename "$cap").jsonl"
done

for t in "${targets[@]}"; do
    qemu=$(vs_get "$t" QEMU)
    bin="$VS_DIST/voipsensor-$t"
    # Always (re)build: cargo makes it a no-op when nothing changed, and a stale binary
    # would compare old code against new.
    VS_NO_INSTALL=1 bash "$VS_ROOT/image/build-arm.sh" "$t"
    vs_build_libpcap "$t" >/dev/null

    # --- 1. the test suite under qemu-user -----------------------------------------------
    log="$VS_TARGET_DIR/test-$t.log"
    gnu=$(vs_get "$t" GNU)
    vs_log "$t: compiling the test suite (log: $log)"
    start=$(date +%s)
    set +e
    (
        vs_target_env "$t"
        cd "$VS_ROOT"
        # shellcheck disable=SC2046
        "$VS_CARGO" test --locked --release --no-run --message-format=json-render-diagnostics "${VS_CARGO_ARGS[@]}" $(test_scope "$t")
    ) >"$log.json" 2>"$log"
    rc=$?
    set -e
    build_secs=$(( $(date +%s) - start ))
    scope=$(test_scope "$t")
    if [ -n "$scope" ]; then
        # Integration suites outside this target's scope: listed with their test count.
        for f in "$VS_ROOT"/tests/*.rs; do
            name=$(basename "$f" .rs)
            case " $scope " in *" --test $name "*) continue ;; esac
            n=$(grep -c '^ *#\[test\]' "$f" || true)
            printf '%s\t%s\t%s\t%s\n' "$t" "$name" "$n" \
                "integration suite compiled and run on aarch64 only (CI time: -Zbuild-std for armv7); VS_ARM_FULL=1 runs it" >>"$NOT_RUN"
        done
    fi
    # Test executables (lib and bin unit tests, every tests/*.rs), from cargo's JSON messages.
    mapfile -t exes < <(grep '"profile":{[^}]*"test":true' "$log.json" | grep -o '"executable":"[^"]*"' | cut -d'"' -f4)
    if [ $rc -ne 0 ] || [ ${#exes[@]} -eq 0 ]; then
        tail -n 40 "$log" >&2
        vs_log "$t: building the test suite FAILED (exit $rc)"
        failed=1
        report+=("$t: test suite did not build (exit $rc)")
    else
        # Tests that spawn the binary use the path cargo baked in (CARGO_BIN_EXE_voipsensor),
        # an ARM executable the kernel cannot exec without binfmt_misc. For the run, that path
        # holds a tiny shell wrapper that execs qemu on the real binary (restored afterwards).
        bin_exe="$(vs_release_dir "$t")/voipsensor"
        mv -f "$bin_exe" "$bin_exe.arm"
        trap 'mv -f "'"$bin_exe.arm"'" "'"$bin_exe"'"' EXIT
        printf '#!/bin/sh\nexec %s -L /usr/%s %s "$@"\n' "$qemu" "$gnu" "$bin_exe.arm" >"$bin_exe"
        chmod +x "$bin_exe"
        vs_log "$t: running ${#exes[@]} test executables under $qemu"
        start=$(date +%s)
        bad=()
        skipped=()
        for exe in "${exes[@]}"; do
            # tests/live.rs captures on veth pairs: libpcap's activation asks SIOCETHTOOL for
            # time-stamping info, an ioctl qemu-user does not emulate (ENOSYS, where a real
            # kernel says EOPNOTSUPP), so live capture cannot start under qemu-user.
            # Not a skip (tests/common/skip.rs): listed, counted and reported apart by
            # .ci/run's closing line, from target/test-not-run.log.
            name=$(basename "$exe" | sed 's/-[0-9a-f]*$//')
            case " $VS_QEMU_SKIP_TESTS " in
                *" $name "*)
                    n=$("$qemu" -L "/usr/$gnu" "$exe" --list --format terse 2>/dev/null | grep -c ': test$' || true)
                    printf '%s\t%s\t%s\t%s\n' "$t" "$name" "$n" "$(not_run_reason "$name")" >>"$NOT_RUN"
                    skipped+=("$(basename "$exe") ($n tests)"); echo "     Not run under qemu: $(basename "$exe") ($n tests)" >>"$log"; continue ;;
            esac
            echo "     Running $(basename "$exe") under $qemu" >>"$log"
            (cd "$VS_ROOT" && CARGO_MANIFEST_DIR="$VS_ROOT" "$qemu" -L "/usr/$gnu" "$exe") >>"$log" 2>&1 \
                || bad+=("$(basename "$exe")")
        done
        run_secs=$(( $(date +%s) - start ))
        mv -f "$bin_exe.arm" "$bin_exe"
        trap - EXIT
        passed=$(grep -E '^test result' "$log" | grep -Eo '[0-9]+ passed' | awk '{ s += $1 } END { print s + 0 }' || true)
        tfailed=$(grep -E '^test result' "$log" | grep -Eo '[0-9]+ failed' | awk '{ s += $1 } END { print s + 0 }' || true)
        grep -E '^(test result|     Running)' "$log" >&2 || true
        if [ ${#bad[@]} -ne 0 ]; then
            grep -E -A 12 '^---- |panicked' "$log" | head -n 80 >&2 || true
            vs_log "$t: TEST SUITE FAILED in: ${bad[*]}"
            failed=1
        fi
        report+=("$t: test suite under $qemu: ${#exes[@]} executables (not run under qemu-user: ${skipped[*]:-none}), $passed passed, $tfailed failed; compile ${build_secs}s, run ${run_secs}s")
    fi

    # --- 2. fixtures written on ARM are the same bytes -----------------------------------
    mkdir -p "$CMP/$t"
    if [ $have_fixture = 1 ]; then
        for f in "${FIXTURES[@]}"; do
            name=${f%%|*}
            # shellcheck disable=SC2086
            RUST_LOG=off "$qemu" "$bin" fixture "$CMP/$t/fixture-$name.pcap" ${f#*|} >/dev/null \
                || { vs_log "$t: voipsensor fixture $name failed under qemu"; failed=1; continue; }
            if cmp -s "$CMP/x86_64/fixture-$name.pcap" "$CMP/$t/fixture-$name.pcap"; then
                report+=("$t: fixture $name: identical ($(stat -c %s "$CMP/$t/fixture-$name.pcap") bytes)")
            else
                report+=("$t: fixture $name: DIFFERS from x86_64"); failed=1
            fi
        done
    fi

    # --- 3. replay output is the same bytes ----------------------------------------------
    same=0 differ=0 lines=0
    start=$(date +%s)
    for cap in "${captures[@]}"; do
        base=$(basename "$cap")
        replay "$qemu" "$bin" "$cap" "$CMP/$t/$base.jsonl"
        if cmp -s "$CMP/x86_64/$base.jsonl" "$CMP/$t/$base.jsonl" \
            && cmp -s "$CMP/x86_64/$base.jsonl.rc" "$CMP/$t/$base.jsonl.rc"; then
            same=$((same + 1))
            lines=$((lines + $(wc -l <"$CMP/$t/$base.jsonl")))
        else
            differ=$((differ + 1)); failed=1
            vs_log "$t: replay of $base DIFFERS (exit $(cat "$CMP/x86_64/$base.jsonl.rc") vs $(cat "$CMP/$t/$base.jsonl.rc"))"
            diff <(head -c 100000 "$CMP/x86_64/$base.jsonl") <(head -c 100000 "$CMP/$t/$base.jsonl") | head -n 10 >&2 || true
        fi
    done
    report+=("$t: replay of ${#captures[@]} captures: $same byte-identical ($lines JSON lines), $differ differ, $(( $(date +%s) - start ))s under qemu")
done

vs_log "summary:"
printf '  %s\n' "${report[@]}" >&2
# The closing line CI reads.
if [ $failed -ne 0 ]; then
    vs_die "ARM tests failed"
fi
vs_log "ARM tests passed: suites green under qemu-user, replay output byte-identical to x86_64"
