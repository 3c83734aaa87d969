#!/bin/sh
# quickstart.sh - from a fresh Debian/Ubuntu machine (as root) to a running or tested preboot.
#   sh tools/quickstart.sh run    install build dependencies, build, install under
#                                 /usr/local, create the system user preboot and run
#                                 prebootd in the foreground on the shipped default
#                                 configuration: it binds its ports as root, then
#                                 serves as preboot (Ctrl-C stops it)
#   sh tools/quickstart.sh test   install build and test dependencies, build in _build
#                                 and run the test suite (make check)
# Set NO_APT=1 to skip the package installation; BOOTENV=1 (run) also builds the preboot
# environment for imaging (preboot-bootenv).
set -eu
cd "$(dirname "$0")/.."
what=${1:-}
case "$what" in
run | test) ;;
*) echo "usage: sh tools/quickstart.sh run|test" >&2; exit 2 ;;
esac

packages() { grep -v '^[[:space:]]*#' "$1" | grep -v '^[[:space:]]*$' | tr '\n' ' '; }
if [ "${NO_APT:-0}" != 1 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "quickstart: run as root (it installs packages), or set NO_APT=1" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    list=$(packages .ci/apt-packages)
    [ "$what" = test ] && [ -f .ci/apt-packages-test ] && list="$list $(packages .ci/apt-packages-test)"
    [ "${BOOTENV:-0}" = 1 ] && list="$list kmod cpio partclone"
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $list >/dev/null
fi

[ -x configure ] || autoreconf -fi
mkdir -p _build
cd _build
[ -f Makefile ] || ../configure --enable-werror
make -j"$(nproc)"
if [ "$what" = test ]; then
    exec make -j"$(nproc)" check
fi
make install
ldconfig 2>/dev/null || true
# make install creates the system user the shipped configuration drops to (etc/preboot-user.sh);
# do it here too when that was skipped (not root), so that prebootd serves unprivileged.
if ! getent passwd preboot >/dev/null 2>&1; then
    sh ../etc/preboot-user.sh /usr/local/var/lib/preboot /usr/local/var/log/preboot
fi
conf=/usr/local/etc/preboot/preboot.yaml
if ! grep -q '^[[:space:]]*user:' "$conf"; then
    echo "quickstart: warning: $conf (kept from an earlier install) names no user:" \
        "prebootd will run as root; compare it with $conf.dist" >&2
fi
# The preboot environment that imaging work boots (preboot-bootenv(8)): opt-in, it downloads
# the distribution's kernel package.
if [ "${BOOTENV:-0}" = 1 ]; then
    /usr/local/sbin/preboot-bootenv
else
    echo "quickstart: to image machines, build the preboot environment: preboot-bootenv (or BOOTENV=1)"
fi
echo "quickstart: starting prebootd in the foreground as user preboot (Ctrl-C stops it)"
exec /usr/local/sbin/prebootd -f -c "$conf"
