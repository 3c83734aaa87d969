#!/bin/sh
# mcast-policy.sh - multicast sessions started by a policy assignment (issue 14, "Sessions"):
# a real prebootd with http, policy, imaging and multicast in a network namespace created
# here, two devices in others on one bridge (mcast_snooping 0, a 224.0.0.0/4 route, as
# tests/mcast-daemon.sh has it). Both are assigned "join session room image=golden
# clients=2 once"; each runs `preboot-img auto SERVER DISK --mac MAC`, what the preboot
# environment runs: the first one's GET /imaging/v1/work has the policy start session room
# through the multicast plugin's service, the second finds it running, both join, restore
# bit-exact, verify against the server's image and report; the session ran once, the
# one-shot work is used up once (the next ask gets no work), the imaging log has both
# results. Then a room of eight devices assigned one session (clients=8): one loses a tenth
# of its UDP datagrams, one asks only once sending began; all bit-exact, each one's work
# used up once. Root only; every wait is bounded.
. "$top_srcdir/tests/tap.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (network namespaces)"
for tool in ip nft sfdisk mkfs.ext4 cmp; do
    command -v $tool >/dev/null 2>&1 || skip_all "$tool not installed"
done
B=$top_builddir
PREBOOTD=$B/core/prebootd
CTL=$B/tools/prebootctl
IMG=$B/tools/preboot-img
for m in http policy imaging multicast; do
    [ -f "$B/plugins/$m/$m.la" ] || skip_all "plugins/$m is not built"
done
P=pbp$$
. "$top_srcdir/tests/lib-netns.sh"
netns_begin mcast-policy
json() { sed -n "s/.*\"$1\":\\([^,}]*\\).*/\\1/p" | head -n 1; }

netns_bridge
netns_host s 10.79.0.1
for i in 1 2 3; do netns_host r$i 10.79.0.1$i; done
# d1-d8: the room of eight
for i in 1 2 3 4 5 6 7 8; do netns_host d$i 10.79.0.2$i; done

# ---- golden: 32 MiB, MBR, ext4 with text and random data ------------------------------------
mkdir -p tree
for i in 1 2; do seq 1 50000 | sed "s/^/line $i: /" >tree/text$i; done
head -c 6000000 /dev/urandom >tree/random
truncate -s 32M disk.img
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q disk.img
mkfs.ext4 -q -F -d tree -E offset=1048576 disk.img 31744k

# small: the room of eight's, 8 MiB, uploaded with 256 KiB chunks
mkdir -p small
seq 1 40000 | sed 's/^/small: /' >small/text
head -c 3000000 /dev/urandom >small/random
truncate -s 8M small.img
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q small.img
mkfs.ext4 -q -F -d small -E offset=1048576 small.img 7168k

PORT=$(pick_port 4)
TOKEN=t0k3n-mcast-policy
SERVER=10.79.0.1:$PORT
cat >rules.yaml <<EOC
imaging:
  kernel: http://$SERVER/preboot/vmlinuz
EOC
# The multicast plugin sends what the imaging plugin stores (one store directory), with
# its default groups and port: preboot-img auto joins those.
cat >preboot.yaml <<EOC
daemon:
  plugin_path: [$B/plugins/http, $B/plugins/policy, $B/plugins/imaging, $B/backends/local, $B/plugins/multicast]
  log_dir: $W/log
  state_dir: $W/state
  pid_file: $W/prebootd.pid
  control_socket: $W/control.sock
plugins:
  - {module: http, listen: 10.79.0.1, port: $PORT}
  - {module: policy, port: 0, rules_file: $W/rules.yaml, log_level: 3}
  - {module: imaging, store: $W/store, upload_token: $TOKEN, upload_networks: [10.79.0.0/24]}
  - {module: multicast, store: $W/store, address: 10.79.0.1, rate: 200, join_timeout: 0,
     drop_timeout: 10, log_level: 3}
EOC
ctl() { "$CTL" -c "$W/preboot.yaml" "$@"; }
ip netns exec ${P}s "$PREBOOTD" -f -c "$W/preboot.yaml" >daemon.err 2>&1 &
PIDS="$PIDS $!"
check "prebootd runs http, policy, imaging and multicast" wait_until 10 ctl status
ip netns exec ${P}s env PREBOOT_TOKEN=$TOKEN "$IMG" make disk.img "$SERVER:golden" \
    --chunk-size 1048576 >make.out 2>&1
check "golden uploaded to the imaging server" [ $? -eq 0 ]
ip netns exec ${P}s env PREBOOT_TOKEN=$TOKEN "$IMG" make small.img "$SERVER:small" \
    --chunk-size 262144 >>make.out 2>&1
