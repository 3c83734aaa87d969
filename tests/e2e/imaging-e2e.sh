#!/bin/sh
# imaging-e2e.sh - a bare machine imaged end to end without a hand on it (issue 15).
#
# In network namespaces this script creates (as tests/e2e/policy-e2e.sh does):
#   ns "srv"  : bridge br0 10.0.0.1/24, taps for two QEMU machines, prebootd (proxydhcp,
#               tftp, policy, http, and imaging when it is built)
#   ns "dhcp" : dnsmasq 10.0.0.2, a plain DHCP server (addresses only), over a veth
#
# It builds, in the test: the preboot environment (tools/preboot-bootenv: the distribution's
# kernel, downloaded when /boot has none, busybox, preboot-img) into the TFTP root's
# preboot/, served over HTTP as /preboot/ by the policy plugin (bootenv_directory); and a
# "golden" disk image file (tests/e2e/golden-disk.sh: GPT, an EFI system partition with
# syslinux for BIOS and UEFI, a kernel and an initrd that print "preboot-golden: disk
# golden-VERSION booted" and power off, an ext4 partition with a few MiB of files).
#
# Always (what needs no imaging server):
#   - the golden disk boots by itself under BIOS (SeaBIOS) and UEFI (OVMF);
#   - machine A (BIOS, its disk a copy of golden) assigned "capture golden" and machine B
#     (UEFI, an empty disk) assigned "restore golden" with `prebootctl policy assign`
#     PXE-boot through proxydhcp and iPXE, fetch the policy's /boot.ipxe, fetch the
#     environment's kernel and initrd over HTTP from /preboot/, boot it, get a DHCP lease
#     and run `preboot-img auto 10.0.0.1:PORT`.
# Without the imaging plugin (plugins/imaging/imaging.la not built): preboot-img auto cannot
# get work from the server; the environment says so on the serial console, tries once more,
# then powers the machine off instead of looping: asserted, and the rest is skipped.
# With it:
#   1. A captures its disk as "golden" and reboots into its own OS (the marker on its
#      console: the one-shot work is used up, the policy boots its disk);
#   2. B restores golden, reboots, shows the golden marker, and its disk equals A's (cmp);
#   3. both results are in `prebootctl imaging log` and in `preboot-mcast -status`;
#   4. golden changes a little (A's syslinux.cfg says golden-v2), A captures it again, B
#      is restored again: the log shows B's second restore writing far less than the disk.
# With the multicast plugin too (plugins/multicast/multicast.la):
#   5. a room of three machines (BIOS, PB_E2E_ROOM_MEM MiB each, empty disks) assigned
#      "multicast room once" joins the session `prebootctl mcast start room golden clients=3`
#      started: each PXE-boots the environment, whose preboot-img auto joins the session,
#      restores, verifies against the server's image and reports; each reboots into golden
#      (its marker on each console), the disks equal golden, the three results are in
#      `prebootctl imaging log` and the session in `preboot-mcast -status`. The bridge
#      passes multicast between the taps and the daemon (mcast_snooping 0, a 224.0.0.0/4
#      route in the server's namespace, as tests/mcast-netns.sh does).
#
# Settings (environment):
#   PB_E2E_ACCEL        QEMU accelerator (default tcg; kvm:tcg where KVM works well)
#   PB_E2E_BOOT_TIMEOUT seconds for one machine's boot step (default 420)
#   PB_E2E_BOOTENV_ARGS extra preboot-bootenv arguments (e.g. --kernel-deb FILE)
#   PB_E2E_IMAGING_YAML the imaging plugin's entry in preboot.yaml
#                       (default: the local backend, an upload token and the lab network)
#   PB_E2E_IMAGING_ARGS extra kernel arguments for the environment (e.g. preboot.token=T)
#   PB_E2E_KEEP         keep the work directory (serial logs, disks)
#   PB_E2E_ROOM_MEM     memory of each machine of step 5, MiB (default 192: about the
#                       least the environment boots in, its initrd unpacked in RAM)
#   PB_E2E_ONLY=room    step 5 alone: golden is uploaded with preboot-img make instead of
#                       captured by A, and the other machine runs are skipped
# Needs root; prints TAP; cleans up namespaces and processes on every exit path; every wait
# is bounded. Time budget and measured time: doc/benchmarks.md.
set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$(pwd)}"
BOOT_TIMEOUT=${PB_E2E_BOOT_TIMEOUT:-420}
STARTED=$(date +%s)

skip_all() {
    echo "1..0 # SKIP $1"
    exit 0
}

