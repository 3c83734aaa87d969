#!/bin/sh
# bench/pg.sh - several imaging servers on one PostgreSQL database (preboot-pg(8)), against
# one server on SQLite and against rsync. Results go in doc/benchmarks.md, ## pg.
#
#   bench/pg.sh [BUILD_DIR]                  (as root: the cluster runs as nobody)
#   SIZE_MB=4096 N=2000 bench/pg.sh /work/build
#
# 1. Catalog operations (image_commit, image_info, image_list, chunk_missing, result_add,
#    stat_add) through the backend ABI, N of each: libpreboot-local (SQLite) and
#    libpreboot-pg (a private cluster on a Unix socket, on this machine).
# 2. The policy store: assignments (prebootctl policy assign), decisions that use shared
#    work up, and decisions with nothing assigned, N of each: SQLite alone and shared
#    through PostgreSQL.
# 3. Replication: a SIZE_MB disk (random data) captured on server A; B pulls it with
#    `prebootctl imaging replicate`, timed, against `rsync -a` of A's chunk files to an empty
#    directory; then 2 % of the disk rewritten, captured again on A, replicated again and
#    rsynced again (incremental). The first copy also reports the CPU seconds A and B used,
#    and rsync's (steadier than the wall time on a machine other jobs share).
# Everything started here is stopped by PID; the load generator is bench/pg-bench.c.
set -u
B=${1:-${top_builddir:-.}}
B=$(cd "$B" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MB=${SIZE_MB:-1024}
N=${N:-2000}
T=$(mktemp -d /tmp/pg-bench.XXXXXX)
chmod 755 "$T"
pida=
pidb=
skip_all() { echo "skipped: $*" >&2; exit 0; }
cleanup() {
    [ -n "$pida" ] && kill "$pida" 2>/dev/null && wait "$pida" 2>/dev/null
    [ -n "$pidb" ] && kill "$pidb" 2>/dev/null && wait "$pidb" 2>/dev/null
    pg_cleanup
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
. "$SRC/tests/tap.sh"
skip_all() { echo "skipped: $*" >&2; exit 0; }
. "$SRC/tests/pg-cluster.sh"
PG_FSYNC=on # durable commits, as SQLite's (WAL, synchronous NORMAL) are across crashes
initdb_ || { echo "initdb failed" >&2; exit 1; }
pg_start || { echo "the cluster did not start" >&2; exit 1; }

lib=$B/plugins/policy/.libs/libpolicy-core.a
[ -f "$lib" ] || { echo "build $lib first (make -C $B)" >&2; exit 1; }
# shellcheck disable=SC2046
cc -O2 -I"$SRC/include" -I"$SRC/plugins/policy" -I"$SRC/lib/proto" -I"$SRC/lib/net" \
    -I"$SRC/lib/image" -I"$B" -o "$T/pg-bench" "$SRC/bench/pg-bench.c" "$lib" \
    $(pkg-config --cflags --libs glib-2.0 yaml-0.1 sqlite3 libpq) -ldl || exit 1

echo "## $(date -u '+%Y-%m-%d %H:%M') UTC, $(uname -m), $(nproc) CPU(s), load $(cut -d' ' -f1-3 /proc/loadavg), N=$N, disk ${SIZE_MB} MiB"
echo "### catalog, libpreboot-local (SQLite)"
mkdir -p "$T/local"
"$T/pg-bench" catalog "$B/backends/local/.libs/libpreboot-local.so" libpreboot_local "$T/local" \
    "$T/local" "" "$N"
echo "### catalog, libpreboot-pg (PostgreSQL on a Unix socket)"
mkdir -p "$T/pgcat"
"$T/pg-bench" catalog "$B/backends/pg/.libs/libpreboot-pg.so" libpreboot_pg "$DB password=$PW" \
    "$T/pgcat" http://127.0.0.1:9/bench "$N"

cat >"$T/rules.yaml" <<EOC
rules:
  - name: lab
    match: {mac: {starts_with: "52:54:00:aa"}}
    work: program lab.efi once
default:
  menu: never
EOC
echo "### policy, SQLite only"
"$T/pg-bench" policy "$T/rules.yaml" "$T/policy-a.db" "" "$N"
echo "### policy, shared through PostgreSQL"
"$T/pg-bench" policy "$T/rules.yaml" "$T/policy-b.db" "$DB password=$PW" "$N"

# ---- replication ---------------------------------------------------------------------------
TOKEN=bench-token
pa=${PORT_A:-48180}
pb=${PORT_B:-48181}
write_config() { # NAME PORT
    mkdir -p "$T/$1"
    cat >"$T/$1/p.yaml" <<EOC
daemon:
  plugin_path: [$B/plugins/http/.libs, $B/plugins/imaging/.libs, $B/backends/pg/.libs]
  log_dir: $T/$1/log
  state_dir: $T/$1/state
  pid_file: $T/$1/prebootd.pid
  control_socket: $T/$1/control.sock
plugins:
  - {module: http, listen: 127.0.0.1, port: $2}
  - module: imaging
    store: $T/$1/store
    database: $DB
    database_password_file: $T/db-password
    server_url: http://127.0.0.1:$2
    upload_token: $TOKEN
    upload_networks: [127.0.0.1/32]
    log_level: 1
EOC
}
write_config a "$pa"
write_config b "$pb"
"$B/core/prebootd" -f -c "$T/a/p.yaml" >"$T/a.err" 2>&1 &
pida=$!
"$B/core/prebootd" -f -c "$T/b/p.yaml" >"$T/b.err" 2>&1 &
pidb=$!
wait_until 20 "$B/tools/prebootctl" -c "$T/a/p.yaml" status || { echo "A did not start" >&2; exit 1; }
wait_until 20 "$B/tools/prebootctl" -c "$T/b/p.yaml" status || { echo "B did not start" >&2; exit 1; }
now() { date +%s.%N; }
nfiles() { find "$1" -type f 2>/dev/null | wc -l; }
# replicate: `prebootctl imaging replicate big` on B, timed until B holds as many chunk files
# as A (the command answers at once and replicates on a thread of its own: the files, under
# their real names once synced, are what counts).
replicate() {
    "$B/tools/prebootctl" -c "$T/b/p.yaml" imaging replicate big >"$T/replicate.out" 2>&1 &
    rp=$!
    want=$(nfiles "$T/a/store/chunks")
    while [ "$(nfiles "$T/b/store/chunks")" -lt "$want" ]; do sleep 0.05; done
    wait "$rp"
    tail -n 1 "$T/replicate.out"
}
secs() { echo "$2 - $1" | bc; }
# CPU seconds (user + system, every thread) used so far by A and B, and by this script's
# waited-for children (rsync): on a machine other jobs share, steadier than the wall time.
tck=$(getconf CLK_TCK)
cpu_ab() { echo "($(cut -d' ' -f14,15 "/proc/$pida/stat" "/proc/$pidb/stat" | tr ' \n' '++')0) / $tck" | bc -l; }
cpu_kids() { echo "($(sed 's/.*) //' "/proc/$$/stat" | cut -d' ' -f14,15 | tr ' ' '+')) / $tck" | bc -l; }
echo "### replication, ${SIZE_MB} MiB disk of random data, 4 MiB chunks"
head -c "$((SIZE_MB * 1048576))" /dev/urandom >"$T/disk.img"
t0=$(now)
env PREBOOT_TOKEN=$TOKEN "$B/tools/preboot-img" make "$T/disk.img" "127.0.0.1:$pa:big" >/dev/null || exit 1
t1=$(now)
echo "capture on A: $(secs "$t0" "$t1") s ($(du -sm "$T/a/store/chunks" | cut -f1) MiB of chunks)"
sync
c0=$(cpu_ab)
t0=$(now)
replicate
t1=$(now)
c1=$(cpu_ab)
echo "replicate to B (first copy): $(secs "$t0" "$t1") s, CPU of A and B $(printf %.2f "$(secs "$c0" "$c1")") s (load $(cut -d' ' -f1 /proc/loadavg))"
sync
c0=$(cpu_kids)
t0=$(now)
rsync -a "$T/a/store/chunks/" "$T/rsync/"
t1=$(now)
c1=$(cpu_kids)
echo "rsync -a of A's chunks (first copy): $(secs "$t0" "$t1") s, CPU $(printf %.2f "$(secs "$c0" "$c1")") s"
# 2 %: that many 4 MiB regions rewritten at spread offsets
regions=$((SIZE_MB / 4))
change=$((regions * 2 / 100))
[ "$change" -ge 1 ] || change=1
i=0
while [ $i -lt "$change" ]; do
    off=$(( (i * 50 + 7) % regions ))
    dd if=/dev/urandom of="$T/disk.img" bs=4M seek="$off" count=1 conv=notrunc 2>/dev/null
    i=$((i + 1))
done
env PREBOOT_TOKEN=$TOKEN "$B/tools/preboot-img" make "$T/disk.img" "127.0.0.1:$pa:big" >/dev/null || exit 1
sync
t0=$(now)
replicate
t1=$(now)
echo "replicate to B after a 2 % change ($change regions of 4 MiB): $(secs "$t0" "$t1") s"
t0=$(now)
rsync -a "$T/a/store/chunks/" "$T/rsync/"
t1=$(now)
echo "rsync -a after the change: $(secs "$t0" "$t1") s"
ra=$(cd "$T/a/store/chunks" && find . -type f | sort | xargs cat | sha256sum)
rb=$(cd "$T/b/store/chunks" && find . -type f | sort | xargs cat | sha256sum)
[ "$ra" = "$rb" ] && echo "B's chunk files are A's, byte for byte" || echo "B's chunks DIFFER from A's"
