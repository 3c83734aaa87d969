#!/bin/sh
# policy-e2e.sh - real iPXE firmware executes the scripts the policy engine generates. In a
# network namespace this script creates:
#
#   ns "srv" : bridge br0 10.0.0.1/24 + tap0 and tap1 (two QEMU clients) + dnsmasq (plain
#              DHCP whose boot file is our /boot.ipxe URL) + prebootd (http + policy)
#
# Two QEMU machines (SeaBIOS with QEMU's iPXE ROM, different MACs) boot at the same time.
# One is assigned "local", the other "program .../e2e/program-b once". A boot passes when
# iPXE fetched /boot.ipxe with its MAC, the engine decided what its assignment says, and -
# for the program - iPXE really ran the script: it then requested the chained program
# from our HTTP listener. The second machine boots again: its one-shot work is gone, so
# it gets the local disk and does not fetch the program again.
#
# Needs root; prints TAP; cleans up namespaces and processes on every exit path; every
# wait is bounded.
set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$(pwd)}"
BOOT_TIMEOUT=${PB_E2E_BOOT_TIMEOUT:-180}

skip_all() {
    echo "1..0 # SKIP $1"
    exit 0
}

[ "$(id -u)" = 0 ] || skip_all "needs root for network namespaces"
for tool in ip qemu-system-x86_64 dnsmasq timeout; do
    command -v "$tool" >/dev/null 2>&1 || skip_all "$tool is not installed"
done
[ -f /usr/lib/ipxe/qemu/efi-e1000.rom ] || [ -f /usr/lib/ipxe/qemu/pxe-e1000.rom ] ||
    skip_all "QEMU's iPXE ROMs are missing (Debian package ipxe-qemu)"
for m in policy http; do
    [ -f "$top_builddir/plugins/$m/$m.la" ] || skip_all "plugins/$m is not built"
done
PREBOOTD=$top_builddir/core/prebootd
CTL=$top_builddir/tools/prebootctl
[ -x "$PREBOOTD" ] && [ -x "$CTL" ] || skip_all "prebootd or prebootctl is not built"

T=$(mktemp -d /tmp/pb-policy-e2e.XXXXXX)
NS=pbpol-$$
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    ip netns del "$NS" 2>/dev/null
    if [ -n "${PB_E2E_KEEP:-}" ]; then echo "# kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

in_ns() { ip netns exec "$NS" "$@"; }
setup_net() {
    ip netns add "$NS" || return 1
    in_ns ip link set lo up
    in_ns ip link add br0 type bridge || return 1
    in_ns ip addr add 10.0.0.1/24 dev br0
    in_ns ip link set br0 up
    for t in tap0 tap1; do
        in_ns ip tuntap add dev $t mode tap || return 1
        in_ns ip link set $t master br0
        in_ns ip link set $t up
    done
}
setup_net 2>"$T/setup.err" || skip_all "cannot create the namespace, bridge or taps: $(head -1 "$T/setup.err")"

PORT=8080
MAC_A=52:54:00:e2:e1:0a
MAC_B=52:54:00:e2:e1:0b
mkdir -p "$T/log" "$T/state"
cat >"$T/rules.yaml" <<EOC
rules:
  - name: e2e-lab
    match: {mac: {starts_with: "52:54:00:e2:e1"}}
    work: local
    menu: never
default:
  menu: never
EOC
cat >"$T/preboot.yaml" <<EOC
daemon:
  plugin_path: [$top_builddir/plugins/policy, $top_builddir/plugins/http]
  log_dir: $T/log
  state_dir: $T/state
  pid_file: $T/prebootd.pid
  control_socket: $T/control.sock
plugins:
  - {module: http, listen: 10.0.0.1, port: $PORT, log_level: 2}
  - {module: policy, local_interface: 10.0.0.1, rules_file: $T/rules.yaml, log_level: 2}
EOC
ctl() { "$CTL" -c "$T/preboot.yaml" "$@"; }

# Background jobs are started with ip netns exec itself (not through a shell function), so
# that $! is the process: ip execs it.
ip netns exec "$NS" "$PREBOOTD" -f -c "$T/preboot.yaml" >"$T/server.out" 2>&1 &
PIDS="$PIDS $!"
i=0
until in_ns sh -c "cat /proc/net/tcp" | grep -qi ":$(printf '%04X' $PORT) "; do
    i=$((i + 1))
    [ $i -lt 50 ] || break
    sleep 0.1
