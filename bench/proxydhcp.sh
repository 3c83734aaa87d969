#!/bin/sh
# proxydhcp.sh - preboot's proxydhcp and dnsmasq in proxy mode, side by side in one run, on
# the same namespaces, ports and load:
#
#   ns pbb-cli-PID (10.9.0.2) --veth-- ns pbb-srv-PID (10.9.0.1): the server under test
#
#   port 67  : perfdhcp -i (relayed DISCOVERs with options 60 and 93, 10,000 clients), and
#              bench/pxe-load --discover (the same DISCOVERs; it reports p50/p99)
#   port 4011: bench/pxe-load (REQUESTs with 43.71, a new MAC each)
#
# First the generators' own ceiling against bench/pxe-load --echo (a responder that costs
# nothing), then each server at each rate. Prints replies/s, loss, p50/p99 latency and the
# server's CPU time per reply (from /proc/PID/stat). Needs root (namespaces, port 67),
# perfdhcp (Debian: kea-admin) and dnsmasq. Not run by make check.
#
#   sudo bench/proxydhcp.sh [RATES...]        default rates: 1000 5000 10000 20000
#   env: top_builddir (default .), SECONDS_PER_RUN (default 5)
set -u
: "${top_builddir:=$(pwd)}"
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
DUR=${SECONDS_PER_RUN:-5}
RATES=${*:-1000 5000 10000 20000}

[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 2; }
for t in perfdhcp dnsmasq ip cc; do
    command -v $t >/dev/null || { echo "$t is missing (perfdhcp: apt-get install kea-admin)" >&2; exit 2; }
done
SERVE="$top_builddir/tests/e2e/pb-serve"
[ -x "$top_builddir/core/prebootd" ] && "$top_builddir/core/prebootd" --version 2>/dev/null |
    grep -q '^prebootd' && SERVE="$top_builddir/core/prebootd -f -c"

T=$(mktemp -d /tmp/pb-bench.XXXXXX)
CLI=pbb-cli-$$
SRV=pbb-srv-$$
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    ip netns del $CLI 2>/dev/null
    ip netns del $SRV 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

cc -O2 -o "$T/pxe-load" "$top_srcdir/bench/pxe-load.c" || exit 1
ip netns add $CLI && ip netns add $SRV || exit 1
ip link add vcli netns $CLI type veth peer name vsrv netns $SRV
ip -n $CLI addr add 10.9.0.2/24 dev vcli
ip -n $SRV addr add 10.9.0.1/24 dev vsrv
for ns in $CLI $SRV; do ip -n $ns link set lo up; done
ip -n $CLI link set vcli up
ip -n $SRV link set vsrv up

cpu_ticks() { # utime + stime of a PID, in clock ticks
    awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}
HZ=$(getconf CLK_TCK)

# One measurement: $1 = server label, $2 = server PID (or 0), $3 = path (67|4011), $4 = rate
measure() {
    label=$1 pid=$2 path=$3 rate=$4
    c0=$([ "$pid" != 0 ] && cpu_ticks "$pid" || echo 0)
    if [ "$path" = 67 ]; then
        out=$(ip netns exec $CLI "$T/pxe-load" --discover --bind 10.9.0.2 --local-port 67 \
            --rate "$rate" --seconds "$DUR" 10.9.0.1 67)
    else
        out=$(ip netns exec $CLI "$T/pxe-load" --bind 10.9.0.2 --rate "$rate" --seconds "$DUR" \
            10.9.0.1 4011)
    fi
    c1=$([ "$pid" != 0 ] && cpu_ticks "$pid" || echo 0)
    recv=$(echo "$out" | sed 's/.*received=\([0-9]*\).*/\1/')
    cpu_us=n/a
    if [ "$pid" != 0 ] && [ "$recv" -gt 0 ]; then
        cpu_us=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$recv" 'BEGIN{printf "%.1f", t * 1e6 / hz / n}')
    fi
    echo "$out" | awk -v l="$label" -v p="$path" -v r="$rate" -v c="$cpu_us" '{
        for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "| %-22s | %4s | %6s | %8s | %6s%% | %7s | %7s | %8s |\n", l, p, r, v["rate"],
               v["lost_pct"], v["p50_us"], v["p99_us"], c }'
}