check "small uploaded to the imaging server" [ $? -eq 0 ]

MAC1=52:54:00:79:00:01
MAC2=52:54:00:79:00:02
MAC3=52:54:00:79:00:03
out=$(ctl policy assign $MAC1 join session room image=golden clients=2 once 2>&1)
contains "policy assign: join session room, the image the server starts it with" "$out" \
    "assigned multicast room image=golden clients=2 once to mac:$MAC1"
ctl policy assign $MAC2 multicast room image=golden clients=2 once >/dev/null
out=$(ctl policy assign $MAC3 multicast room clients=2 2>&1)
check "policy assign: counts without the image are refused" [ $? -ne 0 ]
contains "policy assign: ...saying why" "$out" "image=IMAGE"
out=$(ctl policy test $MAC1 2>&1)
contains "policy test: the work is the session" "$out" "answer: multicast room"
out=$(ctl mcast status 2>&1)
contains "no session before a device asks (a dry run starts nothing)" "$out" "multicast: 0 sessions"

# auto HOST MAC DISK: what the preboot environment runs, in host HOST's namespace
auto() {
    truncate -s 32M "$3"
    ip netns exec ${P}$1 env PREBOOT_TOKEN=$TOKEN "$IMG" auto "$SERVER" "$3" --mac "$2" \
        --json --wait 60 >"$3.json" 2>"$3.log" &
    RPID=$!
    PIDS="$PIDS $RPID"
}
auto r1 $MAC1 t1.img
p1=$RPID
check "the first device's ask started session room (policy -> multicast service)" \
    wait_until 20 sh -c "$CTL -c $W/preboot.yaml mcast status --json room | grep -q '\"clients\":1'"
check "the policy logged it" grep -q "started multicast session room (image golden)" \
    log/novell-zmgprebootpolicy.log
auto r2 $MAC2 t2.img
p2=$RPID
wait $p1
r1=$?
wait $p2
r2=$?
check "device 1: preboot-img auto succeeded" [ $r1 -eq 0 ]
check "device 2: preboot-img auto succeeded" [ $r2 -eq 0 ]
check "device 1: restored bit-exact" cmp -s disk.img t1.img
check "device 2: restored bit-exact" cmp -s disk.img t2.img
contains "device 1: from the session, verified, reported" "$(cat t1.img.json)" \
    '"action":"session","image":"golden","session":"room","disk":"t1.img","ok":true,"reported":true,"received":true,"verified":true'
check "device 2: every chunk came by multicast (nothing repaired by unicast)" \
    [ "$(json bytes_repaired <t2.img.json)" = 0 ]
out=$(ctl mcast status --json)
contains "the session ran once, both receivers done" "$out" '"sessions_started":1,'
contains "...both done" "$out" '"receivers_done":2'
contains "the policy started one session" "$(ctl stats 2>&1)" "sessions_started = 1"
ctl imaging log --json >log.json 2>&1
# logged MAC RESULT: the imaging log has a session result for MAC
logged() { grep -qE "\"mac\":\"$1\"[^}]*\"type\":\"session\"[^}]*\"result\":\"$2\"" log.json; }
check "imaging log: device 1's session result, ok" logged $MAC1 ok
check "imaging log: device 2's session result, ok" logged $MAC2 ok
# The one-shot work was used up by each report, once: asked again, there is none, and
# nothing starts.
ip netns exec ${P}r1 env PREBOOT_TOKEN=$TOKEN "$IMG" auto "$SERVER" t1.img --mac $MAC1 \
    --json >again.json 2>&1
check "device 1 asks again: no work (exit 3)" [ $? -eq 3 ]
contains "...and the session was not started again" "$(ctl mcast status --json)" \
    '"sessions_started":1,'
# (assignments of known devices are listed with the devices, the others by show)
ctl policy show >show.txt 2>&1 && ctl policy devices >>show.txt 2>&1
check "no assignment left" sh -c "grep -q '$MAC1' show.txt && ! grep -q 'multicast room' show.txt"

# A session that cannot start (no such image) fails the work, reported, and is not retried
# in a loop by the policy's warning.
ctl policy assign $MAC3 multicast lab image=nosuch clients=1 once >/dev/null
ip netns exec ${P}r3 env PREBOOT_TOKEN=$TOKEN "$IMG" auto "$SERVER" t3.img --mac $MAC3 \
    --json --wait 3 >t3.json 2>t3.log
check "a session that cannot start: auto fails" [ $? -eq 1 ]
check "...the policy says so" grep -q "multicast session lab (image nosuch) was not started" \
    log/novell-zmgprebootpolicy.log
