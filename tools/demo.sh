#!/bin/sh
# Start three demo backends and ringlb on the shipped config, in the
# foreground.  Ctrl-C stops all of them.
set -e
build=${1:-build}
pids=""
cleanup() {
	[ -n "$pids" ] && kill $pids 2>/dev/null || true
}
trap cleanup EXIT INT TERM
for i in 1 2 3; do
	"$build/demo-backend" "backend$i" "127.0.0.1:900$i" &
	pids="$pids $!"
done
cat <<MSG

ringlb demo: listener 127.0.0.1:8080 -> backend1..3 on 127.0.0.1:9001-9003
Try, in another terminal (replies come from backend 1, 2, 3 in turn):

    for i in 1 2 3 4 5 6; do curl -s http://127.0.0.1:8080/; done
    bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080; echo hi >&3; cat <&3'

Steer it (admin socket /run/ringlb/admin.sock):

    $build/ringlbctl status
    $build/ringlbctl drain demo backend2 --wait
    $build/ringlbctl ready demo backend2

Or in a browser, the status page (drain, ready, maint and weights too):

    http://127.0.0.1:9900/

Stop with Ctrl-C.

MSG
# The shipped config, plus the admin API on loopback TCP for the status
# page (the installed default keeps to the Unix socket: see README.md,
# "Who may change things").
sed '0,/{/s//{\n  "admin": { "listen": "127.0.0.1:9900" },/' config/ringlb.json \
	> "$build/demo-ringlb.json"
"$build/ringlb" -c "$build/demo-ringlb.json"