done
sleep 1.2 # the policy plugin attaches /boot.ipxe to the http listener within a second

# iPXE expands settings in the DHCP boot file name: each machine asks with its own MAC.
ip netns exec "$NS" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --user=root --group=root \
    --interface=br0 --bind-interfaces --dhcp-range=10.0.0.100,10.0.0.150,255.255.255.0,1h \
    --dhcp-leasefile="$T/dnsmasq.leases" --log-dhcp --log-facility="$T/dnsmasq.log" \
    "--dhcp-boot=http://10.0.0.1:$PORT/boot.ipxe?mac=\${net0/mac}&platform=\${platform}&buildarch=\${buildarch}" \
    >"$T/dnsmasq.out" 2>&1 &
PIDS="$PIDS $!"

echo "1..6"
N=0
report() { # status name
    N=$((N + 1))
    if [ "$1" = 0 ]; then
        echo "ok $N - $2"
    else
        echo "not ok $N - $2"
        for f in "$T/log/novell-zmgprebootpolicy.log" "$T/log/preboot-http.log" "$T/dnsmasq.log" "$T/server.out"; do
            [ -f "$f" ] && tail -n 15 "$f" | sed "s|^|# $(basename "$f"): |"
        done
    fi
}

out=$(ctl policy assign $MAC_A local 2>&1)
ctl policy assign $MAC_B program "http://10.0.0.1:$PORT/e2e/program-b" once >/dev/null 2>&1
case "$out" in *assigned*) report 0 "assignments through prebootctl" ;; *) report 1 "assignments through prebootctl: $out" ;; esac

ACCEL=tcg
[ -w /dev/kvm ] && ACCEL=kvm:tcg
start_qemu() { # tap mac log
    ip netns exec "$NS" qemu-system-x86_64 -machine accel=$ACCEL -m 128 -nographic -no-reboot -boot n \
        -netdev tap,id=n0,ifname=$1,script=no,downscript=no -device e1000,netdev=n0,mac=$2 \
        </dev/null >"$T/$3.serial" 2>&1 &
    QPID=$!
    PIDS="$PIDS $QPID"
}
# decided MAC WORK: the policy log shows the decision for that MAC acted on n times
decided() { grep -c "http .*mac:$1: $2" "$T/log/novell-zmgprebootpolicy.log" 2>/dev/null; }
fetched() { grep -c "GET $1 " "$T/log/preboot-http.log" 2>/dev/null; }
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
a_done() { [ "$(decided $MAC_A local)" -ge 1 ]; }
b_done() { [ "$(decided $MAC_B program)" -ge 1 ] && [ "$(fetched /e2e/program-b)" -ge 1 ]; }

start_qemu tap0 $MAC_A a
QA=$QPID
start_qemu tap1 $MAC_B b
QB=$QPID
wait_for "$BOOT_TIMEOUT" a_done
report $? "machine A (assigned local) fetched /boot.ipxe and was told to boot its disk"
wait_for "$BOOT_TIMEOUT" b_done
report $? "machine B (assigned a program) got it, and iPXE ran the script: it fetched the program"
sleep 3 # let A's iPXE finish: it must not fetch B's program
kill "$QA" "$QB" 2>/dev/null
wait "$QA" "$QB" 2>/dev/null
[ "$(fetched /e2e/program-b)" -eq 1 ]
report $? "the two machines got different answers (only B fetched the program)"

# B again: its one-shot work was consumed by the first boot.
start_qemu tap1 $MAC_B b2
QB=$QPID
b_again() { [ "$(grep -c "http .*mac:$MAC_B: " "$T/log/novell-zmgprebootpolicy.log")" -ge 2 ]; }
wait_for "$BOOT_TIMEOUT" b_again
sleep 3
kill "$QB" 2>/dev/null
wait "$QB" 2>/dev/null
[ "$(decided $MAC_B local)" -ge 1 ]
report $? "machine B's second boot: the one-shot program is gone, it boots its disk"
[ "$(fetched /e2e/program-b)" -eq 1 ]
report $? "machine B did not fetch the program a second time"
