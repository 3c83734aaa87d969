# shellcheck shell=sh
# pg-cluster.sh - sourced by the PostgreSQL tests (after tap.sh): a private cluster of
# Debian's postgresql in $T/pg (initdb and pg_ctl as nobody, on a Unix socket in that
# directory, password authentication), its connection string in $DB and the password in
# $T/db-password. Skips the whole test where the binaries, root or runuser are missing.
# pgctl start|stop ...; pg_cleanup stops it (call it from the test's EXIT trap).
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
[ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_ctl" ] ||
    skip_all "PostgreSQL's initdb and pg_ctl are not in $PGBIN (Debian: apt-get install postgresql)"
[ "$(id -u)" -eq 0 ] || skip_all "not root: the test cluster runs as the unprivileged user nobody"
command -v runuser >/dev/null 2>&1 || skip_all "runuser is not installed"
PGD=$T/pg
# As nobody, from a directory nobody may enter (the build tree may be under root's 0700
# home): PostgreSQL's tools complain on stderr about the one they are started from.
pgctl() (cd "$PGD" && runuser -u nobody -- "$PGBIN/pg_ctl" -D "$PGD/data" -l "$PGD/log" "$@" >/dev/null)
pg_cleanup() {
    [ -f "$PGD/data/postmaster.pid" ] && pgctl stop -m immediate >/dev/null 2>&1
}
PW=s3cret-db-pw-$$
mkdir -p "$PGD"
printf '%s\n' "$PW" >"$PGD/pw"
chown -R nobody "$PGD"
initdb_() (
    cd "$PGD" && runuser -u nobody -- "$PGBIN/initdb" -D "$PGD/data" -U preboot -A scram-sha-256 \
        --pwfile="$PGD/pw" --no-sync -E UTF8 >"$T/initdb.log" 2>&1
)
# PG_FSYNC=on for benchmarks (the tests need no durability across power cuts)
pg_start() { pgctl -w -o "-k $PGD -c listen_addresses='' -c fsync=${PG_FSYNC:-off}" start; }
# psql_ SQL: runs SQL as preboot, unaligned output
psql_() (cd "$PGD" && runuser -u nobody -- env PGPASSWORD="$PW" "$PGBIN/psql" -h "$PGD" -U preboot \
    -d postgres -Atc "$1" 2>&1)
DB="host=$PGD dbname=postgres user=preboot connect_timeout=5"
cp "$PGD/pw" "$T/db-password"
# free_port N: pick_port N, or the next one up that nothing listens on now (the tests of a
# parallel make check pick theirs the same way).
free_port() {
    fp=$(pick_port "$1")
    while ss -Hltn "sport = :$fp" 2>/dev/null | grep -q .; do fp=$((fp + 1)); done
    echo "$fp"
}
