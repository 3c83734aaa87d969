#!/bin/sh
# bench/tftp.sh - preboot's TFTP against tftpd-hpa (in.tftpd) and dnsmasq's TFTP, in one run,
# on loopback, and a Markdown table with ratios (results go in doc/benchmarks.md, ## tftp).
#
#   bench/tftp.sh [BUILD_DIR]        (default: $top_builddir, else .)
#   SIZE_MB=256 CLIENTS=1000 LOAD_MB=1 bench/tftp.sh /work/build-tftp
#
# Measures: one SIZE_MB download at blksize 512, 1428 and 8192 in lock step, and with
# windowsize 4/16/64 where the server supports it; CLIENTS concurrent downloads of LOAD_MB
# each (aggregate MiB/s, failures); server CPU seconds (utime+stime of the server and its
# reaped children, from /proc) per GiB; peak server memory (RSS of the server and its
# children, sampled every 50 ms). The load client is bench/tftp-load.c.
#
# preboot runs in tests/tftp-serve (the real host in process) or core/prebootd -f when that
# runs plugins; tftpd-hpa as `in.tftpd -L` on a high loopback port; dnsmasq, whose TFTP port
# is fixed at 69, inside a network namespace this script creates (root only, else skipped).
# Nothing is started as a system service; everything started here is stopped by PID.
set -u
B=${1:-${top_builddir:-.}}
B=$(cd "$B" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MB=${SIZE_MB:-256}
CLIENTS=${CLIENTS:-1000}
LOAD_MB=${LOAD_MB:-1}
BASE_PORT=${BASE_PORT:-47069}
SERVERS=${SERVERS:-"preboot tftpd-hpa dnsmasq"} # a subset re-runs only those

tmp=$(mktemp -d /tmp/tftp-bench.XXXXXX)
chmod 755 "$tmp"
pids=
ns=
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
    [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null
    [ -n "$cg" ] && rmdir "$cg" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

say() { echo "$*" >&2; }

root=$tmp/root
mkdir -p "$root" "$tmp/log" "$tmp/state"
chmod 755 "$root"
head -c $((SIZE_MB * 1048576)) /dev/urandom >"$root/big.bin"
head -c $((LOAD_MB * 1048576)) /dev/urandom >"$root/load.bin"
chmod 644 "$root"/*.bin
cc -O2 -o "$tmp/tftp-load" "$SRC/bench/tftp-load.c" || exit 1
LOAD=$tmp/tftp-load

# ---- process accounting -----------------------------------------------------------------
# CPU: a cpuacct cgroup holding the server and everything it forks (tftpd-hpa forks a child
# per transfer, and /proc's cutime misses children nobody waited for). Without one: /proc
# utime+stime+cutime+cstime of the server.
clk=$(getconf CLK_TCK)
cg=
for base in /sys/fs/cgroup/cpuacct /sys/fs/cgroup/unified /sys/fs/cgroup; do
    if [ -w "$base" ] && mkdir "$base/pbbench$$" 2>/dev/null; then
        cg=$base/pbbench$$
        break
    fi
done
cg_add() { [ -n "$cg" ] && echo "$1" >"$cg/cgroup.procs" 2>/dev/null; }
cpu_ticks() { # in clock ticks
    if [ -n "$cg" ] && [ -r "$cg/cpuacct.usage" ]; then
        awk -v k="$clk" '{printf "%d", $1 * k / 1e9}' "$cg/cpuacct.usage"
    elif [ -n "$cg" ] && [ -r "$cg/cpu.stat" ]; then
        awk -v k="$clk" '/^usage_usec/ {printf "%d", $2 * k / 1e6}' "$cg/cpu.stat"
    else
        awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo 0
    fi
}
tree_rss_kb() { # RSS of pid and its children
    t=0
    for p in $1 $(cat /proc/$1/task/*/children 2>/dev/null); do
        r=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null)
        t=$((t + ${r:-0}))
    done
    echo $t
}
sampler() { # pid outfile: max RSS until killed
    m=0
    while kill -0 "$1" 2>/dev/null; do
        r=$(tree_rss_kb "$1")
        [ "$r" -gt "$m" ] && m=$r && echo "$m" >"$2"
        sleep 0.05
    done
}

