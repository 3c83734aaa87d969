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
test_user=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    if [ -n "$test_user" ]; then
        userdel "$test_user" 2>/dev/null
        groupdel "$test_user" 2>/dev/null
    fi
    dpid=$(cat "$tmp/prebootd.pid" 2>/dev/null)
    [ -n "$dpid" ] && [ "$dpid" != "$pid" ] && grep -q prebootd "/proc/$dpid/cmdline" 2>/dev/null && kill "$dpid"
    [ -n "$KEEP" ] || rm -rf "$tmp"
}
trap cleanup EXIT
port=$(pick_port 1)
# make check-valgrind: every prebootd and prebootctl run goes through valgrind, which logs
# what it finds to $tmp/vg/PID.log (nothing at all with --quiet when all is well).
if [ -n "${PB_VALGRIND:-}" ]; then
    mkdir -p "$tmp/vg"
    chmod 1777 "$tmp/vg" # the unprivileged runs below log there too
    for prog in core/prebootd tools/prebootctl; do
        printf '#!/bin/sh\nexec %s --log-file=%s/vg/%%p.log %s "$@"\n' "$PB_VALGRIND" "$tmp" \
            "$top_builddir/$prog" >"$tmp/vg/${prog#*/}"
        chmod +x "$tmp/vg/${prog#*/}"
    done
    PREBOOTD=$tmp/vg/prebootd
    CTL=$tmp/vg/prebootctl
fi

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
sed '/badmajor/d' "$tmp/preboot.yaml" >"$tmp/refused.yaml"
out=$("$PREBOOTD" -c "$tmp/refused.yaml" --check-config 2>&1)
check "--check-config fails on what a plugin's create() would refuse" [ $? -ne 0 ]
contains "--check-config names the instance and the plugin's reason" "$out" "broken: fail_create is set"
case "$out" in *"configuration OK"*) not_ok "...and does not say OK" ;; *) ok "...and does not say OK" ;; esac
if [ -f "$top_builddir/plugins/tftp/tftp.la" ]; then
    cat >"$tmp/tftp.yaml" <<EOC
daemon:
  plugin_path: [$top_builddir/plugins/tftp]
plugins:
  - {module: tftp, directory: $tmp/no-such-root, port: $port}
EOC
    out=$("$PREBOOTD" -c "$tmp/tftp.yaml" --check-config 2>&1)
    check "--check-config fails on a TFTP root that does not exist" [ $? -ne 0 ]
    contains "--check-config says which root, where the YAML set it" "$out" \
        "tftp: $tmp/tftp.yaml:4: directory: '$tmp/no-such-root'"
    mkdir "$tmp/no-such-root"
    "$PREBOOTD" -c "$tmp/tftp.yaml" --check-config >/dev/null 2>&1
    check "...and passes once it exists" [ $? -eq 0 ]
    rmdir "$tmp/no-such-root"
else
    skip "--check-config and the TFTP root (tftp plugin not built)"
fi
sed 's/^daemon:$/daemon:\n  user: no-such-user-pb11/' "$tmp/good.yaml" >"$tmp/nouser.yaml"
out=$("$PREBOOTD" -c "$tmp/nouser.yaml" --check-config 2>&1)
check "--check-config fails on a user a start could not drop to" [ $? -ne 0 ]
contains "--check-config names the missing user" "$out" "user no-such-user-pb11: no such user"
case "$out" in *"configuration OK"*) not_ok "--check-config says OK only when it is" ;; *) ok "--check-config says OK only when it is" ;; esac
out=$("$PREBOOTD" -c "$tmp/good.yaml" --dump-config 2>&1)
contains "--dump-config shows the daemon section's sources" "$out" "  pid_file: $tmp/prebootd.pid    # $tmp/good.yaml:"
contains "--dump-config shows defaults in the daemon section" "$out" "  syslog: no    # default"
contains "--dump-config shows an unset control_group as a comment" "$out" "  # control_group:    # unset"
check "--dump-config has no empty key: line" sh -c "! printf '%s\n' \"\$1\" | grep -q '^  [a-z_]*: *\(#.*\)\?\$'" sh "$out"
out=$("$PREBOOTD" -c "$tmp/good.yaml" -p "$tmp/other.pid" --dump-config 2>&1)
contains "--dump-config shows command-line overrides" "$out" "  pid_file: $tmp/other.pid    # command line"
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
check "stats lists the plugin's counters as they count" \
    wait_until 10 sh -c "$CTL -c $tmp/preboot.yaml stats | grep -q 'echo: ticks = [1-9]'"
out=$(ctl echo-echo hello there)
check "plugin commands pass through prebootctl" [ "$out" = "one: hello there" ]

