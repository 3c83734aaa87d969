# lib-netns.sh - a room of network namespaces joined by one bridge, for the multicast tests
# (tests/mcast-*.sh) and bench/multicast.sh (sourced). The caller sets P, a prefix unique to
# the run (the namespaces are ${P}br and ${P}NAME), and NSES, the namespaces it deletes at
# the end, which netns_host extends.

# netns_begin NAME: for a TAP test (after tap.sh): the bridge's namespace ${P}br, or the
# whole test skipped when namespaces cannot be made or entered here; a work directory W
# (mktemp NAME.XXXXXX, kept when KEEP is set) made the current one; at exit, the processes
# in PIDS stopped and waited for, NSES deleted and W removed.
netns_begin() {
    ip netns add ${P}br 2>/dev/null || skip_all "cannot create network namespaces"
    if ! ip netns exec ${P}br true 2>/dev/null; then
        ip netns del ${P}br
        skip_all "ip netns exec does not work here"
    fi
    W=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    PIDS=
    NSES=${P}br
    trap netns_cleanup EXIT
    trap 'exit 1' INT TERM
    cd "$W" || exit 1
}
netns_cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    for ns in $NSES; do ip netns del "$ns" 2>/dev/null; done
    if [ -n "${KEEP:-}" ]; then echo "# kept $W"; else rm -rf "$W"; fi
}

# netns_bridge: bridge br0 in ${P}br (which exists), up, with IGMP snooping off: every port
# gets every group, whatever membership reports the bridge saw.
netns_bridge() {
    ip -n ${P}br link add br0 type bridge
    ip -n ${P}br link set br0 type bridge mcast_snooping 0
    ip -n ${P}br link set br0 up
}

# netns_host NAME ADDR: a namespace ${P}NAME on the bridge (its port there is pNAME) with
# eth0 at ADDR/24, the subnet's broadcast address set (brd +) and multicast routed out of
# eth0 (224.0.0.0/4: there is no default route).
netns_host() {
    ip netns add ${P}$1
    NSES="$NSES ${P}$1"
    ip link add ${P}$1 type veth peer name eth0 netns ${P}$1
    ip link set ${P}$1 netns ${P}br
    ip -n ${P}br link set ${P}$1 name p$1 master br0 up
    ip -n ${P}$1 addr add $2/24 brd + dev eth0
    ip -n ${P}$1 link set eth0 up
    ip -n ${P}$1 link set lo up
    ip -n ${P}$1 route add 224.0.0.0/4 dev eth0
}

# netns_lossy NAME PERCENT: drop that share of the UDP datagrams reaching ${P}NAME (nftables:
# this kernel has no netem), not its TCP (HTTP); netns_unlossy NAME takes the rule away.
netns_lossy() {
    if [ "$2" -ge 100 ]; then rule="meta l4proto udp counter drop"; else
        rule="meta l4proto udp numgen random mod 100 < $2 counter drop"; fi
    ip netns exec ${P}$1 nft -f - <<NFT
table inet lossy {
  chain in {
    type filter hook input priority 0;
    $rule
  }
}
NFT
}
netns_unlossy() { ip netns exec ${P}$1 nft delete table inet lossy; }
