#!/usr/bin/env bash
# .ci/win32.sh - the Windows stage of CI, from a clean clone (called by .ci/run):
#   1. the cross toolchain and wine (win32/build-deps.sh tools) and the test clients;
#   2. the dependency prefix, built from Debian source packages or restored from its cache
#      outside the tree (win32/build-deps.sh prefix; ~20 min cold, seconds warm);
#   3. ./configure --host=x86_64-w64-mingw32 --enable-werror && make;
#   4. make win32-check: make check with the unit tests run under wine (win32/wine-test.sh
#      as LOG_COMPILER; the few tests of POSIX-only code are listed, with their reasons, in
#      win32/local.mk), the TFTP and imaging integration tests (win32/test-wine-tftp.sh,
#      win32/test-wine-imaging.sh: prebootd.exe with imaging.dll and libpreboot-local.dll) and the service
#      through wine's service manager (win32/test-wine-service.sh, in a wine prefix of its own);
#   5. make win32-zip: the zip an administrator unpacks.
# Ends with one line "N passed, N failed, N skipped" (TAP results of make check, plus one
# each for the build and the zip). Exit status non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
src=$(pwd)
export DEBIAN_FRONTEND=noninteractive
jobs=$(nproc)
build=${WIN32_BUILD_DIR:-${TMPDIR:-/tmp}/preboot-win32-build.$$}
pass=0 fail=0 skip=0
t0=$(date +%s)
step() { echo "=== win32: $* ($(date -u +%H:%M:%S), +$(($(date +%s) - t0)) s)"; }
finish() {
    echo "win32: build dir $build, $(($(date +%s) - t0)) s"
    echo "$pass passed, $fail failed, $skip skipped"
    [ "$fail" -eq 0 ]
    exit
}

step "tools"
if [ "$(id -u)" -eq 0 ]; then
    win32/build-deps.sh tools || { fail=$((fail + 1)); finish; }
    # test clients of the integration test, and groff for the text man pages in the zip
    need=
    for p in curl atftp groff-base python3; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need="$need $p"
    done
    if [ -n "$need" ]; then
        # shellcheck disable=SC2086
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $need >/dev/null ||
            echo "win32: warning: could not install$need"
    fi
fi

step "dependency prefix"
# Lowest priority: on a cold cache this is the long part, and the machine is shared.
prefix=$(nice -n 19 win32/build-deps.sh prefix | sed -n 's/^PREFIX=//p' | tail -n 1)
if [ -z "$prefix" ] || [ ! -f "$prefix/lib/pkgconfig/glib-2.0.pc" ]; then
    echo "win32: the dependency prefix could not be built"
    fail=$((fail + 1))
    finish
fi
export WIN32_PREFIX=$prefix
export PKG_CONFIG_LIBDIR=$prefix/lib/pkgconfig PKG_CONFIG_PATH=
export WINEPREFIX=${WINEPREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/preboot-win32/wineprefix}
export WINEARCH=win64 WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY

step "wine prefix"
# Created before configure: libtool calls winepath during cross links, which would make
# one as a side effect, racing the parallel make.
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    mkdir -p "$(dirname "$WINEPREFIX")"
    timeout 300 wineboot -i >/dev/null 2>&1
    timeout 60 wineserver -w 2>/dev/null
fi

step "configure"
[ -x configure ] || autoreconf -fi >/dev/null 2>&1 || { fail=$((fail + 1)); finish; }
rm -rf "$build"
mkdir -p "$build"
cd "$build" || exit 1
if ! "$src/configure" --host=x86_64-w64-mingw32 --enable-werror \
    CPPFLAGS="-I$prefix/include" LDFLAGS="-L$prefix/lib" >configure.out 2>&1; then
    tail -n 30 configure.out
    fail=$((fail + 1))
    finish
fi

step "make"
if make -j"$jobs" >make.out 2>&1; then
    pass=$((pass + 1))
    echo "--- win32 build (-Werror): ok"
else
    grep -E 'error|Error' make.out | head -n 40
    tail -n 20 make.out
    fail=$((fail + 1))
    finish
fi

step "make check under wine"
make -j"$jobs" win32-check >check.out 2>&1
st=$?
p=$(sed -n 's/^# PASS: *\([0-9]*\).*/\1/p' check.out | tail -n 1)
f=$(sed -n 's/^# \(FAIL\|ERROR\|XPASS\): *\([0-9]*\).*/\2/p' check.out | awk '{n+=$1} END {print n+0}')
s=$(sed -n 's/^# SKIP: *\([0-9]*\).*/\1/p' check.out | tail -n 1)
p=${p:-0} s=${s:-0}
[ $st -ne 0 ] && [ "$f" -eq 0 ] && f=1
pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
echo "--- win32 make check: $p passed, $f failed, $s skipped"
grep -E '^(PASS|FAIL|ERROR|SKIP|XFAIL|XPASS):' check.out | sort | uniq -c | sort -rn | head -n 5
if [ "$f" -ne 0 ]; then
    grep -E '^(FAIL|ERROR|XPASS):' check.out | head -n 20
    for l in $(grep -l -E '^(not ok|ERROR|Bail out)' $(find . -name '*.log' -path '*tests*' -o -name '*.log' -path '*win32*') 2>/dev/null | head -n 5); do
        echo "----- $l"
        tail -n 30 "$l"
    done
    [ -f check.out ] && tail -n 15 check.out
fi

step "zip"
if make win32-zip >zip.out 2>&1; then
    pass=$((pass + 1))
    tail -n 1 zip.out
    python3 -m zipfile -l preboot-*-win64.zip | grep -E 'prebootd.exe|tftp.dll|imaging.dll|libpreboot-local.dll|libglib' | head -n 6
else
    tail -n 20 zip.out
    fail=$((fail + 1))
fi
finish
