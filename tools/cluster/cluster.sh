#!/bin/bash
# cluster.sh: three ringlb instances behind ECMP, in network namespaces.
#
#   tools/cluster/cluster.sh up DIR     build the topology, start the birds
#   tools/cluster/cluster.sh down DIR   stop what `up` started, delete it all
#   tools/cluster/cluster.sh pin DIR on|off
#                                       the router's flow pinning (below)
#   tools/cluster/cluster.sh vrrp DIR   add the VRRP active/backup setup
#                                       (keepalived) on balancers 1 and 2
#
# Needs root, iproute2, bird2 and nftables (tools/deps.sh bird2 nftables),
# and keepalived for `vrrp`.
# Every address is inside the namespaces it creates; nothing leaves them.
#
#   client ns ${P}c            router ns ${P}r                balancer ns ${P}lbN
#   10.1.0.0/16 local (AnyIP)  r-c   10.255.0.1/30
#   c0 10.255.0.2/30 --------- r-lbN 10.0.N.1/24 ---------- eth0 10.0.N.2/24
#                              r-be  10.2.0.1/24            lo 10.99.0.1/32 (VIP)
#   backend ns ${P}be          bird: BGP AS 65000,          bird: AS 65100, BFD,
#   eth0 10.2.0.2/24,          passive, BFD, ECMP           static vip4 (the hook
#   10.2.0.11-14 (backends)    (merge paths), L4 hash       enables it)
#
# The router installs one route to the VIP with a next hop per balancer
# that announces it (fib_multipath_hash_policy=1: hashed on the 5-tuple).
# A balancer announces the VIP while its health hook (vip-hook.sh) sees
# GET /ready say 200.  DIR gets each bird's config, control socket, log
# and pid, and `env` (the namespace names, for the tests).
#
# Flow pinning (`pin DIR on`): nftables in the router remembers, in the
# flow's conntrack entry, which balancer its first packet went to, and
# routes its later packets there (fwmark N -> table 100+N), whatever ECMP
# says now.  Plain ECMP moves flows whenever the set of next hops changes;
# with pinning, only new flows follow the change.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
P=${CLUSTER_PREFIX:-rlc}
VIP=10.99.0.1
VIP2=10.0.10.100
N=3

die() { echo "cluster: $*" >&2; exit 1; }

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# Write bird's config for the router (lb = 0) or balancer N, from the
# templates next to this script.
bird_conf() {
	local dir=$1 n=$2
	if [ "$n" = 0 ]; then
		sed "s|@DIR@|$dir|g" "$here/bird-router.conf" >"$dir/r.conf"
		for i in $(seq 1 $N); do
			printf 'protocol bgp lb%d from lb { neighbor 10.0.%d.2 as 65100; source address 10.0.%d.1; }\n' \
				"$i" "$i" "$i" >>"$dir/r.conf"
		done
	else
		sed "s|@DIR@|$dir|g; s|@N@|$n|g; s|@VIP@|$VIP|g" \
			"$here/bird-balancer.conf" >"$dir/lb$n.conf"
	fi
}

# Start bird in ns with config conf; its socket and pid file in DIR.
bird_start() {
	local ns=$1 name=$2 dir=$3
	nsx "$ns" bird -c "$dir/$name.conf" -s "$dir/$name.ctl" \
		-P "$dir/$name.pid"
}

wait_for() {
	local what=$1 tries=$2; shift 2
	for _ in $(seq 1 "$tries"); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	die "timed out waiting for $what"
}

sessions_up() {
	[ "$(birdc -s "$1/r.ctl" show protocols 2>/dev/null |
		grep -c Established)" = "$N" ]
}