[ "$(id -u)" = 0 ] || skip_all "needs root for network namespaces"
for tool in ip qemu-system-x86_64 dnsmasq timeout sfdisk mkfs.vfat mcopy syslinux mke2fs cpio \
    depmod python3 curl; do
    command -v "$tool" >/dev/null 2>&1 || skip_all "$tool is not installed"
done
[ -f /usr/lib/ipxe/qemu/efi-e1000.rom ] || skip_all "QEMU's iPXE ROMs are missing (Debian package ipxe-qemu)"
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
[ -f "$OVMF_CODE" ] && [ -f "$OVMF_VARS" ] || skip_all "OVMF is missing (Debian package ovmf)"
[ -f /usr/lib/SYSLINUX.EFI/efi64/syslinux.efi ] && [ -f /usr/lib/syslinux/mbr/gptmbr.bin ] ||
    skip_all "syslinux's files are missing (Debian packages syslinux-common, syslinux-efi)"
for m in proxydhcp tftp policy http; do
    [ -f "$top_builddir/plugins/$m/$m.la" ] || skip_all "plugins/$m is not built"
done
PREBOOTD=$top_builddir/core/prebootd
CTL=$top_builddir/tools/prebootctl
IMG=$top_builddir/tools/preboot-img
BOOTENV=$top_builddir/tools/preboot-bootenv
MCAST=$top_builddir/tools/preboot-mcast
[ -x "$PREBOOTD" ] && [ -x "$CTL" ] || skip_all "prebootd or prebootctl is not built"
[ -x "$IMG" ] || skip_all "preboot-img is not built (configure found no libfdisk?)"
[ -x "$BOOTENV" ] || skip_all "tools/preboot-bootenv is not built"
IMAGING=no
[ -f "$top_builddir/plugins/imaging/imaging.la" ] && IMAGING=yes
MULTICAST=no
[ $IMAGING = yes ] && [ -f "$top_builddir/plugins/multicast/multicast.la" ] && MULTICAST=yes
ONLY=${PB_E2E_ONLY:-}

T=$(mktemp -d /tmp/pb-imaging-e2e.XXXXXX)
NS=pbimg-$$
NS_DHCP=pbimg-dhcp-$$
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    ip netns del "$NS" 2>/dev/null
    ip netns del "$NS_DHCP" 2>/dev/null
    if [ -n "${PB_E2E_KEEP:-}" ]; then echo "# kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- the environment and the golden disk, before any namespace -----------------------------
mkdir -p "$T/log" "$T/state" "$T/tftp/preboot"
# pxelinux for machine C, which boots the environment the pxelinux way (over TFTP).
PXELINUX=/usr/lib/PXELINUX/pxelinux.0
LDLINUX=/usr/lib/syslinux/modules/bios/ldlinux.c32
[ -f "$PXELINUX" ] && [ -f "$LDLINUX" ] || skip_all "pxelinux is missing (Debian packages pxelinux, syslinux-common)"
cp "$PXELINUX" "$LDLINUX" "$T/tftp/"
# iPXE hands pxelinux its cached DHCP answer, whose next server is the DHCP server's; this
# script (served beside the environment) points pxelinux at our TFTP server first.
cat >"$T/tftp/preboot/pxelinux.ipxe" <<'EOF'
#!ipxe
set next-server 10.0.0.1
set 210:string tftp://10.0.0.1/
chain tftp://10.0.0.1/pxelinux.0
EOF
# shellcheck disable=SC2086
if ! "$BOOTENV" -q -o "$T/tftp/preboot" --preboot-img "$IMG" --keep "$T/bootenv-tree" \
    ${PB_E2E_BOOTENV_ARGS:-} >"$T/bootenv.out" 2>&1; then
    skip_all "preboot-bootenv could not build the environment: $(tail -n 1 "$T/bootenv.out")"
fi
BUSYBOX=$T/bootenv-tree/bin/busybox
sh "$top_srcdir/tests/e2e/golden-disk.sh" "$T/golden.img" v1 "$T/tftp/preboot/vmlinuz" "$BUSYBOX" \
    >"$T/golden.out" 2>&1 || skip_all "cannot build the golden disk: $(tail -n 1 "$T/golden.out")"
DISK_BYTES=$(stat -c %s "$T/golden.img")

