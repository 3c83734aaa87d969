#!/bin/sh
# test-policy-daemon.sh - the policy and http plugins in the real prebootd: /boot.ipxe
# fetched with curl, prebootctl policy verbs, SIGHUP with a broken rules file keeping the
# old rules, and the state surviving kill -9 of the daemon (one-shot work stays consumed).
. "$top_srcdir/tests/tap.sh"
PREBOOTD=$top_builddir/core/prebootd
CTL=$top_builddir/tools/prebootctl
command -v curl >/dev/null 2>&1 || skip_all "curl is not installed"
[ -x "$PREBOOTD" ] && [ -x "$CTL" ] || skip_all "prebootd or prebootctl not built"

tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
http_port=$(pick_port 3)
udp_port=$(pick_port 4)

cat >"$tmp/rules.yaml" <<EOC
rules:
  - name: lab
    match: {mac: {starts_with: "52:54:00:aa"}}
    work: program lab.efi
    menu: never
default:
  menu: never
EOC
cat >"$tmp/preboot.yaml" <<EOC
daemon:
  plugin_path: [$top_builddir/plugins/policy, $top_builddir/plugins/http]
  log_dir: $tmp/log
  state_dir: $tmp/state
  pid_file: $tmp/prebootd.pid
  control_socket: $tmp/control.sock
  log_level: 4
plugins:
  - {module: http, listen: 127.0.0.1, port: $http_port}
  - {module: policy, local_interface: 127.0.0.1, port: $udp_port, rules_file: $tmp/rules.yaml}
EOC
ctl() { "$CTL" -c "$tmp/preboot.yaml" "$@"; }
get() { curl -s --max-time 5 "http://127.0.0.1:$http_port$1"; }
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$http_port$1"; }
# code_as METHOD PATH: the status of a request with that method (HEAD through -I)
code_as() {
    if [ "$1" = HEAD ]; then opt=-I; else opt="-X $1"; fi
    # shellcheck disable=SC2086 # opt is one or two words on purpose
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 $opt "http://127.0.0.1:$http_port$2"
}
start() {
    "$PREBOOTD" -f -c "$tmp/preboot.yaml" >>"$tmp/out.log" 2>&1 &
    pid=$!
    wait_until 10 curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$http_port/"
}
served() { get "/boot.ipxe?mac=52:54:00:aa:00:01&commit=0" | grep -q 'chain --autofree lab.efi'; }

start
check "prebootd serves HTTP with the http and policy plugins" [ $? -eq 0 ]
wait_until 5 served
out=$(get "/boot.ipxe?mac=52:54:00:aa:00:01&platform=efi&buildarch=x86_64")
contains "curl /boot.ipxe: an iPXE script" "$out" "#!ipxe"
contains "a lab device gets the lab program" "$out" "chain --autofree lab.efi"
out=$(get "/boot.ipxe?mac=52:54:00:bb:00:02")
contains "another device boots its disk" "$out" "exit 0"

out=$(ctl policy assign 52:54:00:bb:00:02 program http://192.0.2.1/tool.efi once 2>&1)
contains "prebootctl policy assign" "$out" "assigned program http://192.0.2.1/tool.efi once to mac:52:54:00:bb:00:02"
out=$(ctl policy test 52:54:00:bb:00:02 2>&1)
contains "prebootctl policy test shows the assignment" "$out" "answer: program http://192.0.2.1/tool.efi"
# Neither a HEAD (curl -I) nor another method may use the one-shot work up.
check "HEAD /boot.ipxe is answered" [ "$(code_as HEAD "/boot.ipxe?mac=52:54:00:bb:00:02")" = 200 ]
check "DELETE /boot.ipxe is refused with 405" \
    [ "$(code_as DELETE "/boot.ipxe?mac=52:54:00:bb:00:02")" = 405 ]
out=$(get "/boot.ipxe?mac=52:54:00:bb:00:02")
contains "the assigned device gets its program" "$out" "chain --autofree http://192.0.2.1/tool.efi"

# kill -9 right after the one-shot work was handed out: it must stay consumed.
kill -9 "$pid"
wait "$pid" 2>/dev/null
pid=
start
check "prebootd comes back after kill -9" [ $? -eq 0 ]
wait_until 5 served
out=$(get "/boot.ipxe?mac=52:54:00:bb:00:02")
contains "after kill -9 the one-shot work is not handed out again" "$out" "exit 0"
out=$(ctl policy devices 2>&1)
contains "boot counts survive kill -9" "$out" "mac:52:54:00:bb:00:02"
# Three answers within a minute are one boot (a boot asks proxydhcp, then iPXE...).
case "$out" in *"boots 1 "*) ok "answers to one device within a minute count as one boot" ;;
*) not_ok "answers to one device within a minute count as one boot"; diag "$out" ;; esac

# SIGHUP with a broken rules file: refused, the old rules stay.
cp "$top_srcdir/tests/data/policy/broken.yaml" "$tmp/rules.yaml"
kill -HUP "$pid"
# The refusal is logged: wait for that line (the test fails when it never comes).
refusal_logged() {
    grep -q "$tmp/rules.yaml:7:" "$tmp/log/novell-zmgprebootpolicy.log" "$tmp/out.log"
}
wait_until 10 refusal_logged
refused=$?
check "a bad rules file is refused: the old rules still serve" served
check "the refusal names file:line" [ $refused -eq 0 ]
printf 'rules:\n  - {name: all, match: {}, work: capture everyone}\n' >"$tmp/rules.yaml"
out=$(ctl force-reload 2>&1)
applied() { get "/boot.ipxe?mac=52:54:00:aa:00:01&commit=0" | grep -q "capture everyone"; }
wait_until 10 applied
check "force-reload applies a good rules file" [ $? -eq 0 ]
check "an unknown path is 404" [ "$(code /nothing)" = 404 ]
finish
