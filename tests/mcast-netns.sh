#!/bin/sh
# mcast-netns.sh - multicast imaging sessions across network namespaces created here, joined
# by a bridge (mcast_snooping 0, addresses with `brd +`, a route 224.0.0.0/4: see
# doc/multicast.md): one sender (tests/mcast-sender, what the multicast plugin runs) and 1,
# 4 and 8 receivers (preboot-img session), each restoring onto its own disk image file,
# compared bit for bit with the disk that was captured. Loss is injected with nftables on
# some receivers, one receiver is slowed with tbf, one joins late, one is killed and
# restarted mid-session (and the sender drops the dead one), a second session shares the
# group and port, and a forger sends datagrams with a live session's id and real chunk
# hashes but bytes of its own. Root only; every wait is bounded.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/lib-netns.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (network namespaces)"
for tool in ip nft tc sfdisk mkfs.ext4 cmp timeout; do
    command -v $tool >/dev/null 2>&1 || skip_all "$tool not installed"
done
IMG="$top_builddir/tools/preboot-img"
SEND="$top_builddir/tests/mcast-sender"
P=pbm$$
netns_begin mcast-netns
json() { sed -n "s/.*\"$1\":\\([^,}]*\\).*/\\1/p" | head -n 1; }
# jtop KEY: a key of the sender's summary, not of its receivers
jtop() { sed 's/"receivers":.*//' | json "$1"; }

# ---- the room: a bridge, the sender at .1, receivers at .11 .. .18 -----------------------
netns_bridge
netns_host s 10.77.0.1
for i in 1 2 3 4 5 6 7 8; do netns_host r$i 10.77.0.1$i; done
# lossy NAME PERCENT: drop that share of the UDP datagrams reaching it
lossy() {
    ip netns exec ${P}$1 nft -f - <<NFT
table inet lossy {
  chain in {
    type filter hook input priority 0;
    meta l4proto udp numgen random mod 100 < $2 counter drop
  }
}
NFT
}
unlossy() { ip netns exec ${P}$1 nft delete table inet lossy; }

# ---- an image: 48 MiB, MBR, ext4 with text, random and repeated data; 1 MiB chunks --------
mkdir -p tree
for i in 1 2 3 4; do seq 1 60000 | sed "s/^/line $i: /" >tree/text$i; done
head -c 12000000 /dev/urandom >tree/random
for i in 1 2 3; do cat tree/random; done | head -c 6000000 >tree/again
truncate -s 48M disk.img
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q disk.img
mkfs.ext4 -q -F -d tree -E offset=1048576 disk.img 47104k
"$IMG" make disk.img ./store:base --chunk-size 1048576 >/dev/null || exit 1
# a second image, for the session sharing the group: one more file
cp -r tree tree2
seq 1 1000 >tree2/another
truncate -s 48M other.img
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q other.img
mkfs.ext4 -q -F -d tree2 -E offset=1048576 other.img 47104k
"$IMG" make other.img ./store:other --chunk-size 1048576 >/dev/null || exit 1
diag "image base: $(du -sh store | cut -f1) in the store"

PORT=$(pick_port 1)
RANGE=239.192.77.0/24
ANN=239.192.77.0
# sender NAME SESSION IMAGE ARGS...: runs tests/mcast-sender in the sender namespace
sender() {
    sn=$1 sess=$2 image=$3
    shift 3
    ip netns exec ${P}s timeout 100 "$SEND" --store store --image "$image" --session "$sess" \
        --range $RANGE --port $PORT --bind 10.77.0.1 --rate 200 --drop 3 "$@" \
        >"$sn.json" 2>"$sn.log" &
    SPID=$!
    PIDS="$PIDS $SPID"
}
# receiver HOST SESSION TARGET ARGS...
receiver() {
    h=$1 sess=$2 t=$3
    shift 3
    ip netns exec ${P}$h "$IMG" session "$sess" client "$t" --json --port $PORT \
        --announce-group $ANN --server 10.77.0.1 --no-fallback --label "$h" --wait 30 "$@" \
        >"$t.json" 2>"$t.log" &
    RPID=$!
    PIDS="$PIDS $RPID"
}
bitexact() { cmp -s "$1" "$2"; }

# ---- 1 receiver --------------------------------------------------------------------------
sender one one base --clients 1
receiver r1 one t1.img
rpid=$RPID
wait $rpid
check "1 receiver: the session finishes" test "$(json ok <t1.img.json)" = true
check "1 receiver: restored bit-exact" bitexact disk.img t1.img
wait $SPID
check "1 receiver: the sender reports it done" test "$(jtop done <one.json)" = 1

