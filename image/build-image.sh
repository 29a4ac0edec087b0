#!/usr/bin/env bash
# The SD-card / disk image for a board: bash image/build-image.sh [BOARD…] (default: every
# board whose boards/<id>.toml says supported = true). Needs the static aarch64 binary
# (bash image/build-arm.sh aarch64-unknown-linux-gnu). No Docker, no loop mounts: the FAT
# partition is written with mtools at an offset inside the disk file.
# Output: target/image/voipsensor-<board>-<version>.img.zst and .sha256 (and the raw .img).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 1767225600)}
export TZ=UTC LC_ALL=C
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
OUT=$ROOT/target/image
APT=$OUT/apt
DEBS=$OUT/debs
BIN=${VS_BIN:-$ROOT/target/arm/dist/voipsensor-aarch64-unknown-linux-gnu}
DISK_ID=0x56534e53      # "VSNS": fixed MBR disk id
VOL_ID=56534e53         # fixed FAT volume serial
BOOT_MIB=160            # FAT32 boot partition size
mkdir -p "$OUT" "$DEBS"

need() { command -v "$1" >/dev/null || { echo "build-image: $1 missing (bash .ci/setup.sh)" >&2; exit 1; }; }
for t in python3 sfdisk mformat mcopy mmd xz gzip zstd; do need "$t"; done
[ -x "$BIN" ] || { echo "build-image: $BIN missing: bash image/build-arm.sh aarch64-unknown-linux-gnu" >&2; exit 1; }

# The image's own apt: arm64 trixie, never the host's sources or dpkg database.
aptopts=(-o Dir="$APT" -o Dir::State::status="$APT/var/lib/dpkg/status"
  -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Debug::NoLocking=1
  -o Dir::Etc::SourceParts="$APT/etc/apt/sources.list.d" -o Dir::Etc::PreferencesParts="$APT/etc/apt/preferences.d"
  -o Acquire::Languages=none -o APT::Sandbox::User=root)
