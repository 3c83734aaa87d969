#!/bin/sh
# mcast-late.sh - receivers that arrive after their session has ended (issue 14, "late
# joiners welcome"): a prebootd with http, policy, imaging and multicast in a network
# namespace created here, devices in others on one bridge. A session is started with
# `prebootctl mcast start NAME IMAGE clients=1`, one receiver finishes it; then a receiver
# started after the end (it never hears an announcement) learns from the server's session
# record (GET /multicast/v1/sessions/NAME) which image the session sent and restores it
# bit-exact by unicast from the imaging server, saying so; `preboot-img auto` with policy
# work "join session NAME" does the same. A session name the server never had fails with a
# clear error as soon as the server says so, not after --wait; a finished session is
# forgotten after keep_finished seconds (then its name is unknown too). Root only; every
# wait is bounded.
. "$top_srcdir/tests/tap.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (network namespaces)"
for tool in ip sfdisk mkfs.ext4 cmp timeout; do
    command -v $tool >/dev/null 2>&1 || skip_all "$tool not installed"
done
B=$top_builddir
PREBOOTD=$B/core/prebootd
CTL=$B/tools/prebootctl
IMG=$B/tools/preboot-img
for m in http policy imaging multicast; do
    [ -f "$B/plugins/$m/$m.la" ] || skip_all "plugins/$m is not built"
done
P=pbl$$
. "$top_srcdir/tests/lib-netns.sh"
netns_begin mcast-late
json() { sed -n "s/.*\"$1\":\\(\"[^\"]*\"\\|[^,}]*\\).*/\\1/p" | head -n 1; }

netns_bridge
netns_host s 10.79.0.1
for i in 1 2 3 4; do netns_host r$i 10.79.0.1$i; done

# an 8 MiB disk: ext4 with text and random data, 256 KiB chunks
mkdir -p small
seq 1 40000 | sed 's/^/small: /' >small/text
head -c 3000000 /dev/urandom >small/random
truncate -s 8M small.img
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q small.img
mkfs.ext4 -q -F -d small -E offset=1048576 small.img 7168k

HP=$(pick_port 6)
TOKEN=t0k3n-mcast-late
SERVER=10.79.0.1:$HP
cat >rules.yaml <<EOC
imaging:
  kernel: http://$SERVER/preboot/vmlinuz
EOC
# The multicast plugin's default groups and port: preboot-img auto joins those.
cat >preboot.yaml <<EOC
daemon:
  plugin_path: [$B/plugins/http, $B/plugins/policy, $B/plugins/imaging, $B/backends/local, $B/plugins/multicast]
  log_dir: $W/log
  state_dir: $W/state
  pid_file: $W/prebootd.pid
  control_socket: $W/control.sock
plugins:
  - {module: http, listen: 10.79.0.1, port: $HP}
  - {module: policy, port: 0, rules_file: $W/rules.yaml}
  - {module: imaging, store: $W/store, upload_token: $TOKEN, upload_networks: [10.79.0.0/24]}
  - {module: multicast, store: $W/store, address: 10.79.0.1, rate: 100, join_timeout: 0,
     drop_timeout: 5, log_level: 3}
EOC
ctl() { "$CTL" -c "$W/preboot.yaml" "$@"; }
ip netns exec ${P}s "$PREBOOTD" -f -c "$W/preboot.yaml" >daemon.err 2>&1 &
dpid=$!
PIDS="$PIDS $dpid"
check "prebootd runs http, policy, imaging and multicast" wait_until 10 ctl status
check "the multicast plugin serves session records on the HTTP listener" \
    wait_until 10 grep -q "session records on the HTTP listener at /multicast/v1/sessions/" \
    log/multicast.log
ip netns exec ${P}s env PREBOOT_TOKEN=$TOKEN "$IMG" make small.img "$SERVER:small" \
    --chunk-size 262144 >make.out 2>&1
check "the image is uploaded to the imaging server" [ $? -eq 0 ]

# receiver HOST SESSION TARGET ARGS...: preboot-img session with the unicast fallback
receiver() {
    h=$1 sess=$2 t=$3
    shift 3
    ip netns exec ${P}$h timeout 120 "$IMG" session "$sess" client "$t" --server 10.79.0.1 \
        --http http://$SERVER --label "$h" "$@" >"$t.out" 2>"$t.log"
}
done_state() { ctl mcast status "$1" | grep -q "session $1: image small.*, done,"; }

