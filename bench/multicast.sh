#!/bin/sh
# multicast.sh - preboot's multicast sessions against udpcast (udp-sender/udp-receiver, as
# FOG and Clonezilla use it: the raw disk) and NORM (NRL's libnorm, the file sent with
# NACK repair; bench/norm-probe.cc), restoring the same disk to 1, 4 and 8 receivers in
# network namespaces joined by a bridge: clean, with 1 % loss on one receiver (nftables),
# and with one receiver slowed by tbf. Prints, per run, the time until the last unimpaired
# receiver finished, the impaired one's time, CPU seconds per GiB (sender; receivers
# summed) and the ratios. Root only. Results and the command: doc/benchmarks.md.
#
#   sudo sh bench/multicast.sh [BUILD_DIR]      (BUILD_DIR: default ./_build)
#   env: SIZE_MB (64), RATE (preboot's and NORM's rate, Mbit/s; 600), SLOW (tbf, 100mbit),
#        COUNTS ("1 4 8"), TOOLS ("preboot udpcast norm"), REPEAT (3: the summary takes
#        the median of the runs, this machine being shared), FILL (mix: half text, a
#        quarter random, a quarter free; random: 90 % random data, nothing for compression
#        or free space to win: the transports alone), FALLBACK (yes: a prebootd with http
#        and imaging in the sender's namespace serves the image, preboot's receivers get
#        it as their unicast fallback (--http) and the sender sends slow receivers there
#        (slow_policy unicast); no: slow receivers wait, no fallback), LATE_DELAY (0.1:
#        seconds after the sender began sending that the late receiver starts)
set -u
B=$(cd "${1:-_build}" && pwd) || exit 1
S=$(cd "$(dirname "$0")/.." && pwd)
IMG=$B/tools/preboot-img
SEND=$B/tests/mcast-sender
SIZE_MB=${SIZE_MB:-64}
RATE=${RATE:-600}
SLOW=${SLOW:-100mbit}
COUNTS=${COUNTS:-"1 4 8"}
TOOLS=${TOOLS:-"preboot udpcast norm"}
REPEAT=${REPEAT:-3}
FILL=${FILL:-mix}
FALLBACK=${FALLBACK:-yes}
[ "$(id -u)" = 0 ] || { echo "multicast.sh: needs root (network namespaces)" >&2; exit 1; }
[ -x "$SEND" ] || { echo "multicast.sh: build tests/mcast-sender first (make -C $B tests/mcast-sender)" >&2; exit 1; }
P=pbb$$
W=$(mktemp -d "${TMPDIR:-/tmp}/mcast-bench.XXXXXX")
NSES=
PIDS=
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for ns in $NSES; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
cd "$W" || exit 1

if echo "$TOOLS" | grep -q norm; then
    g++ -O2 -o norm-probe "$S/bench/norm-probe.cc" $(pkg-config --cflags --libs norm) ||
        { echo "multicast.sh: cannot build norm-probe (libnorm-dev, g++)" >&2; exit 1; }
fi

. "$S/tests/lib-netns.sh"
ip netns add ${P}br && NSES=${P}br
netns_bridge
netns_host s 10.79.0.1
for i in 1 2 3 4 5 6 7 8; do netns_host r$i 10.79.0.1$i; done

# The disk: MBR, ext4 about three quarters full of a mix: half text (compresses about 5:1),
# a quarter random (does not compress), the rest free.
mkdir tree
if [ "$FILL" = random ]; then
    head -c $((SIZE_MB * 1024 * 1024 * 9 / 10)) /dev/urandom >tree/random
else
    lines=$((SIZE_MB * 1024 * 1024 / 2 / 6 / 44))
    for i in 1 2 3 4 5 6; do seq 100001 $((100000 + lines)) | sed "s/^/line $i of a text file in the tree: /" >tree/t$i; done
    head -c $((SIZE_MB * 1024 * 1024 / 4)) /dev/urandom >tree/random
