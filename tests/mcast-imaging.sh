#!/bin/sh
# mcast-imaging.sh - the multicast plugin on the imaging plugin's backend (preboot.imaging
# service), in a prebootd in a network namespace created here, receivers (preboot-img
# session) in others on one bridge: a session serves what `prebootctl imaging list` shows;
# a master client's session is stored through the backend (in the catalog, restorable);
# the unicast fallback from the imaging server finishes a receiver behind 100 % loss after
# the start, a receiver killed and restarted mid-session, and a slow (tbf-limited) receiver
# told to go by slow_policy unicast while the others finish without it. Every restore is
# compared bit for bit. Then the issue's room of eight on a small image: a session from
# `mcast start ... clients=8` with one lossy (nftables), one slow (tbf) receiver and one
# joining after sending began (seven joined, `mcast go`), and a master client's session to
# eight receivers stored by the server too. Root only; every wait is bounded.
. "$top_srcdir/tests/tap.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (network namespaces)"
for tool in ip nft tc sfdisk mkfs.ext4 cmp; do
    command -v $tool >/dev/null 2>&1 || skip_all "$tool not installed"
done
B=$top_builddir
PREBOOTD=$B/core/prebootd
CTL=$B/tools/prebootctl
IMG=$B/tools/preboot-img
[ -d "$B/plugins/imaging" ] && [ -d "$B/backends/local" ] || skip_all "no imaging plugin built"
P=pbi$$
. "$top_srcdir/tests/lib-netns.sh"
netns_begin mcast-imaging
json() { sed -n "s/.*\"$1\":\\([^,}]*\\).*/\\1/p" | head -n 1; }

netns_bridge
netns_host s 10.79.0.1
# r1-r8: the room of eight; r9: the master of the eight-receiver master session
for i in 1 2 3 4 5 6 7 8 9; do netns_host r$i 10.79.0.1$i; done
lossy() { netns_lossy "$@"; }
unlossy() { netns_unlossy "$@"; }

# a 48 MiB disk: ext4 with text and random data, 1 MiB chunks
mkdir -p tree
for i in 1 2 3; do seq 1 60000 | sed "s/^/line $i: /" >tree/text$i; done
head -c 16000000 /dev/urandom >tree/random
truncate -s 48M disk.img
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q disk.img
mkfs.ext4 -q -F -d tree -E offset=1048576 disk.img 47104k
# a master client's own disk: the same files and one more
seq 1 7000 >tree/mine
truncate -s 48M master.img
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q master.img
mkfs.ext4 -q -F -d tree -E offset=1048576 master.img 47104k
# what the local store has, and the imaging backend has not: a session must not serve it
# the room of eight's disk: 8 MiB, ext4, 256 KiB chunks (little to send, many chunks)
mkdir -p small
seq 1 40000 | sed 's/^/small: /' >small/text
head -c 3000000 /dev/urandom >small/random
truncate -s 8M small.img
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q small.img
mkfs.ext4 -q -F -d small -E offset=1048576 small.img 7168k
"$IMG" make disk.img ./store:onlylocal --chunk-size 1048576 >/dev/null || exit 1

PORT=$(pick_port 3)
HP=$(pick_port 4)
echo "sesame-$$" >token
cat >preboot.yaml <<EOC
daemon:
  plugin_path: [$B/plugins/http/.libs, $B/plugins/imaging/.libs, $B/backends/local/.libs, $B/plugins/multicast/.libs]
  log_dir: $W/log
  state_dir: $W/state
  pid_file: $W/prebootd.pid
  control_socket: $W/control.sock
plugins:
  - module: http
    listen: 10.79.0.1
    port: $HP
  - module: imaging
    store: $W/istore
    upload_token_file: $W/token
    upload_networks: [10.79.0.0/24]
  - module: multicast
    store: $W/store
    group_range: 239.192.79.0/24
    port: $PORT
    address: 10.79.0.1
    rate: 40
    join_timeout: 0
    drop_timeout: 3
    log_level: 3
EOC
ctl() { "$CTL" -c "$W/preboot.yaml" "$@"; }
ip netns exec ${P}s "$PREBOOTD" -f -c "$W/preboot.yaml" >daemon.err 2>&1 &
dpid=$!
PIDS="$PIDS $dpid"
check "prebootd with http, imaging and multicast answers" wait_until 10 ctl status
check "the multicast plugin reads the imaging backend" \
    wait_until 10 grep -q "images from the imaging backend local" log/multicast.log