# ---- the session runs and ends --------------------------------------------------------------
out=$(ctl mcast start gone small clients=1)
check "mcast start gone small clients=1" [ $? -eq 0 ]
receiver r1 gone a1.img --json --wait 30
check "the session's one receiver restores it" [ $? -eq 0 ]
check "...bit-exact" cmp -s small.img a1.img
check "the session has ended (done)" wait_until 20 done_state gone
rec=$(ip netns exec ${P}r2 curl -s --max-time 10 http://$SERVER/multicast/v1/sessions/gone)
contains "its record: name, image, state" "$rec" '"session":"gone","image":"small","state":"done"'
code=$(ip netns exec ${P}r2 curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
    http://$SERVER/multicast/v1/sessions/nosuch)
check "no record of a session that never ran: 404 (got $code)" [ "$code" = 404 ]
code=$(ip netns exec ${P}r2 curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X PUT \
    --data x http://$SERVER/multicast/v1/sessions/gone)
check "the records are read-only (PUT: $code)" [ "$code" = 405 ] || [ "$code" = 413 ]

# ---- a receiver started after the end: by unicast, bit-exact -------------------------------
t0=$(date +%s)
receiver r2 gone a2.img --json --wait 20 --fallback-after 1
rc=$?
check "a receiver started after the session ended succeeds (exit $rc)" [ $rc -eq 0 ]
check "...bit-exact" cmp -s small.img a2.img
contains "...saying the session had ended" "$(cat a2.img.out)" \
    '"fallback":"session ended; restored by unicast"'
contains "...restored image small" "$(cat a2.img.out)" '"image":"small","ok":true'
check "...every chunk by unicast" [ "$(json chunks_fallback <a2.img.out)" -gt 0 ]
diag "late receiver: $(($(date +%s) - t0)) s"
receiver r3 gone a3.img --wait 20 --fallback-after 1
check "the same in text (exit $?)" cmp -s small.img a3.img
contains "...the text says so" "$(cat a3.img.out)" "session ended; restored by unicast"
check "the multicast log has the lookups" grep -q "session gone: record asked for by 10.79.0.1[23]" \
    log/multicast.log
# without an imaging server to fetch from, it says what to do
receiver r4 gone a4.img --wait 20 --fallback-after 1 --no-fallback
rc=$?
check "without the fallback: fails (exit $rc), printing no result" test $rc -eq 1 -a ! -s a4.img.out
contains "...naming the image to restore" "$(cat a4.img.log)" \
    "session gone ended (done) before this receiver started; it sent image small"

# ---- a session name that never existed: a clear error at once, not after --wait -------------
t0=$(date +%s)
receiver r2 nosuch b2.img --wait 90 --fallback-after 1
rc=$?
t1=$(date +%s)
check "an unknown session fails (exit $rc)" [ $rc -eq 1 ]
check "...once the server says so, well before --wait 90 ($((t1 - t0)) s)" [ $((t1 - t0)) -lt 30 ]
contains "...saying the server knows no such session" "$(cat b2.img.log)" \
    'no session "nosuch": nothing announced for 1 s and the server at http://'"$SERVER"' knows no session of that name'
check "...writing nothing" [ ! -s b2.img ]

# ---- preboot-img auto, policy work "join session NAME" (the operator starts it) -------------
MAC1=52:54:00:78:00:01
MAC2=52:54:00:78:00:02
ctl policy assign $MAC1 join session opsess once >/dev/null
ctl policy assign $MAC2 join session opsess once >/dev/null
ctl mcast start opsess small clients=1 >/dev/null
auto() {
    truncate -s 8M "$3"
    ip netns exec ${P}$1 env PREBOOT_TOKEN=$TOKEN timeout 120 "$IMG" auto "$SERVER" "$3" \
        --mac "$2" --json --wait 20 >"$3.json" 2>"$3.log"
}
auto r1 $MAC1 u1.img
check "auto: device 1 restores from the session (exit $?)" cmp -s small.img u1.img
check "auto: the session has ended" wait_until 20 done_state opsess
auto r2 $MAC2 u2.img
rc=$?
check "auto: device 2, after the end, succeeds (exit $rc)" [ $rc -eq 0 ]
check "auto: ...bit-exact" cmp -s small.img u2.img
contains "auto: ...restored by unicast, verified, reported" "$(cat u2.img.json)" \
    '"action":"session","image":"small","session":"opsess","disk":"u2.img","ok":true,"reported":true,"received":false,"verified":true'
contains "auto: ...saying why" "$(cat u2.img.json)" "session ended; restored by unicast"

# ---- finished sessions are forgotten after keep_finished ------------------------------------
sed 's/drop_timeout: 5,/drop_timeout: 5, keep_finished: 1,/' preboot.yaml >preboot.yaml.new &&
    mv preboot.yaml.new preboot.yaml
ctl reload >/dev/null 2>&1
check "reload with keep_finished: 1" [ $? -eq 0 ]
gone_404() {
    [ "$(ip netns exec ${P}r2 curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
        http://$SERVER/multicast/v1/sessions/gone)" = 404 ]
}
check "a finished session's record is forgotten after keep_finished" wait_until 20 gone_404
check "...and logged" grep -q "session gone: finished 1 s ago, forgotten (keep_finished)" \
    log/multicast.log
out=$(ctl mcast status gone 2>&1)
contains "...so is its status" "$out" "no session gone"
receiver r2 gone c2.img --wait 90 --fallback-after 1
rc=$?
check "a receiver of the forgotten session fails (exit $rc)" test $rc -eq 1 -a ! -s c2.img.out
contains "...the server knows it no more" "$(cat c2.img.log)" 'no session "gone": nothing announced'

ctl stop >/dev/null 2>&1
check "prebootd stops" wait_until 10 sh -c "! kill -0 $dpid 2>/dev/null"
wait $dpid
st=$?
check "prebootd exits with status 0 (got $st)" test $st = 0
check "no sanitizer report from the daemon or the clients" \
    sh -c "! grep -l 'Sanitizer\|runtime error' daemon.err ./*.log ./*.out ./*.json 2>/dev/null"
finish
