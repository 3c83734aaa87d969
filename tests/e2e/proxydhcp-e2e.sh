#!/bin/sh
# proxydhcp-e2e.sh - real firmware boots through preboot beside a DHCP server that knows
# nothing about PXE. In network namespaces this script creates:
#
#   ns "srv"  : bridge br0 10.0.0.1/24 + tap0 (QEMU) + prebootd (proxydhcp + tftp)
#   ns "dhcp" : dnsmasq 10.0.0.2, plain DHCP (addresses only), reached over a veth
#
# and boots QEMU with no disk (-boot n): SeaBIOS with QEMU's iPXE ROM loading pxelinux,
# and OVMF (UEFI) loading syslinux.efi. A boot passes only when the boot loader fetched
# its follow-up files (ldlinux.*, pxelinux.cfg/default) from our TFTP and printed the
# marker the config file holds. Then the same with LocalDHCPFlag = 1: dnsmasq on the
# server itself sends option 60 PXEClient and proxydhcp serves port 4011 only.
#
# proxydhcp's configuration is the reference's novell-proxydhcp.conf verbatim
# (LocalInterface = 10.0.0.1, NBPx86 = nvlnbp.sys, ...) plus one native line naming the
# UEFI boot file. Needs root; prints TAP; cleans up namespaces and processes on every
# exit path; every wait is bounded.
set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$(pwd)}"
BOOT_TIMEOUT=${PB_E2E_BOOT_TIMEOUT:-150}

skip_all() {
    echo "1..0 # SKIP $1"
    exit 0
}

[ "$(id -u)" = 0 ] || skip_all "needs root for network namespaces"
for tool in ip qemu-system-x86_64 dnsmasq timeout; do
    command -v "$tool" >/dev/null 2>&1 || skip_all "$tool is not installed"
done
PXELINUX=/usr/lib/PXELINUX/pxelinux.0
LDLINUX_BIOS=/usr/lib/syslinux/modules/bios/ldlinux.c32
SYSLINUX_EFI=/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi
LDLINUX_EFI=/usr/lib/syslinux/modules/efi64/ldlinux.e64
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
for f in "$PXELINUX" "$LDLINUX_BIOS"; do
    [ -f "$f" ] || skip_all "$f is missing (Debian packages pxelinux, syslinux-common)"
done
[ -f "$top_builddir/plugins/proxydhcp/proxydhcp.la" ] || skip_all "plugins/proxydhcp is not built"
[ -f "$top_builddir/plugins/tftp/tftp.la" ] ||
    skip_all "plugins/tftp builds no module yet: nothing would serve the boot files"

# The daemon: prebootd once its front end runs, else the in-process runner built beside
# this script (the same host and modules, in the foreground).
# (The skeleton's prebootd exits 0 without a word: require it to name itself.)
if [ -x "$top_builddir/core/prebootd" ] &&
    "$top_builddir/core/prebootd" --version 2>/dev/null | grep -q '^prebootd'; then
    SERVE="$top_builddir/core/prebootd -f -c"
elif [ -x "$top_builddir/tests/e2e/pb-serve" ]; then
    SERVE="$top_builddir/tests/e2e/pb-serve"
else
    skip_all "neither core/prebootd nor tests/e2e/pb-serve runs"
fi

T=$(mktemp -d /tmp/pb-e2e.XXXXXX)
NS_SRV=pbe2e-srv-$$
NS_DHCP=pbe2e-dhcp-$$
PIDS=""

