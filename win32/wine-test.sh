#!/bin/sh
# wine-test.sh - LOG_COMPILER for `make check` of the Windows build: runs a test .exe under
# wine with the dependency DLLs on its path, so the unit tests of the Linux build run
# unchanged on Windows code.
#
#   make check LOG_COMPILER=$top_srcdir/win32/wine-test.sh WIN32_PREFIX=/path/to/prefix
#
# automake calls it as: wine-test.sh [AM_LOG_FLAGS] TEST [ARGS]; the flags (--tap) go to the
# test. Shell tests of the Linux build drive ELF programs and are skipped; the win32/ ones
# run wine themselves.
flags=
while [ $# -gt 0 ] && [ ! -f "$1" ]; do
    flags="$flags $1"
    shift
done
test=$1
shift
case $test in
*win32/*.sh) exec sh "$test" "$@" ;;
*.sh | *.test)
    echo "1..0 # SKIP shell test of the Linux build (not run against the Windows binaries)"
    exit 0
    ;;
esac
[ -f "$test.exe" ] && test=$test.exe

: "${WINEPREFIX:=${HOME}/.cache/preboot-win32/wineprefix}"
export WINEPREFIX WINEARCH=win64 WINEDEBUG=${WINEDEBUG:--all} WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY
if [ -z "$WIN32_PREFIX" ]; then
    WIN32_PREFIX=$(${PKG_CONFIG:-pkg-config} --variable=prefix glib-2.0 2>/dev/null)
fi
# the dependency DLLs, and the test's own directory (libtool puts DLLs in .libs/)
dir=$(cd "$(dirname "$test")" && pwd)
WINEPATH="$(winepath -w "$WIN32_PREFIX/bin" 2>/dev/null);$(winepath -w "$dir/.libs" 2>/dev/null)"
export WINEPATH

# msvcrt writes "\r\n" to pipes; TAP readers want "\n". Keep the test's status, and bound
# the run (a hung test must not hang CI).
out=$(mktemp)
timeout -k 10 "${WINE_TEST_TIMEOUT:-300}" wine "$test" $flags "$@" >"$out"
rc=$?
tr -d '\r' <"$out"
rm -f "$out"
exit $rc
