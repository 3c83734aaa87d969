#!/bin/sh
# test-imaging-tls.sh - HTTPS on the daemon's listener (http plugin tls_certificate/tls_key):
# a self-signed certificate made with openssl(1), curl --cacert against it, plain HTTP
# refused, preboot-img capturing to and restoring bit-exact from an https:// imaging server
# with --cacert (and refusing the server without it), a reload naming a missing key file
# refused with the parameter, and a start with a certificate but no key refused.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/lib-imaging.sh"
# Nothing here reads a terminal (openssl, the daemon): a background job that did would stop.
exec </dev/null
B=$top_builddir
for tool in curl openssl; do
    command -v $tool >/dev/null 2>&1 || skip_all "$tool is not installed"
done
[ -x "$B/tools/preboot-img" ] || skip_all "preboot-img is not built (lib/image: Linux only)"
T=$(mktemp -d "${TMPDIR:-/tmp}/imaging-tls.XXXXXX")
pid=
# stop_pid PID: SIGTERM and at most 30 s for it to end (a zombie has ended: kill -0 still
# reaches it); else its state goes to the log and SIGKILL ends it. Its exit status.
stop_pid() {
    kill "$1" 2>/dev/null || return 1
    if ! wait_until 30 sh -c "! kill -0 $1 || grep -q '^State:.*Z' /proc/$1/status"; then
        diag "pid $1 did not stop within 30 s: $(grep '^State' /proc/"$1"/status 2>/dev/null)," \
            "wchan $(cat /proc/"$1"/wchan 2>/dev/null)"
        kill -9 "$1" 2>/dev/null
    fi
    wait "$1"
}
cleanup() {
    [ -n "$pid" ] && stop_pid "$pid" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
port=$(pick_port 11)
ctl() { timeout 30 "$B/tools/prebootctl" -c "$T/p.yaml" "$@"; }
# Bounded, so that a hang is a failure rather than a stuck suite.
pimg() { timeout 120 "$B/tools/preboot-img" "$@"; }

# ---- a self-signed certificate for 127.0.0.1 --------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$T/key.pem" -out "$T/cert.pem" \
    >"$T/openssl.log" 2>&1
check "openssl made a self-signed certificate" [ -s "$T/cert.pem" ] && [ -s "$T/key.pem" ]
printf 'tls-token-%s\n' "$$" >"$T/token"
chmod 600 "$T/token" "$T/key.pem"

write_config() { # KEY-FILE
    {
        imaging_config_head "$T/state"
        cat <<EOC
    tls_certificate: $T/cert.pem
    tls_key: $1
  - module: imaging
    store: $T/store
    upload_token: $(cat "$T/token")
    upload_networks: [127.0.0.1/32]
EOC
    } >"$T/p.yaml"
}

# ---- refused configurations ---------------------------------------------------------------
# refused WHAT: prebootd keeps running without a plugin that failed (it says "not ready"):
# wait for the http instance's reason, then stop it.
refused() {
    rm -rf "$T/log"
    "$B/core/prebootd" -f -c "$T/p.yaml" >"$T/refused.out" 2>&1 &
    pid=$!
    wait_until 20 grep -q "http: create failed" "$T/refused.out"
    r=$?
    stop_pid "$pid"
    pid=
    return $r
}
write_config ""
check "a certificate without a key: http does not start" refused
contains "... naming the parameters, file:line" "$(cat "$T/refused.out")" \
    "p.yaml:11: tls_certificate: set, but tls_key is not"
write_config "$T/cert.pem"
check "a key file holding no key: http does not start" refused
contains "... naming the parameter and the file" "$(cat "$T/refused.out")" \
    "p.yaml:12: tls_key: $T/cert.pem holds no PEM PRIVATE KEY"

# ---- HTTPS --------------------------------------------------------------------------------
write_config "$T/key.pem"
"$B/core/prebootd" -f -c "$T/p.yaml" >"$T/stderr" 2>&1 &
pid=$!
U=https://127.0.0.1:$port/imaging/v1
listening() { curl -s -o /dev/null --cacert "$T/cert.pem" --max-time 5 "$U/images"; }
if ! wait_until 20 listening; then
    not_ok "prebootd serves HTTPS"
    sed 's/^/# /' "$T/stderr" "$T"/log/*.log 2>/dev/null | tail -n 20
    finish
    exit 1
fi
ok "prebootd serves HTTPS"
out=$(curl -s --cacert "$T/cert.pem" --max-time 5 "$U/images")
contains "curl --cacert reads the catalog over https" "$out" '{"images":[]}'
out=$(curl -s --max-time 5 "$U/images" 2>&1)
check "curl without the certificate does not trust the server" [ -z "$out" ]
out=$(curl -s --max-time 5 "http://127.0.0.1:$port/imaging/v1/images" 2>&1)
check "plain HTTP gets no catalog" [ "$out" != '{"images":[]}' ]
contains "the log says HTTPS" "$(cat "$T"/log/preboot-http.log 2>/dev/null)" "HTTPS server listening"

# ---- preboot-img against an https:// server ---------------------------------------------
head -c 1500000 /dev/urandom >"$T/disk.img"
seq 1 200000 >>"$T/disk.img"
truncate -s 6M "$T/disk.img"
S=https://127.0.0.1:$port/tlsimg
pimg make "$T/disk.img" "$S" --chunk-size 1048576 --token-file "$T/token" \
    --retry-time 0 >"$T/make.out" 2>"$T/make.err"
check "preboot-img without --cacert refuses the self-signed server" [ $? -ne 0 ]
pimg make "$T/disk.img" "$S" --chunk-size 1048576 --token-file "$T/token" \
    --cacert "$T/cert.pem" >"$T/make.out" 2>"$T/make.err"
rc=$?
check "preboot-img make over https with --cacert" [ $rc -eq 0 ]
[ $rc -eq 0 ] || { diag "exit $rc"; sed 's/^/#   /' "$T/make.err"; }
contains "the image is in the catalog" "$(curl -s --cacert "$T/cert.pem" --max-time 10 "$U/images")" '"name":"tlsimg"'
truncate -s 6M "$T/restored.img"
pimg restore "$S" "$T/restored.img" --cacert "$T/cert.pem" \
    >"$T/restore.out" 2>"$T/restore.err"
check "preboot-img restore over https with --cacert" [ $? -eq 0 ]
check "restores bit-exact" cmp -s "$T/disk.img" "$T/restored.img"

# ---- reload: the files are read again --------------------------------------------------------
write_config "$T/missing-key.pem"
out=$(ctl reload 2>&1)
check "a reload naming a missing key file is refused" [ $? -ne 0 ]
contains "... naming the parameter" "$out" "tls_key"
write_config "$T/key.pem"
out=$(ctl reload 2>&1)
check "a reload with the same files is accepted" [ $? -eq 0 ]
check "and HTTPS still answers" listening

stop_pid "$pid"
check "prebootd stops cleanly" [ $? -eq 0 ]
pid=
grep -i "sanitizer\|runtime error" "$T/stderr" >/dev/null &&
    { not_ok "no sanitizer report"; sed 's/^/# /' "$T/stderr" | tail -30; } || ok "no sanitizer report"
finish
