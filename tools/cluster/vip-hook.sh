#!/bin/sh
# vip-hook.sh: announce a VIP over BGP only while ringlb is ready.
#
#   vip-hook.sh ADMIN_SOCKET BIRD_SOCKET [PROTOCOL]
#   vip-hook.sh ADMIN_SOCKET --file PATH
#
# Every 100 ms it asks ringlb (`ringlbctl is-ready`, GET /ready with a
# 300 ms timeout).  The first answer that is not 200 (withdrawn, stopping,
# ringlb dead or hung) disables bird's PROTOCOL (default "vip4", a static
# route to the VIP that bird exports to the router), which withdraws the
# VIP at once; three 200s in a row enable it again.  So the router stops
# sending new flows here within about 0.2 s of a `ringlbctl withdraw`, a
# SIGTERM or a kill -9, and within 0.5 s of a hang.  Every second it says
# again what it last said, in case bird was restarted or reconfigured.
# On SIGTERM or SIGINT it withdraws and exits.
#
# RINGLBCTL and BIRDC name the programs (default: ringlbctl, birdc on
# PATH).  Each change of state is a line on stdout.
#
# With --file, it writes 0 (ready) or 1 (not) to PATH instead: the
# track_file of a keepalived VRRP instance (weight 0), which goes to FAULT
# on 1 and gives the VIP to the backup.
set -u
adm=$1 bird=$2 proto=${3:-vip4}
ctl=${RINGLBCTL:-ringlbctl}
birdc=${BIRDC:-birdc}
state=down ok=0 n=0

if [ "$bird" = --file ]; then
	file=$proto
	say() {
		if [ "$1" = enable ]; then v=0; else v=1; fi
		echo $v >"$file.tmp" && mv "$file.tmp" "$file"
	}
else
	say() { "$birdc" -s "$bird" "$1" "$proto" >/dev/null 2>&1; }
fi
stamp() { date +%H:%M:%S.%3N; }

trap 'say disable; echo "$(stamp) stopped: withdrawn"; exit 0' INT TERM
say disable
while :; do
	if "$ctl" -s "$adm" is-ready --timeout 0.3 >/dev/null 2>&1; then
		ok=$((ok + 1))
	else
		ok=0
	fi
	if [ $state = down ] && [ $ok -ge 3 ]; then
		state=up
		say enable
		echo "$(stamp) ready: announced"
	elif [ $state = up ] && [ $ok -eq 0 ]; then
		state=down
		say disable
		echo "$(stamp) not ready: withdrawn"
	fi
	n=$((n + 1))
	if [ $((n % 10)) -eq 0 ]; then
		if [ $state = up ]; then say enable; else say disable; fi
	fi
	sleep 0.1
done
