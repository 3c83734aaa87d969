#!/bin/sh
# test-http-daemon.sh - one unfriendly client against the real prebootd's HTTP listener
# (http plugin plus the httptest plugin's routes), each attack with a normal client served
# meanwhile from another loopback address:
#   a. 260 half-open connections from one address trickling a header line a second;
#   b. 250 connections each sending 1 MB of body to a route that takes none (and to a
#      version 1 route that buffers bodies), then stalling: refused, memory bounded;
#   c. the daemon holding more than 1,024 descriptors: HTTP still answers (select() did not);
# then the version 3 route options (405/Allow, HEAD without side effects, 403, 401, 413).
# The attackers come from 127.0.0.3, the normal client from 127.0.0.2 (Linux routes all of
# 127/8 to lo). HTTP_TEST_OLD_CONFIG=1 leaves out the parameters added with these bounds,
# to run the attacks against an older http plugin.
. "$top_srcdir/tests/tap.sh"
PREBOOTD=$top_builddir/core/prebootd
FLOOD=$top_builddir/tests/http-flood
command -v curl >/dev/null 2>&1 || skip_all "curl is not installed"
[ -x "$PREBOOTD" ] && [ -x "$FLOOD" ] || skip_all "prebootd or http-flood not built"
[ -r /proc/self/status ] || skip_all "no /proc (memory is read from /proc/PID/status)"

tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
port=$(pick_port 5)

# select() failed from descriptor 1,024 on: let the daemon have more.
ulimit -n 4096 2>/dev/null || skip_all "cannot raise the descriptor limit to 4096"

bounds="header_timeout: 3"
[ -n "${HTTP_TEST_OLD_CONFIG:-}" ] && bounds="log_level: 2"
cat >"$tmp/preboot.yaml" <<EOC
daemon:
  plugin_path: [$top_builddir/plugins/http, $top_builddir/tests/plugins/http]
  log_dir: $tmp/log
  state_dir: $tmp/state
  pid_file: $tmp/prebootd.pid
  control_socket: $tmp/control.sock
plugins:
  - module: http
    listen: 127.0.0.1
    port: $port
    $bounds
  - {module: httptest}
EOC
url=http://127.0.0.1:$port
# The normal client, from its own address.
code() { curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 --max-time 5 "$@"; }
get() { curl -s --interface 127.0.0.2 --max-time 5 "$@"; }
rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status"; }
routed() { [ "$(code "$url/t/hello")" = 200 ]; }

