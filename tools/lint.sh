#!/bin/sh
# make lint: clang-tidy (.clang-tidy) and cppcheck (tools/lint/cppcheck.supp)
# over src/ and include/.  Any finding fails, except those listed in
# tools/lint/known.txt.  CLANG_TIDY and CPPCHECK name other binaries.
cd "$(dirname "$0")/.." || exit 1
tidy=${CLANG_TIDY:-clang-tidy-14}
cppcheck=${CPPCHECK:-cppcheck}
jobs=$(nproc 2>/dev/null || echo 2)
for t in "$tidy" "$cppcheck"; do
	command -v "$t" >/dev/null 2>&1 || { echo "lint: no $t" >&2; exit 1; }
done
out=$(mktemp)
found=$(mktemp)
trap 'rm -f "$out" "$found"' EXIT
pkgs="liburing jansson libmicrohttpd libcurl libcap-ng"
cflags="-std=gnu11 -Iinclude -D_GNU_SOURCE -pthread \
$(pkg-config --cflags $pkgs 2>/dev/null)"
export tidy cflags

# One clang-tidy per file, in parallel; a header's finding shows once per
# file that includes it, hence sort -u.
ls src/*.c src/ctl/*.c | xargs -P "$jobs" -I{} sh -c \
	'"$tidy" --quiet "$1" -- $cflags 2>/dev/null' sh {} >"$out"
grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' "$out" |
	sed "s|^$(pwd)/||" | sort -u >"$found"
"$cppcheck" --quiet --std=c11 -D_GNU_SOURCE -D__linux__ -Iinclude \
	--enable=warning,style,performance,portability --library=posix \
	--suppressions-list=tools/lint/cppcheck.supp --inline-suppr \
	--template='{file}:{line}: {severity}: {id}: {message}' \
	src include 2>>"$found"

grep -vE '^(#|$)' tools/lint/known.txt >"$out"
n=$(grep -cvEf "$out" "$found" || true)
known=$(grep -cEf "$out" "$found" || true)
n=${n:-0}
known=${known:-0}
if [ "$n" != 0 ]; then
	# clang-tidy's notes (the path to a finding) help; show it all.
	grep -vEf "$out" "$found"
	echo "lint: $n findings ($known known, see tools/lint/known.txt)"
	exit 1
fi
echo "lint: clean ($known known findings listed in tools/lint/known.txt)"
