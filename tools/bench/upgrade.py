#!/usr/bin/env python3
"""upgrade.py: how long `ringlbctl upgrade` takes with N open connections,
and how many of them it hands over.

    make bench-upgrade                       # N = 0, 1000, 5000; 3 rounds
    tools/bench/upgrade.py --ringlb build/ringlb --ctl build/ringlbctl \\
        --conns 0,1000,5000 --rounds 3

Per N and round: a fresh ringlb (2 workers) in front of the echo backend
(echod), N idle connections through it opened and proven by `hold`, then
`ringlbctl upgrade` to the same binary, timed from the command to its
reply (the new process serves and the hand-over is over).  Then the old
process must exit by itself, and every one of the N connections must do
one more round trip, through the new process.  Prints one Markdown row per
N: medians over the rounds, and the range.
"""
import argparse
import ctypes
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    sys.exit(f"upgrade.py: nothing listens on {port}")


def reap(pid, timeout):
    """Wait for child pid (ours, or reparented to us) to exit; its status."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.005)
    return None


def build_helpers(bindir):
    os.makedirs(bindir, exist_ok=True)
    for p in ("echod", "hold"):
        subprocess.run(["gcc", "-O2", "-Wall", "-o", os.path.join(bindir, p),
                        os.path.join(HERE, p + ".c")], check=True)


def one_round(args, bindir, echo_port, n, workdir):
    port = free_port()
    sock = os.path.join(workdir, "admin.sock")
    cfg = {
        "workers": 2,
        "log_level": "warn",
        "shutdown_grace_ms": 10000,
        "admin": {"socket": sock},
        "listeners": [{
            "name": "l", "listen": f"127.0.0.1:{port}", "backlog": 4096,
            "health_check": {"enabled": False},
            "backends": [{"name": "e", "address": f"127.0.0.1:{echo_port}"}],
        }],
    }
    path = os.path.join(workdir, "ringlb.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    log = open(os.path.join(workdir, "ringlb.log"), "ab")
    lb = subprocess.Popen([args.ringlb, "-c", path], stdout=log,
                          stderr=subprocess.STDOUT)
    wait_port(port)
    hold = subprocess.Popen([os.path.join(bindir, "hold"), "127.0.0.1",
                             str(port), str(n), "8", "120"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    ready = hold.stdout.readline().split()
    if len(ready) < 3 or int(ready[1]) != n:
        sys.exit(f"upgrade.py: hold: {ready} of {n}")
    t0 = time.monotonic()
    r = subprocess.run([args.ctl, "-s", sock, "upgrade"],
                       capture_output=True, text=True)
    t1 = time.monotonic()
    if r.returncode != 0:
        sys.exit(f"upgrade.py: ringlbctl upgrade: {r.stderr.strip()}")
    # upgraded: pid P serves; H connections handed over, L left ...
    words = r.stdout.split()
    newpid, handed, left = int(words[2]), int(words[4]), int(words[8])
    st = reap(lb.pid, 30)
    t2 = time.monotonic()
    if st is None or not os.WIFEXITED(st) or os.WEXITSTATUS(st) != 0:
        sys.exit(f"upgrade.py: the old process did not exit 0 ({st})")
    hold.stdin.write("check\n")
    hold.stdin.flush()
    checked = hold.stdout.readline().split()
    hold.stdin.write("\n")
    hold.stdin.close()
    hold.wait(30)
    os.kill(newpid, signal.SIGTERM)
    reap(newpid, 30)
    log.close()
    return {
        "ms": (t1 - t0) * 1000, "old_exit_ms": (t2 - t0) * 1000,
        "handed": handed, "left": left,
        "echo_ok": int(checked[1]) if len(checked) > 2 else -1,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ringlb", default="build/ringlb")
    ap.add_argument("--ctl", default="build/ringlbctl")
    ap.add_argument("--conns", default="0,1000,5000")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    args.ringlb = os.path.abspath(args.ringlb)
    args.ctl = os.path.abspath(args.ctl)
    # A new ringlb outlives the old one: it becomes our child then.
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    workdir = tempfile.mkdtemp(prefix="ringlb-upgrade-")
    bindir = os.path.join(workdir, "bin")
    build_helpers(bindir)
    echo_port = free_port()
    echod = subprocess.Popen([os.path.join(bindir, "echod"), "127.0.0.1",
                              str(echo_port)])
    wait_port(echo_port)
    rows = []
    try:
        for n in [int(x) for x in args.conns.split(",")]:
            runs = [one_round(args, bindir, echo_port, n, workdir)
                    for _ in range(args.rounds)]
            ms = [r["ms"] for r in runs]
            rows.append((n, statistics.median(ms), min(ms), max(ms),
                         statistics.median(r["old_exit_ms"] for r in runs),
                         min(r["handed"] for r in runs),
                         max(r["left"] for r in runs),
                         min(r["echo_ok"] for r in runs)))
    finally:
        echod.terminate()
        echod.wait()
    print("| open connections | `ringlbctl upgrade` ms (median, range) "
          "| old process gone ms | handed over (min) | left (max) "
          "| echo after, through the new process (min) |")
    print("|---|---|---|---|---|---|")
    for n, med, lo, hi, gone, handed, left, ok in rows:
        print(f"| {n:,} | {med:.1f} ({lo:.1f}-{hi:.1f}) | {gone:.0f} "
              f"| {handed:,} | {left:,} | {ok:,} of {n:,} |")


if __name__ == "__main__":
    main()
