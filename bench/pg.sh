#!/bin/sh
# bench/pg.sh - several imaging servers on one PostgreSQL database (preboot-pg(8)), against
# one server on SQLite and against rsync. Results go in doc/benchmarks.md, ## pg.
#
#   bench/pg.sh [BUILD_DIR]                  (as root: the cluster runs as nobody)
#   SIZE_MB=4096 N=2000 bench/pg.sh /work/build
#   PIN=yes NS=yes LINK_MBIT=1000 bench/pg.sh _build     (two one-core servers on a gigabit LAN)
#
# 1. Catalog operations (image_commit, image_info, image_list, chunk_missing, result_add,
#    stat_add) through the backend ABI, N of each: libpreboot-local (SQLite) and
#    libpreboot-pg (a private cluster on a Unix socket, on this machine).
# 2. The policy store: assignments (prebootctl policy assign), decisions that use shared
#    work up, and decisions with nothing assigned, N of each: SQLite alone and shared
#    through PostgreSQL.
# 3. Replication: a SIZE_MB disk (random data) captured on server A; B pulls it with
#    `prebootctl imaging replicate`, timed, against rsync of A's chunk files; then 2 % of the
#    disk rewritten, captured again on A, replicated again and rsynced again (incremental).
#    Each reports its wall time and the CPU seconds of each side (A's and B's; the
#    database's apart): on a machine other jobs share, CPU time is the steadier measure.
#    Where the two servers and the two rsyncs run:
#    - default: A and B on loopback sharing every core, against `rsync -a` of A's chunk
#      files to an empty directory on the same file system (a local copy, no network);
#    - PIN=yes: one core per server, as two one-core machines: A, the database, the rsync
#      daemon and the capture on CPU_A (0), B, prebootctl and the rsync client on CPU_B (1)
#      (taskset); rsync is then a two-host transfer over TCP: `rsync --daemon` with a module
#      on A's chunk directory (config in the temp directory, port RSYNC_PORT, 48873) and
#      `rsync -a rsync://ADDR:PORT/chunks/ DEST` as the client;
#    - NS=yes (root): A and B each in a network namespace made here, joined by a veth pair
#      (NS_NET.1 and .2, NS_NET 10.250.16), the database reached on its Unix socket (in the
#      file system, so from both), the rsync daemon in A's, its client in B's; LINK_MBIT=N
#      puts tbf on both ends of the pair (no netem on this kernel): a LAN of N Mbit/s.
#    PERF=DIR records perf record -g of A and of B during each replicate into DIR, and
#    copies A's and B's logs there at the end (LOG_LEVEL=3: every request and pull, with
#    the millisecond each was done; default 1). PERF_ARGS replaces perf record's -g (e.g.
#    "-g -e sched:sched_switch": where each thread waits).
#    Ports: PORT_A (48180), PORT_B (48181), RSYNC_PORT; the cluster is on a Unix socket.
# Everything started here is stopped by PID, the namespaces deleted; the load generator is
# bench/pg-bench.c.
set -u
B=${1:-${top_builddir:-.}}
B=$(cd "$B" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MB=${SIZE_MB:-1024}
N=${N:-2000}
T=$(mktemp -d /tmp/pg-bench.XXXXXX)
chmod 755 "$T"
PIN=${PIN:-no}
NS=${NS:-no}
LINK_MBIT=${LINK_MBIT:-}
CPU_A=${CPU_A:-0}
CPU_B=${CPU_B:-1}
RSYNC_PORT=${RSYNC_PORT:-48873}
NS_NET=${NS_NET:-10.250.16}
NSA=pgbench$$a
NSB=pgbench$$b
NSES=
pida=
pidb=
pidr=
skip_all() { echo "skipped: $*" >&2; exit 0; }
cleanup() {
    for p in $pida $pidb $pidr; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    if [ -n "${PERF:-}" ]; then
        for s in a b; do [ -d "$T/$s/log" ] && cp -r "$T/$s/log" "$PERF/log-$s"; done
    fi
    pg_cleanup
    for ns in $NSES; do ip netns del "$ns"; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
if [ "$NS" = yes ] && [ "$(id -u)" -ne 0 ]; then
    rm -rf "$T"
    skip_all "NS=yes needs root (network namespaces); run it as root or without NS"
fi
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
# Two imaging servers on the database: A captures, B pulls. Where they run (see the top):
# ON_A and ON_B prefix every command of A's side and of B's (namespace, then core).
TOKEN=bench-token
pa=${PORT_A:-48180}
pb=${PORT_B:-48181}
ADDR_A=127.0.0.1
ADDR_B=127.0.0.1
ON_A=
ON_B=
if [ "$NS" = yes ]; then
    ADDR_A=$NS_NET.1
    ADDR_B=$NS_NET.2
    ip netns add "$NSA" || { echo "cannot create network namespaces" >&2; exit 1; }
    NSES=$NSA
    ip netns add "$NSB" || exit 1
    NSES="$NSA $NSB"
    ip link add name eth0 netns "$NSA" type veth peer name eth0 netns "$NSB" || exit 1
    for n in "$NSA:$ADDR_A" "$NSB:$ADDR_B"; do
        ip -n "${n%%:*}" addr add "${n#*:}/24" dev eth0
        ip -n "${n%%:*}" link set eth0 up
        ip -n "${n%%:*}" link set lo up
        # A LAN of LINK_MBIT: tbf on each end's egress (this kernel has no netem), its
        # bucket 10 ms of the rate (at least 128 KiB: a TSO packet of the veth must fit).
        if [ -n "$LINK_MBIT" ]; then
            burst=$((LINK_MBIT * 1250))
            [ "$burst" -ge 131072 ] || burst=131072
            tc -n "${n%%:*}" qdisc add dev eth0 root tbf rate "${LINK_MBIT}mbit" burst "$burst" \
                latency 20ms || exit 1
        fi
    done
    ON_A="ip netns exec $NSA"
    ON_B="ip netns exec $NSB"
fi
if [ "$PIN" = yes ]; then
    ON_A="$ON_A taskset -c $CPU_A"
    ON_B="$ON_B taskset -c $CPU_B"
    # The database on A's core: the postmaster and its backends (new ones inherit it).
    for p in $(head -n 1 "$PGD/data/postmaster.pid") $(pgrep -P "$(head -n 1 "$PGD/data/postmaster.pid")"); do
        taskset -a -p -c "$CPU_A" "$p" >/dev/null
    done
fi
write_config() { # NAME ADDR PORT
    mkdir -p "$T/$1"
    cat >"$T/$1/p.yaml" <<EOC
daemon:
  plugin_path: [$B/plugins/http/.libs, $B/plugins/imaging/.libs, $B/backends/pg/.libs]
  log_dir: $T/$1/log
  state_dir: $T/$1/state
  pid_file: $T/$1/prebootd.pid
  control_socket: $T/$1/control.sock
plugins:
  - {module: http, listen: $2, port: $3, log_level: ${LOG_LEVEL:-1}}
  - module: imaging
    store: $T/$1/store
    database: $DB
    database_password_file: $T/db-password
    server_url: http://$2:$3
    upload_token: $TOKEN
    upload_networks: [$2/32]
    log_level: ${LOG_LEVEL:-1}
EOC
}
write_config a "$ADDR_A" "$pa"
write_config b "$ADDR_B" "$pb"
# shellcheck disable=SC2086 # ON_A and ON_B are command prefixes, split on purpose
$ON_A "$B/core/prebootd" -f -c "$T/a/p.yaml" >"$T/a.err" 2>&1 &
pida=$!
# shellcheck disable=SC2086
$ON_B "$B/core/prebootd" -f -c "$T/b/p.yaml" >"$T/b.err" 2>&1 &
pidb=$!
wait_until 20 "$B/tools/prebootctl" -c "$T/a/p.yaml" status || { echo "A did not start" >&2; exit 1; }
wait_until 20 "$B/tools/prebootctl" -c "$T/b/p.yaml" status || { echo "B did not start" >&2; exit 1; }
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
# n: how many chunk files (chunks/xx/HASH.raw|zst) under $1; counted in this shell, not by
# forking find 20 times a second next to what is measured.
nchunks() {
    set -- "$1"/??/*
    if [ -e "$1" ]; then n=$#; else n=0; fi
}
# CPU seconds (user + system, every thread, and the children each waited for) used so far
# by the processes named: on a machine other jobs share, steadier than the wall time.
tck=$(getconf CLK_TCK)
cpu_of() {
    s=0
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] && s="$s+$(sed 's/.*) //' "/proc/$p/stat" | cut -d' ' -f12-15 | tr ' ' '+')"
    done
    echo "($s) / $tck" | bc -l
}
# the cluster: the postmaster (the backends it reaped count in its children's time) and
# its processes now
db_pids() { pm=$(head -n 1 "$PGD/data/postmaster.pid"); echo "$pm" $(pgrep -P "$pm"); }
cpu_self_kids() { echo "($(sed 's/.*) //' "/proc/$$/stat" | cut -d' ' -f14,15 | tr ' ' '+')) / $tck" | bc -l; }
f2() { printf %.2f "$1"; }
# replicate: `prebootctl imaging replicate big` on B, timed until B holds as many chunk files
# as A (the command answers at once and replicates on a thread of its own: the files, under
# their real names once synced, are what counts). Sets wall, cpua, cpub, cpudb.
replicate() {
    nchunks "$T/a/store/chunks"
    want=$n
    [ -n "${PERF:-}" ] && perf_start "$1"
    dbp0=$(db_pids)
    # shellcheck disable=SC2086
    ca0=$(cpu_of $pida) cb0=$(cpu_of $pidb) cd0=$(cpu_of $dbp0)
    t0=$(now)
    # shellcheck disable=SC2086
    $ON_B "$B/tools/prebootctl" -c "$T/b/p.yaml" imaging replicate big >"$T/replicate.out" 2>&1 &
    rp=$!
    n=0
    while [ "$n" -lt "$want" ]; do
        sleep 0.05
        nchunks "$T/b/store/chunks"
    done
    t1=$(now)
    # shellcheck disable=SC2046
    ca1=$(cpu_of $pida) cb1=$(cpu_of $pidb) cd1=$(cpu_of $(db_pids))
    [ -n "${PERF:-}" ] && perf_stop
    wait "$rp"
    wall=$(secs "$t0" "$t1")
    cpua=$(secs "$ca0" "$ca1") cpub=$(secs "$cb0" "$cb1") cpudb=$(secs "$cd0" "$cd1")
    tail -n 1 "$T/replicate.out"
}
# PERF=DIR: perf record -g of A and of B during the first copy, into DIR/{a,b}-NAME.data.
perfs=
perf_start() {
    mkdir -p "$PERF"
    # shellcheck disable=SC2086 # PERF_ARGS: several words on purpose
    perf record ${PERF_ARGS:--g} -o "$PERF/a-$1.data" -p "$pida" >/dev/null 2>&1 &
    perfs=$!
    # shellcheck disable=SC2086
    perf record ${PERF_ARGS:--g} -o "$PERF/b-$1.data" -p "$pidb" >/dev/null 2>&1 &
    perfs="$perfs $!"
    sleep 1 # perf attached
}
perf_stop() {
    for p in $perfs; do kill -INT "$p"; done
    for p in $perfs; do wait "$p"; done
    perfs=
}
# The rsync to compare with. Default: `rsync -a` of A's chunk files to an empty directory on
# the same file system (a local copy). PIN or NS: a two-host transfer, an rsync daemon on
# A's side serving A's chunk directory over TCP (port RSYNC_PORT), the client on B's.
if [ "$PIN" = yes ] || [ "$NS" = yes ]; then
    cat >"$T/rsyncd.conf" <<EOC
use chroot = no
uid = root
gid = root
[chunks]
    path = $T/a/store/chunks
    read only = yes
EOC
    # shellcheck disable=SC2086
    $ON_A rsync --daemon --no-detach --config="$T/rsyncd.conf" --address="$ADDR_A" \
        --port="$RSYNC_PORT" --log-file="$T/rsyncd.log" &
    pidr=$!
    # shellcheck disable=SC2086
    wait_until 10 $ON_B rsync "rsync://$ADDR_A:$RSYNC_PORT/" || { echo "rsync daemon did not start" >&2; exit 1; }
    RSYNC_SRC=rsync://$ADDR_A:$RSYNC_PORT/chunks/
    rsync_how="rsync -a $RSYNC_SRC (daemon on A's side, client on B's)"
else
    RSYNC_SRC=$T/a/store/chunks/
    rsync_how="rsync -a of A's chunk files to an empty directory"
fi
# rsync_run: times it (and the sync after it, which a pull's own syncs pay within its time);
# sets wall, syncs, cpua (the daemon's, its reaped children's), cpub (the client's).
rsync_run() {
    sync
    ca0=$(cpu_of $pidr) cb0=$(cpu_self_kids)
    t0=$(now)
    # shellcheck disable=SC2086
    $ON_B rsync -a "$RSYNC_SRC" "$T/rsync/" || echo "rsync FAILED"
    t1=$(now)
    sync
    t2=$(now)
    # the daemon's child for this transfer reaped (its time then counts in the daemon's)
    [ -n "$pidr" ] && wait_until 10 sh -c "! pgrep -P $pidr >/dev/null"
    ca1=$(cpu_of $pidr) cb1=$(cpu_self_kids)
    wall=$(secs "$t0" "$t1")
    syncs=$(secs "$t1" "$t2")
    cpua=$(secs "$ca0" "$ca1") cpub=$(secs "$cb0" "$cb1")
}
case "$PIN/$NS" in
yes/no) where="A on CPU $CPU_A, B on CPU $CPU_B, loopback" ;;
no/yes) where="A and B in two network namespaces (a veth pair${LINK_MBIT:+, $LINK_MBIT Mbit/s}), not pinned" ;;
yes/yes) where="A on CPU $CPU_A, B on CPU $CPU_B, in two network namespaces (a veth pair${LINK_MBIT:+, $LINK_MBIT Mbit/s})" ;;
*) where="A and B on loopback, not pinned" ;;
esac
echo "### replication, ${SIZE_MB} MiB disk of random data, 4 MiB chunks; $where"
head -c "$((SIZE_MB * 1048576))" /dev/urandom >"$T/disk.img"
t0=$(now)
# shellcheck disable=SC2086
env PREBOOT_TOKEN=$TOKEN $ON_A "$B/tools/preboot-img" make "$T/disk.img" "$ADDR_A:$pa:big" \
    >/dev/null 2>"$T/capture.err" || { cat "$T/capture.err" >&2; exit 1; }
t1=$(now)
echo "capture on A: $(secs "$t0" "$t1") s ($(du -sm "$T/a/store/chunks" | cut -f1) MiB of chunks)"
sync
replicate first
first=$wall
echo "replicate to B (first copy): $wall s; CPU A $(f2 "$cpua") s, B $(f2 "$cpub") s, database $(f2 "$cpudb") s (load $(cut -d' ' -f1 /proc/loadavg))"
rsync_run
rfirst=$wall
echo "$rsync_how (first copy): $wall s (then sync $(f2 "$syncs") s); CPU A $(f2 "$cpua") s, B $(f2 "$cpub") s"
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
# shellcheck disable=SC2086
env PREBOOT_TOKEN=$TOKEN $ON_A "$B/tools/preboot-img" make "$T/disk.img" "$ADDR_A:$pa:big" \
    >/dev/null 2>"$T/capture.err" || { cat "$T/capture.err" >&2; exit 1; }
sync
replicate again
echo "replicate to B after a 2 % change ($change regions of 4 MiB): $wall s ($(echo "scale=1; 100 * $wall / $first" | bc) % of the first copy); CPU A $(f2 "$cpua") s, B $(f2 "$cpub") s"
rsync_run
echo "rsync after the change: $wall s ($(echo "scale=1; 100 * $wall / $rfirst" | bc) % of its first copy); CPU A $(f2 "$cpua") s, B $(f2 "$cpub") s"
ra=$(cd "$T/a/store/chunks" && find . -type f | sort | xargs cat | sha256sum)
rb=$(cd "$T/b/store/chunks" && find . -type f | sort | xargs cat | sha256sum)
rr=$(cd "$T/rsync" && find . -type f | sort | xargs cat | sha256sum)
[ "$ra" = "$rb" ] && echo "B's chunk files are A's, byte for byte" || echo "B's chunks DIFFER from A's"
[ "$ra" = "$rr" ] || echo "rsync's copy DIFFERS from A's chunks"