# run SERVER_PID PREFIX ARGS...: runs tftp-load, prints "mibs cpu_s peak_mib ok"
run() {
    spid=$1; shift
    prefix=$1; shift
    c0=$(cpu_ticks "$spid")
    echo 0 >"$tmp/peak"
    sampler "$spid" "$tmp/peak" &
    smp=$!
    out=$($prefix "$LOAD" "$@" 2>"$tmp/load.err")
    rc=$?
    kill "$smp" 2>/dev/null
    wait "$smp" 2>/dev/null
    c1=$(cpu_ticks "$spid")
    mibs=$(echo "$out" | sed -n 's/.*MiB\/s=\([0-9.]*\).*/\1/p')
    failed=$(echo "$out" | sed -n 's/.*failed=\([0-9]*\).*/\1/p')
    cpu=$(awk -v a="$c0" -v b="$c1" -v k="$clk" 'BEGIN {printf "%.2f", (b - a) / k}')
    peak=$(awk -v k="$(cat "$tmp/peak")" 'BEGIN {printf "%.1f", k / 1024}')
    [ $rc -eq 0 ] || say "  (load client: rc=$rc $out $(head -c 300 "$tmp/load.err"))"
    echo "${mibs:-0} $cpu $peak ${failed:-?}"
}

# ---- servers ----------------------------------------------------------------------------
start_preboot() {
    port=$1
    cat >"$tmp/preboot.yaml" <<EOC
daemon:
  plugin_path: [$B/plugins/tftp]
  log_dir: $tmp/log
  state_dir: $tmp/state
  pid_file: $tmp/prebootd.pid
  control_socket: $tmp/control.sock
  log_level: 0
plugins:
  - module: tftp
    interface: 127.0.0.1
    port: $port
    directory: $root
    log_level: 1
    jumbo_block_size: 8192
    max_window_size: 64
    max_window_bytes: 1048576
    max_transfers: 4096
    rate_limit: 0
EOC
    if "$B/core/prebootd" --version 2>/dev/null | grep -q "plugin ABI"; then
        "$B/core/prebootd" -f -c "$tmp/preboot.yaml" >"$tmp/preboot.out" 2>&1 &
    else
        "$B/tests/tftp-serve" "$tmp/preboot.yaml" >"$tmp/preboot.out" 2>&1 &
    fi
    echo $!
}

start_hpa() {
    # -L foreground, -s chroot into the root, -B the largest block it may grant.
    in.tftpd -L -a "127.0.0.1:$1" -s "$root" -B 65464 -u nobody >"$tmp/hpa.out" 2>&1 &
    echo $!
}

start_dnsmasq() {
    ip netns exec "$ns" dnsmasq -k -C /dev/null --port=0 --enable-tftp --tftp-root="$root" \
        --listen-address=127.0.0.1 --bind-interfaces --tftp-max=4096 --pid-file= \
        --user=nobody --quiet-tftp >"$tmp/dnsmasq.out" 2>&1 &
    echo $!
}

# Loopback lock step is a ping-pong between two processes, and its speed depends mostly on
# where the scheduler puts them: on one CPU a round trip is two context switches; on two,
# each wake-up is an inter-processor interrupt and often a CPU leaving idle, which in a
# virtual machine costs more than the work itself. Unpinned runs land on either, so the
# lock-step tests are also run with the server and the client pinned to one CPU and to
# two: those rows compare servers fairly. pin PID CPUS pins a process, its threads and
# its children (tftpd-hpa's per-transfer children inherit it from the parent).
pin() {
    for t in /proc/"$1"/task/*; do taskset -pc "$2" "${t##*/}" >/dev/null 2>&1; done
    for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do pin "$c" "$2"; done
}
allcpus="0-$(($(nproc) - 1))"
pinned=0
command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ] && pinned=1

# results[server][test] in files
res() { echo "$3" >"$tmp/r.$1.$2"; }
get() { cat "$tmp/r.$1.$2" 2>/dev/null || echo "- - - -"; }