start_daemon() {
    "$PREBOOTD" -f -c "$tmp/preboot.yaml" >"$tmp/out.log" 2>&1 &
    pid=$!
    if ! wait_until 10 routed; then
        not_ok "prebootd serves the test routes"
        sed 's/^/# /' "$tmp/out.log" "$tmp"/log/*.log 2>/dev/null | tail -n 30
        return 1
    fi
    ok "prebootd serves the test routes"
}
stop_daemon() {
    kill "$pid" && wait "$pid"
    stopped=$?
    pid=
}
start_daemon || { finish; exit 1; }

# ---- a. half-open connections from one address --------------------------------------------
nfds() { ls "/proc/$pid/fd" | wc -l; }
base=$(nfds)
"$FLOOD" trickle 127.0.0.3 127.0.0.1 "$port" 260 6 >"$tmp/trickle.out" 2>&1 &
fpid=$!
# Until the daemon holds the connections it admits (16 per address; an older one all).
wait_until 5 sh -c "[ \$(ls /proc/$pid/fd | wc -l) -ge $((base + 16)) ]"
check "a. while 260 connections trickle headers, another client is served" routed
out=$(get "$url/t/hello")
contains "a. ... with the route's answer" "$out" "hello"
wait "$fpid"
out=$(cat "$tmp/trickle.out")
diag "trickle: $out"
# After 6 s with header_timeout 3 s, none may still be open however it trickles.
contains "a. no trickling connection outlives the header timeout" "$out" "open=0 "

# ---- b. bodies to a route that takes none, and to a buffering version 1 route -------------
before=$(rss_kb)
"$FLOOD" body 127.0.0.3 127.0.0.1 "$port" 250 4 /t/nobody 1048576 1000000 GET >"$tmp/nobody.out" 2>&1 &
f1=$!
"$FLOOD" body 127.0.0.4 127.0.0.1 "$port" 250 4 /t/legacy 1048576 1000000 >"$tmp/legacy.out" 2>&1 &
f2=$!
wait_until 5 sh -c "[ \$(ls /proc/$pid/fd | wc -l) -ge $((base + 16)) ]"
check "b. during the body flood another client is served" routed
# The largest RSS while the floods run (each ends after 4 s at most).
during=$before
while kill -0 "$f1" 2>/dev/null || kill -0 "$f2" 2>/dev/null; do
    now=$(rss_kb)
    [ "${now:-0}" -gt "$during" ] && during=$now
    sleep 0.2
done
wait "$f1" "$f2"
out=$(cat "$tmp/nobody.out")
diag "bodies to /t/nobody: $(echo $out)"
contains "b. no connection sending a body to a route that takes none stays open" "$out" "open=0 "
case "$out" in *"413=0"*) not_ok "b. the body is refused with 413" ;; *) ok "b. the body is refused with 413" ;; esac
secs=$(echo "$out" | sed -n 's/.*seconds=\([0-9]*\).*/\1/p')
# Refused from the headers: every connection settled at once, not at the 4 s limit.
check "b. every one of them was refused at once (${secs:-?} s)" [ "${secs:-9}" -lt 3 ]
diag "bodies to /t/legacy: $(cat "$tmp/legacy.out" | tr '\n' ' ')"
grow=$(((during - before) / 1024))
diag "RSS before ${before} kB, during ${during} kB"
check "b. the daemon's memory grew by less than 48 MiB ($grow MiB)" [ "$grow" -lt 48 ]
check "b. served after the flood" routed

# ---- version 3 route options ----------------------------------------------------------------
if [ -z "${HTTP_TEST_OLD_CONFIG:-}" ]; then
check "405 for a method the route does not allow" [ "$(code -X DELETE "$url/t/nobody")" = 405 ]
out=$(curl -s -D - -o /dev/null --interface 127.0.0.2 -X DELETE "$url/t/nobody")
contains "405 names the allowed methods" "$out" "Allow: GET, HEAD"
check "413 for a body to a route that takes none" \
    [ "$(code -X GET --data-binary 'x' "$url/t/nobody")" = 413 ]
get "$url/t/head" >/dev/null
curl -s -I --interface 127.0.0.2 "$url/t/head" >/dev/null
out=$(get "$url/t/head")
contains "HEAD reaches the handler as HEAD (no side effect)" "$out" "gets 2"
out=$(curl -s -I --interface 127.0.0.2 "$url/t/head")
contains "HEAD is answered with headers" "$out" "200"
check "403 from a network the route does not allow" [ "$(code "$url/t/private")" = 403 ]
check "401 without the token" [ "$(code -T /dev/null "$url/t/upload")" = 401 ]
check "401 with a wrong token" \
    [ "$(code -H 'Authorization: Bearer s3creT' -T /dev/null "$url/t/upload")" = 401 ]
check "a deferred answer arrives" [ "$(get "$url/t/later")" = later ]
# Keep-alive (HTTP/1.1): a second request goes over the same connection, whether the first
# was answered at once, later, or refused (libmicrohttpd closes after an answer queued
# before it has seen the request's end: the plugin answers bodiless requests at their end).
reused() { curl -sv --interface 127.0.0.2 --max-time 5 -o /dev/null -o /dev/null "$1" "$1" 2>&1 |
    grep -c "Re-using existing connection"; }
check "keep-alive after an answer at once" [ "$(reused "$url/t/hello")" = 1 ]
check "keep-alive after a deferred answer" [ "$(reused "$url/t/later")" = 1 ]
check "keep-alive after a 404" [ "$(reused "$url/nosuch")" = 1 ]
check "413 for an announced body larger than the route takes" [ "$(code -X PUT \
    -H 'Authorization: Bearer s3cret' -H 'Content-Length: 9000000000' --data-binary x \
    "$url/t/upload")" = 413 ]
head -c 2000000 /dev/zero >"$tmp/2m"
check "413 for a body larger than max_body_size to a version 1 route" \
    [ "$(code -X POST --data-binary @"$tmp/2m" "$url/t/legacy")" = 413 ]
check "a version 1 route still takes a small body" \
    [ "$(get -X POST --data-binary 'abc' "$url/t/legacy")" = "len 3" ]
# A request its route never answers: stopping the daemon removes the route, which answers it.
curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 --max-time 20 "$url/t/hang" >"$tmp/hang" &
hpid=$!
wait_until 5 grep -q "hanging /t/hang" "$tmp/log/httptest.log"
fi
stop_daemon
check "the daemon stops cleanly with a request suspended" [ "$stopped" -eq 0 ]
if [ -z "${HTTP_TEST_OLD_CONFIG:-}" ]; then
    wait "$hpid"
    check "the suspended request is answered 503 when its route goes" [ "$(cat "$tmp/hang")" = 503 ]
fi

# ---- c. more than 1,024 descriptors ---------------------------------------------------------
# Another daemon, whose httptest instance opens 1,100 descriptors at start, after the http
# instance's: every connection then gets a number above 1,024.
sed -i 's/{module: httptest}/{module: httptest, hold_fds: 1100}/' "$tmp/preboot.yaml"
start_daemon || { finish; exit 1; }
nfd=$(ls "/proc/$pid/fd" | wc -l)
check "c. the daemon holds more than 1,024 descriptors ($nfd)" [ "$nfd" -gt 1100 ]
check "c. HTTP answers" routed
"$FLOOD" trickle 127.0.0.3 127.0.0.1 "$port" 10 1 >/dev/null 2>&1
check "c. and again after more connections" routed
out=$(get "$url/t/hello")
contains "c. with the route's answer" "$out" "hello"
finish
