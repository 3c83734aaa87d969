#!/bin/sh
# make-zip.sh - the Windows distribution: a zip that an administrator unpacks (for
# example to C:\Program Files\preboot, or sets PREBOOT_HOME to) and runs. Called by
# `make win32-zip` in a cross build tree:
#
#   make-zip.sh SRCDIR BUILDDIR ZIPNAME
#
# With PREBOOT_ZIP_STAGE=DIR the tree is only laid out, as DIR/NAME (ZIPNAME less .zip),
# and no zip is made: win32/test-wine-service.sh installs the service from it.
#
# The layout is the legacy product's %ZENWORKS_HOME% one, which the programs find by
# themselves (win32/main-win32.c):
#   bin\preboot\   prebootd.exe, prebootctl.exe and every DLL they and the plugins need
#   lib\preboot\   the plugin DLLs
#   conf\preboot\  configuration: preboot.yaml and the legacy novell-*.conf examples
#   logs\preboot\  log files;  var\preboot\  state
#   doc\           README-windows.txt and the man pages as text
set -eu
srcdir=$1 builddir=$2 zipname=$3
: "${OBJDUMP:=x86_64-w64-mingw32-objdump}"
prefix=${WIN32_PREFIX:-$(${PKG_CONFIG:-pkg-config} --variable=prefix glib-2.0)}
name=${zipname%.zip}
stage=${PREBOOT_ZIP_STAGE:-$builddir/win32/zip}
root=$stage/$name
if [ -n "${PREBOOT_ZIP_STAGE:-}" ]; then rm -rf "$root"; else rm -rf "$stage"; fi
mkdir -p "$root/bin/preboot" "$root/lib/preboot" "$root/conf/preboot" "$root/logs/preboot" \
    "$root/var/preboot" "$root/var/run" "$root/doc"

# libtool keeps the real program in .libs/ when it made a wrapper
real() { if [ -f "$(dirname "$1")/.libs/$(basename "$1")" ]; then echo "$(dirname "$1")/.libs/$(basename "$1")"; else echo "$1"; fi; }
cp "$(real "$builddir/core/prebootd.exe")" "$(real "$builddir/tools/prebootctl.exe")" \
    "$root/bin/preboot/"
# the plugins and the LIBRARY_NAME backends (libpreboot-local.dll), found in the plugin path
for dll in "$builddir"/plugins/*/.libs/*.dll "$builddir"/backends/*/.libs/*.dll; do
    [ -f "$dll" ] && cp "$dll" "$root/lib/preboot/"
done

# Every DLL the programs and plugins import that the dependency prefix provides, and what
# those import in turn; system DLLs (KERNEL32, WS2_32, msvcrt...) are not in the prefix.
# One file a line: the paths may hold spaces ("Program Files").
nl='
'
IFS=$nl
todo=$(ls "$root"/bin/preboot/*.exe "$root"/lib/preboot/*.dll)
while [ -n "$todo" ]; do
    next=
    for f in $todo; do
        for dep in $("$OBJDUMP" -p "$f" | sed -n 's/^[[:space:]]*DLL Name: //p' | tr -d '\r'); do
            [ -f "$prefix/bin/$dep" ] || continue
            [ -f "$root/bin/preboot/$dep" ] && continue
            cp "$prefix/bin/$dep" "$root/bin/preboot/"
            next="$next$nl$root/bin/preboot/$dep"
        done
    done
    todo=$next
done
unset IFS

# g_spawn (prebootctl start) runs programs through glib's helper executables, which it
# looks for next to the glib DLL.
for h in "$prefix"/bin/gspawn-win64-helper*.exe; do
    [ -f "$h" ] && cp "$h" "$root/bin/preboot/"
done

# Configuration: preboot.yaml from its template with the Windows layout's paths (relative
# to the install home), and any legacy examples; CRLF, as Notepad likes them.
crlf() { sed 's/\r*$/\r/' "$1" >"$2"; }
if [ -f "$srcdir/etc/preboot.yaml.in" ]; then
    sed -e 's|@plugindir@|lib/preboot|g' -e 's|@pkglogdir@|logs/preboot|g' \
        -e 's|@pkgstatedir@|var/preboot|g' -e 's|@pkgrundir@|var/run|g' \
        -e 's|@pkgsysconfdir@|conf/preboot|g' -e 's|@sysconfdir@|conf|g' \
        -e 's|@sbindir@|bin/preboot|g' -e 's|@bindir@|bin/preboot|g' \
        -e 's|/etc/opt/novell/|conf/preboot/|g' \
        -e 's|# control_group: adm .*|# control_group: "Preboot Operators"  # may use prebootctl besides Administrators|' \
        -e 's|# user: preboot .*|# user: (not on Windows: give the service its account, doc/README-windows.txt)|' \
        "$srcdir/etc/preboot.yaml.in" >"$stage/preboot.yaml"
    crlf "$stage/preboot.yaml" "$root/conf/preboot/preboot.yaml"
    mkdir -p "$root/var/preboot/tftp"
fi
for f in "$srcdir"/etc/legacy/*.conf; do
    [ -f "$f" ] && crlf "$f" "$root/conf/preboot/$(basename "$f")"
done

# Documentation: the man pages as plain text (groff when present, else their source).
[ -f "$srcdir/doc/windows.md" ] && crlf "$srcdir/doc/windows.md" "$root/doc/README-windows.txt"
for m in "$builddir"/man/*.[0-9]; do
    [ -f "$m" ] || continue
    out=$root/doc/$(basename "$m").txt
    if command -v groff >/dev/null 2>&1; then
        groff -man -Tutf8 -P-cbou "$m" 2>/dev/null >"$out.tmp" && crlf "$out.tmp" "$out"
        rm -f "$out.tmp"
    else
        crlf "$m" "$out"
    fi
done
for f in README.md NEWS README.security; do
    [ -s "$srcdir/$f" ] && crlf "$srcdir/$f" "$root/doc/$f.txt"
done

if [ -n "${PREBOOT_ZIP_STAGE:-}" ]; then
    echo "$root: $(cd "$root" && find . -type f | wc -l) files"
    exit 0
fi
rm -f "$builddir/$zipname"
(cd "$stage" && python3 -m zipfile -c "$builddir/$zipname" "$name")
echo "$builddir/$zipname: $(cd "$root" && find . -type f | wc -l) files, $(du -sh "$builddir/$zipname" | cut -f1)"
