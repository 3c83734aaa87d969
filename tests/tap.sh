# tap.sh - TAP helpers for the shell tests (sourced). Every wait is bounded.
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $*"; }
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
diag() { echo "# $*"; }
finish() { echo "1..$n"; [ "$failed" -eq 0 ]; }
# check DESCRIPTION COMMAND...: ok when the command succeeds.
check() { d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
# contains DESCRIPTION HAYSTACK NEEDLE
contains() {
    case "$2" in
    *"$3"*) ok "$1" ;;
    *) not_ok "$1"; diag "expected to find: $3"; printf '%s\n' "$2" | sed 's/^/#   /' ;;
    esac
}
# wait_until SECONDS COMMAND...: polls every 0.1 s.
wait_until() {
    limit=$(($1 * 10)); shift
    i=0
    while [ $i -lt $limit ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
# A UDP/TCP port unlikely to be taken: derived from the pid, in 20000-59999.
pick_port() { echo $((20000 + ($$ * 7 + ${1:-0} * 131) % 40000)); }
