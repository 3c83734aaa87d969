#!/bin/sh
# mcast-daemon.sh - the multicast plugin in a real prebootd, in a network namespace created
# here with receivers (preboot-img session) in others on one bridge: sessions started,
# listed, refused, given a new expected count, started by "go", reported in text and JSON
# and deleted through prebootctl; restores compared bit for bit. Root only.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/lib-netns.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (network namespaces)"
for tool in ip sfdisk mkfs.ext4 cmp; do
    command -v $tool >/dev/null 2>&1 || skip_all "$tool not installed"
done
PREBOOTD=$top_builddir/core/prebootd
CTL=$top_builddir/tools/prebootctl
IMG=$top_builddir/tools/preboot-img
P=pbd$$
netns_begin mcast-daemon
json() { sed -n "s/.*\"$1\":\\([^,}]*\\).*/\\1/p" | head -n 1; }

netns_bridge
netns_host s 10.78.0.1
for i in 1 2 3; do netns_host r$i 10.78.0.1$i; done

mkdir -p tree
for i in 1 2; do seq 1 50000 | sed "s/^/line $i: /" >tree/text$i; done
head -c 6000000 /dev/urandom >tree/random
truncate -s 32M disk.img
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q disk.img
mkfs.ext4 -q -F -d tree -E offset=1048576 disk.img 31744k
"$IMG" make disk.img ./store:base --chunk-size 1048576 >/dev/null || exit 1
# a master client's own disk: the same files and one more
seq 1 7000 >tree/mine
truncate -s 32M master.img
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q master.img
mkfs.ext4 -q -F -d tree -E offset=1048576 master.img 31744k

PORT=$(pick_port 2)
cat >preboot.yaml <<EOC
daemon:
  plugin_path: [$top_builddir/plugins/multicast]
  log_dir: $W/log
  state_dir: $W/state
  pid_file: $W/prebootd.pid
  control_socket: $W/control.sock
plugins:
  - module: multicast
    store: $W/store
    group_range: 239.192.78.0/24
    port: $PORT
    address: 10.78.0.1
    rate: 200
    join_timeout: 0
    drop_timeout: 3
    max_clients: 2
    log_level: 3
EOC
ctl() { "$CTL" -c "$W/preboot.yaml" "$@"; }
ip netns exec ${P}s "$PREBOOTD" -f -c "$W/preboot.yaml" >daemon.err 2>&1 &
dpid=$!
PIDS="$PIDS $dpid"
check "prebootd with the multicast plugin answers" wait_until 10 ctl status

receiver() {
    ip netns exec ${P}$1 "$IMG" session "$2" "$3" --json --port $PORT \
        --announce-group 239.192.78.0 --wait 30 --label "$1" >"$3.json" 2>"$3.log" &
    RPID=$!
    PIDS="$PIDS $RPID"
}

out=$(ctl mcast start room base clients=3 2>&1)
check "mcast start: accepted" [ $? -eq 0 ]
contains "mcast start: says the group and the count" "$out" "waiting for 3 receivers"
out=$(ctl mcast start room base 2>&1)
check "mcast start: a running name is refused" [ $? -ne 0 ]
contains "mcast start: ...saying why" "$out" "session room is running"
out=$(ctl mcast start other nosuchimage 2>&1)
check "mcast start: a missing image is refused" [ $? -ne 0 ]
contains "mcast start: ...naming it" "$out" "image nosuchimage"
out=$(ctl mcast start bad base clients=x 2>&1)
check "mcast start: a bad argument is refused" [ $? -ne 0 ]
out=$(ctl mcast list)
contains "mcast list: the session waits" "$out" "waiting"

receiver r1 room a1.img
p1=$RPID
receiver r2 room a2.img
p2=$RPID
check "mcast status: two receivers joined" \
    wait_until 20 sh -c "$CTL -c $W/preboot.yaml mcast status --json | grep -q '\"clients\":2'"
out=$(ctl mcast clients room 2)
contains "mcast clients: the count changes" "$out" "now expecting 2 receivers"
wait $p1
wait $p2
check "session room: receiver 1 bit-exact" cmp -s disk.img a1.img
check "session room: receiver 2 bit-exact" cmp -s disk.img a2.img
check "mcast status: the session is done" \
    wait_until 20 sh -c "$CTL -c $W/preboot.yaml mcast status room | grep -q 'room: image base.*, done,'"