check "...the multicast plugin too" grep -q "session lab: not started" log/multicast.log
ctl imaging log --json >log.json 2>&1
check "...and the failure is reported" logged $MAC3 failed
contains "...the work stays (only a success uses it up)" \
    "$(ctl policy show 2>&1; ctl policy devices 2>&1)" "multicast lab image=nosuch clients=1 once"

# ---- a room of eight started by policy: one lossy device, one late --------------------------
# Eight devices assigned "join session room8 image=small clients=8 once"; seven ask and
# join, the operator says go, the eighth asks once sending began (the late joiner); d2 loses
# a tenth of its UDP datagrams. All restore bit-exact, report, and each one's work is used
# up once: the session ran once more, nobody gets work again.
sending() { ctl mcast status --json "$1" | grep -q '"chunks":[1-9]'; }
joined() { ctl mcast status --json "$1" | grep -q "\"clients\":$2[,}]"; }
started() { ctl mcast status --json | sed -n 's/.*"sessions_started":\([0-9]*\).*/\1/p'; }
t0=$(date +%s)
n0=$(started)
for i in 1 2 3 4 5 6 7 8; do
    ctl policy assign 52:54:00:79:01:0$i join session room8 image=small clients=8 once >/dev/null
done
netns_lossy d2 10
# auto8 I: device dI runs preboot-img auto
auto8() {
    truncate -s 8M u$1.img
    ip netns exec ${P}d$1 env PREBOOT_TOKEN=$TOKEN "$IMG" auto "$SERVER" u$1.img \
        --mac 52:54:00:79:01:0$1 --json --wait 60 >u$1.img.json 2>u$1.img.log &
    RPID=$!
    PIDS="$PIDS $RPID"
}
R8=
for i in 1 2 3 4 5 6 7; do
    auto8 $i
    R8="$R8 $RPID"
done
check "room8: seven devices joined the session the policy started" wait_until 30 joined room8 7
# Device 7 is held (SIGSTOP) until the late one has joined: the session, waiting for it, is
# still running then, however fast the others finish the small image.
held=$RPID
kill -STOP $held
out=$(ctl mcast go room8)
contains "room8: go with seven" "$out" "session room8: starting"
check "room8: sending began" wait_until 30 sending room8
auto8 8
R8="$R8 $RPID"
check "room8: the late device joined" wait_until 30 \
    grep -q "session room8: receiver 10.79.0.28:[0-9]* (52:54:00:79:01:08) joined" log/multicast.log
kill -CONT $held
fails=0
for p in $R8; do wait $p || fails=$((fails + 1)); done
check "room8: preboot-img auto succeeded on all eight ($fails failed)" [ $fails -eq 0 ]
check "room8: the lossy device's rule dropped datagrams" \
    sh -c "ip netns exec ${P}d2 nft list table inet lossy | grep -q 'packets [1-9]'"
netns_unlossy d2
for i in 1 2 3 4 5 6 7 8; do
    check "room8: device $i restored bit-exact" cmp -s small.img u$i.img
done
contains "room8: the late device restored from the session, verified, reported" \
    "$(cat u8.img.json)" '"session":"room8","disk":"u8.img","ok":true,"reported":true,"received":true,"verified":true'
check "room8: the late device joined the running session" \
    sh -c "sed -n '/session room8: sending image small to 7/,\$p' log/multicast.log | grep -q 'receiver 10.79.0.28:[0-9]* (52:54:00:79:01:08) joined'"
check "room8: the policy started the session once" [ "$(started)" -eq $((n0 + 1)) ]
ctl imaging log --json >log.json 2>&1
ok8=0
for i in 1 2 3 4 5 6 7 8; do logged 52:54:00:79:01:0$i ok && ok8=$((ok8 + 1)); done
check "room8: imaging log: eight session results, ok ($ok8)" [ $ok8 -eq 8 ]
again=0
for i in 1 2 3 4 5 6 7 8; do
    ip netns exec ${P}d$i env PREBOOT_TOKEN=$TOKEN "$IMG" auto "$SERVER" u$i.img \
        --mac 52:54:00:79:01:0$i --json --wait 5 >again$i.json 2>&1
    [ $? -eq 3 ] && again=$((again + 1))
done
check "room8: each device asks again: no work for any ($again of 8)" [ $again -eq 8 ]
check "room8: ...and nothing started again" [ "$(started)" -eq $((n0 + 1)) ]
diag "room8: lossy device repaired $(json bytes_repaired <u2.img.json) bytes by unicast, late one $(json bytes_repaired <u8.img.json); $(($(date +%s) - t0)) s"
finish