PREBOOT_TOKEN=$(cat token) ip netns exec ${P}r1 "$IMG" make disk.img 10.79.0.1:$HP:base \
    --chunk-size 1048576 >make.out 2>&1
check "the image is uploaded to the imaging server" [ $? -eq 0 ]
PREBOOT_TOKEN=$(cat token) ip netns exec ${P}r1 "$IMG" make small.img 10.79.0.1:$HP:small \
    --chunk-size 262144 >>make.out 2>&1
check "the room of eight's image is uploaded" [ $? -eq 0 ]
out=$(ctl imaging list)
contains "imaging list shows it" "$out" "base"

# receiver HOST SESSION TARGET ARGS...: fallback from the imaging server on $HP
receiver() {
    h=$1 sess=$2 t=$3
    shift 3
    ip netns exec ${P}$h "$IMG" session "$sess" client "$t" --json --port $PORT \
        --announce-group 239.192.79.0 --server 10.79.0.1 --http http://10.79.0.1:$HP \
        --label "$h" --wait 30 "$@" >"$t.json" 2>"$t.log" &
    RPID=$!
    PIDS="$PIDS $RPID"
}
# rstate SESSION LABEL: a receiver's state and chunk count in the session's status
rchunks() {
    ctl mcast status --json "$1" | tr '{' '\n' | grep "\"label\":\"$2\"" | json chunks
}

# ---- a session serves what imaging list shows -------------------------------------------
out=$(ctl mcast start nope onlylocal 2>&1)
check "mcast start: an image only in the plugin's store is not served" [ $? -ne 0 ]
out=$(ctl mcast start room base clients=2)
check "mcast start: an image of the imaging backend" [ $? -eq 0 ]
receiver r1 room a1.img
p1=$RPID
receiver r2 room a2.img
p2=$RPID
wait $p1
wait $p2
check "room: receiver 1 bit-exact" cmp -s disk.img a1.img
check "room: receiver 2 bit-exact" cmp -s disk.img a2.img
# (a receiver the shared CPUs hold back may count as slow and finish by unicast: not checked)
diag "room: $(json chunks_fallback <a1.img.json) and $(json chunks_fallback <a2.img.json) chunks by unicast"
out=$(ctl mcast status)
contains "mcast status names the backend" "$out" "images from the imaging backend local"

# ---- 100 % loss after the start: the rest by unicast --------------------------------------
ctl mcast start lossy base clients=3 >/dev/null
receiver r1 lossy b1.img
p1=$RPID
receiver r2 lossy b2.img
p2=$RPID
receiver r3 lossy b3.img --fallback-after 2
p3=$RPID
check "lossy: receiver 3 has the first chunks" \
    wait_until 30 sh -c "test \"\$($CTL -c $W/preboot.yaml mcast status --json lossy | tr '{' '\n' | grep '\"label\":\"r3\"' | sed -n 's/.*\"chunks\":\([0-9]*\).*/\1/p')\" -gt 0 2>/dev/null"
lossy r3 100
wait $p1
wait $p2
wait $p3
unlossy r3
check "lossy: receiver 1 bit-exact" cmp -s disk.img b1.img
check "lossy: receiver 2 bit-exact" cmp -s disk.img b2.img
check "lossy: receiver 3 (100 % loss) bit-exact" cmp -s disk.img b3.img
check "lossy: receiver 3 fetched chunks by unicast" \
    test "$(json chunks_fallback <b3.img.json)" -gt 0
# Why it went to unicast depends on which comes first: its own silence timer (--fallback-after)
# or the sender, which sees it ask for everything again and tells it to (slow): either is right.
fell_back_why() { grep -Eq '"fallback":"(nothing heard|told to by the sender)' b3.img.json; }
check "lossy: ...because it heard nothing, or the sender sent it there" fell_back_why
check "lossy: the sender logged it going to unicast" \
    grep -q "session lossy: receiver 10.79.0.13.*finishes by unicast" log/multicast.log

