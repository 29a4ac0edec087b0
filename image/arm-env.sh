# image/arm-env.sh: shared functions for the Docker-free ARM build and test scripts.
# Sourced, not run: `. image/arm-env.sh`. Reads image/targets.env (the single source of truth).
# shellcheck shell=bash

VS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=image/targets.env
. "$VS_ROOT/image/targets.env"

# Where ARM builds go: a target dir of their own, so they never wait on (or disturb) the
# host's `cargo test` lock. Overridable.
: "${VS_TARGET_DIR:=$VS_ROOT/target/arm}"
VS_DIST="$VS_TARGET_DIR/dist"
VS_PCAP_ROOT="$VS_TARGET_DIR/libpcap"

# Debian's toolchain (rustc-web/cargo-web, 1.96) lives in /usr/bin; a rustup install earlier in
# PATH has no ARM std, so name Debian's binaries explicitly.
: "${VS_CARGO:=/usr/bin/cargo}"
export RUSTC="${VS_RUSTC:-/usr/bin/rustc}"
export RUSTDOC="${VS_RUSTDOC:-/usr/bin/rustdoc}"

APT_ARCH_OPTS=(-o APT::Architectures::=amd64 -o APT::Architectures::=arm64)

vs_log() { printf '\033[1m[voipsensor-arm]\033[0m %s\n' "$*" >&2; }
vs_die() { printf '\033[1;31m[voipsensor-arm] FAIL:\033[0m %s\n' "$*" >&2; exit 1; }

# vs_get TARGET FIELD -> value of VS_<target_with_underscores>_<FIELD>
vs_get() {
    local var="VS_${1//[-.]/_}_$2"
    [ -n "${!var:-}" ] || vs_die "targets.env has no $var (unsupported target '$1'?)"
    printf '%s' "${!var}"
}

vs_check_target() {
    case " $VS_TARGETS " in
        *" $1 "*) ;;
        *) vs_die "unknown target '$1' (known: $VS_TARGETS)" ;;
    esac
}

vs_missing_packages() {
    local p st
    for p in "$@"; do
        st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [ "$st" = "install ok installed" ] || printf '%s\n' "$p"
    done
}

# Install the host packages (idempotent: apt is only asked when something is missing).
# Only amd64 and arm64 indexes are fetched: a broken armhf index (seen in bookworm-security)
# must not hide the whole suite, and nothing here needs an armhf package.
vs_install() {
    [ "${VS_NO_INSTALL:-0}" = 1 ] && { vs_log "VS_NO_INSTALL=1: not installing packages"; return 0; }
    local pkgs missing
    # shellcheck disable=SC2206
    pkgs=($VS_HOST_PACKAGES $VS_HOST_FOREIGN_PACKAGES $VS_LIBPCAP_BUILD_PACKAGES)
    missing=$(vs_missing_packages "${pkgs[@]}")
    if [ -z "$missing" ]; then
        vs_log "host packages already installed"
        return 0
    fi
    vs_log "installing: $(echo $missing)"
    [ "$(id -u)" = 0 ] || vs_die "need root (or sudo) to apt-get install: $(echo $missing)"
    dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
    if ! apt-get "${APT_ARCH_OPTS[@]}" update; then
        vs_log "apt-get update reported errors (see above); trying to install anyway"
    fi
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get "${APT_ARCH_OPTS[@]}" install -y --no-install-recommends $missing \
        || vs_die "apt-get install failed"
    missing=$(vs_missing_packages "${pkgs[@]}")
    [ -z "$missing" ] || vs_die "still missing after install: $(echo $missing)"
}

# Fetch Debian's libpcap source package (with Debian's patches applied) into $1.
# Uses a private deb-src list derived from the machine's own Debian `deb` sources and a
# private lists directory, so the system's apt configuration is left untouched.
vs_fetch_libpcap_source() {
    local dest=$1 apt_dir="$VS_PCAP_ROOT/apt"
    rm -rf "$apt_dir" && mkdir -p "$apt_dir/parts" "$apt_dir/lists/partial" "$dest"
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -n 's/^[[:space:]]*deb[[:space:]]\+\(.*debian.*\)$/deb-src \1/p' "$f"
    done | sed 's/\[[^]]*arch=[^]]*\]//' > "$apt_dir/parts/vs-src.list"
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS=""; ORS="\n\n" }
             /(^|\n)URIs:[^\n]*debian/ && /(^|\n)Types:[^\n]*deb/ {
                 gsub(/(^|\n)Types:[^\n]*/, "\nTypes: deb-src"); gsub(/\nArchitectures:[^\n]*/, "");
                 sub(/^\n/, ""); print }' "$f"
    done > "$apt_dir/parts/vs-src.sources"
    [ -s "$apt_dir/parts/vs-src.list" ] || [ -s "$apt_dir/parts/vs-src.sources" ] \
        || vs_die "no Debian apt sources found to derive deb-src entries from"
    local o=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt_dir/parts"
             -o "Dir::State::Lists=$apt_dir/lists" -o Debug::NoLocking=1)
    apt-get "${o[@]}" update >"$apt_dir/update.log" 2>&1 \
        || vs_log "deb-src update reported errors (see $apt_dir/update.log); trying anyway"
    (cd "$dest" && apt-get "${o[@]}" source --download-only "$VS_LIBPCAP_SOURCE" >"$apt_dir/source.log" 2>&1) \
        || { cat "$apt_dir/source.log" >&2; vs_die "apt-get source $VS_LIBPCAP_SOURCE failed"; }
    local dsc
    dsc=$(ls "$dest"/"${VS_LIBPCAP_SOURCE}"_"${VS_LIBPCAP_VER}"-*.dsc 2>/dev/null | head -n1)
    [ -n "$dsc" ] || vs_die "apt-get source did not bring ${VS_LIBPCAP_SOURCE} ${VS_LIBPCAP_VER} (got: $(ls "$dest"))"
    (cd "$dest" && dpkg-source --no-check -x "$(basename "$dsc")" src >/dev/null) || vs_die "dpkg-source -x failed"
}

