#!/usr/bin/env python3
"""discover.py: what DNS service discovery costs ringlb, and proof that a
silent DNS server never holds up a worker.

    make bench-discover
    tools/bench/discover.py --ringlb build/ringlb [--backends 1000] [--seconds 20]
                            [--type a|srv]

A small DNS server of its own (UDP and TCP on 127.0.0.1, A records, or
SRV records with their targets' A records in the additional section; an
answer too big for UDP is truncated, so c-ares asks again over TCP, as
it would for a real 1,000-record answer) serves one name.  ringlb (one
worker) discovers it with TTL 0 and min_ttl_ms 1000: one round a second.

- steady: the same N records every second (no new generation);
- churn: one record of the N replaced every second (a new generation
  with N backends every second, every backend but one carried);
- latency: 64-byte ping-pong at 2,000/s through a second listener with a
  static backend (echod), once with the DNS server answering and once
  with it silent (c-ares waits out its timeouts on the ringlb-dns
  thread); p50/p99 should not move.

CPU is ringlb's user+system time from /proc over the run, per second.
"""
import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = "svc.bench"


class Dns:
    """A (or SRV) record server for one name; silent on request."""

    def __init__(self, srv):
        self.addrs = []
        self.srv = srv
        self.silent = False
        self.lock = threading.Lock()
        # One port for UDP and TCP: a free UDP port's TCP twin may be taken.
        for _ in range(50):
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind(("127.0.0.1", 0))
            self.port = self.udp.getsockname()[1]
            self.tcp = socket.socket()
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                self.tcp.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
        self.tcp.listen(16)
        self.stop = False
        for f in (self.serve_udp, self.serve_tcp):
            threading.Thread(target=f, daemon=True).start()

    def answer(self, q, udp):
        if len(q) < 12:
            return None
        qid, flags, qd = struct.unpack(">HHH", q[:6])
        p = 12
        labels = []
        while p < len(q) and q[p]:
            labels.append(q[p + 1:p + 1 + q[p]].decode().lower())
            p += 1 + q[p]
        p += 1
        if p + 4 > len(q):
            return None
        qtype = struct.unpack(">H", q[p:p + 2])[0]
        question = q[12:p + 4]
        name = ".".join(labels)
        with self.lock:
            addrs = list(self.addrs)
        rcode = 0 if name == NAME else 3
        rrs, an, ar = b"", 0, 0
        if rcode == 0 and qtype == 1 and not self.srv:
            rrs = b"".join(b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 0, 4) +
                           socket.inet_aton(a) for a in addrs)
            an = len(addrs)
        elif rcode == 0 and qtype == 33 and self.srv:
            # SRV "10 1 9 tN.svc.bench." for each address; the targets'
            # A records in the additional section.  Each target is its
            # own label plus a pointer to the question's name.
            ans, add = [], []
            for i, a in enumerate(addrs):
                label = f"t{i}".encode()
                target = bytes([len(label)]) + label + b"\xc0\x0c"
                ans.append(b"\xc0\x0c" + struct.pack(">HHIH", 33, 1, 0,
                                                      6 + len(target)) +
                           struct.pack(">HHH", 10, 1 + i % 7, 9) + target)
                add.append(target + struct.pack(">HHIH", 1, 1, 0, 4) +
                           socket.inet_aton(a))
            rrs = b"".join(ans) + b"".join(add)
            an, ar = len(ans), len(add)
        hdr_flags = 0x8400 | (flags & 0x0100) | rcode
        msg = struct.pack(">HHHHHH", qid, hdr_flags, 1, an, 0, ar) + question + rrs
        if udp and len(msg) > 512:
            msg = struct.pack(">HHHHHH", qid, hdr_flags | 0x0200, 1, 0, 0,
                              0) + question
        return msg

    def serve_udp(self):
        while not self.stop:
            q, peer = self.udp.recvfrom(4096)
            if self.silent:
                continue
            a = self.answer(q, True)
            if a:
                self.udp.sendto(a, peer)

    def serve_tcp(self):
        while not self.stop:
            c, _ = self.tcp.accept()
            threading.Thread(target=self.conn, args=(c,), daemon=True).start()

    def conn(self, c):
        try:
            while True:
                h = c.recv(2, socket.MSG_WAITALL)
                if len(h) < 2:
                    break
                q = c.recv(struct.unpack(">H", h)[0], socket.MSG_WAITALL)
                if self.silent:
                    continue
                a = self.answer(q, False)
                if a:
                    c.sendall(struct.pack(">H", len(a)) + a)
        except OSError:
            pass
        c.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get(sock, path):
    r = subprocess.run(["curl", "-s", "--unix-socket", sock, "http://x" + path],
                       capture_output=True, text=True)
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ringlb", default="build/ringlb")
    ap.add_argument("--backends", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--type", choices=("a", "srv"), default="a")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ringlb-discover-")
    bindir = os.path.join(work, "bin")
    os.makedirs(bindir)
    for p in ("echod", "lat"):
        subprocess.run(["gcc", "-O2", "-o", os.path.join(bindir, p),
                        os.path.join(HERE, p + ".c")], check=True)
    dns = Dns(args.type == "srv")
    n = args.backends
    dns.addrs = [f"127.1.{i // 250}.{1 + i % 250}" for i in range(n)]
    echo_port, lport, eport = free_port(), free_port(), free_port()
    echod = subprocess.Popen([os.path.join(bindir, "echod"), "127.0.0.1",
                              str(echo_port)])
    sock = os.path.join(work, "admin.sock")
    cfg = {
        "workers": 1, "log_level": "warn", "admin": {"socket": sock},
        "listeners": [
            {"name": "d", "listen": f"127.0.0.1:{lport}",
             "health_check": {"enabled": False},
             "discover": {"name": NAME, "type": args.type,
                          **({"port": 9} if args.type == "a" else {}),
                          "resolvers": [f"127.0.0.1:{dns.port}"],
                          "min_ttl_ms": 1000, "max_ttl_ms": 1000,
                          "hold_ms": 600000, "max_backends": 10000}},
            {"name": "e", "listen": f"127.0.0.1:{eport}",
             "health_check": {"enabled": False},
             "backends": [{"name": "echo",
                           "address": f"127.0.0.1:{echo_port}"}]}]}
    path = os.path.join(work, "ringlb.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    lb = subprocess.Popen([os.path.abspath(args.ringlb), "-c", path],
                          stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(work, "log"), "w"))
    try:
        for _ in range(200):
            try:
                if len(get(sock, "/pools/d")["backends"]) == n:
                    break
            except (ValueError, KeyError):
                pass
            time.sleep(0.05)
        rows = []
        for phase in ("steady", "churn"):
            g0 = get(sock, "/status")["generation"]
            c0, t0 = cpu_s(lb.pid), time.monotonic()
            for s in range(args.seconds):
                if phase == "churn":
                    with dns.lock:
                        dns.addrs[s % n] = f"127.2.{s // 250}.{1 + s % 250}"
                time.sleep(1)
            c1, t1 = cpu_s(lb.pid), time.monotonic()
            g1 = get(sock, "/status")["generation"]
            rows.append((phase, (c1 - c0) / (t1 - t0) * 1000, g1 - g0))
        lat = {}
        for state in ("answering", "silent"):
            dns.silent = state == "silent"
            r = subprocess.run([os.path.join(bindir, "lat"), "127.0.0.1",
                                str(eport), "2000", "10"],
                               capture_output=True, text=True)
            lat[state] = json.loads(r.stdout)
        disc = get(sock, "/pools/d")["discovery"]
    finally:
        lb.send_signal(signal.SIGTERM)
        lb.wait(30)
        echod.terminate()
        echod.wait()
    size = n * 16 + 40 if args.type == "a" else n * 44 + 40
    print(f"{n} discovered backends ({args.type.upper()} records), one DNS "
          f"round a second (answers over TCP: about {size} bytes)\n")
    print("| phase | ringlb CPU, ms per second | new generations |")
    print("|---|---:|---:|")
    for phase, ms, gens in rows:
        print(f"| {phase} | {ms:.1f} | {gens} |")
    print("\n| DNS server | p50 us | p99 us | p99 (1 s windows) us | errors |")
    print("|---|---:|---:|---:|---:|")
    for state, r in lat.items():
        print(f"| {state} | {r['p50_us']} | {r['p99_us']} | {r['p99w_us']} "
              f"| {r['errors']} |")
    print(f"\nqueries: {json.dumps(disc['queries'])}")


if __name__ == "__main__":
    main()
