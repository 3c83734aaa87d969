#!/bin/bash
# Cross-build preboot's Windows dependencies (glib-2.0, libyaml, libltdl, with
# zlib, libffi, pcre2 and a stub libintl; sqlite3 and libmicrohttpd for the http and
# imaging plugins; zstd and OpenSSL's libcrypto for lib/image) for x86_64-w64-mingw32 from Debian's
# own SOURCE packages: nothing is downloaded except from the Debian archive.
#
#   win32/build-deps.sh [tools] [prefix]     (default: both)
#
#   tools   apt-get install the cross toolchain, wine and build tools (root)
#   prefix  build the prefix unless the cache already has it; prints
#           PREFIX=<dir> as its last line
#
# The prefix lives OUTSIDE the source tree, in
#   ${PREBOOT_WIN32_CACHE:-~/.cache/preboot-win32}/prefix
# built in steps (one per package, in dependency order).  Each step is keyed
# on its own recipe (the shell function that builds it), the exact Debian
# source version it builds and the key of the step before it; a step whose
# key changed is rebuilt together with every step after it.  A security
# update of glib thus rebuilds glib and what follows, adding a library at the
# end rebuilds only that library.  The keys are in prefix/.stamps/.  The .pc
# files hold absolute paths: a restored cache must keep the same path.
set -euo pipefail

HOST=x86_64-w64-mingw32
JOBS=${JOBS:-2}
CACHE=${PREBOOT_WIN32_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/preboot-win32}
SELF=$(readlink -f "$0")
# step:Debian source package, in build order (glib needs the three before it)
STEPS="zlib:zlib libffi:libffi pcre2:pcre2 glib:glib2.0 libyaml:libyaml libltdl:libtool
       sqlite3:sqlite3 libmicrohttpd:libmicrohttpd zstd:libzstd openssl:openssl"
PKGS=$(for s in $STEPS; do echo "${s#*:}"; done)
STAGES=${*:-tools prefix}