in_ns() { ip netns exec "$NS" "$@"; }
in_dhcp() { ip netns exec "$NS_DHCP" "$@"; }
setup_net() {
    ip netns add "$NS" && ip netns add "$NS_DHCP" || return 1
    in_ns ip link set lo up
    in_dhcp ip link set lo up
    in_ns ip link add br0 type bridge || return 1
    # Multicast reaches every port: no IGMP snooping (nobody sends queries here), and the
    # sessions' groups are routed onto the bridge (the namespace has no default route).
    in_ns ip link set br0 type bridge mcast_snooping 0
    in_ns ip addr add 10.0.0.1/24 dev br0
    in_ns ip link set br0 up
    in_ns ip route add 224.0.0.0/4 dev br0 || return 1
    for t in tap0 tap1 tap2; do
        in_ns ip tuntap add dev $t mode tap || return 1
        in_ns ip link set $t master br0
        in_ns ip link set $t up
    done
    ip link add vsrv netns "$NS" type veth peer name vdhcp netns "$NS_DHCP" || return 1
    in_ns ip link set vsrv master br0
    in_ns ip link set vsrv up
    in_dhcp ip addr add 10.0.0.2/24 dev vdhcp
    in_dhcp ip link set vdhcp up
}
setup_net 2>"$T/setup.err" ||
    skip_all "cannot create the namespaces, bridge, taps or veth: $(head -1 "$T/setup.err")"

PORT=8080
SERVER=10.0.0.1:$PORT
MAC_A=52:54:00:e2:e5:0a
MAC_B=52:54:00:e2:e5:0b
MAC_C=52:54:00:e2:e5:0c
# Captures and reports need no token in the environment: the imaging server hands each
# machine a credential for its work with it (per-device credentials, preboot-imaging(8)).
# The server keeps a token configured, as a site would; the environment never sees it.
TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$TOKEN" >"$T/upload.token"
IMAGING_ARGS=${PB_E2E_IMAGING_ARGS-}
cat >"$T/rules.yaml" <<EOC
imaging:
  kernel: preboot/vmlinuz
  initrd: preboot/initrd.img
  args: console=ttyS0 quiet $IMAGING_ARGS
rules:
  - name: e2e-pxelinux
    match: {mac: $MAC_C}
    work: restore golden
    menu: never
  - name: e2e-lab
    match: {mac: {starts_with: "52:54:00:e2:e5"}}
    work: local
    menu: never
default:
  menu: never
