#!/bin/sh
# test-wine-service.sh - prebootd.exe as a Windows service, through wine's service manager
# (services.exe): installed with its own `--service install` from the zip's tree
# (win32/make-zip.sh) under a path with a space (as "C:\Program Files\preboot"), so with
# exactly the DLLs the zip ships; started with `sc start`, RUNNING
# in `sc query`, serving TFTP (tftp.dll) and HTTP (http.dll, with the policy plugin's
# /boot.ipxe route) to Linux curl over loopback, reloaded with `--service reload`, stopped
# with `sc stop` (STOPPED, exit code 0, the process gone by its PID, pid and control files
# removed); a start with an unreadable configuration ends STOPPED with the service-specific
# exit code 1 and the reason in the event log; `--service start` and `--service remove`
# (stopping the running service, unregistering it and its event source). The event log
# entries (ReportEvent) are read from wine's debug channel: wine's advapi32 has no event
# log store and prints each event's type and id as a "fixme:advapi:ReportEventW" line and
# its text on the "eventlog" channel (TRACE for information, ERR for errors).
#
# The service runs in a wine prefix of its own, made for the test and removed after it:
# its wineserver is persistent (wine stops services when the last ordinary program of a
# prefix exits), its services.exe writes the debug channel to a file of the test, and a
# leftover auto-start service cannot reach any other prefix. Prints TAP. Every wait is
# bounded; all traffic is on 127.0.0.1.
set -u
top_builddir=${top_builddir:-$(pwd)}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/tap.sh"

exe() { if [ -f "$(dirname "$1")/.libs/$(basename "$1")" ]; then echo "$(dirname "$1")/.libs/$(basename "$1")"; else echo "$1"; fi; }
prebootd=$(exe "$top_builddir/core/prebootd.exe")
plugins="tftp http policy"
command -v wine >/dev/null 2>&1 && command -v wineserver >/dev/null 2>&1 ||
    { echo "1..0 # SKIP wine not installed"; exit 0; }
[ -f "$prebootd" ] || { echo "1..0 # SKIP no prebootd.exe (not a Windows build)"; exit 0; }
for p in $plugins; do
    [ -f "$top_builddir/plugins/$p/.libs/$p.dll" ] ||
        { echo "1..0 # SKIP the $p plugin DLL is not built"; exit 0; }
done
command -v curl >/dev/null 2>&1 && curl --version | grep -qw tftp || {
    echo "1..0 # SKIP curl with tftp:// support is not installed"
    exit 0
}
: "${WIN32_PREFIX:=$(${PKG_CONFIG:-pkg-config} --variable=prefix glib-2.0 2>/dev/null)}"
[ -d "$WIN32_PREFIX/bin" ] || { echo "1..0 # SKIP no dependency prefix (WIN32_PREFIX)"; exit 0; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/preboot-wine-service.XXXXXX")
export WINEPREFIX="$tmp/wineprefix" WINEARCH=win64 WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY WINEPATH
cleanup() {
    # Only this test's prefix: its wineserver and every process in it (all started here).
    [ -d "$WINEPREFIX" ] && timeout 30 wineserver -k 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The prefix: made first (wineboot -i, then its server ends), then booted again under a
# persistent server. services.exe starts with that boot, inheriting its stderr and
# WINEDEBUG: the event lines land in $events. (Making the prefix under a persistent server
# leaves two services.exe answering in turn.)
events=$tmp/services.err
mkdir -p "$WINEPREFIX"
if ! timeout 300 wineboot -i >/dev/null 2>&1 || ! timeout 120 wineserver -w ||
    [ ! -f "$WINEPREFIX/system.reg" ]; then
    echo "1..0 # SKIP cannot make a wine prefix (wineboot -i)"
    exit 0
fi
wineserver -p
if ! WINEDEBUG=-all,+eventlog,fixme+advapi timeout 300 wineboot >/dev/null 2>"$events"; then
    echo "1..0 # SKIP cannot boot the wine prefix"
    exit 0
fi
win() { winepath -w "$1" 2>/dev/null; }
w() { timeout 60 wine "$@" 2>/dev/null | tr -d '\r'; }

# The install home: the zip's tree (win32/make-zip.sh lays it out without zipping), so the
# service runs with exactly the DLLs the zip ships; defaults for every path in it.
home="$tmp/Program Files/preboot"
if PREBOOT_ZIP_STAGE="$tmp/Program Files" sh "$top_srcdir/win32/make-zip.sh" "$top_srcdir" \
    "$top_builddir" preboot.zip >"$tmp/zip.out" 2>&1; then
    ok "win32/make-zip.sh lays out the install home"
else
    not_ok "win32/make-zip.sh lays out the install home"
    sed 's/^/#   /' "$tmp/zip.out"
    finish; exit
fi
for p in $plugins; do
    check "the zip has $p.dll" test -f "$home/lib/preboot/$p.dll"
done
mkdir -p "$home/tftpboot"
homewin=$(win "$home")
case $homewin in
[A-Za-z]:\\*) ;;
*) echo "1..0 # SKIP winepath gives no Windows path for $home ($homewin)"; exit 0 ;;
esac
svcexe="$homewin\\bin\\preboot\\prebootd.exe"

