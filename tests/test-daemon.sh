#!/bin/sh
# test-daemon.sh - prebootd and prebootctl end to end: start in the foreground, status and
# stats, reload by SIGHUP and by force-reload (and a refused reload), stop; then the
# daemonized start/restart/stop verbs. Only processes this test started are signalled.
. "$top_srcdir/tests/tap.sh"
PREBOOTD=$top_builddir/core/prebootd
CTL=$top_builddir/tools/prebootctl
export PREBOOTD
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    dpid=$(cat "$tmp/prebootd.pid" 2>/dev/null)
    [ -n "$dpid" ] && [ "$dpid" != "$pid" ] && grep -q prebootd "/proc/$dpid/cmdline" 2>/dev/null && kill "$dpid"
    rm -rf "$tmp"
}
trap cleanup EXIT
port=$(pick_port 1)

write_config() { # greeting [extra testplug keys]
    cat >"$tmp/preboot.yaml" <<EOC
daemon:
  plugin_path: [$top_builddir/tests/plugins]
  log_dir: $tmp/log
  state_dir: $tmp/state
  pid_file: $tmp/prebootd.pid
  control_socket: $tmp/control.sock
  log_level: 4
plugins:
  - {module: testplug, name: echo, port: $port, greeting: $1, tick_ms: 20 $2}
  - {module: testplug, name: broken, fail_create: yes}
  - {module: badmajor, name: old}
EOC
}
ctl() { "$CTL" -c "$tmp/preboot.yaml" "$@"; }

# --check-config and --dump-config
cat >"$tmp/bad.yaml" <<EOC
plugins:
  - module: testplug
    port: 70000
EOC
out=$("$PREBOOTD" -P "$top_builddir/tests/plugins" -c "$tmp/bad.yaml" --check-config 2>&1)
rc=$?
check "--check-config fails on a bad value" [ $rc -ne 0 ]
contains "--check-config names file:line, key, value and range" "$out" "$tmp/bad.yaml:3: port: '70000' is out of range (0-65535)"
write_config one
sed '/badmajor/d; /broken/d' "$tmp/preboot.yaml" >"$tmp/good.yaml"
out=$("$PREBOOTD" -c "$tmp/good.yaml" --check-config 2>&1)
check "--check-config accepts a good file" [ $? -eq 0 ]
out=$("$PREBOOTD" -c "$tmp/good.yaml" --dump-config 2>&1)
contains "--dump-config shows a YAML value with its line" "$out" "greeting: one"
contains "--dump-config shows defaults as such" "$out" "mode: fast"
out=$("$PREBOOTD" -c "$tmp/good.yaml" --list-plugins 2>&1)
contains "--list-plugins shows the module, version and ABI" "$out" "testplug     1.0.0    ABI 1.1"
contains "--list-plugins shows why a module is refused" "$out" "badmajor.la: refused:"
out=$("$PREBOOTD" --version)
contains "--version prints the plugin ABI" "$out" "plugin ABI 1.1"

# Foreground run.
"$PREBOOTD" -f -c "$tmp/preboot.yaml" >"$tmp/stderr" 2>&1 &
pid=$!
check "the control socket answers" wait_until 10 ctl stats
out=$(ctl status)
rc=$?
check "status exits 3 while configured instances failed" [ $rc -eq 3 ]
contains "status: the good instance runs" "$out" "echo: running"
contains "status: create failure and its reason" "$out" "broken: failed: create failed: fail_create is set"
contains "status: ABI mismatch and its reason" "$out" "built for plugin ABI 2.0, but this prebootd speaks ABI 1.1"
contains "status: plugin status text" "$out" "echoing with greeting 'one'"
out=$(ctl showpid)
check "showpid prints the daemon's pid" [ "$out" = "$pid" ]
sleep 0.3
out=$(ctl stats)
contains "stats lists the plugin's counters" "$out" "echo: ticks = "
out=$(ctl echo-echo hello there)
check "plugin commands pass through prebootctl" [ "$out" = "one: hello there" ]

write_config two
kill -HUP "$pid"
check "SIGHUP reloads" wait_until 10 sh -c "[ \"\$($CTL -c $tmp/preboot.yaml echo-echo x)\" = 'two: x' ]"
write_config three
out=$(ctl force-reload 2>&1)
check "force-reload succeeds" [ $? -eq 0 ]
contains "force-reload reports" "$out" "configuration reloaded"
out=$(ctl echo-echo x)
check "force-reload took effect" [ "$out" = "three: x" ]
write_config four ", refuse_reload: yes"
out=$(ctl force-reload 2>&1)
check "a refused reload exits non-zero" [ $? -ne 0 ]
contains "a refused reload says why" "$out" "echo: refuse_reload is set"
out=$(ctl echo-echo x)
check "the old configuration keeps serving" [ "$out" = "three: x" ]
write_config five ", mode: bogus"
out=$(ctl force-reload 2>&1)
contains "a bad value refuses the reload with file:line" "$out" "$tmp/preboot.yaml:9: mode: 'bogus' is not one of: fast, slow, careful"
out=$(ctl echo-echo x)
check "...and the old configuration keeps serving" [ "$out" = "three: x" ]

ctl stop >/dev/null 2>&1
check "stop ends the daemon" wait_until 10 sh -c "! kill -0 $pid 2>/dev/null"
wait "$pid"
check "the daemon exits 0 after stop" [ $? -eq 0 ]
pid=
check "the pid file is removed" [ ! -e "$tmp/prebootd.pid" ]
check "the control socket is removed" [ ! -e "$tmp/control.sock" ]
grep -q "started (testplug 1.0.0)" "$tmp/log/echo.log"
check "the instance logged to its own file" [ $? -eq 0 ]

# Daemonized: the legacy service verbs; start fails (1) while an instance does, naming it.
write_config six
ctl start >"$tmp/start.out" 2>&1
check "start exits 1 when a configured instance failed" [ $? -eq 1 ]
contains "...naming it and why" "$(cat "$tmp/start.out")" "broken: failed: create failed: fail_create is set"
grep -q " ready$" "$tmp/log/prebootd.log"
check "...and the daemon did not log ready" [ $? -ne 0 ]
ctl stop >/dev/null 2>&1
check "stop after a failed start" wait_until 10 sh -c "[ ! -e $tmp/prebootd.pid ]"
sed -i '/badmajor/d; /broken/d' "$tmp/preboot.yaml"
ctl start >"$tmp/start.out" 2>&1
check "start daemonizes and returns 0" [ $? -eq 0 ]
p1=$(ctl showpid)
check "showpid after start" [ -n "$p1" ] && [ "$p1" -gt 1 ]
ctl restart >/dev/null 2>&1
check "restart returns 0" [ $? -eq 0 ]
p2=$(ctl showpid)
check "restart runs a new process" [ -n "$p2" ] && [ "$p2" != "$p1" ]
check "the old process is gone" sh -c "! kill -0 $p1 2>/dev/null"
ctl stop >/dev/null 2>&1
check "stop after start" wait_until 10 sh -c "! kill -0 $p2 2>/dev/null"
ctl status >/dev/null 2>&1
check "status exits 3 when not running" [ $? -eq 3 ]
finish
