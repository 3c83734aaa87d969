#!/bin/sh
# preboot-user.sh STATEDIR LOGDIR - creates the system user and group `preboot` that prebootd
# drops to once its ports are bound (README.security), the way Debian's dnsmasq and tftpd-hpa
# packages create theirs: a system account with no home of its own (its home names the state
# directory), no login shell and no password. Gives it the state and log directories (the
# directories only: the TFTP root and its files stay root's). Idempotent: an existing user
# or group is kept as it is. Run by `make install` (as root, DESTDIR empty) and by
# tools/quickstart.sh. PREBOOT_USER names another account.
set -eu
user=${PREBOOT_USER:-preboot}
statedir=${1:?usage: preboot-user.sh STATEDIR LOGDIR}
logdir=${2:?usage: preboot-user.sh STATEDIR LOGDIR}

nologin=/usr/sbin/nologin
[ -x "$nologin" ] || nologin=/sbin/nologin
[ -x "$nologin" ] || nologin=/bin/false

if ! getent group "$user" >/dev/null 2>&1; then
    if command -v groupadd >/dev/null 2>&1; then
        groupadd --system "$user"
    elif command -v addgroup >/dev/null 2>&1; then
        addgroup --system "$user"
    else
        echo "preboot-user.sh: neither groupadd nor addgroup found: create the group $user" >&2
        exit 1
    fi
fi
if ! getent passwd "$user" >/dev/null 2>&1; then
    # minbase Debian has useradd (package passwd); adduser is a separate package.
    if command -v useradd >/dev/null 2>&1; then
        useradd --system --gid "$user" --no-create-home --home-dir "$statedir" \
            --shell "$nologin" --comment "PXE preboot services" "$user"
    elif command -v adduser >/dev/null 2>&1; then
        adduser --system --ingroup "$user" --no-create-home --home "$statedir" \
            --shell "$nologin" --disabled-password --gecos "PXE preboot services" "$user"
    else
        echo "preboot-user.sh: neither useradd nor adduser found: create the user $user" >&2
        exit 1
    fi
fi
group=$(id -gn "$user")
mkdir -p "$statedir" "$logdir"
chown "$user:$group" "$statedir" "$logdir"
chmod 0750 "$logdir"
echo "preboot-user.sh: prebootd runs as $user:$group (state $statedir, logs $logdir)"
