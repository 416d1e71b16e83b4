#!/bin/sh
# Run each Check test binary, keep going after a failure, and finish with
# one summary line counting the individual checks,
#   checks: N passed, M failed, K skipped
# exit non-zero if any binary failed (including a crash that printed no
# count).  Check counts a skipped test as passed; the test says it skipped
# with a line "SKIP <test>: <why>" (h_skip() in tests/h_suite.h), counted
# here and taken off the passed ones.
checks=0
failed=0
skipped=0
bad=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# SANITIZER_REPORTS: the log_path prefix the sanitizer writes reports to
# (see the Makefile); any report from any process fails the run.
reports=0
[ -n "$SANITIZER_REPORTS" ] && rm -f "$SANITIZER_REPORTS".*
for t in "$@"; do
	echo "== $t"
	"$t" 2>&1 | tee "$out"
	# Check's summary: "100%: Checks: 9, Failures: 0, Errors: 0"
	line=$(grep -E '^[0-9]+%: Checks: [0-9]+' "$out" | tail -n 1)
	if [ -z "$line" ]; then
		echo "FAILED: $t printed no summary"
		bad=$((bad + 1))
		continue
	fi
	n=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
	f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
	e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
	s=$(grep -c '^SKIP [A-Za-z0-9_]*: ' "$out")
	checks=$((checks + n))
	failed=$((failed + f + e))
	skipped=$((skipped + s))
	[ $((f + e)) -eq 0 ] || echo "FAILED: $t"
done
if [ -n "$SANITIZER_REPORTS" ]; then
	for r in "$SANITIZER_REPORTS".*; do
		[ -e "$r" ] || continue
		cat "$r"
		reports=$((reports + 1))
	done
	[ "$reports" = 0 ] || echo "FAILED: $reports sanitizer reports" \
		"($SANITIZER_REPORTS.*)"
fi
echo "checks: $((checks - failed - skipped)) passed, $failed failed," \
	"$skipped skipped"
[ "$failed" = 0 ] && [ "$bad" = 0 ] && [ "$reports" = 0 ]
