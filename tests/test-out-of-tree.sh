#!/bin/sh
# test-out-of-tree.sh - install into a scratch DESTDIR, build a plugin against the
# installed header found through the installed preboot-plugin.pc, and load it in prebootd.
. "$top_srcdir/tests/tap.sh"
command -v pkg-config >/dev/null 2>&1 || skip_all "pkg-config is not installed"
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

${MAKE:-make} -C "$top_builddir" install DESTDIR="$tmp/inst" >"$tmp/install.log" 2>&1
rc=$?
check "make install DESTDIR works" [ $rc -eq 0 ]
[ $rc -eq 0 ] || { sed 's/^/# /' "$tmp/install.log" | tail -20; finish; exit 1; }
pc=$(find "$tmp/inst" -name preboot-plugin.pc | head -n 1)
check "preboot-plugin.pc is installed" [ -n "$pc" ]
hdr=$(find "$tmp/inst" -path '*/preboot/plugin.h' | head -n 1)
check "preboot/plugin.h is installed" [ -n "$hdr" ]
pcdir=$(dirname "$pc")
cflags=$(PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$tmp/inst pkg-config --cflags preboot-plugin)
plugindir=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=plugindir preboot-plugin)
check "the .pc file names the plugin directory" [ -n "$plugindir" ]
mkdir -p "$tmp/mods"
${CC:-cc} $cflags -std=gnu11 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden \
    -Wno-unused-parameter -o "$tmp/mods/oot.so" "$top_srcdir/tests/data/oot/oot.c" 2>"$tmp/cc.log"
check "the plugin compiles against the installed header alone" [ $? -eq 0 ]
sed 's/^/# /' "$tmp/cc.log"
case "$cflags" in
*"$tmp/inst"*) ok "the include path is the installed one" ;;
*) not_ok "the include path is the installed one ($cflags)" ;;
esac
syms=$(nm -D --defined-only "$tmp/mods/oot.so" 2>/dev/null | awk '$2 == "T" {print $3}')
check "only the entry point is exported" [ "$syms" = "oot_LTX_preboot_plugin_entry" ]

sbin=$(find "$tmp/inst" -type f -name prebootd | head -n 1)
bin=$(find "$tmp/inst" -type f -name prebootctl | head -n 1)
out=$("$sbin" -P "$tmp/mods" --list-plugins 2>&1)
contains "the installed prebootd lists it" "$out" "oot          0.0.1    ABI 1.1"
cat >"$tmp/oot.yaml" <<EOC
daemon:
  plugin_path: [$tmp/mods]
  log_dir: $tmp/log
  state_dir: $tmp/state
  pid_file: $tmp/prebootd.pid
  control_socket: $tmp/control.sock
plugins:
  - module: oot
    motto: loaded from outside
EOC
"$sbin" -f -c "$tmp/oot.yaml" >"$tmp/stderr" 2>&1 &
pid=$!
check "the daemon answers" wait_until 10 "$bin" -c "$tmp/oot.yaml" status
out=$("$bin" -c "$tmp/oot.yaml" status)
contains "the out-of-tree plugin runs" "$out" "oot: running"
contains "its status text is shown" "$out" "out of tree: loaded from outside"
out=$("$bin" -c "$tmp/oot.yaml" stats)
contains "its counter is shown" "$out" "oot: creations = 1"
kill "$pid"; wait "$pid"; pid=

# An imaging backend built against the installed <preboot/backend.h> alone, loaded by the
# installed imaging plugin through LIBRARY_NAME.
bhdr=$(find "$tmp/inst" -path '*/preboot/backend.h' | head -n 1)
imaging=$(find "$tmp/inst" -name imaging.so | head -n 1)
if [ -z "$imaging" ]; then
    skip "an out-of-tree imaging backend (imaging is not built here: lib/image is Linux only)"
else
    check "preboot/backend.h is installed" [ -n "$bhdr" ]
    ${CC:-cc} $cflags -std=gnu11 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden \
        -Wno-unused-parameter -o "$tmp/mods/liboot-backend.so" \
        "$top_srcdir/tests/data/oot/oot-backend.c" 2>"$tmp/cc.log"
    check "a backend compiles against the installed header alone" [ $? -eq 0 ]
    sed 's/^/# /' "$tmp/cc.log"
    syms=$(nm -D --defined-only "$tmp/mods/liboot-backend.so" 2>/dev/null | awk '$2 == "T" {print $3}')
    check "only its entry point is exported" [ "$syms" = "liboot_backend_LTX_preboot_backend_entry" ]
    cat >"$tmp/img.yaml" <<EOC
daemon:
  plugin_path: [$(dirname "$imaging")]
  log_dir: $tmp/log
  state_dir: $tmp/state
  pid_file: $tmp/prebootd.pid
  control_socket: $tmp/control.sock
plugins:
  - module: imaging
    library_name: $tmp/mods/liboot-backend.so
EOC
    "$sbin" -f -c "$tmp/img.yaml" >"$tmp/stderr" 2>&1 &
    pid=$!
    check "the daemon answers" wait_until 10 "$bin" -c "$tmp/img.yaml" status
    out=$("$bin" -c "$tmp/img.yaml" status)
    contains "imaging runs on the out-of-tree backend" "$out" "backend oot"
    out=$("$bin" -c "$tmp/img.yaml" imaging list)
    contains "its catalog is the backend's" "$out" "made-up-by-oot-backend"
    out=$("$bin" -c "$tmp/img.yaml" imaging gc 2>&1)
    check "a backend without gc (optional, ABI 1.1) refuses it" [ $? -ne 0 ]
    contains "... saying so" "$out" "does not support garbage collection"
    kill "$pid"; wait "$pid"; pid=
    cat >"$tmp/img-bad.yaml" <<EOC
daemon:
  plugin_path: [$(dirname "$imaging")]
  log_dir: $tmp/log
  state_dir: $tmp/state
  pid_file: $tmp/prebootd.pid
  control_socket: $tmp/control.sock
plugins:
  - module: imaging
    library_name: $tmp/mods/oot.so
EOC
    rm -f "$tmp/control.sock"
    "$sbin" -f -c "$tmp/img-bad.yaml" >"$tmp/stderr" 2>&1 &
    pid=$!
    wait_until 10 test -S "$tmp/control.sock"
    out=$("$bin" -c "$tmp/img-bad.yaml" status 2>&1)
    kill "$pid"; wait "$pid"; pid=
    contains "a plugin named as LIBRARY_NAME is refused" "$out" "not a imaging backend"
fi
finish