APTDIR=$CACHE/apt
APTSRC=(-o "Dir::Etc::SourceList=$APTDIR/src.sources" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache" -o APT::Sandbox::User=root)

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

do_tools() {
  local need=(gcc-mingw-w64-x86-64 wine wine64 meson ninja-build pkgconf python3 libtool
              autoconf automake make dpkg-dev xz-utils tcl)
  # Skip apt entirely when everything is there (the warm CI path).
  if dpkg-query -W -f='${Status}\n' "${need[@]}" 2>/dev/null | grep -vq 'install ok installed' ||
     [ "$(dpkg-query -W -f='${Status}\n' "${need[@]}" 2>/dev/null | wc -l)" -ne ${#need[@]} ]; then
    log "installing cross tools"
    apt-get -o DPkg::Lock::Timeout=900 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
}

# deb-src twin of the machine's own Debian sources (same archive, same suites).
src_lists() {
  mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed 's/^Types: *deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$APTDIR/src.sources"
  else
    # one-line format: turn "deb URI suite comp" into "Types: deb-src" stanzas
    grep -h '^deb ' /etc/apt/sources.list | while read -r _ uri suite comps; do
      printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n\n' "$uri" "$suite" "$comps"
    done >"$APTDIR/src.sources"
  fi
  # Refresh at most every 6 hours: the key must follow security updates, but a
  # warm CI run should not pay for an index download every time.
  if [ -z "$(find "$APTDIR/lists" -maxdepth 1 -name '*Sources*' -mmin -360 2>/dev/null | head -1)" ]; then
    apt-get "${APTSRC[@]}" update -qq
  fi
}

# The source versions to build, one "pkg=version" a line: for each package the newest
# version in the index whose .dsc the archive really serves (a mirror can list a
# security update before its pool has the files).  The .dsc files are kept, so a warm
# run asks the archive nothing for versions it already resolved.
src_versions() {
  local p v uri
  mkdir -p "$APTDIR/dsc"
  for p in $PKGS; do
    for v in $(apt-cache "${APTSRC[@]}" showsrc "$p" | awk '/^Version:/ { print $2 }' | sort -u -r -V); do
      uri=$(apt-get "${APTSRC[@]}" source --print-uris "$p=$v" 2>/dev/null |
        awk '$2 ~ /\.dsc$/ { gsub("\047", "", $1); print $1; exit }')
      [ -n "$uri" ] || continue
      if [ -s "$APTDIR/dsc/${uri##*/}" ] ||
         /usr/lib/apt/apt-helper download-file "$uri" "$APTDIR/dsc/${uri##*/}" >/dev/null 2>&1; then
        echo "$p=$v"
        continue 2
      fi
      log "warning: $p $v is listed but its .dsc cannot be fetched; trying an older version"
    done
    log "no fetchable source version of $p"
    return 1
  done
}

# ---- recipe: b_STEP builds one step; its text is part of the step's key
write_cross() {
  cat >"$WORK/cross-mingw64.ini" <<EOF
[binaries]
c = '$HOST-gcc'
ar = '$HOST-ar'
strip = '$HOST-strip'
windres = '$HOST-windres'
# meson 1.0 spelling; 'pkg-config =' is silently ignored and meson then tries to download wraps
pkgconfig = 'pkg-config'

[properties]
pkg_config_libdir = '$PREFIX/lib/pkgconfig'

[built-in options]
c_args = ['-I$PREFIX/include']
c_link_args = ['-L$PREFIX/lib']

[host_machine]
system = 'windows'
cpu_family = 'x86_64'
cpu = 'x86_64'
endian = 'little'
EOF
}

# mingw has no libintl and glib's fallback wrap would download one.  A stub
# that returns untranslated strings.  It must be a DLL: glib-2.0.pc lists
# -lintl, and with only a static libintl.a libtool silently builds -module
# plugins as static archives (lt_dlopenext then says "file not found").
write_intl_stub() {
  local d=$1/subprojects/proxy-libintl
  mkdir -p "$d"
  cat >"$d/meson.build" <<'EOF'
project('proxy-libintl', 'c', version : '0.0-stub')
intl_lib = library('intl', 'libintl.c', install : true)
install_headers('libintl.h')
intl_dep = declare_dependency(link_with : intl_lib, include_directories : include_directories('.'))
EOF
  cat >"$d/libintl.h" <<'EOF'
/* Minimal libintl stub: no message catalogs, returns untranslated strings. */
#ifndef _LIBINTL_H
#define _LIBINTL_H 1
#include <locale.h>
#ifndef LC_MESSAGES
#define LC_MESSAGES 1729
#endif
#ifdef __cplusplus
extern "C" {
#endif
/* format_arg: glib builds with -Werror=format=2 */
#if defined(__GNUC__)
#define LI_FA(n) __attribute__((__format_arg__(n)))
#else
#define LI_FA(n)
#endif
char *gettext(const char *msgid) LI_FA(1);
char *dgettext(const char *domain, const char *msgid) LI_FA(2);
char *dcgettext(const char *domain, const char *msgid, int category) LI_FA(2);
char *ngettext(const char *msgid1, const char *msgid2, unsigned long n) LI_FA(1) LI_FA(2);
char *dngettext(const char *domain, const char *msgid1, const char *msgid2, unsigned long n) LI_FA(2) LI_FA(3);
char *dcngettext(const char *domain, const char *msgid1, const char *msgid2, unsigned long n, int category) LI_FA(2) LI_FA(3);
char *textdomain(const char *domain);
char *bindtextdomain(const char *domain, const char *dirname);
char *bind_textdomain_codeset(const char *domain, const char *codeset);
#ifdef __cplusplus
}
#endif
#endif
EOF
  cat >"$d/libintl.c" <<'EOF'
#include "libintl.h"
static char current_domain[] = "messages";
char *gettext(const char *m) { return (char *) m; }
char *dgettext(const char *d, const char *m) { (void) d; return (char *) m; }
char *dcgettext(const char *d, const char *m, int c) { (void) d; (void) c; return (char *) m; }
char *ngettext(const char *a, const char *b, unsigned long n) { return (char *) (n == 1 ? a : b); }
char *dngettext(const char *d, const char *a, const char *b, unsigned long n) { (void) d; return (char *) (n == 1 ? a : b); }
char *dcngettext(const char *d, const char *a, const char *b, unsigned long n, int c) { (void) d; (void) c; return (char *) (n == 1 ? a : b); }
char *textdomain(const char *d) { return d ? (char *) d : current_domain; }
char *bindtextdomain(const char *d, const char *dir) { (void) d; return (char *) dir; }
char *bind_textdomain_codeset(const char *d, const char *cs) { (void) d; return (char *) cs; }
EOF
}

step() { # step NAME cmd...: output to logs/NAME.log, wall time to stderr
  local name=$1 t0 rc
  shift
  t0=$(date +%s)
  log ">>> $name"
  set +e
  (set -e; "$@") >"$WORK/logs/$name.log" 2>&1
  rc=$?
  set -e
  if [ $rc -ne 0 ]; then
    log "FAILED: $name (log: $WORK/logs/$name.log)"
    tail -40 "$WORK/logs/$name.log" >&2
    exit 1
  fi
  log "    $name: $(($(date +%s) - t0)) s"
}

srcdir() { echo "$WORK/src/$1"; } # each package extracted under its Debian source name

b_source() { # b_source PKG: fetch and unpack one Debian source package
  cd "$WORK/src"
  apt-get "${APTSRC[@]}" source --download-only "$(grep "^$1=" "$VERSIONS")"
  local d
  for d in "$1"_*.dsc; do
    rm -rf "$1"
    dpkg-source --no-check -x "$d" "$1" # applies Debian's patches (CVE fixes included)
  done
}
b_zlib() { # Debian's dfsg tarball drops win32/Makefile.gcc: static lib via ./configure
  rm -rf "$WORK/build/zlib"
  cp -a "$(srcdir zlib)" "$WORK/build/zlib"
  cd "$WORK/build/zlib"
  CHOST=$HOST CFLAGS=-O2 ./configure --static --prefix="$PREFIX"
  make -j"$JOBS" libz.a
  make install
}
b_autotools() { # b_autotools NAME SUBDIR configure-args...
  local name=$1 sub=$2
  shift 2
  rm -rf "$WORK/build/$name"
  mkdir -p "$WORK/build/$name"
  cd "$WORK/build/$name"
  "$(srcdir "$name")/$sub/configure" --host=$HOST --build="$(gcc -dumpmachine)" --prefix="$PREFIX" "$@"
  make -j"$JOBS"
  make install
}
b_libffi() { b_autotools libffi . --disable-static --disable-docs --disable-multi-os-directory; }
b_pcre2() {
  b_autotools pcre2 . --disable-static --enable-pcre2-8 --disable-pcre2-16 --disable-pcre2-32 \
    --disable-pcre2grep-libz --disable-pcre2grep-libbz2
}
b_glib() {
  local s; s=$(srcdir glib2.0)
  write_intl_stub "$s"
  rm -rf "$WORK/build/glib"
  meson setup "$WORK/build/glib" "$s" --cross-file "$WORK/cross-mingw64.ini" \
    --prefix="$PREFIX" --libdir=lib --buildtype=release --wrap-mode=nodownload \
    -Ddefault_library=shared -Dtests=false -Dinstalled_tests=false -Dnls=disabled \
    -Dman=false -Dgtk_doc=false -Dsysprof=disabled -Dselinux=disabled -Dxattr=false \
    -Dlibmount=disabled -Dlibelf=disabled -Ddtrace=false -Dsystemtap=false
  ninja -C "$WORK/build/glib" -j"$JOBS"
  meson install -C "$WORK/build/glib" --no-rebuild
}
b_libyaml() { # Debian's orig tarball is a git export without configure
  [ -x "$(srcdir libyaml)/configure" ] || (cd "$(srcdir libyaml)" && autoreconf -fi)
  b_autotools libyaml . --disable-static
}
b_libltdl() { b_autotools libtool libltdl --disable-static --enable-ltdl-install; }
b_sqlite3() {
  # Debian ships the full source tree, whose configure cannot cross-build (it builds its
  # generators for the host and takes mingw for Unix). So: the amalgamation is generated
  # natively (tclsh), then compiled as one DLL, as upstream's own Windows builds are.
  local s b v
  s=$(srcdir sqlite3) b=$WORK/build/sqlite3
  rm -rf "$b"
  mkdir -p "$b"
  cd "$b"
  "$s/configure" --disable-tcl --disable-readline --disable-editline
  make sqlite3.c sqlite3.h
  v=$(cat "$s/VERSION")
  $HOST-gcc -O2 -DSQLITE_THREADSAFE=1 -DSQLITE_ENABLE_MATH_FUNCTIONS -DSQLITE_OS_WIN=1 \
    -shared -o libsqlite3-0.dll sqlite3.c -Wl,--out-implib,libsqlite3.dll.a
  mkdir -p "$PREFIX/bin" "$PREFIX/lib/pkgconfig" "$PREFIX/include"
  cp libsqlite3-0.dll "$PREFIX/bin/"
  cp libsqlite3.dll.a "$PREFIX/lib/"
  cp sqlite3.h "$s/src/sqlite3ext.h" "$PREFIX/include/"
  printf '%s\n' "prefix=$PREFIX" 'libdir=${prefix}/lib' 'includedir=${prefix}/include' '' \
    'Name: SQLite' 'Description: SQL database engine' "Version: $v" \
    'Libs: -L${libdir} -lsqlite3' 'Cflags: -I${includedir}' >"$PREFIX/lib/pkgconfig/sqlite3.pc"
}
b_libmicrohttpd() {
  b_autotools libmicrohttpd . --disable-static --disable-https --disable-doc --disable-examples \
    --disable-curl --disable-nls --with-threads=auto
  # auto, not w32: 0.9.75 only probes for W32 threads under auto (and then prefers them on
  # mingw); the check keeps a POSIX-threads build (libwinpthread) from slipping in.
  grep -q "^#define MHD_USE_W32_THREADS 1" "$WORK/build/libmicrohttpd/MHD_config.h"
}
# zstd and libcrypto: lib/image's portable half (chunks are zstd frames named by SHA-256),
# for the imaging plugin and libpreboot-local.  zstd's own lib/Makefile knows the mingw DLL
# (its meson build wants a C++ compiler); that DLL is one-threaded, which is what lib/image
# wants (it compresses chunks in parallel itself).
b_zstd() {
  local v
  rm -rf "$WORK/build/zstd"
  cp -a "$(srcdir libzstd)" "$WORK/build/zstd"
  cd "$WORK/build/zstd/lib"
  mkdir -p dll
  make -j"$JOBS" TARGET_SYSTEM=Windows_NT CC=$HOST-gcc AR=$HOST-ar CFLAGS=-O2 dll/libzstd.dll
  v=$(sed -n 's/^#define ZSTD_VERSION_\(MAJOR\|MINOR\|RELEASE\) *\([0-9]*\).*/\2/p' zstd.h | paste -sd.)
  mkdir -p "$PREFIX/bin" "$PREFIX/lib/pkgconfig" "$PREFIX/include"
  cp dll/libzstd.dll "$PREFIX/bin/"
  cp dll/libzstd.dll.a "$PREFIX/lib/"
  cp zstd.h zdict.h zstd_errors.h "$PREFIX/include/"
  printf '%s\n' "prefix=$PREFIX" 'libdir=${prefix}/lib' 'includedir=${prefix}/include' '' \
    'Name: zstd' 'Description: fast lossless compression algorithm library' "Version: $v" \
    'Libs: -L${libdir} -lzstd' 'Cflags: -I${includedir}' >"$PREFIX/lib/pkgconfig/libzstd.pc"
}
# OpenSSL's own mingw64 target; only the libraries (build_libs: libcrypto and the small
# libssl), no apps, engines or provider modules (the default provider is built in).
b_openssl() {
  rm -rf "$WORK/build/openssl"
  cp -a "$(srcdir openssl)" "$WORK/build/openssl"
  cd "$WORK/build/openssl"
  ./Configure mingw64 --cross-compile-prefix=$HOST- --prefix="$PREFIX" --libdir=lib \
    shared no-tests no-engine no-module no-legacy no-comp
  make -j"$JOBS" build_libs
  make install_dev
  mkdir -p "$PREFIX/bin"
  cp libcrypto-3-x64.dll libssl-3-x64.dll "$PREFIX/bin/"
}
# ---- recipe end

# The key of a step: its recipe and helpers, its source version, the previous key.
step_key() { # step_key STEP PKG PREVKEY
  local helpers=""
  case $1 in
  glib) helpers="write_cross write_intl_stub" ;;
  zstd | openssl) helpers="srcdir" ;;
  zlib) ;;
  *) helpers="b_autotools srcdir" ;;
  esac
  { declare -f "b_$1" $helpers; grep "^$2=" "$VERSIONS"; echo "$3"; } | sha256sum | cut -c1-16
}

