#!/bin/sh
# Run each Check test binary, keep going after a failure, and finish with
# one summary line; exit non-zero if any binary failed.
passed=0
failed=0
for t in "$@"; do
	echo "== $t"
	if "$t"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "FAILED: $t"
	fi
done
echo "test binaries: $passed passed, $failed failed"
[ "$failed" = 0 ]
