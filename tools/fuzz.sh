#!/bin/sh
# Run each libFuzzer target for SECONDS: first its seed corpus
# (tests/fuzz/corpus/NAME/, which also holds inputs that once crashed it),
# then new inputs.  New corpus entries and crash files go next to the
# binary, never into the repo.  Exit non-zero if any target failed.
# Usage: tools/fuzz.sh SECONDS BINARY...
secs=$1
shift
failed=""
for bin in "$@"; do
	name=$(basename "$bin")
	dir=$(dirname "$bin")
	seeds=tests/fuzz/corpus/$name
	work=$dir/corpus/$name
	log=$dir/$name.log
	dict=""
	[ -f "tests/fuzz/$name.dict" ] && dict="-dict=tests/fuzz/$name.dict"
	[ -d "$seeds" ] || seeds=""
	mkdir -p "$work"
	echo "== $name: ${secs}s"
	# close_fd_mask=1: the targets' own stdout (ringlbctl prints) is noise.
	if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	    -max_len=4096 -close_fd_mask=1 -print_final_stats=1 \
	    -artifact_prefix="$dir/$name-" $dict "$work" $seeds \
	    >"$log" 2>&1; then
		grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' \
			"$log" | tr '\n' ' '
		echo
	else
		tail -n 60 "$log"
		echo "FAILED: $name (log $log; crash input $dir/$name-*)"
		failed="$failed $name"
	fi
done
[ -z "$failed" ] || { echo "fuzz: failed:$failed"; exit 1; }
echo "fuzz: all $# targets ran ${secs}s without a crash"
