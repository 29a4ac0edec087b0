#!/usr/bin/env bash
# Installs the Debian packages voipsensor's build and tests need. Idempotent: does nothing
# when everything is already there. Run as root (or with sudo available).
set -euo pipefail
PKGS=(
  build-essential pkg-config libpcap-dev   # build: the pcap crate links libpcap
  tshark                                   # reference RTP/SIP analysis (+ editcap, capinfos)
  sip-tester                               # sipp: real SIP calls with RTP
  mosquitto mosquitto-clients              # a real MQTT broker for the tests
  tcpreplay                                # live-capture tests replay captures onto a veth
  strace                                   # tests/faults.rs: `run` opens no file for writing but its spool
  time util-linux bc                       # benches/run.sh: /usr/bin/time (peak RSS), taskset, arithmetic
  chromium fonts-dejavu-core               # the report test renders the HTML report headless
  iproute2 openssl ca-certificates procps file binutils
  qemu-system-arm qemu-efi-aarch64         # the image's boot test (tests/image_boot.rs)
  mtools dosfstools fdisk zstd xz-utils python3 debian-archive-keyring  # image/build-image.sh
  socat openssh-client qemu-user-static    # image tests: guestfwd per connection, ssh into the guest, chronyd under qemu-user
  prometheus rabbitmq-server curl          # noc tests: Prometheus (+ promtool) scraping noc, RabbitMQ's MQTT plugin
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The packaged mosquitto service is not needed: tests start their own broker on a free
# loopback port. Stop a system one if apt started it, so nothing else listens on 1883.
if command -v systemctl >/dev/null 2>&1; then systemctl stop mosquitto 2>/dev/null || true; fi
command -v cargo >/dev/null || { echo "setup: cargo not found (install Rust with rustup)" >&2; exit 1; }