perf67() { # $1 = label, $2 = rate: perfdhcp's own view (it prints no percentiles)
    o=$(ip netns exec $CLI perfdhcp -4 -i -l 10.9.0.2 -L 67 -R 10000 -r "$2" -p "$DUR" \
        -o 60,505845436c69656e743a417263683a30303030303a554e44493a303032303031 -o 93,0000 \
        10.9.0.1 2>&1)
    s=$(echo "$o" | awk '/sent packets/ {print $3; exit}')
    r=$(echo "$o" | awk '/received packets/ {print $3; exit}')
    a=$(echo "$o" | awk '/avg delay/ {print $3 $4; exit}')
    m=$(echo "$o" | awk '/max delay/ {print $3 $4; exit}')
    echo "| perfdhcp vs $1 | 67 | $2 | sent $s | received $r | avg $a | max $m |"
}

header() {
    echo
    echo "| server                 | path |   rate | replies/s |  lost | p50 us | p99 us | CPU us/reply |"
    echo "|------------------------|------|--------|-----------|-------|--------|--------|--------------|"
}

echo "# proxydhcp benchmark $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, ${DUR}s per run"

# ---- generators' ceiling -----------------------------------------------------------------
ip netns exec $SRV "$T/pxe-load" --echo --bind 10.9.0.1 67 &
E67=$!
ip netns exec $SRV "$T/pxe-load" --echo --bind 10.9.0.1 4011 &
E4011=$!
PIDS="$PIDS $E67 $E4011"
sleep 0.3
header
for r in $RATES 40000; do
    measure "echo (ceiling)" "$E67" 67 "$r"
    measure "echo (ceiling)" "$E4011" 4011 "$r"
done
for r in $RATES; do perf67 echo "$r"; done
kill $E67 $E4011
wait $E67 $E4011 2>/dev/null

# ---- dnsmasq in proxy mode ---------------------------------------------------------------
ip netns exec $SRV dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --user=root \
    --group=root --interface=vsrv --bind-interfaces --dhcp-range=10.9.0.0,proxy \
    --pxe-prompt="Press F8",2 --pxe-service=x86PC,"Network boot",nvlnbp \
    --log-facility=/dev/null &
DM=$!
PIDS="$PIDS $DM"
sleep 0.5
header
for r in $RATES; do
    measure "dnsmasq proxy" "$DM" 67 "$r"
    measure "dnsmasq proxy" "$DM" 4011 "$r"
done
for r in $RATES; do perf67 dnsmasq "$r"; done
kill $DM
wait $DM 2>/dev/null

# ---- preboot -----------------------------------------------------------------------------
mkdir -p "$T/log" "$T/state"
cat >"$T/preboot.yaml" <<EOF
daemon:
  plugin_path: [$top_builddir/plugins/proxydhcp]
  log_dir: $T/log
  state_dir: $T/state
  pid_file: $T/pid
  control_socket: $T/ctl
plugins:
  - module: proxydhcp
    nbp_x86: nvlnbp.sys
    log_level: 1
EOF
ip netns exec $SRV $SERVE "$T/preboot.yaml" 2>"$T/serve.err" &
PB=$!
PIDS="$PIDS $PB"
sleep 0.5
header
for r in $RATES; do
    measure "preboot proxydhcp" "$PB" 67 "$r"
    measure "preboot proxydhcp" "$PB" 4011 "$r"
done
for r in $RATES; do perf67 preboot "$r"; done
kill $PB
wait $PB 2>/dev/null

# ---- preboot with the policy engine holding 10,000 device rules ----------------------------
# Logging as quiet as proxydhcp's above (log_level 1): at its default level the policy logs
# every committed decision, a formatted line per request that proxydhcp alone does not write.
if [ -f "$top_builddir/plugins/policy/policy.la" ]; then
    {
        echo "version: 1"
        echo "rules:"
        i=0
        while [ $i -lt 10000 ]; do
            printf '  - name: d%d\n    match: {mac: "02:00:00:%02x:%02x:%02x"}\n    boot_file: d%d.0\n' \
                $i $((i >> 16 & 255)) $((i >> 8 & 255)) $((i & 255)) $i
            i=$((i + 1))
        done
        echo "default:"
        echo "  work: local"
    } >"$T/rules.yaml"
    cat >>"$T/preboot.yaml" <<EOF2
  - module: policy
    rules_file: $T/rules.yaml
    port: 0
    http: no
    log_level: 1
EOF2
    sed -i "s|plugin_path: \[|plugin_path: [$top_builddir/plugins/policy, |" "$T/preboot.yaml"
    ip netns exec $SRV $SERVE "$T/preboot.yaml" 2>"$T/serve-policy.err" &
    PB=$!
    PIDS="$PIDS $PB"
    sleep 2
    header
    for r in $RATES; do
        measure "preboot + 10k rules" "$PB" 67 "$r"
        measure "preboot + 10k rules" "$PB" 4011 "$r"
    done
    for r in $RATES; do perf67 "preboot + 10k rules" "$r"; done
fi
