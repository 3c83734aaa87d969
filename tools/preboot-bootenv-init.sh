#!/bin/sh
# /init of the preboot environment (built by preboot-bootenv(8); runs under busybox sh).
#
# Brings up the network with DHCP, finds the imaging server from the kernel command line
# (preboot.server=HOST[:PORT]), asks for this device's work and does it with
# `preboot-img auto`, which reports every result to the server: a restore, a capture, or
# a multicast session (joined, restored, checked against the server's image; done like a
# restore, so the machine reboots into the image after it). Then it reboots or powers
# off. It never loops: work that fails twice in a row is not tried a third time; the
# machine powers off (or waits at the maintenance prompt, preboot.onfail=shell) instead of
# rebooting into the same work. The counter is kept here, in this boot, on purpose: the
# server sees both failures in its log (each attempt reports), and the one-shot work stays
# assigned until an administrator looks, so nothing retries it behind their back.
#
# Kernel command line (the policy plugin's iPXE script and pxelinux menu pass these):
#   preboot.server=HOST[:PORT]  the imaging server (the daemon's HTTP listener)
#   preboot.port=PORT           its port when the host comes from pxelinux's ip= (8080)
#   preboot.work=WORK           what the policy decided (capture, restore, multicast,
#                               script, maintenance); maintenance opens the prompt at once
#   preboot.arg=ARG             its image or session (informational: the server is asked)
#   preboot.device=ID           the device as the policy named it (informational)
#   preboot.after=reboot|poweroff   after the work succeeded (default reboot)
#   preboot.onfail=poweroff|shell|reboot  after it failed twice (default poweroff)
#   preboot.token=TOKEN         the imaging server's upload token, handed to preboot-img as
#                               $PREBOOT_TOKEN (when the rules' args set it). Not needed:
#                               with capture, restore or session work the server hands
#                               preboot-img auto a credential for that work alone
#                               (preboot-imaging(8)), while a token here is readable by
#                               anyone who fetches the boot script and allows every upload.
#   BOOTIF=01-aa-bb-cc-dd-ee-ff the interface the firmware booted from (pxelinux, iPXE)
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

mkdir -p /proc /sys /dev /tmp /run
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || mdev -s
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1

say() { echo "preboot-env: $*"; }

SERVER="" PORT=8080 IPSERVER="" WORK="" ARG="" DEVICE="" AFTER=reboot ONFAIL=poweroff BOOTIF=""
for w in $(cat /proc/cmdline); do
    case "$w" in
    preboot.server=*) SERVER=${w#*=} ;;
    preboot.work=*) WORK=${w#*=} ;;
    preboot.arg=*) ARG=${w#*=} ;;
    preboot.device=*) DEVICE=${w#*=} ;;
    preboot.after=*) AFTER=${w#*=} ;;
    preboot.onfail=*) ONFAIL=${w#*=} ;;
    preboot.port=*) PORT=${w#*=} ;;
    preboot.token=*) PREBOOT_TOKEN=${w#*=}; export PREBOOT_TOKEN ;;
    BOOTIF=*) BOOTIF=${w#*=} ;;
    # pxelinux's IPAPPEND 1: ip=CLIENT:BOOTSERVER:GATEWAY:NETMASK; the boot (TFTP) server
    # is the imaging server's host when the menu could not name it.
    ip=*:*:*:*) IPSERVER=$(echo "${w#ip=}" | cut -d: -f2) ;;
    esac
done
[ -z "$SERVER" ] && [ -n "$IPSERVER" ] && SERVER=$IPSERVER:$PORT
say "preboot environment $(cat /etc/preboot/version 2>/dev/null), kernel $(uname -r)"
say "work ${WORK:-?} ${ARG} for ${DEVICE:-this device}, server ${SERVER:-(none given)}"

# Drivers: the list preboot-bootenv resolved, dependencies first. Drivers for hardware
# this machine lacks load and stay idle.
KVER=$(uname -r)
n=0
while read -r m; do
    [ -n "$m" ] || continue
    insmod "/lib/modules/$KVER/$m" 2>/dev/null && n=$((n + 1))
