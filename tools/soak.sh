#!/bin/sh
# Soak test: run ringlb for SOAK_MINUTES (default 30) under mixed,
# checksummed traffic with backend kills and reloads; see tools/soak.py for
# the traffic, the expected errors and the pass criteria.  Exit 0 on a pass.
#
#   tools/soak.sh [RINGLB]          (default build/ringlb)
#   SOAK_MINUTES=4 make soak
set -eu
bin=${1:-build/ringlb}
minutes=${SOAK_MINUTES:-30}
[ -x "$bin" ] || { echo "soak: $bin is not an executable" >&2; exit 2; }
command -v python3 >/dev/null || { echo "soak: python3 missing" >&2; exit 2; }
# soak.py stops by itself (and exits 3 if it overruns by 5 minutes); this
# is the last resort if even that hangs.
limit=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 + 420 }')
exec timeout -s KILL "$limit" python3 "$(dirname "$0")/soak.py" \
	--ringlb "$bin" --minutes "$minutes"
