#!/bin/sh
# test-policy-pg.sh - the policy plugin's state shared through PostgreSQL (database:): two
# prebootd (policy + http) on one private cluster (tests/pg-cluster.sh). Work assigned
# through A's prebootctl is done through B, once, and A then sees it used; the same work
# asked through both at once is handed out once; a rule's one-shot work done through A is
# not done again through B; the database stopped in the middle: decisions go on from
# memory, assignments are refused and shared work withheld with a clear reason, and both
# servers catch up when it is back.
. "$top_srcdir/tests/tap.sh"
command -v curl >/dev/null 2>&1 || skip_all "curl is not installed"
B=$top_builddir
[ -x "$B/core/prebootd" ] && [ -x "$B/tools/prebootctl" ] || skip_all "prebootd is not built"
T=$(mktemp -d "${TMPDIR:-/tmp}/policy-pg.XXXXXX")
chmod 755 "$T"
pida=
pidb=
cleanup() {
    [ -n "$pida" ] && kill "$pida" 2>/dev/null && wait "$pida" 2>/dev/null
    [ -n "$pidb" ] && kill "$pidb" 2>/dev/null && wait "$pidb" 2>/dev/null
    pg_cleanup
    [ -n "$PB_KEEP" ] || rm -rf "$T"
}
trap cleanup EXIT
. "$top_srcdir/tests/pg-cluster.sh"
check "initdb makes a private cluster as nobody" initdb_
check "pg_ctl starts it on a Unix socket in the test directory" pg_start

cat >"$T/rules.yaml" <<EOC
rules:
  - name: lab
    match: {mac: {starts_with: "52:54:00:aa"}}
    work: program lab.efi once
    menu: never
default:
  menu: never
EOC
pa=$(free_port 71)
pb=$(free_port 72)
write_config() { # NAME HTTP-PORT
    mkdir -p "$T/$1"
    cat >"$T/$1/p.yaml" <<EOC
daemon:
  plugin_path: [$B/plugins/policy/.libs, $B/plugins/http/.libs]
  log_dir: $T/$1/log
  state_dir: $T/$1/state
  pid_file: $T/$1/prebootd.pid
  control_socket: $T/$1/control.sock
  log_level: 3
plugins:
  - {module: http, listen: 127.0.0.1, port: $2}
  - module: policy
    port: 0
    rules_file: $T/rules.yaml
    database: $DB
    database_password_file: $T/db-password
EOC
}
write_config a "$pa"
write_config b "$pb"
ctla() { "$B/tools/prebootctl" -c "$T/a/p.yaml" "$@"; }
ctlb() { "$B/tools/prebootctl" -c "$T/b/p.yaml" "$@"; }
geta() { curl -s --max-time 10 "http://127.0.0.1:$pa$1"; }
getb() { curl -s --max-time 10 "http://127.0.0.1:$pb$1"; }
# served_by DIR PORT: the daemon of DIR answers on PORT (its log says it listens there, and
# /boot.ipxe is answered): not some other test's server that took the port.
served_by() {
    grep -rqs "listening on 127.0.0.1:$2" "$1/log" && curl -s --max-time 1 "http://127.0.0.1:$2/boot.ipxe?mac=00:00:00:00:00:01&commit=0" | grep -q '#!ipxe'
}
start_a() {
    "$B/core/prebootd" -f -c "$T/a/p.yaml" >>"$T/a/stderr" 2>&1 &
    pida=$!
    wait_until 30 served_by "$T/a" "$pa"
}
start_b() {
    "$B/core/prebootd" -f -c "$T/b/p.yaml" >>"$T/b/stderr" 2>&1 &
    pidb=$!
    wait_until 30 served_by "$T/b" "$pb"
}
check "server A starts with the policy state in the database" start_a
check "server B starts on the same database" start_b
check "the policy schema is created and versioned" \
    [ "$(psql_ 'SELECT version FROM policy_schema_version')" = 1 ]
check "A's log says it is connected" grep -q "policy database connected" "$T/a/log/"*.log