fi
truncate -s ${SIZE_MB}M disk.img
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q disk.img
mkfs.ext4 -q -F -d tree -E offset=1048576 disk.img $(((SIZE_MB - 1) * 1024))k
"$IMG" make disk.img ./store:disk >/dev/null || exit 1
# The imaging server for the unicast fallback: the same image (same chunks) in its backend.
HTTP_ARGS=
SLOW_ARGS=
SRV_PID=
if [ "$FALLBACK" = yes ] && echo "$TOOLS" | grep -q preboot; then
    HP=9390
    echo "bench-$$" >token
    cat >preboot.yaml <<EOC
daemon:
  plugin_path: [$B/plugins/http/.libs, $B/plugins/imaging/.libs, $B/backends/local/.libs]
  log_dir: $W/log
  state_dir: $W/state
  pid_file: $W/prebootd.pid
  control_socket: $W/control.sock
plugins:
  - {module: http, listen: 10.79.0.1, port: $HP}
  - {module: imaging, store: $W/istore, upload_token_file: $W/token, upload_networks: [10.79.0.0/24]}
EOC
    ip netns exec ${P}s "$B/core/prebootd" -f -c "$W/preboot.yaml" >prebootd.err 2>&1 &
    SRV_PID=$!
    PIDS="$PIDS $SRV_PID"
    i=0
    until PREBOOT_TOKEN=$(cat token) ip netns exec ${P}s "$IMG" make disk.img 10.79.0.1:$HP:disk \
        >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 50 ] || { echo "multicast.sh: the imaging server does not take the image" >&2; exit 1; }
        sleep 0.2
    done
    HTTP_ARGS="--http http://10.79.0.1:$HP"
    SLOW_ARGS=--slow-unicast
fi
# CPU seconds the imaging server (prebootd) used so far: what the fallback cost it
srv_cpu() {
    [ -n "$SRV_PID" ] || { echo 0; return; }
    awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' /proc/$SRV_PID/stat
}
stored=$(du -sb store/chunks | cut -f1)
echo "# disk ${SIZE_MB} MiB ($FILL), $(du -sh tree | cut -f1) of files; image in the store: $((stored / 1024)) KiB; rate $RATE Mbit/s; slow receiver: tbf $SLOW"
GIB=$(echo "$SIZE_MB / 1024" | bc -l)

impair() { # none|loss|slow: always on receiver r1
    case $1 in
    loss) ip netns exec ${P}r1 nft -f - <<'NFT'
