#!/usr/bin/env bash
# .ci/replay-identical.sh BASE_REV: proves `voipsensor replay` prints the same bytes and exits
# with the same code as at BASE_REV, on every capture in ../shared/pcaps (top level and one
# folder down) and on the fixture demo.
#
#   bash .ci/replay-identical.sh dc8fdd0
#   PROFILE=release bash .ci/replay-identical.sh dc8fdd0    # default: dev (same output, faster)
#
# BASE_REV is built in a temporary `git worktree` with its own target dir
# (target/replay-identical/, kept so a rerun is incremental); the other binary is this
# checkout's working tree as it is now. The demo is written by BASE_REV's `fixture` and replayed
# by both (and the new `fixture`'s demo is compared with it byte for byte). Outputs are left in
# target/replay-identical/out/. Last line: the verdict; exit code 0 only when all are identical.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
base=${1:?usage: $0 BASE_REV}
profile=${PROFILE:-dev}
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
shared=${VS_SHARED_PCAPS:-$root/../shared/pcaps}
work=$root/target/replay-identical
src=$work/src
out=$work/out
rev=$(git rev-parse --verify "$base^{commit}")

git worktree remove --force "$src" 2>/dev/null || rm -rf "$src"
git worktree prune
mkdir -p "$work"
git worktree add --detach --quiet "$src" "$rev"
trap 'git -C "$root" worktree remove --force "$src" 2>/dev/null || true' EXIT

echo "== building $base ($rev) in $src (profile $profile)"
(cd "$src" && CARGO_TARGET_DIR=$work/target cargo build --quiet --locked --profile "$profile" --bin voipsensor)
echo "== building the working tree of $root (profile $profile)"
cargo build --quiet --locked --profile "$profile" --bin voipsensor
old=$work/target/$dir/voipsensor
new=$root/target/$dir/voipsensor

rm -rf "$out" && mkdir -p "$out/old" "$out/new"
RUST_LOG=off "$old" fixture "$out/old/demo.pcap" >/dev/null 2>"$out/old/fixture.err"
RUST_LOG=off "$new" fixture "$out/new/demo.pcap" >/dev/null 2>"$out/new/fixture.err"
fixture_same=yes
cmp -s "$out/old/demo.pcap" "$out/new/demo.pcap" || fixture_same=no

captures=("$out/old/demo.pcap")
if [ -d "$shared" ]; then
    while IFS= read -r f; do captures+=("$f"); done \
        < <(find "$shared" -maxdepth 2 -type f \( -name '*.pcap' -o -name '*.pcapng' \) | sort)
else
    echo "no shared captures at $shared: the demo only" >&2
fi

same=0 differ=()
for cap in "${captures[@]}"; do
    name=${cap#"$shared"/}
    [ "$cap" = "$out/old/demo.pcap" ] && name=demo.pcap
    key=${name//\//_}
    for side in old new; do
        if [ $side = old ]; then bin=$old; else bin=$new; fi
        set +e
        RUST_LOG=off "$bin" replay "$cap" >"$out/$side/$key.out" 2>"$out/$side/$key.err"
        echo $? >"$out/$side/$key.rc"
        set -e
    done
    if cmp -s "$out/old/$key.out" "$out/new/$key.out" && cmp -s "$out/old/$key.rc" "$out/new/$key.rc"; then
        same=$((same + 1))
    else
        differ+=("$name")
        echo "DIFFERS: $name (exit $(cat "$out/old/$key.rc") vs $(cat "$out/new/$key.rc"))" >&2
        diff "$out/old/$key.out" "$out/new/$key.out" | head -n 4 | cut -c1-240 >&2 || true
    fi
done

lines=$(cat "$out"/new/*.out | wc -l)
if [ ${#differ[@]} -eq 0 ] && [ $fixture_same = yes ]; then
    echo "replay-identical: ${#captures[@]} captures (demo + $((${#captures[@]} - 1)) shared), stdout ($lines lines) and exit codes byte-identical between $base and the working tree; demo fixture bytes identical"
else
    echo "replay-identical: FAILED: ${#differ[@]} of ${#captures[@]} captures differ (${differ[*]:-none}); demo fixture bytes identical: $fixture_same"
    exit 1
fi