# Build a static, D-Bus-free libpcap for TARGET; prints its lib dir. Cached by flags.
vs_build_libpcap() {
    local target=$1 gnu prefix stamp want
    gnu=$(vs_get "$target" GNU)
    prefix="$VS_PCAP_ROOT/$target"
    stamp="$prefix/.voipsensor-stamp"
    want="$VS_LIBPCAP_SOURCE $VS_LIBPCAP_VER $gnu $VS_LIBPCAP_CFLAGS $VS_LIBPCAP_CONFIGURE"
    if [ -f "$prefix/lib/libpcap.a" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        printf '%s\n' "$prefix/lib"; return 0
    fi
    if [ ! -d "$VS_PCAP_ROOT/source/src" ]; then
        vs_log "fetching Debian source package $VS_LIBPCAP_SOURCE $VS_LIBPCAP_VER"
        rm -rf "$VS_PCAP_ROOT/source"
        vs_fetch_libpcap_source "$VS_PCAP_ROOT/source"
    fi
    vs_log "building static libpcap $VS_LIBPCAP_VER for $target ($gnu-gcc)"
    local b="$VS_PCAP_ROOT/build-$target"
    rm -rf "$b" "$prefix" && cp -r "$VS_PCAP_ROOT/source/src" "$b"
    # shellcheck disable=SC2086
    (cd "$b" && ./configure --host="$gnu" CC="$gnu-gcc" AR="$gnu-ar" CFLAGS="$VS_LIBPCAP_CFLAGS" \
            --prefix="$prefix" $VS_LIBPCAP_CONFIGURE >configure.out 2>&1 \
        && make -j"${CARGO_BUILD_JOBS:-$(nproc)}" >make.out 2>&1 && make install >>make.out 2>&1) \
        || { tail -n 30 "$b"/configure.out "$b"/make.out >&2 2>/dev/null; vs_die "libpcap build for $target failed (logs in $b)"; }
    [ -f "$prefix/lib/libpcap.a" ] || vs_die "libpcap.a not produced for $target"
    printf '%s' "$want" > "$stamp"
    printf '%s\n' "$prefix/lib"
}

# Export the cargo environment for TARGET: linker, C compiler (ring), static Rust flags,
# libpcap location and version, qemu runner, and -Zbuild-std where Debian ships no std.
# Sets the array VS_CARGO_ARGS with the extra cargo arguments.
vs_target_env() {
    local target=$1 gnu up lo std
    gnu=$(vs_get "$target" GNU)
    std=$(vs_get "$target" STD)
    up=$(echo "$target" | tr 'a-z-' 'A-Z_')
    lo=${target//-/_}
    export "CARGO_TARGET_${up}_LINKER=$gnu-gcc"
    export "CARGO_TARGET_${up}_RUSTFLAGS=$VS_RUSTFLAGS"
    # The runner is qemu-user, named explicitly (binfmt_misc is not relied upon). -L lets it
    # run dynamically linked target programs too (e.g. a doctest), static ones ignore it.
    export "CARGO_TARGET_${up}_RUNNER=$(vs_get "$target" QEMU) -L /usr/$gnu"
    export "CC_${lo}=$gnu-gcc" "AR_${lo}=$gnu-ar"
    export LIBPCAP_LIBDIR="$VS_PCAP_ROOT/$target/lib" LIBPCAP_VER="$VS_LIBPCAP_VER"
    # A cargo target dir per ARM target: armv7 builds with RUSTC_BOOTSTRAP=1, which
    # proc-macro2's build script watches, so in one shared dir each target's build rebuilt
    # the host-side macros and everything above them for the other (~3 min each way in CI).
    export CARGO_TARGET_DIR
    CARGO_TARGET_DIR=$(vs_cargo_dir "$target")
    VS_CARGO_ARGS=(--target "$target")
    if [ "$std" = build-std ]; then
        export RUSTC_BOOTSTRAP=1
        # `test` too, for the release binary as well as the test suite: with a different
        # set of std crates every dependency is compiled again for the tests (7.5 min in CI);
        # the binary does not link `test`.
        VS_CARGO_ARGS+=(-Zbuild-std=std,test)
    fi
}

# Cargo's target dir for TARGET's builds, and where its release binary lands.
vs_cargo_dir() { printf '%s/cargo-%s' "$VS_TARGET_DIR" "$1"; }
vs_release_dir() { printf '%s/%s/release' "$(vs_cargo_dir "$1")" "$1"; }

# Fail loudly unless BIN is a fully static executable within the size budget.
vs_check_static() {
    local bin=$1 dyn size
    [ -f "$bin" ] || vs_die "$bin: not found"
    dyn=$(readelf -d "$bin" 2>&1)
    if ! grep -q 'There is no dynamic section' <<<"$dyn"; then
        printf '%s\n' "$dyn" | head -n 30 >&2
        vs_die "$bin has a dynamic section (readelf -d above): not fully static"
    fi
    if grep -q NEEDED <<<"$dyn"; then vs_die "$bin has NEEDED entries"; fi
    if readelf -l "$bin" | grep -q 'INTERP'; then vs_die "$bin asks for a program interpreter"; fi
    file "$bin" | grep -q 'statically linked' || vs_die "file(1) does not call $bin statically linked: $(file "$bin")"
    size=$(stat -c %s "$bin")
    [ "$size" -le "$VS_SIZE_BUDGET" ] || vs_die "$bin is $size bytes, over the budget of $VS_SIZE_BUDGET"
}
