#!/bin/sh
# test-ready.sh - "started" and "running" mean every configured service serves: with the
# real http, policy and tftp plugins, prebootctl start returns only once /boot.ipxe is
# routed (curl right after it gets 200, no retry); a configured service that fails makes
# start exit 1 and status exit 3, each naming the service and why (for a missing TFTP root:
# the YAML file:line and key, or the legacy file:line and TFTPDirectory), and the daemon
# does not log "ready"; a dead daemon's pid file makes status exit 1. Only processes this
# test started are signalled, by pid.
. "$top_srcdir/tests/tap.sh"
PREBOOTD=$top_builddir/core/prebootd
CTL=$top_builddir/tools/prebootctl
export PREBOOTD
command -v curl >/dev/null 2>&1 || skip_all "curl is not installed"
[ -x "$PREBOOTD" ] && [ -x "$CTL" ] || skip_all "prebootd or prebootctl not built"

tmp=$(mktemp -d)
cleanup() {
    dpid=$(cat "$tmp/prebootd.pid" 2>/dev/null)
    [ -n "$dpid" ] && grep -q prebootd "/proc/$dpid/cmdline" 2>/dev/null && kill "$dpid"
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
http_port=$(pick_port 5)
udp_port=$(pick_port 6)
tftp_port=$(pick_port 7)
mkdir -p "$tmp/tftp"
cat >"$tmp/rules.yaml" <<EOC
rules:
  - name: lab
    match: {mac: {starts_with: "52:54:00:aa"}}
    work: program lab.efi
    menu: never
default:
  menu: never
EOC
write_config() { # tftp root
    cat >"$tmp/preboot.yaml" <<EOC
daemon:
  plugin_path: [$top_builddir/plugins/policy, $top_builddir/plugins/http, $top_builddir/plugins/tftp]
  log_dir: $tmp/log
  state_dir: $tmp/state
  pid_file: $tmp/prebootd.pid
  control_socket: $tmp/control.sock
plugins:
  - {module: policy, local_interface: 127.0.0.1, port: $udp_port, rules_file: $tmp/rules.yaml}
  - {module: tftp, interface: 127.0.0.1, port: $tftp_port,
     directory: $1}
  - {module: http, listen: 127.0.0.1, port: $http_port}
EOC
}
ctl() { "$CTL" -c "$tmp/preboot.yaml" "$@"; }
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$http_port$1"; }

# 1. Everything starts: /boot.ipxe answers the moment start has returned. policy is
# configured before http and tftp; the host starts them first (policy wants them).
write_config "$tmp/tftp"
ctl start >"$tmp/start.out" 2>&1
rc=$?
got=$(code "/boot.ipxe?mac=52:54:00:aa:00:01")
check "start returns 0 when every configured service runs" [ $rc -eq 0 ]
check "curl /boot.ipxe right after start: 200" [ "$got" = 200 ]
ctl status >"$tmp/status.out" 2>&1
check "status exits 0 when every configured service runs" [ $? -eq 0 ]
contains "status names the hookup" "$(cat "$tmp/status.out")" "boot_ipxe: served"
grep -q "prebootd: ready$" "$tmp/log/prebootd.log" 2>/dev/null ||
    grep -q " ready$" "$tmp/log/prebootd.log"
check "the daemon logs ready" [ $? -eq 0 ]
ctl stop >/dev/null 2>&1
check "stop" [ $? -eq 0 ]

# 2. The TFTP root does not exist: start and status fail, naming tftp, the YAML file:line
# and key, and the reason; the other services run.
rm -rf "$tmp/log"
write_config "$tmp/no-such-root"
ctl start >"$tmp/start.out" 2>&1
rc=$?
out=$(cat "$tmp/start.out")
check "start exits 1 when a configured service failed" [ $rc -eq 1 ]
contains "start names the service that failed" "$out" "tftp: failed: create failed:"
contains "...the YAML file:line and key" "$out" "$tmp/preboot.yaml:10: directory:"
contains "...and the path" "$out" "no-such-root"
ctl status >"$tmp/status.out" 2>&1
rc=$?
out=$(cat "$tmp/status.out")
check "status exits 3 while a configured service is not running" [ $rc -eq 3 ]
contains "status says which and why" "$out" "tftp: failed: create failed: $tmp/preboot.yaml:10: directory:"
contains "status: the others run" "$out" "http: running"
check "/boot.ipxe is served meanwhile" [ "$(code "/boot.ipxe?mac=52:54:00:aa:00:01")" = 200 ]
grep -q " ready$" "$tmp/log/prebootd.log"
check "the daemon does not log ready" [ $? -ne 0 ]
contains "the daemon logs what is not ready" "$(cat "$tmp/log/prebootd.log")" "not ready: tftp: failed:"
dpid=$(cat "$tmp/prebootd.pid")
ctl stop >/dev/null 2>&1
check "stop" wait_until 10 sh -c "! kill -0 $dpid 2>/dev/null"

# 3. The same root from a legacy file: named by the file, its line and TFTPDirectory.
cat >"$tmp/novell-tftp.conf" <<EOC
# legacy
TFTPInterface = 127.0.0.1
TFTPDirectory = $tmp/no-such-root
EOC
cat >"$tmp/preboot.yaml" <<EOC
daemon:
  plugin_path: [$top_builddir/plugins/tftp]
  log_dir: $tmp/log
  state_dir: $tmp/state
  pid_file: $tmp/prebootd.pid
  control_socket: $tmp/control.sock
plugins:
  - {module: tftp, port: $tftp_port, legacy: [$tmp/novell-tftp.conf]}
EOC
ctl start >"$tmp/start.out" 2>&1
rc=$?
check "start exits 1 (legacy configuration)" [ $rc -eq 1 ]
contains "the legacy file:line and key are named" "$(cat "$tmp/start.out")" "$tmp/novell-tftp.conf:3: TFTPDirectory:"
dpid=$(cat "$tmp/prebootd.pid")
ctl stop >/dev/null 2>&1
wait_until 10 sh -c "! kill -0 $dpid 2>/dev/null"

# 4. Not running, with and without a dead daemon's pid file (LSB 1 and 3).
ctl status >/dev/null 2>&1
check "status exits 3 when not running" [ $? -eq 3 ]
sh -c 'exit 0' &
dead=$!
wait $dead
echo "$dead" >"$tmp/prebootd.pid"
out=$(ctl status 2>&1)
rc=$?
check "status exits 1 when the daemon died leaving its pid file" [ $rc -eq 1 ]
contains "...and says so" "$out" "pid file $tmp/prebootd.pid remains"
rm -f "$tmp/prebootd.pid"
finish
