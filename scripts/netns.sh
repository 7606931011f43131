#!/usr/bin/env bash
# scripts/netns.sh: emulated hosts for `tyrant-lab run --exec 'ip netns exec {host}'`
# (issue 4 item 5). Each host is a network namespace with its own address on one bridge,
# so peers on different "hosts" talk over veth links instead of loopback, and an optional
# tc token bucket caps each host's egress like a testbed link. Needs root.
#
#   scripts/netns.sh up N [CAP_KIB]   create hosts tyr0..tyr(N-1) on 10.77.0.0/24
#                                     (tyrI = 10.77.0.(10+I)); CAP_KIB: tc tbf egress cap
#   scripts/netns.sh hosts N          print the plan option: hosts=tyr0@10.77.0.10,...
#   scripts/netns.sh down N           remove them (also what a failed `up` leaves)
set -euo pipefail

PREFIX=${TYRANT_NETNS_PREFIX:-tyr}
BRIDGE=${PREFIX}br0
NET=10.77.0

usage() { sed -n '7,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

addr() { echo "$NET.$((10 + $1))"; }

down() {
    local n=$1 i
    for ((i = 0; i < n; i++)); do
        ip netns del "$PREFIX$i" 2>/dev/null || true
        ip link del "${PREFIX}v$i" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
}

up() {
    local n=$1 cap=${2:-} i
    [ "$(id -u)" = 0 ] || { echo "netns.sh: needs root (ip netns, veth, tc)" >&2; exit 1; }
    [ "$n" -ge 1 ] && [ "$n" -le 200 ] || { echo "netns.sh: N must be 1..200" >&2; exit 2; }
    down "$n"
    trap 'echo "netns.sh: setup failed; removing what was created" >&2; down '"$n" ERR
    ip link add "$BRIDGE" type bridge
    ip addr add "$NET.1/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    for ((i = 0; i < n; i++)); do
        local ns=$PREFIX$i
        ip netns add "$ns"
        ip link add "${PREFIX}v$i" type veth peer name eth0 netns "$ns"
        ip link set "${PREFIX}v$i" master "$BRIDGE" up
        ip netns exec "$ns" ip link set lo up
        ip netns exec "$ns" ip addr add "$(addr "$i")/24" dev eth0
        ip netns exec "$ns" ip link set eth0 up
        if [ -n "$cap" ]; then
            # KiB/s -> kbit/s; a burst of a few blocks keeps TCP from stalling at low caps.
            local kbit=$((cap * 8192 / 1000))
            ip netns exec "$ns" tc qdisc add dev eth0 root tbf rate "${kbit}kbit" \
                burst 64kb latency 500ms
        fi
    done
    trap - ERR
    echo "netns.sh: $n hosts up (${cap:-uncapped}${cap:+ KiB/s each}); $(hosts "$n")"
}

hosts() {
    local n=$1 i out=""
    for ((i = 0; i < n; i++)); do
        out+="${out:+,}$PREFIX$i@$(addr "$i")"
    done
    echo "hosts=$out"
}

[ $# -ge 2 ] || usage
case "$1" in
    up) up "$2" "${3:-}" ;;
    down) down "$2" ;;
    hosts) hosts "$2" ;;
    *) usage ;;
esac
