#!/bin/sh
# test-legacy-conf.sh - prebootd --check-config and --dump-config on the legacy .conf files
# of the reference, written exactly as the admin guide shows them, with the real plugins;
# and a set of bad legacy files, each refused with file:line, key, value and range.
. "$top_srcdir/tests/tap.sh"
PREBOOTD=$top_builddir/core/prebootd
data=$top_srcdir/tests/data/legacy
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pd() { "$PREBOOTD" -P "$top_builddir/plugins/tftp" -P "$top_builddir/plugins/proxydhcp" \
    -P "$top_builddir/plugins/policy" -P "$top_builddir/plugins/http" "$@"; }

# The reference's TFTP root, /srv/tftp, is usually absent here: a start would refuse it, and
# so does --check-config (tftp's check()); then that must be the only complaint.
only_root_refused() { # OUTPUT RC
    [ "$2" -eq 0 ] && return 0
    [ ! -d /srv/tftp ] || return 1
    rest=$(printf '%s\n' "$1" | grep -v -e '^warning:' -e "TFTPDirectory: '/srv/tftp': ")
    [ -z "$rest" ]
}
for f in novell-tftp.conf novell-proxydhcp.conf novell-zmgprebootpolicy.conf; do
    out=$(pd -c "$data/$f" --check-config 2>&1)
    rc=$?
    check "$f as the reference shows it passes --check-config" only_root_refused "$out" $rc
    only_root_refused "$out" $rc || printf '%s\n' "$out" | sed 's/^/#   /'
done
out=$(pd -c "$data/novell-zmgprebootpolicy.conf" --check-config 2>&1)
contains "EnableAMTSupport is accepted with a warning" "$out" "EnableAMTSupport"

out=$(pd -c "$data/novell-tftp.conf" --dump-config 2>&1)
line=$(grep -n '^TransferBlockSize' "$data/novell-tftp.conf" | cut -d: -f1)
contains "--dump-config names the legacy file, line and key" "$out" "block_size: 1428    # $data/novell-tftp.conf:$line (TransferBlockSize)"
contains "--dump-config shows defaults for what the file leaves out" "$out" "port: 69    # default"
out=$(pd -c "$data/novell-proxydhcp.conf" --dump-config 2>&1)
contains "proxydhcp: NBPx86 maps onto nbp_x86" "$out" "nbp_x86: nvlnbp.sys"

# A directory of legacy files: every file goes to the plugin owning its name.
mkdir "$tmp/dir"
cp "$data/novell-tftp.conf" "$data/novell-proxydhcp.conf" "$tmp/dir/"
out=$(pd -c "$tmp/dir" --check-config 2>&1)
check "a directory of legacy files passes --check-config" only_root_refused "$out" $?
cp "$data/novell-pbserv.conf" "$tmp/dir/"
out=$(pd -c "$tmp/dir" --dump-config 2>&1)
contains "a file no plugin owns is named" "$out" "no plugin on the plugin path owns legacy file novell-pbserv.conf"

# Bad values: name, file:line, key as written, value and what is allowed.
bad() { # DESCRIPTION FILE-NAME LINE EXPECTED
    printf '# written by the test\n%s\n' "$3" >"$tmp/$2"
    out=$(pd -c "$tmp/$2" --check-config 2>&1)
    rc=$?
    check "$1: refused" [ $rc -ne 0 ]
    contains "$1: message" "$out" "$tmp/$2:2: $4"
}
bad "block size too large" novell-tftp.conf "TransferBlockSize = 9000" \
    "TransferBlockSize: '9000' is out of range (512-4428)"
bad "block size too small" novell-tftp.conf "TransferBlockSize = 511" \
    "TransferBlockSize: '511' is out of range (512-4428)"
bad "timeout zero" novell-tftp.conf "TimeoutInterval = 0" \
    "TimeoutInterval: '0' is out of range (1-60)"
bad "timeout not a number" novell-tftp.conf "TimeoutInterval = soon" \
    "TimeoutInterval: 'soon' is not a number (1-60)"
bad "allow writes not a boolean" novell-tftp.conf "TFTPAllowWrites = maybe" \
    "TFTPAllowWrites: 'maybe'"
bad "tftp log level" novell-tftp.conf "TFTPLogLevel = 5" \
    "TFTPLogLevel: '5' is out of range (0-4)"
bad "menu timeout" novell-proxydhcp.conf "MenuTimeout = 256" \
    "MenuTimeout: '256' is out of range (0-255)"
bad "interface not an address" novell-proxydhcp.conf "LocalInterface = eth0" \
    "LocalInterface: 'eth0'"
bad "policy log level" novell-zmgprebootpolicy.conf "PolicyLogLevel = 9" \
    "PolicyLogLevel: '9' is out of range"
bad "a line that is no setting" novell-tftp.conf "this is not a setting" \
    "expected 'Key = value'"

# Unknown keys warn with file:line but do not fail.
printf 'TFTPDirectory = %s\nTFTPColour = blue\n' "$tmp" >"$tmp/novell-tftp.conf"
out=$(pd -c "$tmp/novell-tftp.conf" --check-config 2>&1)
check "an unknown key does not fail the check" [ $? -eq 0 ]
contains "an unknown key warns with file:line" "$out" "$tmp/novell-tftp.conf:2: unknown key 'TFTPColour'"

# A key present without a value takes its default (the reference's rule).
printf 'TransferBlockSize =\nTFTPLogFileSize\n' >"$tmp/novell-tftp.conf"
out=$(pd -c "$tmp/novell-tftp.conf" --dump-config 2>&1)
contains "a key without a value takes its default" "$out" "block_size: 1428"
finish