table inet lossy {
  chain in {
    type filter hook input priority 0;
    meta l4proto udp numgen random mod 100 < 1 counter drop
  }
}
NFT
    ;;
    slow) tc -n ${P}br qdisc add dev pr1 root tbf rate $SLOW burst 256kbit latency 50ms ;;
    esac
}
unimpair() {
    case $1 in
    loss) ip netns exec ${P}r1 nft delete table inet lossy ;;
    slow) tc -n ${P}br qdisc del dev pr1 root ;;
    esac
}
now() { date +%s.%N; }
# timed NS OUT CMD...: runs CMD in namespace NS in the background; OUT.t gets
# "END_TIME USER SYS", OUT.out its output
timed() {
    ns=$1 out=$2
    shift 2
    (ip netns exec ${P}$ns /usr/bin/time -f "%U %S" -o "$out.cpu" "$@" >"$out.out" 2>"$out.err"
        echo "$(now) $(cat "$out.cpu" | tail -n 1)" >"$out.t") &
    PIDS="$PIDS $!"
}
PORT=9400
run() { # tool n cond
    tool=$1 n=$2 cond=$3
    rm -rf r*.img r*.t s.t r*.cpu s.cpu cache*
    PORT=$((PORT + 10))
    srv0=$(srv_cpu)
    [ $cond = late ] || impair $cond
    case $tool in
    preboot)
        first_rx=1
        expect=$n
        # late: r1 joins once the others are being sent to
        [ $cond = late ] && first_rx=2 && expect=$((n - 1))
        for i in $(seq $first_rx $n); do
            timed r$i r$i "$IMG" session bench r$i.img --port $PORT --wait 60 --label r$i \
                $HTTP_ARGS
        done
        start=$(now)
        timed s s "$SEND" --store store --image disk --session bench --port $PORT \
            --bind 10.79.0.1 --rate $RATE --clients $expect --drop 5 -v 2 $SLOW_ARGS
        if [ $cond = late ]; then
            i=0
            while [ $i -lt 300 ] && ! grep -q "sending image" s.err 2>/dev/null; do
                sleep 0.02
                i=$((i + 1))
            done
            # into the first pass, which for this disk at 600 Mbit/s lasts about 0.3 s: a
            # receiver started later than that joins after the end, and this sender (not the
            # multicast plugin) keeps no record of the session for it to fall back on
            sleep "${LATE_DELAY:-0.1}"
            joined=$(now)
            timed r1 r1 "$IMG" session bench r1.img --port $PORT --wait 60 --label r1 \
                $HTTP_ARGS
        fi
        ;;
    udpcast)
        for i in $(seq 1 $n); do
            timed r$i r$i udp-receiver --file r$i.img --nokbd --portbase $PORT --interface eth0
        done
        start=$(now)
        timed s s udp-sender --file disk.img --nokbd --min-receivers $n --portbase $PORT \
            --interface eth0 --max-wait 30
        ;;
    norm)
        for i in $(seq 1 $n); do
            mkdir -p cache$i
            timed r$i r$i ./norm-probe recv cache$i 239.192.79.9 $PORT $((i + 1)) r$i.img
        done
        start=$(now)
        timed s s ./norm-probe send disk.img 239.192.79.9 $PORT $RATE $n 0
        ;;
    esac
    # bounded: every tool gives up by itself; wait for the result files
    i=0
    while [ $i -lt 1200 ]; do
        all=1
        for f in s $(seq 1 $n | sed 's/^/r/'); do [ -s $f.t ] || all=0; done
        [ $all = 1 ] && break
        sleep 0.1
        i=$((i + 1))
    done
    # whatever is still running in the room (a sender waiting for a receiver that gave up)
    for ns in s r1 r2 r3 r4 r5 r6 r7 r8; do
        for p in $(ip netns pids ${P}$ns 2>/dev/null); do
            [ "$p" = "$SRV_PID" ] || kill $p 2>/dev/null
        done
    done
    [ $cond = late ] || unimpair $cond
    ok=1 failed=
    for i in $(seq 1 $n); do
        cmp -s disk.img r$i.img || ok=0
        # /usr/bin/time notes a non-zero exit status: a receiver that gave up is not a disk
        # that differs
        grep -q "non-zero status" r$i.cpu 2>/dev/null &&
            failed="${failed:+$failed; }r$i: $(grep -v '^\*\*' r$i.err | tail -n 1 | cut -c1-120)"
    done
    # NORM receivers linger 2 s for the sender's acknowledgement: take their own time
    if [ $tool = norm ]; then
        for i in $(seq 1 $n); do
            d=$(sed -n 's/.*done-at \([0-9.]*\).*/\1/p' r$i.out)
            [ -n "$d" ] && sed -i "s/^[0-9.]* /$d /" r$i.t
        done
    fi
    # the others: every receiver but r1 when r1 is impaired
    first=1
    [ "$cond" != none ] && [ $n -gt 1 ] && first=2
    others=$(for i in $(seq $first $n); do awk -v s=$start '{printf "%.2f\n", $1 - s}' r$i.t; done | sort -n | tail -n 1)
    r1=$(awk -v s=$start '{printf "%.2f", $1 - s}' r1.t)
    scpu=$(awk '{print $2 + $3}' s.t)
    rcpu=$(for i in $(seq 1 $n); do awk '{print $2 + $3}' r$i.t; done | paste -sd+ | bc -l)
    if [ $cond = late ]; then
        note=" (joined at $(echo "$joined - $start" | bc -l | xargs printf %.2f) s; $(grep -o 'finished after [0-9]* passes' s.err))"
    else
        note=
    fi
    if [ $tool = preboot ]; then
        uni=$(for i in $(seq 1 $n); do sed -n 's/.* \([0-9]*\) by unicast.*/\1/p' r$i.out; done | paste -sd+ | bc)
        [ "${uni:-0}" -gt 0 ] 2>/dev/null &&
            note="$note (by unicast: $uni chunks, imaging server $(echo "$(srv_cpu) - $srv0" | bc -l | xargs printf %.2f) s CPU)"
    fi
    printf "%-8s %2d %-5s %7s %7s %8.2f %8.2f %s%s\n" $tool $n $cond "$others" "$r1" \
        "$(echo "$scpu / $GIB" | bc -l)" "$(echo "$rcpu / $n / $GIB" | bc -l)" \
        "$([ $ok = 1 ] && echo bit-exact || { [ -n "$failed" ] && echo "FAILED ($failed)" || echo DIFFERENT; })" "$note"
    echo "$tool $n $cond $others $r1 $(echo "$scpu / $GIB" | bc -l) $(echo "$rcpu / $n / $GIB" | bc -l) $ok" >>results
}
echo "# tool     N cond   others  impaired sendCPU/GiB rxCPU/GiB/receiver  result"
echo "#            (seconds from the sender's start; CPU in seconds per GiB of disk)"
for n in $COUNTS; do
    for cond in none loss slow late; do
        [ $n = 1 ] && [ $cond != none ] && continue
        for tool in $TOOLS; do
            # udpcast cannot take a receiver after the start; the NORM probe is not set up for it
            [ $cond = late ] && [ $tool != preboot ] && continue
            for k in $(seq 1 $REPEAT); do run $tool $n $cond; done
        done
    done
