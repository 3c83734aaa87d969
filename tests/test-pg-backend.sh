#!/bin/sh
# test-pg-backend.sh - libpreboot-pg: two imaging servers (two prebootd on two loopback ports)
# sharing one PostgreSQL database, started by this test (initdb and pg_ctl of Debian's
# postgresql, a private cluster in a temporary directory on a Unix socket, run as nobody,
# password authentication with the password read from database_password_file): capture on A
# with preboot-img, a bit-exact restore from B with B pulling the chunks from A; prebootctl
# imaging replicate; the same name captured at once on both (one wins, cleanly); a corrupted
# chunk copy on B refused, set aside and fetched again; the database stopped and started in
# the middle (B keeps serving, results queued and caught up, nothing lost).
. "$top_srcdir/tests/tap.sh"
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
[ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_ctl" ] ||
    skip_all "PostgreSQL's initdb and pg_ctl are not in $PGBIN (Debian: apt-get install postgresql)"
[ "$(id -u)" -eq 0 ] || skip_all "not root: the test cluster runs as the unprivileged user nobody"
command -v runuser >/dev/null 2>&1 || skip_all "runuser is not installed"
command -v curl >/dev/null 2>&1 || skip_all "curl is not installed"
B=$top_builddir
[ -x "$B/tools/preboot-img" ] || skip_all "preboot-img is not built"
[ -f "$B/backends/pg/.libs/libpreboot-pg.so" ] || skip_all "libpreboot-pg is not built"
T=$(mktemp -d "${TMPDIR:-/tmp}/pg-backend.XXXXXX")
chmod 755 "$T"
pida=
pidb=
PGD=$T/pg
# As nobody, from a directory nobody may enter (the build tree may be under root's 0700
# home): PostgreSQL's tools complain on stderr about the one they are started from.
pgctl() (cd "$PGD" && runuser -u nobody -- "$PGBIN/pg_ctl" -D "$PGD/data" -l "$PGD/log" "$@" >/dev/null)
cleanup() {
    [ -n "$pida" ] && kill -9 "$pida" 2>/dev/null
    [ -n "$pidb" ] && kill -9 "$pidb" 2>/dev/null
    [ -f "$PGD/data/postmaster.pid" ] && pgctl stop -m immediate >/dev/null 2>&1
    [ -n "$PB_KEEP" ] || rm -rf "$T"
}
trap cleanup EXIT

# ---- the private cluster ---------------------------------------------------------------------
PW=s3cret-db-pw-$$
mkdir -p "$PGD"
printf '%s\n' "$PW" >"$PGD/pw"
chown -R nobody "$PGD"
initdb_() (
    cd "$PGD" && runuser -u nobody -- "$PGBIN/initdb" -D "$PGD/data" -U preboot -A scram-sha-256 \
        --pwfile="$PGD/pw" --no-sync -E UTF8 >"$T/initdb.log" 2>&1
)
check "initdb makes a private cluster as nobody" initdb_
check "pg_ctl starts it on a Unix socket in the test directory" \
    pgctl -w -o "-k $PGD -c listen_addresses='' -c fsync=off" start
DB="host=$PGD dbname=postgres user=preboot connect_timeout=5"
cp "$PGD/pw" "$T/db-password"

TOKEN=t0k3n-for-pg-tests
pa=$(pick_port 5)
pb=$(pick_port 6)
UA=http://127.0.0.1:$pa/imaging/v1
UB=http://127.0.0.1:$pb/imaging/v1
write_config() { # NAME PORT
    mkdir -p "$T/$1"
    cat >"$T/$1/p.yaml" <<EOF
daemon:
  plugin_path: [$B/plugins/http/.libs, $B/plugins/imaging/.libs, $B/backends/pg/.libs]
  log_dir: $T/$1/log
  state_dir: $T/$1/state
  pid_file: $T/$1/prebootd.pid
  control_socket: $T/$1/control.sock
plugins:
  - module: http
    listen: 127.0.0.1
    port: $2
  - module: imaging
    store: $T/$1/store
    database: $DB
    database_password_file: $T/db-password
    server_url: http://127.0.0.1:$2
    upload_token: $TOKEN
    upload_networks: [127.0.0.1/32]
    log_level: 3
EOF
}
ctla() { "$B/tools/prebootctl" -c "$T/a/p.yaml" "$@"; }
ctlb() { "$B/tools/prebootctl" -c "$T/b/p.yaml" "$@"; }
start_a() {
    "$B/core/prebootd" -f -c "$T/a/p.yaml" >>"$T/a/stderr" 2>&1 &
    pida=$!
    wait_until 20 ctla status
}
start_b() {
    "$B/core/prebootd" -f -c "$T/b/p.yaml" >>"$T/b/stderr" 2>&1 &
    pidb=$!
    wait_until 20 ctlb status
}
code() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
write_config a "$pa"
write_config b "$pb"
check "server A starts on the pg backend" start_a
check "server B starts on the same database" start_b
contains "A runs libpreboot-pg" "$(ctla status 2>&1)" "backend pg"
contains "B runs libpreboot-pg" "$(ctlb status 2>&1)" "backend pg"
ver=$(cd "$PGD" && runuser -u nobody -- env PGPASSWORD="$PW" "$PGBIN/psql" -h "$PGD" -U preboot -d postgres \
    -Atc 'SELECT version FROM schema_version' 2>&1)
check "the backend created its schema, versioned (schema_version 1)" [ "$ver" = 1 ]

# ---- the backend ABI test against both backends ------------------------------------------------
abi() { # NAME: TAP of tests/test-backend-abi, as diagnostics, and its verdict
    "$B/tests/test-backend-abi" "$@" >"$T/abi.tap" 2>&1
    rc=$?
    grep -v '^ok' "$T/abi.tap" | sed 's/^/# /'
    return $rc
}
if [ -x "$B/tests/test-backend-abi" ]; then
    check "the backend ABI test passes against libpreboot-local" \
        abi "$B/backends/local/.libs/libpreboot-local.so" libpreboot_local "$T/abi-local" "$T/abi-local"
    mkdir -p "$T/abi-pg"
    check "the backend ABI test passes against libpreboot-pg" \
        abi "$B/backends/pg/.libs/libpreboot-pg.so" libpreboot_pg "$DB password=$PW" "$T/abi-pg" \
        http://127.0.0.1:9/abi
else
    skip "the backend ABI test (tests/test-backend-abi is not built: make check builds it)"
fi

# ---- capture on A, restore from B ------------------------------------------------------------
head -c 2500000 /dev/urandom >"$T/disk.img"
seq 1 300000 >>"$T/disk.img"
truncate -s 8M "$T/disk.img"
check "preboot-img captures img1 to A" env PREBOOT_TOKEN=$TOKEN \
    "$B/tools/preboot-img" make "$T/disk.img" "127.0.0.1:$pa:img1" --chunk-size 1048576
contains "B's catalog lists img1 (one catalog)" "$(curl -s "$UB/images")" '"name":"img1"'
check "B holds no chunk of it yet" [ -z "$(find "$T/b/store/chunks" -type f 2>/dev/null)" ]
truncate -s 8M "$T/restored.img"
check "preboot-img restores img1 from B" \
    "$B/tools/preboot-img" restore "127.0.0.1:$pb:img1" "$T/restored.img"
check "the restore from B is bit-exact" cmp -s "$T/disk.img" "$T/restored.img"
na=$(find "$T/a/store/chunks" -type f | wc -l)
nb=$(find "$T/b/store/chunks" -type f | wc -l)
check "B pulled and kept every chunk ($nb of $na)" [ "$nb" -eq "$na" ] && [ "$na" -gt 0 ]
check "B's log says the chunks came from A, verified" \
    grep -q "fetched from http://127.0.0.1:$pa/imaging/v1/, verified, kept" "$T/b/log/novell-pbserv.log"

# ---- a corrupted copy on B -------------------------------------------------------------------
f=$(find "$T/b/store/chunks" -type f | head -n 1)
h=$(basename "$f" | cut -d. -f1)
fa=$(find "$T/a/store/chunks" -name "$h.*")
printf 'XXXXXXXX' | dd of="$f" bs=1 seek=100 conv=notrunc 2>/dev/null
differ() { ! cmp -s "$1" "$2"; }
check "the copy on B no longer matches A's" differ "$f" "$fa"
check "B answers a GET of the corrupted chunk" [ "$(code "$UB/chunks/$h")" = 200 ]
check "with the right bytes, fetched again from A" cmp -s "$T/body" "$fa"
check "B's copy is whole again" cmp -s "$f" "$fa"
check "the bad copy was set aside, not served" [ -f "$T/b/store/tmp/corrupt-$h" ]
check "B's log says why" grep -q "chunk $h on this server does not match its hash" \
    "$T/b/log/novell-pbserv.log"

# ---- replicate ahead of time -----------------------------------------------------------------
head -c 3000000 /dev/urandom >"$T/disk2.img"
truncate -s 6M "$T/disk2.img"
env PREBOOT_TOKEN=$TOKEN "$B/tools/preboot-img" make "$T/disk2.img" "127.0.0.1:$pa:img2" \
    --chunk-size 1048576 >/dev/null 2>&1
# Four clients asking B at once for a chunk only A holds: every one gets it whole, and B
# fetches it once (the others wait for that pull).
h1=$(curl -s "$UA/images/img2" | awk '$1 == "c" && $2 ~ /^[0-9a-f]+$/ {print $2; exit}')
fa1=$(find "$T/a/store/chunks" -name "$h1.*")
pids=
for i in 1 2 3 4; do
    curl -s -o "$T/par$i" "$UB/chunks/$h1" &
    pids="$pids $!"
done
# shellcheck disable=SC2086 # one pid a word
wait $pids
all_same() { for i in 1 2 3 4; do cmp -s "$T/par$i" "$fa1" || return 1; done; }
check "four clients at once get the chunk B lacked, whole" all_same
check "B fetched it from A once" \
    [ "$(grep -c "chunk $h1 fetched from" "$T/b/log/novell-pbserv.log")" -eq 1 ]
# prebootctl imaging replicate runs in the background (it must not hold B's main loop): it
# answers at once; its status says when it ended, and each image's result is in the log.
repl_ended() { ctlb imaging replicate status 2>&1 | grep -q "^last replication"; }
repl_log() { ctlb imaging log 2>&1 | grep -E " replicate +$1 " | head -n 1; }
out=$(ctlb imaging replicate img2 2>&1)
contains "prebootctl imaging replicate img2 answers at once, replicating in the background" \
    "$out" "in the background"
wait_until 120 repl_ended
check "the replication ends (prebootctl imaging replicate status)" repl_ended
out=$(repl_log img2)
contains "prebootctl imaging replicate img2 pulls what B lacks (result log)" "$out" "fetched and verified"
check "and says nothing failed" sh -c "! printf '%s' '$out' | grep -q FAILED"
curl -s "$UA/images/img2" | awk '$1 == "c" && $2 ~ /^[0-9a-f]+$/ {print $2}' | sort -u >"$T/h2"
held_by_b() {
    while read -r h; do
        [ -n "$(find "$T/b/store/chunks" -name "$h.*")" ] || return 1
    done <"$T/h2"
}
check "B now holds every chunk of img2 on its disk" [ -s "$T/h2" ] && held_by_b
ctlb imaging replicate >/dev/null 2>&1
wait_until 120 repl_ended
out=$(ctlb imaging replicate status 2>&1)
contains "replicate with no name: every image, all complete" "$out" "all complete"
contains "... nothing left to fetch" "$(repl_log img2)" "0 missing here"
check "nothing was removed on A" [ "$(find "$T/a/store/chunks" -type f | wc -l)" -ge "$na" ]

# ---- one name captured at once on both -------------------------------------------------------
head -c 1000000 /dev/urandom >"$T/r1.img"
truncate -s 2M "$T/r1.img"
head -c 1000000 /dev/urandom >"$T/r2.img"
truncate -s 2M "$T/r2.img"
(env PREBOOT_TOKEN=$TOKEN "$B/tools/preboot-img" make "$T/r1.img" "127.0.0.1:$pa:race" \
    --create-only >/dev/null 2>&1; echo $? >"$T/race1") &
r1=$!
(env PREBOOT_TOKEN=$TOKEN "$B/tools/preboot-img" make "$T/r2.img" "127.0.0.1:$pb:race" \
    --create-only >/dev/null 2>&1; echo $? >"$T/race2") &
r2=$!
wait "$r1" "$r2"
wins=$(cat "$T/race1" "$T/race2" | grep -c '^0$')
check "two captures of one name at once: exactly one wins" [ "$wins" -eq 1 ]
sa=$(curl -s "$UA/images/race/info" | sed -n 's/.*"seal":"\([0-9a-f]*\)".*/\1/p')
sb=$(curl -s "$UB/images/race/info" | sed -n 's/.*"seal":"\([0-9a-f]*\)".*/\1/p')
check "both servers see the same winner" [ -n "$sa" ] && [ "$sa" = "$sb" ]
winner=r1
[ "$(cat "$T/race2")" = 0 ] && winner=r2
truncate -s 2M "$T/race.img"
"$B/tools/preboot-img" restore "127.0.0.1:$pb:race" "$T/race.img" >/dev/null 2>&1
check "the image is the winner's, whole" cmp -s "$T/race.img" "$T/$winner.img"

# ---- the database goes away and comes back ---------------------------------------------------
check "the database is stopped" pgctl -w stop -m fast
: >"$T/restored.img"
truncate -s 8M "$T/restored.img"
check "B still restores img1 (its chunks, its cached manifest)" \
    "$B/tools/preboot-img" restore "127.0.0.1:$pb:img1" "$T/restored.img"
check "bit-exact" cmp -s "$T/disk.img" "$T/restored.img"
check "a result reported to B without the database is accepted (204)" \
    [ "$(code -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d '{"mac":"52:54:00:aa:bb:cc","type":"restore","image":"img1","result":"ok","message":"while the database was down"}' \
        "$UB/results")" = 204 ]
check "B queued it in pending.log" grep -q "while the database was down" "$T/b/store/pending.log"
check "B warned clearly" grep -q "database unreachable" "$T/b/log/novell-pbserv.log"
check "the database is started again" pgctl -w -o "-k $PGD -c listen_addresses='' -c fsync=off" start
check "B catches up by itself (pending.log replayed)" wait_until 30 test ! -f "$T/b/store/pending.log"
contains "the queued result is in the shared log, seen from A" "$(ctla imaging log 2>&1)" \
    "while the database was down"
contains "and the upload results of A are there too" "$(ctlb imaging log 2>&1)" "img1"

# ---- referral instead of pulling (preboot_referral=yes) ----------------------------------------
kill "$pidb"
wait "$pidb" 2>/dev/null
pidb=
sed -i "s|^    database: .*|    database: $DB preboot_referral=yes|" "$T/b/p.yaml"
check "B starts again with referral on" start_b
head -c 2000000 /dev/urandom >"$T/disk3.img"
truncate -s 4M "$T/disk3.img"
env PREBOOT_TOKEN=$TOKEN "$B/tools/preboot-img" make "$T/disk3.img" "127.0.0.1:$pa:img3" \
    --chunk-size 1048576 >/dev/null 2>&1
curl -s -D "$T/hdr" -o /dev/null "$UB/images/img3"
check "B refers a client asking for img3, held only by A (307)" grep -q "^HTTP/1.1 307" "$T/hdr"
check "to A" grep -qi "^Location: http://127.0.0.1:$pa/imaging/v1/images/img3" "$T/hdr"
truncate -s 4M "$T/restored3.img"
check "preboot-img restores img3 through B, referred to A" \
    "$B/tools/preboot-img" restore "127.0.0.1:$pb:img3" "$T/restored3.img"
check "bit-exact" cmp -s "$T/disk3.img" "$T/restored3.img"
curl -s "$UA/images/img3" | awk '$1 == "c" && $2 ~ /^[0-9a-f]+$/ {print $2}' | sort -u >"$T/h3"
none_on_b() {
    while read -r h; do
        [ -z "$(find "$T/b/store/chunks" -name "$h.*")" ] || return 1
    done <"$T/h3"
}
check "and B pulled none of its chunks" [ -s "$T/h3" ] && none_on_b
check "img1, which B holds whole, is served by B itself" [ "$(code "$UB/images/img1")" = 200 ]
ctlb imaging replicate img3 >/dev/null 2>&1
wait_until 120 repl_ended
check "once B has replicated img3 it serves it itself" [ "$(code "$UB/images/img3")" = 200 ]

# ---- hygiene ---------------------------------------------------------------------------------
check "the database password is in no log" sh -c "! grep -rq '$PW' '$T/a/log' '$T/b/log' '$T/a/stderr' '$T/b/stderr'"
gone() { ! kill -0 "$1" 2>/dev/null; }
kill "$pida" "$pidb"
check "A stops" wait_until 10 gone "$pida"
check "B stops" wait_until 10 gone "$pidb"
wait "$pida" "$pidb" 2>/dev/null
pida=
pidb=
cat "$T/a/stderr" "$T/b/stderr" | grep -i "sanitizer\|runtime error" >/dev/null &&
    { not_ok "no sanitizer report"; cat "$T/a/stderr" "$T/b/stderr" | sed 's/^/# /' | tail -30; } ||
    ok "no sanitizer report"
finish