out=$(ctl --help 2>&1)
contains "--help lists the running daemon's plugin commands" "$out" "echo-NAME TEXT...    (echo)"
out=$("$CTL" -s "$tmp/none.sock" --help 2>&1)
contains "--help says when no daemon runs to list them" "$out" "prebootd is not running on $tmp/none.sock"
"$CTL" -c "$tmp/preboot.yaml" -s "$tmp/none.sock" stop >/dev/null 2>&1
check "stop -s SOCK never signals the daemon of another socket's pid file" kill -0 "$pid"
out=$(ctl status 2>&1)
contains "...which still answers" "$out" "prebootd runs, but a configured service does not"
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1 && id nobody >/dev/null 2>&1; then
    chmod 755 "$tmp"
    out=$(setpriv --reuid=nobody --regid="$(id -gn nobody)" --init-groups \
        "$CTL" -s "$tmp/control.sock" -p "$tmp/prebootd.pid" status 2>&1)
    rc=$?
    contains "status: permission denied is said as such" "$out" "permission denied on $tmp/control.sock"
    check "status: permission denied exits 4 (unknown), not 0" [ $rc -eq 4 ]
    chmod 700 "$tmp"
else
    skip "status: permission denied (needs root, setpriv and the user nobody)"
    skip "status: permission denied exits 4"
fi

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
log=$(cat "$tmp/log/prebootd.log")
contains "start is logged as a notice, not CRITICAL" "$log" "[prebootd] NOTICE: prebootd "
contains "a service that failed to start leaves a warning, not a notice" "$log" \
    "[prebootd] WARNING: not ready: broken: failed"
contains "stop is logged as a notice" "$log" "[prebootd] NOTICE: stopped"
contains "a failed instance is logged as an error" "$log" "[prebootd] ERROR: broken: create failed"
check "no line calls itself CRITICAL" sh -c "! grep -q CRITICAL '$tmp/log/prebootd.log'"
hard=$(sh -c 'ulimit -Hn')
if [ "$hard" = unlimited ] || [ -n "${PB_VALGRIND:-}" ]; then # valgrind keeps a few for itself
    skip "the descriptor limit is logged (no hard limit here)"
else
    contains "the soft descriptor limit is raised to the hard one and logged" "$log" "[prebootd] NOTICE: descriptor limit: $hard"
fi
if [ "$(id -u)" -eq 0 ]; then
    contains "root without user: warns at start" "$(cat "$tmp/stderr")" "running as root: every plugin keeps all privileges"
else
    skip "root without user: warns at start (needs root)"
fi

# The systemd unit: raised descriptor limit, bounded capabilities, and valid for systemd.
unit=$top_builddir/etc/prebootd.service
if [ -f "$unit" ]; then
    contains "the unit raises LimitNOFILE" "$(cat "$unit")" "LimitNOFILE=65536"
    contains "the unit bounds capabilities" "$(cat "$unit")" "CapabilityBoundingSet=CAP_NET_BIND_SERVICE"
    if command -v systemd-analyze >/dev/null 2>&1; then
        # Only the programs and man pages it names are missing from a build tree.
        out=$(systemd-analyze verify "$unit" 2>&1 | grep -v -e 'is not executable' -e "Command 'man ")
        check "systemd-analyze verify accepts the unit" [ -z "$out" ]
        [ -z "$out" ] || diag "$out"
    else
        skip "systemd-analyze verify (not installed)"
    fi
else
    skip "the systemd unit (not built)"
fi
contains "the init script raises the descriptor limit" "$(cat "$top_builddir/etc/init.d/preboot")" 'ulimit -n "$PREBOOT_NOFILE"'

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

# Unprivileged: bind as root, drop to the user `nobody`, then go through a log rotation and
# a stop with what that user may do.
nobody_group=$(id -gn nobody 2>/dev/null)
if [ "$(id -u)" -ne 0 ]; then
    skip "privilege drop, rotation and stop as a user (needs root)"
elif [ -z "$nobody_group" ] || ! command -v setpriv >/dev/null 2>&1; then
    skip "privilege drop, rotation and stop as a user (needs the user nobody and setpriv)"