up() {
	local dir=$1
	[ "$(id -u)" = 0 ] || die "needs root (ip netns, bird)"
	command -v bird >/dev/null || die "no bird: tools/deps.sh bird2"
	command -v nft >/dev/null || die "no nft: tools/deps.sh nftables"
	mkdir -p "$dir"
	down "$dir" 2>/dev/null || true
	for ns in c r be $(seq -f 'lb%g' 1 $N); do
		ip netns add "$P$ns"
		nsx "$P$ns" ip link set lo up
	done
	# Router: forwarding, hashing on the 5-tuple, no reverse-path filter
	# (a withdrawn balancer's replies still come back through it).
	nsx "${P}r" sysctl -qw net.ipv4.ip_forward=1 \
		net.ipv4.fib_multipath_hash_policy=1 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
	# Client: 10.1.0.0/16 is local, so a client may bind any of it.
	ip link add r-c netns "${P}r" type veth peer name c0 netns "${P}c"
	nsx "${P}r" ip addr add 10.255.0.1/30 dev r-c
	nsx "${P}r" ip link set r-c up
	nsx "${P}c" ip addr add 10.255.0.2/30 dev c0
	nsx "${P}c" ip link set c0 up
	nsx "${P}c" ip route add local 10.1.0.0/16 dev lo
	nsx "${P}c" ip route add default via 10.255.0.1
	nsx "${P}r" ip route add 10.1.0.0/16 via 10.255.0.2
	# Backends: four addresses of their own.
	ip link add r-be netns "${P}r" type veth peer name eth0 netns "${P}be"
	nsx "${P}r" ip addr add 10.2.0.1/24 dev r-be
	nsx "${P}r" ip link set r-be up
	nsx "${P}be" ip addr add 10.2.0.2/24 dev eth0
	for i in 11 12 13 14; do
		nsx "${P}be" ip addr add 10.2.0.$i/24 dev eth0
	done
	nsx "${P}be" ip link set eth0 up
	nsx "${P}be" ip route add default via 10.2.0.1
	# Balancers: the VIP on lo, everything else through the router.
	for i in $(seq 1 $N); do
		ip link add "r-lb$i" netns "${P}r" type veth peer name eth0 \
			netns "${P}lb$i"
		nsx "${P}r" ip addr add "10.0.$i.1/24" dev "r-lb$i"
		nsx "${P}r" ip link set "r-lb$i" up
		nsx "${P}lb$i" ip addr add "10.0.$i.2/24" dev eth0
		nsx "${P}lb$i" ip link set eth0 up
		nsx "${P}lb$i" ip addr add "$VIP/32" dev lo
		nsx "${P}lb$i" sysctl -qw net.ipv4.ip_nonlocal_bind=1
		nsx "${P}lb$i" ip route add default via "10.0.$i.1"
		# The pinned route of flows first sent to balancer i.
		nsx "${P}r" ip route add "$VIP/32" via "10.0.$i.2" \
			table $((100 + i))
		nsx "${P}r" ip rule add fwmark "$i" table $((100 + i))
	done
	bird_conf "$dir" 0
	bird_start "${P}r" r "$dir"
	for i in $(seq 1 $N); do
		bird_conf "$dir" "$i"
		bird_start "${P}lb$i" "lb$i" "$dir"
	done
	cat >"$dir/env" <<-EOF
	CLUSTER_PREFIX=$P
	CLUSTER_VIP=$VIP
	CLUSTER_N=$N
	CLUSTER_DIR=$dir
	EOF
	wait_for "3 BGP sessions" 150 sessions_up "$dir"
	echo "cluster: up in $dir (namespaces ${P}c ${P}r ${P}be ${P}lb1-$N)"
}

# VRRP (keepalived) on balancers 1 and 2: a bridge in the router with
# 10.0.10.1/24, each balancer's eth1 on it (10.0.10.2, .3), and VIP2 on
# the master's eth1.  ringlb binds VIP2 on both (ip_nonlocal_bind, set by
# `up`), so the backup is ready to take it.
vrrp() {
	local dir=$1
	command -v keepalived >/dev/null ||
		die "no keepalived: tools/deps.sh keepalived"
	nsx "${P}r" ip link add br-v type bridge
	nsx "${P}r" ip addr add 10.0.10.1/24 dev br-v
	nsx "${P}r" ip link set br-v up
	for i in 1 2; do
		ip link add "v-lb$i" netns "${P}r" type veth peer name eth1 \
			netns "${P}lb$i"
		nsx "${P}r" ip link set "v-lb$i" master br-v up
		nsx "${P}lb$i" ip addr add "10.0.10.$((i + 1))/24" dev eth1
		nsx "${P}lb$i" ip link set eth1 up
		sed "s|@DIR@|$dir|g; s|@N@|$i|g; s|@VIP2@|$VIP2|g;
		     s|@PRIO@|$((300 - 100 * i))|g; s|@ME@|$((i + 1))|g;
		     s|@PEER@|$((4 - i))|g" "$here/keepalived.conf" \
			>"$dir/ka$i.conf"
		nsx "${P}lb$i" keepalived -f "$dir/ka$i.conf" -P -l \
			-p "$dir/ka$i.pid" -r "$dir/ka$i-vrrp.pid" \
			>"$dir/ka$i.log" 2>&1
	done
	echo "CLUSTER_VIP2=$VIP2" >>"$dir/env"
}

pin() {
	local on=$2
	nsx "${P}r" nft delete table ip ringlb_pin 2>/dev/null || true
	[ "$on" = on ] || return 0
	nsx "${P}r" nft -f - <<-EOF
	table ip ringlb_pin {
		chain pre {
			type filter hook prerouting priority mangle;
			iifname "r-c" ct mark != 0 meta mark set ct mark
		}
		chain post {
			type filter hook postrouting priority mangle;
			ct state new oifname "r-lb1" ct mark set 1
			ct state new oifname "r-lb2" ct mark set 2
			ct state new oifname "r-lb3" ct mark set 3
		}
	}
	EOF
}

down() {
	local dir=$1
	# Processes first, by pid: a namespace with processes outlives its
	# name.  TERM lets the router's bird take its routes away.
	for f in "$dir"/*.pid; do
		[ -f "$f" ] || continue
		kill "$(cat "$f")" 2>/dev/null || true
		rm -f "$f"
	done
	for ns in c r be $(seq -f 'lb%g' 1 $N); do
		for pid in $(ip netns pids "$P$ns" 2>/dev/null); do
			kill -9 "$pid" 2>/dev/null || true
		done
		ip netns del "$P$ns" 2>/dev/null || true
	done
}

case "${1:-}" in
up) [ $# = 2 ] || die "usage: $0 up DIR"; up "$2" ;;
down) [ $# = 2 ] || die "usage: $0 down DIR"; down "$2" ;;
pin) [ $# = 3 ] || die "usage: $0 pin DIR on|off"; pin "$2" "$3" ;;
vrrp) [ $# = 2 ] || die "usage: $0 vrrp DIR"; vrrp "$2" ;;
*) die "usage: $0 up|down|vrrp DIR, or pin DIR on|off" ;;
esac
