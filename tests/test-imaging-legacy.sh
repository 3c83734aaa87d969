#!/bin/sh
# test-imaging-legacy.sh - the imaging server started from the legacy novell-pbserv.conf (no
# token: the legacy file has none) takes a capture from one disk image file by
# `preboot-img auto` with the per-device credential of its assigned work, and restores it
# bit-exact onto another file (plainly, and by auto); the results land in the log and the
# statistics (prebootctl stats, preboot-mcast -status). A second prebootd whose policy names
# it as PrebootServer hands out the work it answers, and its own rules' once it is gone (a
# server that never answers is policy-remote.sh's).
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/lib-imaging.sh"
command -v curl >/dev/null 2>&1 || skip_all "curl is not installed"
B=$top_builddir
[ -x "$B/tools/preboot-img" ] || skip_all "preboot-img is not built (lib/image: Linux only)"
T=$(mktemp -d "${TMPDIR:-/tmp}/imaging-legacy.XXXXXX")
pids= pid=
cleanup() {
    for p in $pid $pids; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
ps=$(pick_port 29)
pp=$(pick_port 31)
pu=$(pick_port 37)
S=127.0.0.1:$ps
U=http://$S/imaging/v1
MAC1=52:54:00:1e:00:01 MAC2=52:54:00:1e:00:02 MAC3=52:54:00:1e:00:03
ctl() { "$B/tools/prebootctl" -c "$T/p.yaml" "$@"; }
IMG() { env -u PREBOOT_TOKEN "$B/tools/preboot-img" "$@" --chunk-size 1048576 >>"$T/img.log" 2>&1; }
stat_of() { ctl stats 2>&1 | sed -n "s/.*imaging: $1 = \([0-9]*\).*/\1/p"; }

cp "$top_srcdir/tests/data/legacy/novell-pbserv.conf" "$T/"
cat >"$T/rules.yaml" <<EOC
version: 1
imaging:
  kernel: http://$S/vmlinuz
EOC
{
    imaging_config_head "$T/state" "$ps" "$B/plugins/policy/.libs"
    cat <<EOC
  - module: policy
    port: 0
    rules_file: $T/rules.yaml
  - module: imaging
    legacy: $T/novell-pbserv.conf
EOC
} >"$T/p.yaml"
"$B/core/prebootd" -f -c "$T/p.yaml" >>"$T/stderr" 2>&1 &
pid=$!
check "prebootd starts on novell-pbserv.conf" \
    wait_until 20 sh -c "curl -s -o /dev/null --max-time 2 '$U/images'"
contains "with no upload token" "$(cat "$T/log/novell-pbserv.log")" "no upload_token"

head -c 2500000 /dev/urandom >"$T/disk.img"
seq 1 200000 >>"$T/disk.img"
truncate -s 6M "$T/disk.img"
ctl policy assign $MAC1 "capture legacyimg" once >/dev/null 2>&1
IMG auto "$S" "$T/disk.img" --mac $MAC1
check "preboot-img auto captures the assigned work (its credential, no token)" [ $? -eq 0 ]
check "the image is in the catalog" sh -c "'$B/tools/prebootctl' -c '$T/p.yaml' imaging list | grep -q legacyimg"
check "Images Received = 1" [ "$(stat_of 'Images Received')" = 1 ]
contains "the capture's result is in the log" "$(ctl imaging log 2>&1)" "capture"
truncate -s 6M "$T/copy.img"
check "preboot-img restore onto another file" IMG restore "$S:legacyimg" "$T/copy.img"
check "... bit-exact" cmp -s "$T/disk.img" "$T/copy.img"
ctl policy assign $MAC2 "restore legacyimg" once >/dev/null 2>&1
truncate -s 6M "$T/copy2.img"
IMG auto "$S" "$T/copy2.img" --mac $MAC2
check "preboot-img auto does the assigned restore and reports it" [ $? -eq 0 ]
check "... bit-exact" cmp -s "$T/disk.img" "$T/copy2.img"
log=$(ctl imaging log 2>&1)
contains "the restore's result is in the log" "$log" "$MAC2"
check "Images Sent = 2 (each whole download once)" [ "$(stat_of 'Images Sent')" = 2 ]
out=$("$B/tools/preboot-mcast" -c "$T/p.yaml" -status 2>&1)
contains "preboot-mcast -status: received" "$out" "Images Received  1"
contains "preboot-mcast -status: sent" "$out" "Images Sent      2"

# ---- PrebootServer: another prebootd's policy asks this server -----------------------------
ctl policy assign $MAC3 "restore legacyimg" once >/dev/null 2>&1
cat >"$T/q.yaml" <<EOC
daemon:
  plugin_path: [$B/plugins/policy/.libs, $B/plugins/http/.libs]
  log_dir: $T/qlog
  state_dir: $T/qstate
  pid_file: $T/q.pid
  control_socket: $T/q.sock
plugins:
  - {module: http, listen: 127.0.0.1, port: $pp}
  - {module: policy, local_interface: 127.0.0.1, port: $pu, rules_file: $T/rules.yaml,
     preboot_server: 127.0.0.1, preboot_server_port: $ps, preboot_server_timeout: 3000}
EOC
"$B/core/prebootd" -f -c "$T/q.yaml" >>"$T/qstderr" 2>&1 &
pids=$!
check "a second prebootd with PrebootServer starts" \
    wait_until 20 sh -c "curl -s -o /dev/null --max-time 2 'http://127.0.0.1:$pp/'"
out=$(curl -s --max-time 10 "http://127.0.0.1:$pp/boot.ipxe?mac=$MAC3")
contains "PrebootServer answered: the imaging server's work is handed out" "$out" "restore legacyimg"
out=$(curl -s --max-time 10 "http://127.0.0.1:$pp/boot.ipxe?mac=52:54:00:1e:00:09")
contains "... and its none for a device without work" "$out" "exit 0"
# A device P has not asked about yet (answers are cached a while): with the imaging server
# gone, P's own rules decide, though the server had work for it.
ctl policy assign 52:54:00:1e:00:04 "restore legacyimg" once >/dev/null 2>&1
kill "$pid" && wait "$pid"
pid=
out=$(curl -s --max-time 10 "http://127.0.0.1:$pp/boot.ipxe?mac=52:54:00:1e:00:04")
case "$out" in
*legacyimg*) not_ok "the imaging server gone, the rules decide (no work: the disk)"; diag "$out" ;;
*"exit 0"*) ok "the imaging server gone, the rules decide (no work: the disk)" ;;
*) not_ok "the imaging server gone, the rules decide (no work: the disk)"; diag "$out" ;;
esac
grep -q "ERROR: AddressSanitizer\|runtime error" "$T/stderr" "$T/qstderr" &&
    not_ok "no sanitizer report" || ok "no sanitizer report"
finish