cleanup() {
    for p in $PIDS; do
        kill "$p" 2>/dev/null
    done
    for p in $PIDS; do
        wait "$p" 2>/dev/null
    done
    ip netns del "$NS_SRV" 2>/dev/null
    ip netns del "$NS_DHCP" 2>/dev/null
    if [ -n "${PB_E2E_KEEP:-}" ]; then
        echo "# kept $T" >&2
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

in_srv() { ip netns exec "$NS_SRV" "$@"; }
in_dhcp() { ip netns exec "$NS_DHCP" "$@"; }

setup_net() {
    ip netns add "$NS_SRV" && ip netns add "$NS_DHCP" || return 1
    in_srv ip link set lo up
    in_dhcp ip link set lo up
    in_srv ip link add br0 type bridge || return 1
    in_srv ip addr add 10.0.0.1/24 dev br0
    in_srv ip link set br0 up
    in_srv ip tuntap add dev tap0 mode tap || return 1
    in_srv ip link set tap0 master br0
    in_srv ip link set tap0 up
    ip link add vsrv netns "$NS_SRV" type veth peer name vdhcp netns "$NS_DHCP" || return 1
    in_srv ip link set vsrv master br0
    in_srv ip link set vsrv up
    in_dhcp ip addr add 10.0.0.2/24 dev vdhcp
    in_dhcp ip link set vdhcp up
}

if ! setup_net 2>"$T/setup.err"; then
    skip_all "cannot create network namespaces, bridge or tap: $(head -1 "$T/setup.err")"
fi

# PB_E2E_PCAP=file.pcap records the DHCP traffic (how tests/data/dhcp got its 4011 vectors).
if [ -n "${PB_E2E_PCAP:-}" ] && command -v tshark >/dev/null 2>&1; then
    ip netns exec "$NS_SRV" tshark -q -i br0 -w "$PB_E2E_PCAP" -f "udp port 67 or udp port 68 or udp port 4011" >/dev/null 2>&1 &
    PIDS="$PIDS $!"
    sleep 2
fi

# ---- files the clients boot -----------------------------------------------------------
mkdir -p "$T/tftp/pxelinux.cfg" "$T/log" "$T/state"
cp "$PXELINUX" "$T/tftp/nvlnbp.sys" # the reference's NBPx86 name
cp "$LDLINUX_BIOS" "$T/tftp/"
HAVE_EFI=1
if [ -f "$SYSLINUX_EFI" ] && [ -f "$LDLINUX_EFI" ] && [ -f "$OVMF_CODE" ]; then
    cp "$SYSLINUX_EFI" "$T/tftp/syslinux.efi"
    cp "$LDLINUX_EFI" "$T/tftp/"
else
    HAVE_EFI=0
fi
cat >"$T/tftp/pxelinux.cfg/default" <<'EOF'
SERIAL 0 115200
PROMPT 0
TIMEOUT 1
SAY preboot-e2e-followup-ok
DEFAULT hang
LABEL hang
  LOCALBOOT -1
EOF

# The reference's legacy file, verbatim (tests/data/legacy: LocalInterface = 10.0.0.1,
# NBPx86 = nvlnbp.sys, ProxyLogFile = path\novell-proxydhcp.log, ...): the namespace uses
# its addresses.
cp "$top_srcdir/tests/data/legacy/novell-proxydhcp.conf" "$T/novell-proxydhcp.conf"
mkdir -p "$T/log/path"
PDLOG="$T/log/path/novell-proxydhcp.log"

write_config() { # $1 = local_dhcp (0/1)
    sed "s/^LocalDHCPFlag = .*/LocalDHCPFlag = $1/" "$T/novell-proxydhcp.conf" >"$T/proxydhcp-$1.conf"
    cat >"$T/preboot-$1.yaml" <<EOF
daemon:
  plugin_path: [$top_builddir/plugins/proxydhcp, $top_builddir/plugins/tftp]
  log_dir: $T/log
  state_dir: $T/state
  pid_file: $T/prebootd.pid
  control_socket: $T/control.sock
plugins:
  - module: proxydhcp
    legacy: [$T/proxydhcp-$1.conf]
    boot_file_efi_x64: syslinux.efi
  - module: tftp
    directory: $T/tftp
    log_level: 3
EOF
}

start_dnsmasq() { # $1 = where (srv|dhcp), $2.. extra options
    where=$1
    shift
    if [ "$where" = srv ]; then
        ns=$NS_SRV
        iface=br0
    else
        ns=$NS_DHCP
        iface=vdhcp
    fi
    rm -f "$T/dnsmasq.leases"
    ip netns exec "$ns" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 \
        --user=root --group=root --interface="$iface" --bind-interfaces \
        --dhcp-range=10.0.0.100,10.0.0.150,255.255.255.0,1h --dhcp-authoritative \
        --dhcp-leasefile="$T/dnsmasq.leases" --log-dhcp --log-facility="$T/dnsmasq.log" \
        "$@" >>"$T/dnsmasq.out" 2>&1 &
    DNSMASQ=$!
    PIDS="$PIDS $DNSMASQ"
}

start_server() { # $1 = local_dhcp
    write_config "$1"
    # ip netns exec and libtool's wrapper both exec: $! is the server itself.
    ip netns exec "$NS_SRV" $SERVE "$T/preboot-$1.yaml" >>"$T/server.out" 2>&1 &
    SERVER=$!
    PIDS="$PIDS $SERVER"
    # Bounded wait for the sockets (4011 always; 67 unless local).
    i=0
    while [ $i -lt 50 ]; do
        if in_srv sh -c 'cat /proc/net/udp' | grep -qi ':0FAB '; then
            return 0
        fi
        kill -0 "$SERVER" 2>/dev/null || return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

stop_pid() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    PIDS=$(echo "$PIDS" | sed "s/ $1\b//")
}

ESC=$(printf '\033')
# TCG unless asked: under nested KVM (a CI VM) iPXE 1.0.0's timer can stall at its Ctrl-B
# prompt for minutes. PB_E2E_ACCEL=kvm:tcg where KVM is known to work.
ACCEL=${PB_E2E_ACCEL:-tcg}

boot() { # $1 = bios|uefi, $2 = log name; returns 0 when the marker appeared
    log="$T/$2.serial"
    : >"$log"
    if [ "$1" = bios ]; then
        ip netns exec "$NS_SRV" qemu-system-x86_64 -machine accel=$ACCEL -m 256 -nographic \
            -no-reboot \
            -boot n -netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
            -device e1000,netdev=n0,mac=52:54:00:e2:e0:01 </dev/null >"$log" 2>&1 &
    else
        cp "$OVMF_VARS" "$T/vars.fd"
        ip netns exec "$NS_SRV" qemu-system-x86_64 -machine q35,accel=$ACCEL -m 256 -nographic \
            -no-reboot \
            -drive if=pflash,format=raw,readonly=on,file="$OVMF_CODE" \
            -drive if=pflash,format=raw,file="$T/vars.fd" \
            -boot n -netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
            -device e1000,netdev=n0,mac=52:54:00:e2:e0:02 </dev/null >"$log" 2>&1 &
    fi
    QEMU=$!
    PIDS="$PIDS $QEMU"
    ok=1
    i=0
    while [ $i -lt $((BOOT_TIMEOUT * 2)) ]; do
        # EFI consoles position the cursor between characters: strip the escapes.
        if sed "s/$ESC\[[0-9;]*[A-Za-z]//g" "$log" 2>/dev/null | tr -d '\r\n' |
            grep -q preboot-e2e-followup-ok; then
            ok=0
            break
        fi
        kill -0 "$QEMU" 2>/dev/null || break
        sleep 0.5
        i=$((i + 1))
    done
    stop_pid "$QEMU"
    return $ok
}

N=0
report() { # $1 = status, $2 = name, $3 = log
    N=$((N + 1))
    if [ "$1" = 0 ]; then
        echo "ok $N - $2"
    else
        echo "not ok $N - $2"
        for f in "$3" "$PDLOG" "$T/dnsmasq.log" "$T/server.out"; do
            [ -f "$f" ] && tail -n 25 "$f" | tr -d '\r' | sed "s|^|# $(basename "$f"): |"
        done
    fi
}

echo "1..4"
for mode in 0 1; do
    if [ "$mode" = 0 ]; then
        start_dnsmasq dhcp
        label="beside a plain DHCP server (LocalDHCPFlag = 0)"
    else
        # The DHCP server on this host: it says PXEClient, we serve 4011 only.
        start_dnsmasq srv --dhcp-option-force=60,PXEClient
        label="with the DHCP server on this host (LocalDHCPFlag = 1)"
    fi
    if ! start_server "$mode"; then
        report 1 "prebootd starts ($label)" "$T/server.out"
        N=$((N + 1))
        echo "not ok $N - (skipped boots: no server)"
        stop_pid "$DNSMASQ"
        continue
    fi
    boot bios "bios-$mode"
    report $? "BIOS (SeaBIOS + iPXE ROM) boots pxelinux and fetches its files $label" \
        "$T/bios-$mode.serial"
    if [ "$HAVE_EFI" = 1 ]; then
        boot uefi "uefi-$mode"
        report $? "UEFI (OVMF) boots syslinux.efi and fetches its files $label" \
            "$T/uefi-$mode.serial"
    else
        N=$((N + 1))
        echo "ok $N # SKIP syslinux-efi or ovmf is not installed"
    fi
    stop_pid "$SERVER"
    stop_pid "$DNSMASQ"
done