M1=52:54:00:bb:00:01
TOOL=http://192.0.2.1/tool.efi
out=$(ctla policy assign $M1 program $TOOL once 2>&1)
contains "prebootctl assigns through A" "$out" "assigned program $TOOL once to mac:$M1"
check "the assignment is a row of the database" \
    [ "$(psql_ "SELECT work FROM policy_assignments WHERE key = 'mac:$M1'")" = "program $TOOL once" ]
b_has() { ctlb policy show | grep -q "mac:$M1"; }
check "B learns the assignment" wait_until 10 b_has
out=$(getb "/boot.ipxe?mac=$M1")
contains "the device booting through B gets the work assigned on A" "$out" "chain --autofree $TOOL"
a_lost() { ! ctla policy show | grep -q "mac:$M1"; }
check "A then sees it used: no longer assigned" wait_until 10 a_lost
check "the row is gone" [ -z "$(psql_ "SELECT work FROM policy_assignments WHERE key = 'mac:$M1'")" ]
out=$(geta "/boot.ipxe?mac=$M1")
lacks() { case "$1" in *"$2"*) return 1 ;; esac; }
check "booting through A now does not do it again" lacks "$out" "$TOOL"
contains "(A answered)" "$out" "#!ipxe"

# The same work asked through both at once: handed out once.
M2=52:54:00:bb:00:02
ctla policy assign $M2 program $TOOL once >/dev/null 2>&1
b_has2() { ctlb policy show | grep -q "mac:$M2"; }
check "B learns the second assignment" wait_until 10 b_has2
geta "/boot.ipxe?mac=$M2" >"$T/race-a" &
ra=$!
getb "/boot.ipxe?mac=$M2" >"$T/race-b"
wait $ra
handed=$(cat "$T/race-a" "$T/race-b" | grep -c "chain --autofree $TOOL")
check "two servers asked at once hand the one-shot work out once ($handed)" [ "$handed" -eq 1 ]

# A rule's one-shot work: done through A, not again through B.
M3=52:54:00:aa:00:03
out=$(geta "/boot.ipxe?mac=$M3")
contains "the rule's one-shot work through A" "$out" "chain --autofree lab.efi"
out=$(getb "/boot.ipxe?mac=$M3")
check "is not done again through B" lacks "$out" "lab.efi"
check "one mark in the database" \
    [ "$(psql_ "SELECT count(*) FROM policy_once WHERE device_key = 'mac:$M3'")" = 1 ]

# ---- the database stopped in the middle ---------------------------------------------------------
M4=52:54:00:bb:00:04
ctla policy assign $M4 program $TOOL once >/dev/null 2>&1
b_has4() { ctlb policy show | grep -q "mac:$M4"; }
check "B learns a third assignment" wait_until 10 b_has4
check "the database stops" pgctl -w stop -m fast
out=$(geta "/boot.ipxe?mac=52:54:00:aa:00:05&commit=0")
contains "A still decides from memory" "$out" "chain --autofree lab.efi"
out=$(ctla policy assign 52:54:00:bb:00:06 program $TOOL 2>&1)
contains "an assignment is refused, clearly" "$out" "policy database unavailable"
out=$(getb "/boot.ipxe?mac=$M4")
check "shared one-shot work is withheld while the database is away" lacks "$out" "$TOOL"
contains "the device boots its disk meanwhile" "$out" "#!ipxe"
warned() { grep -q "policy database unreachable" "$T/b/log/"*.log; }
check "B's log says the database is unreachable" wait_until 10 warned
check "the database starts again" pg_start
back() { grep -q "policy database reachable again" "$T/b/log/"*.log; }
check "B catches up" wait_until 20 back
got4() { getb "/boot.ipxe?mac=$M4" | grep -q "chain --autofree $TOOL"; }
check "the work still assigned is done through B once the database is back" wait_until 10 got4
assign_ok() { ctla policy assign 52:54:00:bb:00:06 program $TOOL >/dev/null 2>&1; }
check "assignments are taken again through A" wait_until 10 assign_ok
a_lost4() { ! ctla policy show | grep -q "mac:$M4"; }
check "and A sees the third one used" wait_until 10 a_lost4
check "no sanitizer report" sh -c "! grep -qi 'sanitizer\\|runtime error' '$T/a/stderr' '$T/b/stderr'"
finish