tftp_port=$(pick_port 1) http_port=$(pick_port 2) policy_port=$(pick_port 3)
head -c 300001 /dev/urandom >"$home/tftpboot/image.bin"
cat >"$home/conf/preboot/rules.yaml" <<EOF
rules:
  - name: lab
    match: {mac: {starts_with: "52:54:00:aa"}}
    work: program lab.efi
    menu: never
default:
  menu: never
EOF
# Relative paths are relative to the install home, which the service makes its directory
# (the policy plugin's rules_file to conf\preboot, as to /etc/preboot on Linux).
cat >"$home/conf/preboot/preboot.yaml" <<EOF
plugins:
  - module: tftp
    directory: 'tftpboot'
    interface: 127.0.0.1
    port: $tftp_port
  - {module: http, listen: 127.0.0.1, port: $http_port}
  - {module: policy, local_interface: 127.0.0.1, port: $policy_port,
     rules_file: 'rules.yaml'}
EOF
cp "$home/conf/preboot/preboot.yaml" "$tmp/good.yaml"
diag "install home $homewin, tftp $tftp_port, http $http_port"

state() { w sc query preboot | sed -n 's/^ *STATE *: *[0-9]* *\([A-Z_]*\).*/\1/p'; }
field() { w sc query preboot | sed -n "s/^ *$1 *: *\([0-9]*\).*/\1/p"; }
wait_state() { # wait_state STATE SECONDS
    i=0
    while [ $i -lt $(($2 * 2)) ]; do
        [ "$(state)" = "$1" ] && return 0
        sleep 0.5
        i=$((i + 1))
    done
    return 1
}
# The Linux PID of the service process: the one whose command line is the installed one.
service_pid() {
    for d in /proc/[0-9]*; do
        tr '\0' ' ' 2>/dev/null <"$d/cmdline" | grep -qF "$svcexe --service run" && {
            echo "${d#/proc/}"
            return 0
        }
    done
    return 1
}
gone() { # gone PID SECONDS
    i=0
    while [ $i -lt $(($2 * 10)) ] && kill -0 "$1" 2>/dev/null; do
        sleep 0.1
        i=$((i + 1))
    done
    ! kill -0 "$1" 2>/dev/null
}
# The events reported so far, one per line: "TYPE ID TEXT" (TYPE 0x0004 information,
# 0x0001 error), pairing wine's fixme line (type, id) with the text line that follows it
# on the same thread.
reported() {
    tr -d '\r' <"$events" | awk '
        /fixme:advapi:ReportEventW \(/ {
            split($0, h, ":"); split($0, a, ","); t[h[1]] = a[2] " " a[4]; next }
        /:eventlog:ReportEventW L"/ {
            split($0, h, ":"); s = $0; sub(/^[^"]*"/, "", s); sub(/"$/, "", s)
            print t[h[1]] " " s }'
}
was_reported() { reported | grep -qF "$1"; }

# ---- install -------------------------------------------------------------------------
# A relative -c, from the directory above the home: made absolute (with its space) and
# quoted in the service's command line.
(cd "$tmp" && timeout 60 wine "$home/bin/preboot/prebootd.exe" --service install \
    -c 'Program Files\preboot\conf\preboot\preboot.yaml') >"$tmp/install.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "service preboot installed" "$tmp/install.out"; then
    ok "prebootd --service install registers the service"
else
    not_ok "prebootd --service install registers the service (exit status $rc)"
    sed 's/^/#   /' "$tmp/install.out"
    finish; exit
fi
check "the service is known to the service manager, STOPPED" [ "$(state)" = STOPPED ]
w reg query 'HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\preboot' >"$tmp/reg.out"
check "the event source is registered with prebootd.exe as its message file" \
    grep -qF "EventMessageFile    REG_EXPAND_SZ    $svcexe" "$tmp/reg.out"
check "--service install refuses -f (the service would never report RUNNING)" \
    sh -c '! timeout 60 wine "$1" --service install -f >/dev/null 2>&1' sh \
    "$home/bin/preboot/prebootd.exe"

# ---- start through the service manager -----------------------------------------------
w sc start preboot >"$tmp/start.out"
# Bounded at 120 s: a loaded machine running other wine tests at once is slow.
if wait_state RUNNING 120; then
    ok "sc start preboot: RUNNING"
else
    not_ok "sc start preboot: RUNNING (state $(state))"
    sed 's/^/#   /' "$tmp/start.out"
    tail -20 "$home/logs/preboot/prebootd.log" 2>/dev/null | sed 's/^/#   /'
    finish; exit
fi
pid=$(service_pid)
check "the service process runs prebootd.exe --service run (Linux pid ${pid:-none})" \
    [ -n "$pid" ]
check "the pid file and the control file are in the home's var\\run" \
    test -s "$home/var/run/prebootd.pid" -a -s "$home/var/run/control.sock"

curl -s -S --max-time 20 -o "$tmp/got" "tftp://127.0.0.1:$tftp_port/image.bin"
check "the service serves TFTP: curl gets 300001 bytes bit-exact" \
    cmp -s "$tmp/got" "$home/tftpboot/image.bin"
out=$(curl -s --max-time 10 "http://127.0.0.1:$http_port/boot.ipxe?mac=52:54:00:aa:00:01&commit=0")
case $out in
'#!ipxe'*'chain --autofree lab.efi'*) ok "the service serves HTTP (http.dll): /boot.ipxe of the policy plugin" ;;
*)
    not_ok "the service serves HTTP (http.dll): /boot.ipxe of the policy plugin"
    diag "got: $out"
    tail -n 20 "$home"/logs/preboot/*.log | sed 's/^/#   /'
    ;;
esac
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$http_port/nothing")
check "an unknown HTTP path is 404 ($code)" [ "$code" = 404 ]
check "libmicrohttpd starts without a warning (its logger is the first option)" \
    sh -c '! grep -q "not the first option" "$1"' sh "$home/logs/preboot/preboot-http.log"

timeout 60 wine "$home/bin/preboot/prebootd.exe" --service reload >/dev/null 2>&1
i=0
while [ $i -lt 100 ] && ! grep -q "configuration reloaded" "$home/logs/preboot/prebootd.log"; do
    sleep 0.1
    i=$((i + 1))
done
check "--service reload (PARAMCHANGE): the daemon reloads its configuration" \
    grep -q "configuration reloaded" "$home/logs/preboot/prebootd.log"

# ---- stop through the service manager ------------------------------------------------
w sc stop preboot >"$tmp/stop.out"
check "sc stop preboot: STOPPED" wait_state STOPPED 60
check "exit codes 0 (WIN32_EXIT_CODE $(field WIN32_EXIT_CODE), SERVICE_EXIT_CODE $(field SERVICE_EXIT_CODE))" \
    [ "$(field WIN32_EXIT_CODE)" = 0 -a "$(field SERVICE_EXIT_CODE)" = 0 ]
if [ -n "$pid" ]; then
    check "the service process (pid $pid) is gone" gone "$pid" 30
else
    not_ok "the service process is gone (its pid was not found)"
fi
check "the pid file and the control file are removed" \
    test ! -e "$home/var/run/prebootd.pid" -a ! -e "$home/var/run/control.sock"
check "the log says the daemon stopped on the request" \
    grep -q "terminating on signal" "$home/logs/preboot/prebootd.log"
check "event log: 'preboot service starting', information (type 4, id 0x40000001)" \
    was_reported '0x0004 0x40000001 preboot service starting'
check "event log: 'preboot service stopped', information" \
    was_reported '0x0004 0x40000001 preboot service stopped'

# ---- a start that fails ---------------------------------------------------------------
printf 'plugins: [\n' >"$home/conf/preboot/preboot.yaml"
timeout 100 wine "$home/bin/preboot/prebootd.exe" --service start >/dev/null 2>"$tmp/fail.out"
rc=$?
start_failed() { [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "stopped while starting (exit code 1)" "$tmp/fail.out"; }
check "--service start of a broken configuration fails (status $rc) and says so" start_failed
check "the service is STOPPED with WIN32_EXIT_CODE 1066 and SERVICE_EXIT_CODE 1" \
    [ "$(state)" = STOPPED -a "$(field WIN32_EXIT_CODE)" = 1066 -a "$(field SERVICE_EXIT_CODE)" = 1 ]
failure_reported() {
    reported | grep -F '0x0001 0xc0000003 preboot service failed to start (status 1): prebootd: ' |
        grep -qF 'preboot.yaml:2: '
}
check "event log: the failure, as an error (type 1, id 0xc0000003), with the daemon's reason" \
    failure_reported
reported | grep failed | sed 's/^/#   /'

# ---- start and remove with the project's own verbs --------------------------------------
cp "$tmp/good.yaml" "$home/conf/preboot/preboot.yaml"
timeout 100 wine "$home/bin/preboot/prebootd.exe" --service start >"$tmp/start2.out" 2>&1
rc=$?
check "--service start: exit status $rc, RUNNING" [ $rc -eq 0 -a "$(state)" = RUNNING ]
pid=$(service_pid)
curl -s -S --max-time 20 -o "$tmp/got2" "tftp://127.0.0.1:$tftp_port/image.bin"
check "serving TFTP again, bit-exact" cmp -s "$tmp/got2" "$home/tftpboot/image.bin"
timeout 100 wine "$home/bin/preboot/prebootd.exe" --service remove >"$tmp/remove.out" 2>&1
rc=$?
removed() { [ $rc -eq 0 ] && grep -q "service preboot removed" "$tmp/remove.out"; }
check "--service remove of the running service: exit status $rc" removed
if [ -n "$pid" ]; then
    check "the service process (pid $pid) is gone" gone "$pid" 30
else
    not_ok "the service process is gone (its pid was not found)"
fi
check "the service manager no longer knows the service" \
    sh -c '! timeout 60 wine sc query preboot 2>/dev/null | grep -q SERVICE_NAME'
w reg query 'HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\preboot' >"$tmp/reg2.out"
check "the event source is unregistered" sh -c "! grep -q EventMessageFile '$tmp/reg2.out'"
finish; exit