fetch() {  # fetch PKG=VER… into $DEBS (cached)
  mkdir -p "$APT/etc/apt/sources.list.d" "$APT/etc/apt/preferences.d" "$APT/var/lib/apt/lists/partial" "$APT/var/cache/apt/archives/partial" "$APT/var/lib/dpkg"
  touch "$APT/var/lib/dpkg/status"
  echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main non-free-firmware" >"$APT/etc/apt/sources.list"
  local missing=()
  for pv in "$@"; do
    local p=${pv%%=*} v=${pv#*=}
    ls "$DEBS/${p}_${v/:/%3a}_"*.deb >/dev/null 2>&1 || missing+=("$pv")
  done
  [ ${#missing[@]} -eq 0 ] && return
  [ -n "$(ls "$APT/var/lib/apt/lists/" 2>/dev/null | grep Packages)" ] || apt-get "${aptopts[@]}" update -q
  (cd "$DEBS" && apt-get "${aptopts[@]}" download "${missing[@]}")
}
pin() { awk -F= -v p="$1" '$1 == p { print; exit }' image/packages.lock; }
deb() { local pv; pv=$(pin "$1"); local p=${pv%%=*} v=${pv#*=}; ls "$DEBS/${p}_${v/:/%3a}_"*.deb; }

build_board() {
  local id=$1 B_ID B_TARGET B_KPKG B_FLAVOUR B_CMDLINE B_DTBS B_METHOD B_FILES B_MODULES B_LED B_WATCHDOG B_SHIPPABLE
  eval "$(python3 image/board.py board "boards/$id.toml")"
  [ "$B_SHIPPABLE" = 1 ] || { echo "build-image: $id is not supported (boards/$id.toml, boards/README.md)" >&2; return 1; }
  local kimg kpv
  kimg=$(sed -n "s/^\(linux-image-[0-9][^=]*+deb13-$B_FLAVOUR\)=.*/\1/p" image/packages.lock | head -1)
  [ -n "$kimg" ] || { echo "build-image: no pinned kernel for flavour $B_FLAVOUR in image/packages.lock" >&2; return 1; }
  # Optional SSH (dropbear) and the NTP client (chrony): Debian builds both dynamic, so they
  # ship with their libraries and the loader, all from these pinned packages.
  local sshpkgs=(dropbear-bin libc6 zlib1g libcrypt1 libtomcrypt1 libtommath1 libgmp10
    chrony libcap2 libedit2 libgnutls30t64 libnettle8t64 libhogweed6t64 libseccomp2 libtinfo6
    libbsd0 libmd0 libidn2-0 libp11-kit0 libtasn1-6 libunistring5 libffi8)
  local pkgs=("$(pin "$kimg")" "$(pin busybox-static)") p
  for p in "${sshpkgs[@]}"; do pkgs+=("$(pin "$p")"); done
  case $B_METHOD in
    uefi) pkgs+=("$(pin systemd-boot-efi)") ;;
    rpi-firmware) pkgs+=("$(pin raspi-firmware)") ;;
  esac
  fetch "${pkgs[@]}"

  local W=$OUT/work/$id; rm -rf "$W"; mkdir -p "$W"/{x,initrd,boot}
  dpkg -x "$(deb "$kimg")" "$W/x"
  dpkg -x "$(deb busybox-static)" "$W/x"
  local kver; kver=$(ls "$W/x/usr/lib/modules")
  local R=$W/initrd

  # initramfs: busybox, the board's modules (dependencies first), /init, the sensor.
  mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,run,tmp,boot,root,var/run,usr/share/udhcpc,lib/modules/$kver}
  install -m 0755 "$W/x/usr/bin/busybox" "$R/bin/busybox"
  for a in sh ash mount umount mkdir cat echo sleep ip udhcpc insmod ls ln cp grep sed kill ps \
    date mdev modprobe uname hostname readlink basename dirname rm mv watchdog seq head tr test printf \
    reboot poweroff setsid cttyhack sync stty adjtimex tail wc cut env true false ping nslookup; do
    ln -s busybox "$R/bin/$a"
  done
  python3 image/board.py closure "$W/x/usr/lib/modules/$kver" "$W/modules.dep" $B_MODULES >"$W/modules.load"
  local m
  while read -r m; do
    mkdir -p "$R/lib/modules/$kver/$(dirname "$m")"
    case $m in
      *.xz) xz -dc "$W/x/usr/lib/modules/$kver/$m" >"$R/lib/modules/$kver/${m%.xz}" ;;
      *) cp "$W/x/usr/lib/modules/$kver/$m" "$R/lib/modules/$kver/$m" ;;
    esac
    echo "${m%.xz}" >>"$R/etc/modules.load"
  done <"$W/modules.load"
  touch "$R/etc/modules.load"
  cp "$W/x/usr/lib/modules/$kver/modules.builtin" "$R/lib/modules/$kver/"
  cp "$W/modules.dep" "$R/lib/modules/$kver/modules.dep"
  python3 image/board.py nics "boards/$id.toml" >"$R/etc/nics"
  printf 'BOARD=%s\nLED=%s\nWATCHDOG=%s\nVERSION=%s\n' "$id" "$B_LED" "$B_WATCHDOG" "$VERSION" >"$R/etc/board"
  install -m 0755 image/rootfs/init "$R/init"
  install -m 0755 image/rootfs/udhcpc.script "$R/usr/share/udhcpc/default.script"
  install -m 0755 "$BIN" "$R/bin/voipsensor"
  # dropbear, dropbearkey, chronyd with the NEEDED closure (readelf -d: ldd cannot run arm64 here),
  # libraries in Debian's multiarch directory, the loader where PT_INTERP points.
  mkdir -p "$W/db" "$R/lib/aarch64-linux-gnu"
  for p in "${sshpkgs[@]}"; do dpkg -x "$(deb "$p")" "$W/db"; done
  install -m 0755 "$W/db/usr/sbin/dropbear" "$R/sbin/dropbear"
  install -m 0755 "$W/db/usr/bin/dropbearkey" "$R/bin/dropbearkey"
  install -m 0755 "$W/db/usr/sbin/chronyd" "$R/sbin/chronyd"
  local L=$W/db/usr/lib/aarch64-linux-gnu todo=("$R/sbin/dropbear" "$R/bin/dropbearkey" "$R/sbin/chronyd") lib
  while [ ${#todo[@]} -gt 0 ]; do
    for lib in $(readelf -d "${todo[0]}" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p'); do
      [ -e "$R/lib/aarch64-linux-gnu/$lib" ] && continue
      [ -e "$L/$lib" ] || { echo "build-image: $lib (needed by ${todo[0]##*/}) not in the pinned packages" >&2; return 1; }
      install -m 0755 "$(readlink -f "$L/$lib")" "$R/lib/aarch64-linux-gnu/$lib"
      todo+=("$R/lib/aarch64-linux-gnu/$lib")
    done
    todo=("${todo[@]:1}")
  done
  ln -sf aarch64-linux-gnu/ld-linux-aarch64.so.1 "$R/lib/ld-linux-aarch64.so.1"
  printf '/bin/sh\n' >"$R/etc/shells"
  printf 'hosts: files dns\n' >"$R/etc/nsswitch.conf"
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
  printf 'root:x:0:\n' >"$R/etc/group"
  printf '127.0.0.1 localhost\n' >"$R/etc/hosts"
  find "$R" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  python3 image/cpio.py "$R" "$W/initrd.cpio" "$SOURCE_DATE_EPOCH"
  gzip -n -9 -c "$W/initrd.cpio" >"$W/boot/initrd.img"

  # Boot partition contents.
  local BP=$W/boot
  cp "$W/x/boot/vmlinuz-$kver" "$BP/vmlinuz"
  cp image/rootfs/sensor.toml "$BP/sensor.toml"
  cp image/rootfs/README.txt "$BP/README.txt"
  local cmdline="$B_CMDLINE panic=10 quiet"
  echo "$cmdline" >"$BP/cmdline.txt"
  case $B_METHOD in
    uefi)
      mkdir -p "$W/sd" "$BP/EFI/BOOT" "$BP/loader/entries"
      dpkg -x "$(deb systemd-boot-efi)" "$W/sd"
      cp "$W/sd/usr/lib/systemd/boot/efi/systemd-bootaa64.efi" "$BP/EFI/BOOT/BOOTAA64.EFI"
      printf 'default voipsensor.conf\ntimeout 0\neditor no\nrandom-seed-mode off\n' >"$BP/loader/loader.conf"
      printf 'title voipsensor %s\nlinux /vmlinuz\ninitrd /initrd.img\noptions %s\n' "$VERSION" "$cmdline" >"$BP/loader/entries/voipsensor.conf"
      ;;
    rpi-firmware)
      mkdir -p "$W/fw"; dpkg -x "$(deb raspi-firmware)" "$W/fw"
      # bootcode.bin: Pi 3 / Zero 2 W first stage; start.elf/fixup.dat (Pi 3, Zero 2 W) and
      # start4.elf/fixup4.dat (Pi 4, 400); the _x/_cd/_db variants are not needed headless.
      local f; for f in bootcode.bin start.elf fixup.dat start4.elf fixup4.dat; do
        cp "$W/fw/usr/lib/raspi-firmware/$f" "$BP/"
      done
      local d n=0; for d in $B_DTBS; do cp "$W/x/usr/lib/linux-image-$kver/$d" "$BP/"; n=$((n + 1)); done
      printf 'arm_64bit=1\nenable_uart=1\nkernel=vmlinuz\ninitramfs initrd.img followkernel\n' >"$BP/config.txt"
      # One dtb (the firmware's default name may be the downstream one, e.g. the Zero 2 W's
      # bcm2710-…): name it. Several (Pi 3 B / B+): the firmware picks the upstream name itself.
      [ "$n" = 1 ] && echo "device_tree=$(basename "$B_DTBS")" >>"$BP/config.txt"
      ;;
  esac
  local f; for f in $B_FILES; do
    [ -e "$BP/$f" ] || { echo "build-image: boards/$id.toml boot.files: $f missing from the boot partition" >&2; return 1; }
  done

  # MBR disk: 1 MiB gap, one FAT32 (LBA) partition, bootable; fixed ids and timestamps.
  local img=$W/voipsensor-$id-$VERSION.img
  local sectors=$((BOOT_MIB * 2048))
  rm -f "$img"; truncate -s $(((BOOT_MIB + 1) * 1024 * 1024)) "$img"
  printf 'label: dos\nlabel-id: %s\nunit: sectors\n2048,%d,c,*\n' "$DISK_ID" "$sectors" | sfdisk -q "$img"
  mformat -i "$img@@1M" -F -N "$VOL_ID" -v VOIPSENSOR -T "$sectors" -h 64 -s 32 -H 2048 ::
  find "$BP" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  (cd "$BP" && find . -mindepth 1 -type d | sort | sed 's|^\./||' | while read -r d; do mmd -i "$img@@1M" "::$d"; done
   find . -type f | sort | sed 's|^\./||' | while read -r f; do mcopy -m -i "$img@@1M" "$f" "::$f"; done)
  cp "$img" "$OUT/voipsensor-$id-$VERSION.img"
  # zstd with a fixed level and one thread: the same bytes every time (and fast).
  local z=voipsensor-$id-$VERSION.img.zst
  zstd -q -f -T1 -12 --no-progress "$img" -o "$OUT/$z"
  (cd "$OUT" && sha256sum "$z" >"$z.sha256")
  echo "build-image: $OUT/$z $(stat -c %s "$OUT/$z") bytes, sha256 $(cut -d' ' -f1 "$OUT/$z.sha256")"
}

boards=("$@")
if [ ${#boards[@]} -eq 0 ]; then
  for f in boards/*.toml; do
    grep -q '^supported = true' "$f" && boards+=("$(basename "$f" .toml)")
  done
fi
for b in "${boards[@]}"; do build_board "$b"; done