bench_server() { # name pid prefix port windowed(0/1)
    name=$1 spid=$2 prefix=$3 port=$4 win=$5
    cg_add "$spid"
    sleep 0.5
    for b in 512 1428 8192; do
        say "$name: $SIZE_MB MiB, blksize $b, lock step"
        res "$name" "b$b" "$(run "$spid" "$prefix" -b "$b" -e $((SIZE_MB * 1048576)) 127.0.0.1 "$port" big.bin)"
    done
    if [ "$pinned" = 1 ]; then
        for b in 512 1428; do
            say "$name: $SIZE_MB MiB, blksize $b, lock step, server and client on one CPU"
            pin "$spid" 0
            res "$name" "b${b}p1" "$(run "$spid" "$prefix taskset -c 0" -b "$b" -e $((SIZE_MB * 1048576)) 127.0.0.1 "$port" big.bin)"
        done
        say "$name: $SIZE_MB MiB, blksize 1428, lock step, server and client on two CPUs"
        res "$name" "b1428p2" "$(run "$spid" "$prefix taskset -c 1" -b 1428 -e $((SIZE_MB * 1048576)) 127.0.0.1 "$port" big.bin)"
        pin "$spid" "$allcpus"
    fi
    if [ "$win" = 1 ]; then
        for w in 4 16; do
            say "$name: $SIZE_MB MiB, blksize 1428, windowsize $w"
            res "$name" "b1428w$w" "$(run "$spid" "$prefix" -b 1428 -w "$w" -e $((SIZE_MB * 1048576)) 127.0.0.1 "$port" big.bin)"
        done
        for w in 16 64; do
            say "$name: $SIZE_MB MiB, blksize 8192, windowsize $w"
            res "$name" "b8192w$w" "$(run "$spid" "$prefix" -b 8192 -w "$w" -e $((SIZE_MB * 1048576)) 127.0.0.1 "$port" big.bin)"
        done
    fi
    say "$name: $CLIENTS clients x $LOAD_MB MiB, blksize 1428"
    res "$name" "load" "$(run "$spid" "$prefix" -n "$CLIENTS" -b 1428 -t 2000 -e $((LOAD_MB * 1048576)) 127.0.0.1 "$port" load.bin)"
    if [ "$win" = 1 ]; then
        say "$name: $CLIENTS clients x $LOAD_MB MiB, blksize 1428, windowsize 16"
        res "$name" "loadw16" "$(run "$spid" "$prefix" -n "$CLIENTS" -b 1428 -w 16 -t 2000 -e $((LOAD_MB * 1048576)) 127.0.0.1 "$port" load.bin)"
    fi
}

wanted() { case " $SERVERS " in *" $1 "*) return 0 ;; esac; return 1; }
servers=""
if wanted preboot; then
    p=$(start_preboot "$BASE_PORT")
    pids="$pids $p"
    bench_server preboot "$p" "" "$BASE_PORT" 1
    servers="preboot"
    kill "$p"; wait "$p" 2>/dev/null
fi

if ! wanted tftpd-hpa; then
    :
elif command -v in.tftpd >/dev/null; then
    p=$(start_hpa $((BASE_PORT + 1)))
    pids="$pids $p"
    bench_server tftpd-hpa "$p" "" $((BASE_PORT + 1)) 0
    servers="$servers tftpd-hpa"
    kill "$p"; wait "$p" 2>/dev/null
else
    say "tftpd-hpa (in.tftpd) not installed: skipped"
fi

if ! wanted dnsmasq; then
    :