# ---- delta: a receiver that holds the image already takes nothing ------------------------
sender again one base --clients 1
receiver r1 one t1.img --delta
wait $RPID
check "delta: the session finishes" test "$(json ok <t1.img.json)" = true
check "delta: every chunk was there already" test "$(json chunks_received <t1.img.json)" = 0 -a \
    "$(json chunks_same <t1.img.json)" -gt 0
check "delta: still bit-exact" bitexact disk.img t1.img
wait $SPID

# ---- 4 receivers: one losing 2 %, one slowed to a third of the rate ----------------------
lossy r2 2
tc -n ${P}br qdisc add dev pr3 root tbf rate 60mbit burst 64kbit latency 50ms
sender four four base --clients 4
pids=
for i in 1 2 3 4; do
    receiver r$i four f$i.img
    pids="$pids $RPID"
done
for p in $pids; do wait $p; done
for i in 1 2 3 4; do
    check "4 receivers: receiver $i bit-exact" bitexact disk.img f$i.img
done
wait $SPID
check "4 receivers: the sender reports 4 done" test "$(jtop done <four.json)" = 4
check "4 receivers: the lossy receiver asked for repairs" \
    test "$(json repairs_asked <f2.img.json)" -gt 0
check "4 receivers: the slow receiver was marked slow" test "$(jtop slow <four.json)" -ge 1
diag "4 receivers: $(jtop pass <four.json) passes, $(jtop repaired_datagrams <four.json) datagrams repaired"
tc -n ${P}br qdisc del dev pr3 root
unlossy r2

# ---- 8 receivers: loss on two, one late joiner, one killed and restarted -----------------
lossy r2 1
lossy r5 3
sender eight eight base --clients 7
pids=
for i in 1 2 3 4 5 6 7; do
    receiver r$i eight e$i.img
    eval "pid$i=\$RPID"
done
# r7 dies once its disk file exists (it has the manifest and is receiving)
wait_until 30 test -s e7.img
kill -9 $pid7 2>/dev/null
wait $pid7 2>/dev/null
check "8 receivers: the late joiner finds the session sending" \
    wait_until 30 grep -q "sending image" eight.log
receiver r8 eight e8.img
pid8=$RPID
# r7 comes back (a new receiver to the sender) and keeps what it had written
receiver r7 eight e7.img --delta
pid7=$RPID
for i in 1 2 3 4 5 6 7 8; do
    eval "wait \$pid$i"
    check "8 receivers: receiver $i bit-exact" bitexact disk.img e$i.img
done
wait $SPID
check "8 receivers: the sender reports 8 done" test "$(jtop done <eight.json)" = 8
check "8 receivers: the killed receiver was dropped" test "$(jtop dropped <eight.json)" = 1
contains "8 receivers: the drop is logged" "$(cat eight.log)" "silent for 3 s: dropped"
unlossy r2
unlossy r5

# ---- another session on the same group and port; a forger --------------------------------
G=239.192.77.99
sender sa same-a base --clients 2 --group $G
spa=$SPID
sender sb same-b other --clients 2 --group $G
spb=$SPID
receiver r1 same-a a1.img
pa1=$RPID
receiver r2 same-a a2.img
pa2=$RPID
receiver r3 same-b b1.img
pb1=$RPID
receiver r4 same-b b2.img
pb2=$RPID
ip netns exec ${P}r8 timeout 60 "$SEND" --forge --store store --image base --session same-a \
    --range $RANGE --port $PORT 2>forge.log &
fpid=$!
PIDS="$PIDS $fpid"
for p in $pa1 $pa2 $pb1 $pb2 $fpid; do wait $p; done
check "shared group: session a bit-exact (1)" bitexact disk.img a1.img
check "shared group: session a bit-exact (2)" bitexact disk.img a2.img
check "shared group: session b bit-exact (1)" bitexact other.img b1.img
check "shared group: session b bit-exact (2)" bitexact other.img b2.img
check "shared group: the other session's datagrams were seen and ignored" \
    test "$(json foreign_datagrams <a1.img.json)" -gt 0
contains "forger: it sent forged datagrams" "$(cat forge.log)" "forged datagrams"
bad=$(($(json chunks_bad <a1.img.json) + $(json chunks_bad <a2.img.json) + $(json foreign_datagrams <a1.img.json)))
check "forger: the receivers rejected forged chunks or fragments" test "$bad" -gt 0
wait $spa
wait $spb
for f in *.log; do
    case "$f" in *.img.log) [ -s "$f" ] && sed "s/^/# $f: /" "$f" | grep -v "%" | head -n 5 ;; esac
done
finish
