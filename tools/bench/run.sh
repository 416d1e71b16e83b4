#!/bin/sh
# ringlb side-by-side benchmark (`make bench`): ringlb vs HAProxy (mode tcp)
# vs nginx stream vs the direct path, on 127.0.0.1.
#
#   tools/bench/run.sh                 full run: THREADS=1, ROUNDS=3 (~10 min)
#   QUICK=1 tools/bench/run.sh         smoke run: 1 round, short runs
#   THREADS=2 tools/bench/run.sh       2 threads per proxy
#
# Installs what is missing with apt-get (needs root the first time), builds
# ringlb if needed and the helpers (echod, lat, hold) into $BENCH_DIR/bin,
# then runs bench.py, which prints the Markdown table and writes
# tools/bench/results.md and tools/bench/results.json.  bench.py lists every
# setting (DURATION, IDLE_CONNS, TARGETS, WORKLOADS, RINGLB, ...).
set -e
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/ringlb-bench}
BENCH_BIN=$BENCH_DIR/bin
export BENCH_DIR BENCH_BIN

# Debian packages: command to look for, package that provides it.
need="haproxy:haproxy nginx:nginx wrk:wrk iperf3:iperf3
redis-server:redis-server redis-benchmark:redis-tools ps:procps
python3:python3 gcc:gcc make:make"
missing=""
for pair in $need; do
	cmd=${pair%%:*}
	pkg=${pair#*:}
	command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
done
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] ||
	missing="$missing libnginx-mod-stream"
if [ -n "$missing" ]; then
	echo "bench: installing:$missing" >&2
	if [ "$(id -u)" = 0 ]; then
		SUDO=""
	elif command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "bench: missing packages:$missing (run as root)" >&2
		exit 1
	fi
	# The packages' own daemons must not start and take ports: a
	# policy-rc.d that denies every start, only for this install (and
	# only if there is none already).
	policy=/usr/sbin/policy-rc.d
	ours=""
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
		$SUDO chmod 755 "$policy"
		ours=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	rc=0
	{ $SUDO apt-get update -qq &&
	  $SUDO apt-get install -y -qq --no-install-recommends $missing; } ||
		rc=$?
	[ -n "$ours" ] && $SUDO rm -f "$policy"
	[ "$rc" = 0 ] || exit "$rc"
	# Where a service manager started them anyway, stop them: this
	# benchmark runs its own instances on its own ports.
	for svc in nginx haproxy redis-server iperf3; do
		$SUDO service "$svc" stop >/dev/null 2>&1 || true
	done
fi

# The ringlb to measure: $RINGLB, or this tree's build (built if missing).
if [ -z "$RINGLB" ]; then
	RINGLB=$repo/build/ringlb
	[ -x "$RINGLB" ] || make -C "$repo" -s build/ringlb
	export RINGLB
fi

mkdir -p "$BENCH_BIN"
for p in echod lat hold; do
	if [ ! -x "$BENCH_BIN/$p" ] || [ "$here/$p.c" -nt "$BENCH_BIN/$p" ]; then
		gcc -O2 -Wall -Wextra -o "$BENCH_BIN/$p" "$here/$p.c"
	fi
done

exec python3 "$here/bench.py"