elif command -v dnsmasq >/dev/null && [ "$(id -u)" = 0 ] && ip netns add "pbbench$$" 2>/dev/null; then
    ns=pbbench$$
    ip -n "$ns" link set lo up
    p=$(start_dnsmasq)
    pids="$pids $p"
    sleep 0.5
    # ip netns exec forks dnsmasq: account the dnsmasq process itself.
    dp=$(cat /proc/$p/task/*/children 2>/dev/null | head -n1)
    dp=${dp:-$p}
    bench_server dnsmasq "$dp" "ip netns exec $ns" 69 0
    servers="$servers dnsmasq"
    kill "$p"; wait "$p" 2>/dev/null
else
    say "dnsmasq skipped (needs root for its network namespace, port 69)"
fi

# ---- the table --------------------------------------------------------------------------
field() { echo "$1" | awk -v i="$2" '{print $i}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a + 0 > 0) printf "%.2f", a / b; else print "-" }'; }

echo "CPU accounting: ${cg:-/proc of the server process}."
echo "Command: \`SIZE_MB=$SIZE_MB CLIENTS=$CLIENTS LOAD_MB=$LOAD_MB bench/tftp.sh\` on $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%d)."
echo
printf '| test |'
for s in $servers; do printf ' %s MiB/s |' "$s"; done
for s in $servers; do [ "$s" != preboot ] && printf ' preboot / %s |' "$s"; done
echo
printf '|---|'
for s in $servers; do printf -- '---:|'; done
for s in $servers; do [ "$s" != preboot ] && printf -- '---:|'; done
echo
tests="b512 b1428 b8192"
[ "$pinned" = 1 ] && tests="$tests b512p1 b1428p1 b1428p2"
for t in $tests b1428w4 b1428w16 b8192w16 b8192w64 load loadw16; do
    case $t in
    b512) label="$SIZE_MB MiB, blksize 512" ;;
    b1428) label="$SIZE_MB MiB, blksize 1428" ;;
    b512p1) label="$SIZE_MB MiB, blksize 512, one CPU" ;;
    b1428p1) label="$SIZE_MB MiB, blksize 1428, one CPU" ;;
    b1428p2) label="$SIZE_MB MiB, blksize 1428, two CPUs" ;;
    b8192) label="$SIZE_MB MiB, blksize 8192" ;;
    b1428w4) label="$SIZE_MB MiB, blksize 1428, window 4" ;;
    b1428w16) label="$SIZE_MB MiB, blksize 1428, window 16" ;;
    b8192w16) label="$SIZE_MB MiB, blksize 8192, window 16" ;;
    b8192w64) label="$SIZE_MB MiB, blksize 8192, window 64" ;;
    load) label="$CLIENTS x $LOAD_MB MiB at once, blksize 1428 (aggregate)" ;;
    loadw16) label="$CLIENTS x $LOAD_MB MiB at once, blksize 1428, window 16" ;;
    esac
    printf '| %s |' "$label"
    pb=$(field "$(get preboot $t)" 1)
    for s in $servers; do
        v=$(get "$s" "$t")
        f=$(field "$v" 4)
        m=$(field "$v" 1)
        [ "$f" != "0" ] && [ "$f" != "-" ] && m="$m ($f failed)"
        printf ' %s |' "$m"
    done
    for s in $servers; do [ "$s" != preboot ] && printf ' %s |' "$(ratio "$pb" "$(field "$(get "$s" "$t")" 1)")"; done
    echo
done
echo
# CPU per GiB from the one-CPU runs where there are some: unpinned, the cost of cross-CPU
# wake-ups (which depends on placement, not on the server) would dominate it.
pt=""
[ "$pinned" = 1 ] && pt="p1" && echo "CPU per GiB below is from the runs on one CPU."
echo "| server | CPU s per GiB (blksize 1428, lock step) | CPU s per GiB (blksize 512) | CPU s for the $CLIENTS-client load | peak memory, load (MiB) |"
echo "|---|---:|---:|---:|---:|"
for s in $servers; do
    v1=$(get "$s" b1428$pt)
    v5=$(get "$s" b512$pt)
    vl=$(get "$s" load)
    g1=$(awk -v c="$(field "$v1" 2)" -v m="$SIZE_MB" 'BEGIN {printf "%.1f", c * 1024 / m}')
    g5=$(awk -v c="$(field "$v5" 2)" -v m="$SIZE_MB" 'BEGIN {printf "%.1f", c * 1024 / m}')
    echo "| $s | $g1 | $g5 | $(field "$vl" 2) | $(field "$vl" 3) |"
done