# ---- a receiver killed and restarted mid-session -------------------------------------------
ctl mcast start again base clients=2 >/dev/null
receiver r1 again c1.img
p1=$RPID
receiver r2 again c2.img --delta
p2=$RPID
check "restart: receiver 2 has the first chunks" \
    wait_until 30 sh -c "test \"\$($CTL -c $W/preboot.yaml mcast status --json again | tr '{' '\n' | grep '\"label\":\"r2\"' | sed -n 's/.*\"chunks\":\([0-9]*\).*/\1/p')\" -gt 0 2>/dev/null"
kill -9 $p2
wait $p2 2>/dev/null
receiver r2 again c2.img --delta
p2=$RPID
wait $p1
wait $p2
check "restart: receiver 1 bit-exact" cmp -s disk.img c1.img
check "restart: the restarted receiver bit-exact" cmp -s disk.img c2.img
check "restart: it finished well" test "$(json ok <c2.img.json)" = true
diag "restart: $(json chunks_received <c2.img.json) chunks by the session, $(json chunks_fallback <c2.img.json) by unicast, $(json chunks_same <c2.img.json) kept"

# ---- a slow receiver (tbf) is sent to unicast; the others do not wait -------------------
ctl mcast start slow base clients=3 >/dev/null
tc -n ${P}br qdisc add dev pr3 root tbf rate 15mbit burst 32kbit latency 50ms
receiver r1 slow d1.img
p1=$RPID
receiver r2 slow d2.img
p2=$RPID
receiver r3 slow d3.img
p3=$RPID
wait $p1
wait $p2
check "slow: the session ends without waiting for the slow receiver" \
    wait_until 20 sh -c "$CTL -c $W/preboot.yaml mcast status slow | grep -q 'slow: image base.*, done,'"
wait $p3
tc -n ${P}br qdisc del dev pr3 root
check "slow: receiver 1 bit-exact" cmp -s disk.img d1.img
check "slow: receiver 2 bit-exact" cmp -s disk.img d2.img
check "slow: the slow receiver bit-exact" cmp -s disk.img d3.img
contains "slow: it was told to go to unicast" "$(cat d3.img.json)" '"fallback":"told to by the sender (slow)'
s1=$(json seconds <d1.img.json)
s3=$(json seconds <d3.img.json)
check "slow: the others finished first ($s1 s against $s3 s)" \
    awk "BEGIN { exit !($s1 < $s3) }"
check "slow: the sender logged it" grep -q "session slow: receiver 10.79.0.13.*told to finish by unicast" log/multicast.log

# ---- eight receivers: one lossy, one slow, one late joiner ---------------------------------
# (sending: some receiver of session $1 has a chunk)
sending() { ctl mcast status --json "$1" | grep -q '"chunks":[1-9]'; }
joined() { ctl mcast status --json "$1" | grep -q "\"clients\":$2[,}]"; }
t0=$(date +%s)
out=$(ctl mcast start room8 small clients=8)
check "room8: mcast start ... clients=8" [ $? -eq 0 ]
lossy r2 10
tc -n ${P}br qdisc add dev pr3 root tbf rate 15mbit burst 32kbit latency 50ms
R8=
for i in 1 2 3 4 5 6 7; do
    receiver r$i room8 e$i.img
    R8="$R8 $RPID"
done
check "room8: seven receivers joined" wait_until 30 joined room8 7
# r7 is held (SIGSTOP) until the late one has joined: the session, waiting for it, is still
# running then, however fast the others finish the small image.
held=$RPID
kill -STOP $held
out=$(ctl mcast go room8)
contains "room8: go with seven" "$out" "session room8: starting"
check "room8: sending began" wait_until 30 sending room8
receiver r8 room8 e8.img
R8="$R8 $RPID"
check "room8: the late receiver joined" wait_until 30 \
    grep -q "session room8: receiver 10.79.0.18:[0-9]* (r8) joined" log/multicast.log
kill -CONT $held
for p in $R8; do wait $p; done
check "room8: the lossy receiver's rule dropped datagrams" \
    sh -c "ip netns exec ${P}r2 nft list table inet lossy | grep -q 'packets [1-9]'"
unlossy r2
tc -n ${P}br qdisc del dev pr3 root
for i in 1 2 3 4 5 6 7 8; do
    check "room8: receiver $i bit-exact" cmp -s small.img e$i.img
    check "room8: receiver $i finished well" test "$(json ok <e$i.img.json)" = true