out=$(ctl mcast status --json)
contains "mcast status --json: the receivers' states" "$out" '"label":"r1","state":"done"'
contains "mcast status --json: totals" "$out" '"sessions_started":1'

out=$(ctl mcast start lab base clients=9)
check "mcast start: a second session" [ $? -eq 0 ]
receiver r3 lab b1.img
p3=$RPID
check "session lab: one receiver joined" \
    wait_until 20 sh -c "$CTL -c $W/preboot.yaml mcast status --json lab | grep -q '\"clients\":1'"
out=$(ctl mcast go lab)
contains "mcast go: starts at once" "$out" "session lab: starting"
wait $p3
check "session lab: bit-exact" cmp -s disk.img b1.img
g1=$(ctl mcast status --json room | json group)
g2=$(ctl mcast status --json lab | json group)
check "two sessions, two groups" test -n "$g1" -a "$g1" != "$g2"
out=$(ctl mcast status)
contains "mcast status: text lists the receivers" "$out" "r3"
# a third receiver for a session limited to two: refused (logged), the others unharmed
out=$(ctl mcast start full base clients=3)
receiver r1 full c1.img
p1=$RPID
receiver r2 full c2.img
p2=$RPID
check "session full: two receivers joined" \
    wait_until 20 sh -c "$CTL -c $W/preboot.yaml mcast status --json full | grep -q '\"clients\":2'"
receiver r3 full c3.img
p3=$RPID
check "session full: the third receiver is refused and logged" \
    wait_until 20 grep -q "session full: receiver 10.78.0.13 refused (at most 2 receivers" \
    log/multicast.log
out=$(ctl mcast go full)
wait $p1
wait $p2
wait $p3
check "session full: receiver 1 bit-exact" cmp -s disk.img c1.img
check "session full: receiver 2 bit-exact" cmp -s disk.img c2.img
out=$(ctl mcast status --json full)
check "session full: two receivers counted" test "$(echo "$out" | sed 's/"receivers":.*//' | json done)" = 2

out=$(ctl mcast delete room)
contains "mcast delete: done" "$out" "session room deleted"
out=$(ctl mcast status room 2>&1)
check "mcast delete: the session is gone" [ $? -ne 0 ]
out=$(ctl mcast go nosuch 2>&1)
contains "mcast go: an unknown session" "$out" "no session nosuch"
check "the log names the receivers" grep -q "receiver 10.78.0.13.*(r3) done" log/multicast.log
# a master client sends its own disk; the server stores it while another client restores it
out=$(ctl mcast store m1 fromclient)
contains "mcast store: accepted" "$out" "will be stored as image fromclient"
ip netns exec ${P}r1 "$IMG" session m1 master master.img clients=2 --port $PORT \
    --range 239.192.78.0/24 --json >master.json 2>master.log &
pm=$!
PIDS="$PIDS $pm"
receiver r2 m1 m2.img
p2=$RPID
wait $pm
check "master: the session ends well" grep -q '"ok":true' master.json
wait $p2
check "master: the other client restored it bit-exact" cmp -s master.img m2.img
check "master: the server stored it" \
    wait_until 20 sh -c "$CTL -c $W/preboot.yaml mcast status | grep -q 'as image fromclient: stored'"
"$IMG" restore ./store:fromclient check.img >/dev/null
check "master: the stored image restores bit-exact" cmp -s master.img check.img
# the same disk again: the store has every chunk, so the server takes none
ctl mcast store m2 again >/dev/null
ip netns exec ${P}r1 "$IMG" session m2 master master.img clients=1 --port $PORT \
    --range 239.192.78.0/24 --json >master2.json 2>master2.log
check "master again: the session ends well" grep -q '"ok":true' master2.json
check "master again: the server stored it from what it had" \
    wait_until 20 grep -q "session m2: stored as image again: 0 chunks received, [1-9]" \
    log/multicast.log
# a recording still waiting does not hold up the daemon's stop
out=$(ctl mcast store m3 later)
check "mcast store: a recording waits" [ $? -eq 0 ]

ctl stop >/dev/null 2>&1
check "prebootd stops" wait_until 10 sh -c "! kill -0 $dpid 2>/dev/null"
wait $dpid
st=$?
check "prebootd exits with status 0 (got $st)" test $st = 0
check "no sanitizer report from the daemon" sh -c "! grep -q 'Sanitizer\|runtime error' daemon.err"
finish