done </etc/preboot/modules
say "loaded $n modules"

finish() { # reboot|poweroff|shell
    sync
    case "$1" in
    poweroff) say "powering off"; poweroff -f ;;
    shell) maintenance; say "rebooting"; reboot -f ;;
    *) say "rebooting"; reboot -f ;;
    esac
    sleep 5
    echo o >/proc/sysrq-trigger
}

maintenance() {
    cat /etc/preboot/help
    # cttyhack gives the shell a controlling terminal (job control, Ctrl-C).
    setsid cttyhack sh -l
}

# The network: the interface the firmware booted from (BOOTIF), else the first that gets
# a lease. Interfaces appear when their drivers bind: wait for them a bounded while.
bootmac=$(echo "$BOOTIF" | sed -n 's/^01-//p' | tr '-' ':' | tr 'A-F' 'a-f')
i=0
while [ $i -lt 20 ]; do
    found=""
    for d in /sys/class/net/*; do
        [ "${d##*/}" = lo ] || found=1
    done
    [ -n "$found" ] && break
    sleep 0.5
    i=$((i + 1))
done
ifaces=""
for d in /sys/class/net/*; do
    ifc=${d##*/}
    [ "$ifc" = lo ] && continue
    if [ -n "$bootmac" ] && [ "$(cat "$d/address")" = "$bootmac" ]; then
        ifaces="$ifc $ifaces"
    else
        ifaces="$ifaces $ifc"
    fi
done
ip link set lo up
IFACE=""
for ifc in $ifaces; do
    ip link set "$ifc" up
    if udhcpc -i "$ifc" -n -q -t 6 -T 2 -s /etc/preboot/udhcpc.script >/tmp/udhcpc.$ifc 2>&1; then
        IFACE=$ifc
        break
    fi
done
if [ -z "$IFACE" ]; then
    say "no DHCP lease on any interface ($ifaces); nothing to do without the network"
    [ "$WORK" = maintenance ] && finish shell
    finish "$ONFAIL"
fi
MAC=$(cat "/sys/class/net/$IFACE/address")
say "network: $IFACE $MAC $(ip -4 -o addr show dev "$IFACE" | awk '{print $4}')"

if [ "$WORK" = maintenance ]; then
    say "imaging maintenance mode"
    finish shell
fi
if [ -z "$SERVER" ]; then
    say "no preboot.server= on the kernel command line: the imaging server is unknown"
    finish "$ONFAIL"
fi

# The work: preboot-img asks the server (GET /imaging/v1/work), does it and reports the
# result (POST /imaging/v1/results), whether it succeeded or not.
attempt=1
while :; do
    say "asking $SERVER for this device's work (attempt $attempt): preboot-img auto $SERVER"
    preboot-img auto "$SERVER" --json >/tmp/auto.json
    rc=$?
    action=$(sed -n 's/.*"action" *: *"\([a-z]*\)".*/\1/p' /tmp/auto.json | head -n 1)
    after=$(sed -n 's/.*"after" *: *"\([a-z]*\)".*/\1/p' /tmp/auto.json | head -n 1)
    [ -n "$after" ] && AFTER=$after
    case "$rc:$action" in
    0:maintenance)
        say "imaging maintenance mode (the server's work)"
        finish shell
        ;;
    0:none)
        say "no work for $MAC: booting on"
        finish reboot
        ;;
    0:*)
        say "work done: ${action:-(preboot-img auto: ok)} $(sed -n 's/.*"image" *: *"\([^"]*\)".*/\1/p' /tmp/auto.json | head -n 1)"
        finish "$AFTER"
        ;;
    esac
    say "preboot-img auto failed (exit $rc${action:+, action $action}): $(head -c 300 /tmp/auto.json)"
    if [ $attempt -ge 2 ]; then
        say "the work failed twice; it is not tried again on its own (preboot.onfail=$ONFAIL)"
        finish "$ONFAIL"
    fi
    attempt=$((attempt + 1))
    sleep 5
done