done
check "room8: the late joiner joined the running session" \
    sh -c "sed -n '/session room8: sending image small to 7/,\$p' log/multicast.log | grep -q 'receiver 10.79.0.18:[0-9]* (r8) joined'"
diag "room8: late joiner: $(json chunks_received <e8.img.json) chunks by the session, $(json chunks_fallback <e8.img.json) by unicast; lossy: $(json chunks_fallback <e2.img.json) by unicast; slow: $(json chunks_fallback <e3.img.json) by unicast; $(($(date +%s) - t0)) s"

# ---- a master client's session stored through the backend ---------------------------------
out=$(ctl mcast store m1 fromclient)
contains "mcast store: accepted" "$out" "will be stored as image fromclient"
ip netns exec ${P}r1 "$IMG" session m1 master master.img clients=2 --port $PORT \
    --range 239.192.79.0/24 --json >master.json 2>master.log &
pm=$!
PIDS="$PIDS $pm"
# (announced by the master, not the server: no --server, so no fallback either)
ip netns exec ${P}r2 "$IMG" session m1 m2.img --json --port $PORT --announce-group 239.192.79.0 \
    --label r2 --wait 30 >m2.img.json 2>m2.img.log &
p2=$!
PIDS="$PIDS $p2"
wait $pm
check "master: the session ends well" grep -q '"ok":true' master.json
wait $p2
check "master: the other client restored it bit-exact" cmp -s master.img m2.img
check "master: the server stored it" \
    wait_until 20 sh -c "$CTL -c $W/preboot.yaml mcast status | grep -q 'as image fromclient: stored'"
out=$(ctl imaging list)
contains "master: the image is in the imaging catalog" "$out" "fromclient"
out=$(ctl imaging log)
contains "master: the result log has the session" "$out" "fromclient"
ip netns exec ${P}r3 "$IMG" restore 10.79.0.1:$HP:fromclient check.img >/dev/null 2>&1
check "master: the stored image restores bit-exact from the imaging server" cmp -s master.img check.img
check "master: nothing of it went to the plugin's own store" test ! -e store/images/fromclient.pbm

# ---- a master client's session to eight receivers, stored by the server too ----------------
# (the server's store receiver is the ninth: clients=9)
t0=$(date +%s)
out=$(ctl mcast store m8 fromclient8)
contains "master8: mcast store accepted" "$out" "will be stored as image fromclient8"
ip netns exec ${P}r9 "$IMG" session m8 master small.img clients=9 --port $PORT \
    --range 239.192.79.0/24 --json >master8.json 2>master8.log &
pm=$!
PIDS="$PIDS $pm"
R8=
for i in 1 2 3 4 5 6 7 8; do
    ip netns exec ${P}r$i "$IMG" session m8 f$i.img --json --port $PORT \
        --announce-group 239.192.79.0 --label r$i --wait 30 >f$i.img.json 2>f$i.img.log &
    R8="$R8 $!"
    PIDS="$PIDS $!"
done
wait $pm
check "master8: the session ends well" grep -q '"ok":true' master8.json
for p in $R8; do wait $p; done
for i in 1 2 3 4 5 6 7 8; do
    check "master8: receiver $i bit-exact" cmp -s small.img f$i.img
done
check "master8: the server stored it" \
    wait_until 20 sh -c "$CTL -c $W/preboot.yaml mcast status | grep -q 'as image fromclient8: stored'"
ip netns exec ${P}r1 "$IMG" restore 10.79.0.1:$HP:fromclient8 check8.img >/dev/null 2>&1
check "master8: the stored image restores bit-exact" cmp -s small.img check8.img
diag "master8: $(($(date +%s) - t0)) s"

ctl stop >/dev/null 2>&1
check "prebootd stops" wait_until 10 sh -c "! kill -0 $dpid 2>/dev/null"
wait $dpid
st=$?
check "prebootd exits with status 0 (got $st)" test $st = 0
check "no sanitizer report from the daemon or the clients" \
    sh -c "! grep -l 'Sanitizer\|runtime error' daemon.err ./*.log ./*.json master.log 2>/dev/null"
finish
