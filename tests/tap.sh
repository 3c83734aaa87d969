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
# pick_port N: a UDP/TCP port unlikely to be taken, derived from the pid and N, in
# 20000-32767: below Linux's ephemeral range (32768-60999), where any client's connection
# may hold a port at the moment a daemon binds it. Moved up while ss(8) shows a socket on it
# (another test's daemon), when ss is there.
pick_port() {
    _pp=$((20000 + ($$ * 7 + ${1:-0} * 131) % 12768))
    if command -v ss >/dev/null 2>&1; then
        _pi=0
        while [ $_pi -lt 100 ] && ss -Hantu "( sport = :$_pp )" 2>/dev/null | grep -q .; do
            _pp=$((_pp + 1))
            [ $_pp -le 32767 ] || _pp=20000
            _pi=$((_pi + 1))
        done
    fi
    echo $_pp
}