do_prefix() {
  src_lists
  PREFIX=$CACHE/prefix
  WORK=$CACHE/work
  VERSIONS=$CACHE/versions.new
  src_versions >"$VERSIONS"
  export PKG_CONFIG_LIBDIR=$PREFIX/lib/pkgconfig PKG_CONFIG_PATH= CPPFLAGS="-I$PREFIX/include" LDFLAGS="-L$PREFIX/lib"
  mkdir -p "$PREFIX/.stamps"
  local prev="" s step pkg key todo=() keys=() fetched=0
  for s in $STEPS; do
    step=${s%%:*} pkg=${s#*:}
    key=$(step_key "$step" "$pkg" "$prev")
    # once one step is stale, all after it are (their key chains through it)
    if [ ${#todo[@]} -gt 0 ] || [ "$(cat "$PREFIX/.stamps/$step" 2>/dev/null)" != "$key" ]; then
      todo+=("$s")
      keys+=("$key")
    fi
    prev=$key
  done
  if [ ${#todo[@]} -eq 0 ]; then
    log "dependency prefix up to date: $PREFIX (key $prev)"
    echo "PREFIX=$PREFIX"
    return 0
  fi
  log "building ${todo[*]%%:*} into $PREFIX (cold, all steps: ~20 min on 2 cores)"
  rm -rf "$WORK"
  mkdir -p "$WORK/src" "$WORK/build" "$WORK/logs"
  write_cross
  local i
  for i in "${!todo[@]}"; do
    step=${todo[$i]%%:*} pkg=${todo[$i]#*:}
    rm -f "$PREFIX/.stamps/$step"
    step "source-$pkg" b_source "$pkg"
    step "$step" "b_$step"
    echo "${keys[$i]}" >"$PREFIX/.stamps/$step"
  done
  mv "$VERSIONS" "$CACHE/versions"
  # the sources and build trees are only needed to debug a failed build
  rm -rf "$WORK"
  log "done: $(du -sh "$PREFIX" | cut -f1) (key $prev)"
  echo "PREFIX=$PREFIX"
}

for s in $STAGES; do
  case $s in
  tools) do_tools ;;
  prefix) do_prefix ;;
  *) echo "usage: $0 [tools] [prefix]" >&2; exit 2 ;;
  esac
done