EOC
PLUGIN_PATH="$top_builddir/plugins/proxydhcp, $top_builddir/plugins/tftp, $top_builddir/plugins/policy, $top_builddir/plugins/http"
IMAGING_ENTRY=""
if [ $IMAGING = yes ]; then
    PLUGIN_PATH="$PLUGIN_PATH, $top_builddir/plugins/imaging"
    # The imaging plugin's backend (libpreboot-local), wherever the build put it.
    for d in "$top_builddir"/backends/*/; do
        [ -d "$d" ] && PLUGIN_PATH="$PLUGIN_PATH, ${d%/}"
    done
    IMAGING_ENTRY="  - ${PB_E2E_IMAGING_YAML:-{module: imaging, log_level: 2, store: $T/imgstore, upload_token_file: $T/upload.token, upload_networks: [10.0.0.0/24]\}}"
fi
# Step 5's sessions send what the imaging plugin stores (the local backend's directory is
# a lib/image store), slowly enough for three emulated machines sharing two cores; a
# machine busy booting under TCG is not dropped for a few seconds of silence.
MCAST_ENTRY=""
if [ $MULTICAST = yes ]; then
    PLUGIN_PATH="$PLUGIN_PATH, $top_builddir/plugins/multicast"
    MCAST_ENTRY="  - {module: multicast, store: $T/imgstore, address: 10.0.0.1, rate: 40, drop_timeout: 120, first_join_timeout: 900, join_timeout: 0, log_level: 2}"
fi
cat >"$T/preboot.yaml" <<EOC
daemon:
  plugin_path: [$PLUGIN_PATH]
  log_dir: $T/log
  state_dir: $T/state
  pid_file: $T/prebootd.pid
  control_socket: $T/control.sock
plugins:
  - {module: proxydhcp, local_interface: 10.0.0.1, history: 64, log_level: 3}
  - {module: tftp, directory: $T/tftp, log_level: 2}
  - {module: http, listen: 10.0.0.1, port: $PORT, log_level: 2}
  - {module: policy, local_interface: 10.0.0.1, rules_file: $T/rules.yaml,
     bootenv_directory: $T/tftp/preboot, log_level: 2}
$IMAGING_ENTRY
$MCAST_ENTRY
EOC
ctl() { "$CTL" -c "$T/preboot.yaml" "$@"; }
POLLOG=$T/log/novell-zmgprebootpolicy.log
HTTPLOG=$T/log/preboot-http.log

N=0
FAILED=0
report() { # status name
    N=$((N + 1))
    if [ "$1" = 0 ]; then
        echo "ok $N - $2"
    else
        FAILED=1
        echo "not ok $N - $2"
        for f in "$POLLOG" "$HTTPLOG" "$T/dnsmasq.log" "$T/server.out" $LAST_SERIAL; do
            [ -f "$f" ] && tail -n 15 "$f" | tr -d '\r' | sed "s|^|# $(basename "$f"): |"
        done
    fi
}
LAST_SERIAL=""
skip() { # name reason
    N=$((N + 1))
    echo "ok $N # SKIP $1: $2"
}
wait_for() { # seconds command...
    limit=$(($1 * 2))
    shift
    i=0
    while [ $i -lt $limit ]; do
        "$@" && return 0
        sleep 0.5
        i=$((i + 1))
    done
    return 1
}

ip netns exec "$NS" "$PREBOOTD" -f -c "$T/preboot.yaml" >"$T/server.out" 2>&1 &
SERVER_PID=$!
PIDS="$PIDS $SERVER_PID"
server_up() {
    kill -0 "$SERVER_PID" 2>/dev/null || return 2
    udp=$(in_ns cat /proc/net/udp)
    echo "$udp" | grep -qi ':0043 ' && echo "$udp" | grep -qi ':0FAB ' &&
        ctl status 2>/dev/null | grep -q 'boot_ipxe.*served' &&
        in_ns curl -sf -o /dev/null "http://$SERVER/preboot/initrd.img"
}
wait_for 20 server_up
UP=$?

ip netns exec "$NS_DHCP" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 \
    --user=root --group=root --interface=vdhcp --bind-interfaces \
    --dhcp-range=10.0.0.100,10.0.0.150,255.255.255.0,1h --dhcp-authoritative \
    --dhcp-leasefile="$T/dnsmasq.leases" --log-dhcp --log-facility="$T/dnsmasq.log" \
    >"$T/dnsmasq.out" 2>&1 &
PIDS="$PIDS $!"

TOTAL=18
echo "1..$TOTAL"
size=$(stat -c %s "$T/tftp/preboot/initrd.img")
[ "$size" -lt $((64 * 1048576)) ] && [ -s "$T/tftp/preboot/vmlinuz" ]
report $? "preboot-bootenv built the environment: $(tail -n 1 "$T/bootenv.out" | sed 's/^preboot-bootenv: //')"
report $UP "prebootd runs proxydhcp, tftp, http and policy (imaging: $IMAGING), /preboot/ serves the environment"
[ $UP = 0 ] || {
    while [ $N -lt $TOTAL ]; do report 1 "(not run: no server)"; done
    exit 1
}
# What /preboot/ serves is the file, whole; nothing outside the directory.
in_ns curl -sf "http://$SERVER/preboot/vmlinuz" -o "$T/vmlinuz.http" &&
    cmp -s "$T/vmlinuz.http" "$T/tftp/preboot/vmlinuz" &&
    [ "$(in_ns curl -s -o /dev/null -w '%{http_code}' --path-as-is "http://$SERVER/preboot/../preboot.yaml")" = 404 ] &&
    [ "$(in_ns curl -s -o /dev/null -w '%{http_code}' "http://$SERVER/preboot/.initrd.img.tmp")" = 404 ]
report $? "/preboot/ serves the environment's files byte for byte and nothing else (404)"

# ---- QEMU ------------------------------------------------------------------------------------
ACCEL=${PB_E2E_ACCEL:-tcg}
ESC=$(printf '\033')
# console LOG: the serial output, escapes, carriage returns removed (lines kept)
console() { sed "s/$ESC\[[0-9;?]*[A-Za-z]//g" "$T/$1.serial" 2>/dev/null | tr -d '\r'; }
seen() { console "$1" | grep -qF "$2"; }
gone() { ! kill -0 "$1" 2>/dev/null; }
# A machine's network card (tap "none": no card at all).
nic() { # tap mac [bootindex]
    [ "$1" = none ] && return 0
    echo "-netdev tap,id=n0,ifname=$1,script=no,downscript=no -device e1000,netdev=n0,mac=$2${3:+,bootindex=$3}"
}
# BIOS machine: SeaBIOS, network first, then the disk.
start_bios() { # tap mac disk log [extra...]
    tap=$1 mac=$2 disk=$3 log=$4
    shift 4
    # shellcheck disable=SC2046
    ip netns exec "$NS" qemu-system-x86_64 -machine pc,accel=$ACCEL -m 384 -nographic \
        -boot order=nc -drive file="$disk",format=raw,if=ide $(nic "$tap" "$mac") \
        "$@" </dev/null >"$T/$log.serial" 2>&1 &
    QPID=$!
    PIDS="$PIDS $QPID"
    LAST_SERIAL=$T/$log.serial
}
# UEFI machine: OVMF with its own variables, iPXE's EFI ROM, network first, then the disk.
# OVMF's own IPv4/IPv6 stack is off (fw_cfg): iPXE is the network boot, and when its script
# hands back ("boot the local disk") the next boot option is the disk, not OVMF's own PXE and
# HTTP boot over iPXE's network driver, which would each wait a minute for nothing.
start_uefi() { # tap mac disk log [extra...]
    tap=$1 mac=$2 disk=$3 log=$4
    shift 4
    [ -f "$T/$mac.vars" ] || cp "$OVMF_VARS" "$T/$mac.vars"
    # shellcheck disable=SC2046
    ip netns exec "$NS" qemu-system-x86_64 -machine q35,accel=$ACCEL -m 384 -nographic \
        -drive if=pflash,format=raw,readonly=on,file="$OVMF_CODE" \
        -drive if=pflash,format=raw,file="$T/$mac.vars" \
        -drive file="$disk",format=raw,if=none,id=d0 -device virtio-blk-pci,drive=d0,bootindex=2 \
        -fw_cfg name=opt/org.tianocore/IPv4Support,string=no \
        -fw_cfg name=opt/org.tianocore/IPv6Support,string=no \
        $(nic "$tap" "$mac" 1) "$@" </dev/null >"$T/$log.serial" 2>&1 &
    QPID=$!
    PIDS="$PIDS $QPID"
    LAST_SERIAL=$T/$log.serial
}
stop_qemu() {
    for q in "$@"; do kill "$q" 2>/dev/null; done
    for q in "$@"; do
        wait "$q" 2>/dev/null
        PIDS=$(echo "$PIDS" | sed "s/ $q\b//")
    done
}

fetched() { grep -c "GET $1" "$HTTPLOG" 2>/dev/null; }
# reached LOG MAC: the environment booted through the policy's script, got a lease and asked
# the imaging server for work.
reached() {
    seen "$1" "preboot-env: network: eth0 $2 10.0.0." &&
        seen "$1" "preboot-env: asking $SERVER for this device's work (attempt 1): preboot-img auto $SERVER"
}
# py_log FILE MAC TYPE: "result bytes_written" of the newest entry of the imaging log
py_log() {
    python3 - "$@" <<'EOF'
import json, sys
f, mac, typ = sys.argv[1:4]
try:
    doc = json.load(open(f))
except Exception:
    sys.exit(1)
rows = doc.get("log", doc.get("results", doc)) if isinstance(doc, dict) else doc
for r in rows if isinstance(rows, list) else []:
    if str(r.get("mac", "")).lower() == mac and r.get("type") == typ:
        print(r.get("result"), r.get("bytes_written", -1))
        sys.exit(0)
sys.exit(1)
EOF
}

if [ "$ONLY" = room ]; then
    [ $IMAGING = yes ] && [ $MULTICAST = yes ] || skip_all "PB_E2E_ONLY=room needs the imaging and multicast plugins"
    while [ $N -lt 13 ]; do skip "steps before 5" "PB_E2E_ONLY=room"; done
    # golden on the server, as A's capture would have put it there
    in_ns env PREBOOT_TOKEN="$TOKEN" "$IMG" make "$T/golden.img" "$SERVER:golden" >"$T/make.out" 2>&1
    report $? "(PB_E2E_ONLY=room) golden uploaded with preboot-img make"
    ROOM_GOLDEN=$T/golden.img
    ROOM_MARK=golden-v1
else
# The golden disk boots by itself (no network): the marker its OS prints, then power-off.
cp "$T/golden.img" "$T/check-bios.img"
cp "$T/golden.img" "$T/check-uefi.img"
start_bios none - "$T/check-bios.img" golden-bios -no-reboot
QG1=$QPID
start_uefi none golden "$T/check-uefi.img" golden-uefi -no-reboot
QG2=$QPID
golden_boots() { seen golden-bios "preboot-golden: disk golden-v1 booted" && seen golden-uefi "preboot-golden: disk golden-v1 booted"; }
wait_for 180 golden_boots
report $? "the golden disk boots by itself under BIOS (syslinux) and UEFI (syslinux.efi) and prints its marker"
stop_qemu "$QG1" "$QG2"
rm -f "$T/check-bios.img" "$T/check-uefi.img" "$T/golden.vars"

# ---- A captures, B restores ---------------------------------------------------------------------
cp "$T/golden.img" "$T/a.img"
truncate -s "$DISK_BYTES" "$T/b.img"
out_a=$(ctl policy assign $MAC_A capture golden once 2>&1)
out_b=$(ctl policy assign $MAC_B restore golden once 2>&1)
case "$out_a$out_b" in
*assigned*assigned*) report 0 "A assigned \"capture golden\", B \"restore golden\" (prebootctl policy assign)" ;;
*) report 1 "assignments through prebootctl: $out_a / $out_b" ;;
esac


# pxelinux, BIOS: machine C's one-shot program chains pxelinux.0 (over TFTP);
# pxelinux asks the policy for pxelinux.cfg/01-MAC, whose rule says "restore golden": it
# loads the environment over TFTP, with the server and BOOTIF on its command line. C is
# stopped once the environment asks for its work: that is the part pxelinux decides.
ctl policy assign $MAC_C program "http://$SERVER/preboot/pxelinux.ipxe" once >/dev/null 2>&1
start_bios tap2 $MAC_C "$T/golden.img" c1 -no-reboot -snapshot
QC=$QPID
wait_for "$BOOT_TIMEOUT" reached c1 $MAC_C
stop_qemu "$QC"
# The policy decided the pxelinux file through tftp (not the script), and pxelinux passed
# the work, the server and the interface on.
grep -q "tftp .*mac:$MAC_C: restore golden" "$POLLOG" &&
    seen c1 "preboot-env: work restore golden for mac:$MAC_C, server $SERVER" &&
    seen c1 "preboot-env: network: eth0 $MAC_C 10.0.0." && reached c1 $MAC_C
report $? "C (BIOS, pxelinux) got its menu over TFTP and booted the environment from it, which found the server and asked for work"

if [ $IMAGING = no ]; then
    # Both at once: nothing here depends on the other.
    start_bios tap0 $MAC_A "$T/a.img" a1 -no-reboot
    QA=$QPID
    start_uefi tap1 $MAC_B "$T/b.img" b1 -no-reboot
    QB=$QPID
    both_reached() { reached a1 $MAC_A && reached b1 $MAC_B; }
    wait_for "$BOOT_TIMEOUT" both_reached
    [ $? = 0 ] && [ "$(fetched /preboot/vmlinuz)" -ge 2 ] && [ "$(fetched /preboot/initrd.img)" -ge 2 ] &&
        seen a1 "preboot-env: work capture golden for mac:$MAC_A" &&
        seen b1 "preboot-env: work restore golden for mac:$MAC_B"
    report $? "A (BIOS) and B (UEFI) PXE-booted the environment over HTTP from the policy's script, got a DHCP lease and ran preboot-img auto $SERVER"
    # No imaging server: the work cannot be had; tried twice, then the machine powers off.
    both_gave_up() { gone "$QA" && gone "$QB"; }
    wait_for 120 both_gave_up
    ok=$?
    for l in a1 b1; do
        [ "$(console $l | grep -c 'preboot-env: preboot-img auto failed')" = 2 ] &&
            seen $l "preboot-env: the work failed twice; it is not tried again on its own" &&
            seen $l "preboot-env: powering off" || ok=1
    done
    report $ok "without an imaging server preboot-img auto fails, says so on the console, is tried once more, and the machine powers off instead of looping"
    stop_qemu "$QA" "$QB"
    [ "$(console a1 | grep -c 'preboot-env: preboot environment')" = 1 ] &&
        [ "$(console b1 | grep -c 'preboot-env: preboot environment')" = 1 ]
    report $? "each machine booted the environment once (no reboot loop)"
    # The one-shot work was handed over with the script; with no work left, both machines
    # network-boot again and end up in their own disks (B now holds golden too).
    cp "$T/golden.img" "$T/b.img"
    start_bios tap0 $MAC_A "$T/a.img" a2 -no-reboot
    QA=$QPID
    start_uefi tap1 $MAC_B "$T/b.img" b2 -no-reboot
    QB=$QPID
    both_local() { seen a2 "preboot-golden: disk golden-v1 booted" && seen b2 "preboot-golden: disk golden-v1 booted"; }
    wait_for "$BOOT_TIMEOUT" both_local
    [ $? = 0 ] && seen a2 "preboot: booting the local disk" && seen b2 "preboot: booting the local disk" &&
        ! seen a2 "preboot-env:" && ! seen b2 "preboot-env:"
    report $? "with no work left, A (BIOS) and B (UEFI) PXE-boot, the script sends them to their disks, and they boot them"
    stop_qemu "$QA" "$QB"
    while [ $N -lt $TOTAL ]; do skip "imaging steps 1-5" "the imaging plugin is not built (plugins/imaging/imaging.la)"; done
    echo "# elapsed $(($(date +%s) - STARTED)) s"
    exit $FAILED
fi

# 1. A captures its disk and reboots into its own OS.
start_bios tap0 $MAC_A "$T/a.img" a1
QA=$QPID
a_done() { reached a1 $MAC_A && seen a1 "preboot-golden: disk golden-v1 booted"; }
wait_for "$BOOT_TIMEOUT" a_done
[ $? = 0 ] && seen a1 "preboot-env: work done: "
report $? "1. A (BIOS) PXE-booted the environment, captured its disk as golden, rebooted into its own OS (marker)"
wait_for 30 gone "$QA"
stop_qemu "$QA"
# The environment ran once: the work was used up by its report, and A booted its disk.
[ "$(console a1 | grep -c 'preboot-env: preboot environment')" = 1 ]
report $? "A ran the environment once, then the policy sent it to its disk"

# 2. B restores golden, reboots, and is golden.
start_uefi tap1 $MAC_B "$T/b.img" b1
QB=$QPID
b_done() { reached b1 $MAC_B && seen b1 "preboot-golden: disk golden-v1 booted"; }
wait_for "$BOOT_TIMEOUT" b_done
[ $? = 0 ] && seen b1 "preboot-env: work done: "
report $? "2. B (UEFI, empty disk) PXE-booted, restored golden, rebooted and shows the golden marker"
wait_for 30 gone "$QB"
stop_qemu "$QB"
cmp -s "$T/a.img" "$T/b.img"
report $? "B's disk equals A's (cmp)"

# 3. Both results in the log and the statistics.
ctl imaging log --json >"$T/log1.json" 2>&1
ctl imaging log >"$T/log1.txt" 2>&1
[ "$(py_log "$T/log1.json" $MAC_A capture | cut -d' ' -f1)" = ok ] &&
    [ "$(py_log "$T/log1.json" $MAC_B restore | cut -d' ' -f1)" = ok ] &&
    grep -qi "$MAC_A" "$T/log1.txt" && grep -qi "$MAC_B" "$T/log1.txt"
report $? "3. prebootctl imaging log has A's capture and B's restore, both ok"
mstat=""
if [ -x "$MCAST" ]; then
    # With this daemon's configuration (its control socket), however the tool takes it.
    mstat=$("$MCAST" -c "$T/preboot.yaml" -status 2>&1) ||
        mstat=$(PREBOOT_CONFIG="$T/preboot.yaml" "$MCAST" -status 2>&1)
fi
echo "$mstat" | grep -qiE "images received:? *[1-9]" && echo "$mstat" | grep -qiE "images sent:? *[1-9]"
report $? "3. preboot-mcast -status counts the image received (A) and sent (B)"

# 4. golden changes a little (A's OS now says golden-v2); A captures it again, B is restored
# again and writes only what differs.
printf 'SERIAL 0 115200\nDEFAULT golden\nPROMPT 0\nTIMEOUT 1\nLABEL golden\n  KERNEL /vmlinuz\n  INITRD /initrd.gz\n  APPEND console=ttyS0 quiet panic=5 golden=v2\n' >"$T/syslinux.cfg"
MTOOLS_SKIP_CHECK=1 mcopy -o -i "$T/a.img@@1048576" "$T/syslinux.cfg" ::/syslinux.cfg &&
    MTOOLS_SKIP_CHECK=1 mcopy -o -i "$T/a.img@@1048576" "$T/syslinux.cfg" ::/EFI/BOOT/syslinux.cfg
ctl policy assign $MAC_A capture golden once >/dev/null 2>&1
start_bios tap0 $MAC_A "$T/a.img" a2
QA=$QPID
a2_done() { reached a2 $MAC_A && seen a2 "preboot-golden: disk golden-v2 booted"; }
wait_for "$BOOT_TIMEOUT" a2_done
a2=$?
wait_for 30 gone "$QA"
stop_qemu "$QA"
# force: the policy knows images by name, and B already holds an image called golden
# (preboot-policy(8): "assign with force to lay it down again").
ctl policy assign $MAC_B restore golden force once >/dev/null 2>&1
start_uefi tap1 $MAC_B "$T/b.img" b2
QB=$QPID
b2_done() { reached b2 $MAC_B && seen b2 "preboot-golden: disk golden-v2 booted"; }
wait_for "$BOOT_TIMEOUT" b2_done
b2=$?
wait_for 30 gone "$QB"
stop_qemu "$QB"
[ $a2 = 0 ] && [ $b2 = 0 ] && cmp -s "$T/a.img" "$T/b.img"
report $? "4. golden-v2 captured from A and restored onto B, which boots it; the disks are equal"
ctl imaging log --json >"$T/log2.json" 2>&1
# shellcheck disable=SC2046 # "result bytes" into $1 $2
set -- $(py_log "$T/log2.json" $MAC_B restore)
[ "${1:-}" = ok ] && [ "${2:--1}" -ge 0 ] && [ "${2:--1}" -lt $((DISK_BYTES / 8)) ]
report $? "4. B's second restore was a delta: ${2:-?} bytes written of a $DISK_BYTES-byte disk"
ROOM_GOLDEN=$T/a.img
ROOM_MARK=golden-v2
fi
echo "# steps 1-4 done after $(($(date +%s) - STARTED)) s"

# 5. A room of three joins one multicast session.
if [ $MULTICAST = no ]; then
    while [ $N -lt $TOTAL ]; do skip "step 5 (multicast)" "the multicast plugin is not built (plugins/multicast/multicast.la)"; done
    echo "# elapsed $(($(date +%s) - STARTED)) s"
    exit $FAILED
fi
ROOM_STARTED=$(date +%s)
ROOM_MEM=${PB_E2E_ROOM_MEM:-192}
ROOM_MACS="52:54:00:e2:e5:51 52:54:00:e2:e5:52 52:54:00:e2:e5:53"
out=$(ctl mcast start room golden clients=3 2>&1)
ok=$?
for m in $ROOM_MACS; do
    ctl policy assign "$m" multicast room once >/dev/null 2>&1 || ok=1
done
[ $ok = 0 ] && echo "$out" | grep -q "waiting for 3 receivers"
report $? "5. session room started for golden (prebootctl mcast start room golden clients=3), three machines assigned to it: $out"
# Three BIOS machines, empty disks, small memory, booted at once.
QROOM=""
i=0
for m in $ROOM_MACS; do
    truncate -s "$DISK_BYTES" "$T/room$i.img"
    # shellcheck disable=SC2046
    ip netns exec "$NS" qemu-system-x86_64 -machine pc,accel=$ACCEL -m "$ROOM_MEM" -nographic \
        -boot order=nc -drive file="$T/room$i.img",format=raw,if=ide $(nic tap$i "$m") \
        </dev/null >"$T/room$i.serial" 2>&1 &
    QROOM="$QROOM $!"
    PIDS="$PIDS $!"
    i=$((i + 1))
done
LAST_SERIAL="$T/room0.serial $T/room1.serial $T/room2.serial"
room_done() {
    for k in 0 1 2; do
        seen room$k "preboot-golden: disk $ROOM_MARK booted" || return 1
    done
}
wait_for "$BOOT_TIMEOUT" room_done
ok=$?
i=0
for m in $ROOM_MACS; do
    reached room$i "$m" && seen room$i "preboot-env: work done: session" || ok=1
    i=$((i + 1))
done
report $ok "5. the room PXE-booted the environment, joined session room, restored, and each machine rebooted into golden ($ROOM_MARK marker on all three consoles)"
for q in $QROOM; do wait_for 30 gone "$q"; done
# shellcheck disable=SC2086
stop_qemu $QROOM
ok=0
for k in 0 1 2; do
    cmp -s "$ROOM_GOLDEN" "$T/room$k.img" || ok=1
    [ "$(console room$k | grep -c 'preboot-env: preboot environment')" = 1 ] || ok=1
done
report $ok "5. the three disks equal golden (cmp), and each machine ran the environment once (the one-shot work used up by its report)"
ctl imaging log --json >"$T/log3.json" 2>&1
ok=0
for m in $ROOM_MACS; do
    [ "$(py_log "$T/log3.json" "$m" session | cut -d' ' -f1)" = ok ] || ok=1
done
mstat=$("$MCAST" -c "$T/preboot.yaml" -status 2>&1)
ctl mcast status --json >"$T/mstat.json" 2>&1
echo "$mstat" >"$T/mstat.txt"
echo "$mstat" | grep -q "room" && grep -q '"receivers_done":[3-9]' "$T/mstat.json" || ok=1
report $ok "5. prebootctl imaging log has the three session results (ok); preboot-mcast -status shows session room, 3 receivers done"
echo "# step 5 took $(($(date +%s) - ROOM_STARTED)) s"

echo "# elapsed $(($(date +%s) - STARTED)) s"
exit $FAILED
