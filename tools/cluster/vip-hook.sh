#!/bin/sh
# vip-hook.sh: announce a VIP over BGP only while ringlb is ready.
#
#   vip-hook.sh ADMIN_SOCKET BIRD_SOCKET [PROTOCOL]
#   vip-hook.sh ADMIN_SOCKET --file PATH
#
# A thin wrapper of `ringlbctl watch-ready`, which asks ringlb's GET
# /ready every 100 ms over one kept connection (each answer within
# 300 ms; if it times out, once more on a new connection).  The first
# answer that is not 200 (withdrawn, stopping, ringlb dead or hung) runs
# `birdc disable PROTOCOL` (default "vip4": a static
# route to the VIP that bird exports to the router), which withdraws the
# VIP at once; three 200s in a row run `birdc enable PROTOCOL`.  So the
# router stops sending new flows here within about 0.2 s of a `ringlbctl
# withdraw`, a SIGTERM or a kill -9, and within 0.8 s of a hang.  Every
# second it says again what it last said, in case bird was restarted or
# reconfigured.  On SIGTERM or SIGINT it withdraws and exits.
#
# With --file, it writes 0 (ready) or 1 (not) to PATH instead: the
# track_file of a keepalived VRRP instance (weight 0), which goes to FAULT
# on 1 and gives the VIP to the backup.
#
# RINGLBCTL and BIRDC name the programs (default: ringlbctl, birdc on
# PATH).  Each change of state is a line on stdout.  Paths must not hold
# a single quote.
set -eu
[ $# -ge 2 ] || {
	echo "usage: $0 ADMIN_SOCKET BIRD_SOCKET [PROTOCOL]" >&2
	echo "       $0 ADMIN_SOCKET --file PATH" >&2
	exit 2
}
adm=$1 target=$2
ctl=${RINGLBCTL:-ringlbctl}
birdc=${BIRDC:-birdc}
if [ "$target" = --file ]; then
	[ $# = 3 ] || { echo "$0: --file needs a PATH" >&2; exit 2; }
	f=$3
	up="echo 0 >'$f.tmp' && mv '$f.tmp' '$f'"
	down="echo 1 >'$f.tmp' && mv '$f.tmp' '$f'"
else
	proto=${3:-vip4}
	up="'$birdc' -s '$target' enable '$proto' >/dev/null"
	down="'$birdc' -s '$target' disable '$proto' >/dev/null"
fi
exec "$ctl" -s "$adm" watch-ready --timeout 0.3 --up "$up" --down "$down"