else
    as_nobody() { setpriv --reuid=nobody --regid="$nobody_group" --init-groups "$@"; }
    chmod 755 "$tmp"
    ud=$tmp/unpriv
    mkdir -m 755 "$ud"
    uport=$(pick_port 2)
    write_unpriv() {
        cat >"$tmp/unpriv.yaml" <<EOC
daemon:
  plugin_path: [$top_builddir/tests/plugins]
  log_dir: $ud/log
  state_dir: $ud/state
  pid_file: $ud/run/prebootd.pid
  control_socket: $ud/run/control.sock
  user: nobody
  log_size: 1
plugins:
  - {module: testplug, name: echo, port: $uport, greeting: $1, log_size: 1}
EOC
    }
    write_unpriv first
    uctl() { "$CTL" -s "$ud/run/control.sock" -p "$ud/run/prebootd.pid" "$@"; }
    "$PREBOOTD" -f -c "$tmp/unpriv.yaml" >"$tmp/unpriv.err" 2>&1 &
    upid=$!
    pid=$upid
    check "unprivileged: the daemon answers" wait_until 10 uctl status
    uid=$(awk '/^Uid:/ {print $2}' "/proc/$upid/status")
    check "unprivileged: it runs as nobody" [ "$uid" = "$(id -u nobody)" ]
    out=$(stat -c '%U:%G %a' "$ud/run/control.sock")
    check "unprivileged: the control socket is nobody:$nobody_group 0660 (got $out)" \
        [ "$out" = "nobody:$nobody_group 660" ]
    out=$(as_nobody "$CTL" -s "$ud/run/control.sock" status 2>&1)
    contains "unprivileged: the daemon's own user may use the control socket" "$out" "echo: running"
    # Bring the instance's log to just under its 1 MB cap; the reload reopens it and its
    # "configuration reloaded" line is the first one over the cap.
    truncate -s $((1048576 - 40)) "$ud/log/echo.log"
    write_unpriv second
    kill -HUP "$upid"
    check "unprivileged: SIGHUP reloads" wait_until 10 sh -c \
        "[ \"\$($CTL -s $ud/run/control.sock echo-echo x)\" = 'second: x' ]"
    check "unprivileged: the log was rotated" [ -s "$ud/log/echo.log.1" ]
    check "unprivileged: the rotated-to file is new" \
        [ "$(stat -c %s "$ud/log/echo.log" 2>/dev/null || echo 1048576)" -lt 100000 ]
    grep -q "configuration reloaded" "$ud/log/echo.log" 2>/dev/null
    check "unprivileged: logging goes on in the new file after the rotation" [ $? -eq 0 ]
    out=$(as_nobody "$CTL" -s "$ud/run/control.sock" stop 2>&1)
    check "unprivileged: the daemon's user can stop it" wait_until 10 sh -c "! kill -0 $upid 2>/dev/null"
    kill -0 "$upid" 2>/dev/null && kill "$upid" # it could not: stop it so as to go on
    wait "$upid"
    check "unprivileged: the daemon exits 0" [ $? -eq 0 ]
    pid=
    check "unprivileged: the pid file is removed at stop" [ ! -e "$ud/run/prebootd.pid" ]
    check "unprivileged: the control socket is removed at stop" [ ! -e "$ud/run/control.sock" ]
    grep -q "NOTICE: stopped" "$ud/log/echo.log"
    check "unprivileged: the stop is in the new log file" [ $? -eq 0 ]
fi
# The system user make install creates (etc/preboot-user.sh), and the shipped configuration
# that names it.
contains "the shipped preboot.yaml drops to the user preboot" "$(cat "$top_builddir/etc/preboot.yaml")" "
  user: preboot"
if [ "$(id -u)" -ne 0 ] || ! command -v useradd >/dev/null 2>&1; then
    skip "etc/preboot-user.sh creates a system user (needs root and useradd)"
else
    test_user=pbt$$
    out=$(PREBOOT_USER=$test_user sh "$top_srcdir/etc/preboot-user.sh" "$tmp/u/state" "$tmp/u/log" 2>&1)
    check "preboot-user.sh succeeds" [ $? -eq 0 ]
    entry=$(getent passwd "$test_user")
    uid=$(echo "$entry" | cut -d: -f3)
    check "it creates a system account (uid $uid)" [ -n "$uid" ] && [ "$uid" -lt 1000 ]
    contains "with no login shell and the state directory as home" "$entry" ":$tmp/u/state:/usr/sbin/nologin"
    check "and a group of its own" getent group "$test_user"
    check "it gives the user the state and log directories" \
        [ "$(stat -c %U:%G "$tmp/u/state") $(stat -c %U:%G "$tmp/u/log")" = "$test_user:$test_user $test_user:$test_user" ]
    PREBOOT_USER=$test_user sh "$top_srcdir/etc/preboot-user.sh" "$tmp/u/state" "$tmp/u/log" >/dev/null 2>&1
    check "a second run is a no-op that succeeds" [ $? -eq 0 ]
    check "...and keeps the same account" [ "$(getent passwd "$test_user")" = "$entry" ]
    userdel "$test_user" && { groupdel "$test_user" 2>/dev/null; true; } && test_user=
fi
if [ -n "${PB_VALGRIND:-}" ]; then
    # Its findings are the "==PID==" lines ("--PID--" notes, such as a system call it does
    # not know, are not).
    found=$(grep -l '^==' "$tmp"/vg/*.log 2>/dev/null)
    check "valgrind: no definite leak and no memory error in prebootd and prebootctl" [ -z "$found" ]
    for f in $found; do sed 's/^/#   /' "$f"; done
fi
finish