done
# median of a column over the runs of one configuration
med() { awk -v t=$1 -v n=$2 -v c=$3 -v f=$4 '$1==t && $2==n && $3==c {print $f}' results |
    sort -g | awk '{v[NR]=$1} END {if (NR) printf "%.2f", v[int((NR+1)/2)]}'; }
echo "# medians of $REPEAT runs"
echo "# tool     N cond   others  impaired sendCPU/GiB rxCPU/GiB/receiver  all bit-exact"
for n in $COUNTS; do
    for cond in none loss slow late; do
        for tool in $TOOLS; do
            [ -n "$(med $tool $n $cond 4)" ] || continue
            bad=$(awk -v t=$tool -v n=$n -v c=$cond '$1==t && $2==n && $3==c && $8!=1' results | wc -l)
            printf "%-8s %2d %-5s %7s %7s %8s %8s %s\n" $tool $n $cond "$(med $tool $n $cond 4)" \
                "$(med $tool $n $cond 5)" "$(med $tool $n $cond 6)" "$(med $tool $n $cond 7)" \
                "$([ $bad = 0 ] && echo yes || echo "NO ($bad runs differ)")"
        done
    done
done
echo "# ratios: udpcast time / preboot time (others), and with impairment / clean (others)"
for n in $COUNTS; do
    for cond in none loss slow; do
        p=$(med preboot $n $cond 4)
        u=$(med udpcast $n $cond 4)
        o=$(med norm $n $cond 4)
        p0=$(med preboot $n none 4)
        [ -n "$p" ] || continue
        u0=$(med udpcast $n none 4)
        pr=$(med preboot $n $cond 7)
        ur=$(med udpcast $n $cond 7)
        printf "N=%d %-5s preboot %ss  udpcast/preboot %s  norm/preboot %s  %s/clean: preboot %s udpcast %s  rxCPU preboot/udpcast %s\n" \
            $n $cond "$p" "$([ -n "$u" ] && echo "scale=2; $u / $p" | bc -l)" \
            "$([ -n "$o" ] && echo "scale=2; $o / $p" | bc -l)" $cond \
            "$(echo "scale=2; $p / $p0" | bc -l)" \
            "$([ -n "$u" ] && [ -n "$u0" ] && echo "scale=2; $u / $u0" | bc -l)" \
            "$([ -n "$ur" ] && echo "scale=2; $pr / $ur" | bc -l)"
    done
done
