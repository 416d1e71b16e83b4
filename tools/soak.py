#!/usr/bin/env python3
"""soak.py: run ringlb for a long time under mixed, checksummed traffic while
backends die and the configuration is reloaded, and fail on anything that
must not happen.  Standard library only.

    tools/soak.py --ringlb build/ringlb [--minutes 30] [--keep]
    tools/soak.py backend NAME PORT          (internal: one echo backend)

Traffic (asyncio, one process), against two listeners (round-robin and
least-connections) over the same 4 backends:
  short   8 loops: connect, one message of 1..4096 bytes, half-close, echo, EOF
  chat    4 loops: 40 request/reply exchanges of 16..1024 bytes, then close
  long    8 loops: one connection held 5..40 s, a message every 0.2..1 s
  bulk    2 loops: 1..32 MiB streamed up while the echo streams back
Every backend sends "<name>\\n" first and then echoes, so each connection
knows its backend.  Every byte that comes back is compared with what was sent
(a deterministic stream per connection), so a lost, duplicated or corrupted
byte is caught at the offset where it happens.

Faults: every 4 s one backend is SIGKILLed and restarted 0.3..1.5 s later on
the same port; every 3 s the config is reloaded, alternating SIGHUP and
POST /reload on the admin socket, and alternating two configs (the second
gives b1 weight 3 and removes b4 from the round-robin listener).

Expected errors: a connection may end early (reset, EOF before its echo,
or no greeting) only if its backend was down while it was open.  Its
backend is the one named by its greeting, or, when it got none, the one that
ringlb's log line for its client port names (ringlb had connected to it; of
the lines for that port, the one logged nearest to the connection's end,
since ports are reused within seconds);
"while open" is from its greeting (or, without one, its start) to its end,
with 0.2 s of slack on both sides.  "Down" is from the SIGKILL until the
restarted backend answers a connection of the script's own with its
greeting: a process that has started but is not serving yet can still
reset a connection ringlb made to it.
Everything else is an unexpected error: a refused or failed connect to
ringlb, a stall of 30 s, an early end with no kill of its backend to explain
it, a connection ringlb never logged, and any corrupted byte.

Pass criteria (exit 0 only if all hold):
  - ringlb never exits (crashes: 0) and stops with status 0 on SIGTERM;
  - corrupted connections 0, unexpected errors 0;
  - ringlb's fd count and RSS, sampled every 10 s, are flat: the maximum over
    the last minute is at most 10% (+16 fds, +2 MiB RSS) above the maximum
    over the second minute (the first minute is warm-up);
  - once traffic stops, the fd count returns exactly to its idle value at
    start and /status shows 0 active connections; reload_failures is 0.
"""

import argparse
import asyncio
import ctypes
import datetime
import errno
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

MIB = 1024 * 1024
BLOCK = 4 * MIB
BACKENDS = ["b1", "b2", "b3", "b4"]
STALL_S = 30.0

# ---- one backend: greeting, then echo ----


async def serve_conn(name, reader, writer):
    try:
        writer.write(name.encode() + b"\n")
        while True:
            data = await reader.read(262144)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def backend_main(name, port):
    async def run():
        server = await asyncio.start_server(
            lambda r, w: serve_conn(name, r, w), "127.0.0.1", port,
            reuse_address=True, backlog=1024)
        async with server:
            await server.serve_forever()
    asyncio.run(run())


# ---- helpers ----

libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def die_with_parent():
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port():
    """A port outside the ephemeral range that binds on 127.0.0.1."""
    while True:
        port = random.randint(20000, 30000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()


def backend_ready(port, name):
    """Does the backend on port accept and greet as name?"""
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5) as s:
            s.settimeout(0.5)
            data = b""
            while not data.endswith(b"\n") and len(data) < 64:
                chunk = s.recv(64)
                if not chunk:
                    break
                data += chunk
            return data == name.encode() + b"\n"
    except OSError:
        return False


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def admin_request(sock_path, method, path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
                  f"Content-Length: 0\r\nConnection: close\r\n\r\n"
                  .encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return status, body.decode(errors="replace")


class Pattern:
    """Byte i of stream `seed` is BB[(seed * 7919 + i) % BLOCK]."""

    def __init__(self):
        rnd = random.Random(20261127)
        block = rnd.randbytes(BLOCK)
        self.bb = memoryview(block + block)

    def chunk(self, seed, off, n):
        start = (seed * 7919 + off) % BLOCK
        return self.bb[start:start + n]

    def check(self, seed, off, data):
        """Offset of the first differing byte, or -1."""
        pos = 0
        while pos < len(data):
            n = min(len(data) - pos, BLOCK)
            want = self.chunk(seed, off + pos, n)
            got = data[pos:pos + n]
            if want != got:
                for i in range(n):
                    if want[i] != got[i]:
                        return pos + i
            pos += n
        return -1


class Conn:
    def __init__(self, kind, seed):
        self.kind = kind
        self.seed = seed
        self.backend = None
        self.t0 = time.monotonic()
        self.t_greet = None
        self.wall0 = time.time()
        self.port = None
        self.t1 = None
        self.sent = 0
        self.verified = 0
        self.result = None      # ok, corrupt, or an error string
        self.detail = ""


class Corrupt(Exception):
    pass


# ---- the soak ----


class Soak:
    def __init__(self, args):
        self.args = args
        self.pat = Pattern()
        self.dir = tempfile.mkdtemp(prefix="ringlb-soak.")
        self.cfg = os.path.join(self.dir, "config.json")
        self.log = os.path.join(self.dir, "ringlb.log")
        self.sock = os.path.join(self.dir, "admin.sock")
        self.ports = {n: free_port() for n in BACKENDS}
        self.lports = []
        while len(self.lports) < 2:
            p = free_port()
            if p not in self.ports.values() and p not in self.lports:
                self.lports.append(p)
        self.procs = {}
        self.kills = []         # [t killed, name, t answering again]
        self.restart_s = []     # restart to answering, seconds
        self.restart_deaths = 0
        self.while_restarting = 0
        self.conns_done = []
        self.open = set()
        self.seed = 0
        self.stop = False
        self.samples = []       # (t, fds, rss_kb, open conns)
        self.failures = []
        self.reloads = 0
        self.variant = 0
        self.lb = None
        self.logmap = None
        self.t_start = None

    def fail(self, msg):
        print("FAIL: " + msg, flush=True)
        self.failures.append(msg)

    def write_config(self, variant):
        def backends(names, w1):
            return [{"name": n, "address": f"127.0.0.1:{self.ports[n]}",
                     "weight": w1 if n == "b1" else 1} for n in names]
        rr = BACKENDS if variant == 0 else BACKENDS[:3]
        hc = {"interval_ms": 500 if variant == 0 else 400,
              "timeout_ms": 300, "rise": 2, "fall": 2}
        cfg = {
            "workers": 2, "log_level": "info", "shutdown_grace_ms": 5000,
            "admin": {"socket": self.sock},
            "listeners": [
                {"name": "rr", "listen": f"127.0.0.1:{self.lports[0]}",
                 "algorithm": "round-robin", "connect_attempts": 3,
                 "backends": backends(rr, 1 if variant == 0 else 3),
                 "health_check": hc,
                 "timeouts": {"connect_ms": 1000, "idle_ms": 120000}},
                {"name": "lc", "listen": f"127.0.0.1:{self.lports[1]}",
                 "algorithm": "least-connections", "connect_attempts": 3,
                 "backends": backends(BACKENDS, 1),
                 "health_check": hc,
                 "timeouts": {"connect_ms": 1000, "idle_ms": 120000}},
            ]}
        tmp = self.cfg + ".tmp"
        with open(tmp, "w") as f:
            json.dump(cfg, f, indent=1)
        os.rename(tmp, self.cfg)

    def start_backend(self, name):
        self.procs[name] = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "backend", name,
             str(self.ports[name])],
            preexec_fn=die_with_parent, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)

    def start(self):
        for n in BACKENDS:
            self.start_backend(n)
        self.write_config(0)
        logf = open(self.log, "w")
        self.lb = subprocess.Popen([self.args.ringlb, "-c", self.cfg],
                                   stdout=logf, stderr=logf,
                                   preexec_fn=die_with_parent)
        deadline = time.monotonic() + 10
        while True:
            up = 0
            for p in self.lports:
                try:
                    socket.create_connection(("127.0.0.1", p), 1).close()
                    up += 1
                except OSError:
                    pass
            if up == 2 and os.path.exists(self.sock):
                break
            if self.lb.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("ringlb did not start; see " + self.log)
            time.sleep(0.1)
        time.sleep(1.5)         # the probes above end; backends come up
        self.idle_fds = self.stable_fds()
        print(f"ringlb pid {self.lb.pid}, listeners {self.lports}, "
              f"backends {self.ports}, idle fds {self.idle_fds}, "
              f"dir {self.dir}", flush=True)

    def stable_fds(self):
        last = -1
        for _ in range(60):
            n = fd_count(self.lb.pid)
            if n == last:
                return n
            last = n
            time.sleep(0.5)
        return last

    # ---- client loops ----

    def new_conn(self, kind):
        self.seed += 1
        c = Conn(kind, self.seed)
        self.open.add(c)
        return c

    async def rd(self, coro):
        return await asyncio.wait_for(coro, STALL_S)

    async def connect(self, c):
        """Connect (noting the client port first, so that even a connect
        that fails can be found in ringlb's log) and read the greeting."""
        loop = asyncio.get_running_loop()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", random.choice(self.lports)))
        c.port = s.getsockname()[1]
        if err == errno.EINPROGRESS:
            fut = loop.create_future()
            loop.add_writer(s, lambda: fut.done() or fut.set_result(None))
            try:
                await self.rd(fut)
            finally:
                loop.remove_writer(s)
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            s.close()
            raise ConnectionError(err, "connect: " + os.strerror(err))
        reader, writer = await asyncio.open_connection(sock=s,
                                                       limit=1 << 20)
        line = await self.rd(reader.readline())
        if not line.endswith(b"\n"):
            raise EOFError("no greeting")
        c.backend = line.decode().strip()
        c.t_greet = time.monotonic()
        return reader, writer

    async def expect(self, c, reader, n):
        """Read exactly n echoed bytes and check them."""
        want = n
        while want > 0:
            data = await self.rd(reader.read(min(want, 262144)))
            if not data:
                raise EOFError(f"EOF after {c.verified} bytes")
            bad = self.pat.check(c.seed, c.verified, data)
            if bad >= 0:
                raise Corrupt(f"byte {c.verified + bad} differs")
            c.verified += len(data)
            want -= len(data)

    async def expect_eof(self, reader):
        data = await self.rd(reader.read(1))
        if data:
            raise Corrupt("bytes after the echo")

    async def send(self, c, writer, n):
        writer.write(self.pat.chunk(c.seed, c.sent, n).tobytes())
        c.sent += n
        await self.rd(writer.drain())

    async def run_conn(self, kind, body):
        c = self.new_conn(kind)
        writer = None
        try:
            reader, writer = await self.connect(c)
            await body(c, reader, writer)
            c.result = "ok"
        except Corrupt as e:
            c.result = "corrupt"
            c.detail = str(e)
        except asyncio.TimeoutError:
            c.result = "stall"
            c.detail = f"no progress for {STALL_S} s"
        except (ConnectionError, OSError, EOFError,
                asyncio.IncompleteReadError) as e:
            c.result = type(e).__name__
            c.detail = str(e)
        finally:
            if writer is not None:
                writer.close()
            c.t1 = time.monotonic()
            self.open.discard(c)
            self.conns_done.append(c)

    async def short_body(self, c, reader, writer):
        n = random.randint(1, 4096)
        await self.send(c, writer, n)
        writer.write_eof()
        await self.expect(c, reader, n)
        await self.expect_eof(reader)

    async def chat_body(self, c, reader, writer):
        for _ in range(40):
            n = random.randint(16, 1024)
            await self.send(c, writer, n)
            await self.expect(c, reader, n)
        writer.write_eof()
        await self.expect_eof(reader)

    async def long_body(self, c, reader, writer):
        end = time.monotonic() + random.uniform(5, 40)
        while time.monotonic() < end and not self.stop:
            n = random.randint(1, 512)
            await self.send(c, writer, n)
            await self.expect(c, reader, n)
            await asyncio.sleep(random.uniform(0.2, 1.0))
        writer.write_eof()
        await self.expect_eof(reader)

    async def bulk_body(self, c, reader, writer):
        total = random.randint(1 * MIB, 32 * MIB)

        async def up():
            while c.sent < total:
                await self.send(c, writer, min(262144, total - c.sent))
            writer.write_eof()

        t = asyncio.ensure_future(up())
        try:
            await self.expect(c, reader, total)
            await self.expect_eof(reader)
        finally:
            if not t.done():
                t.cancel()
            try:
                await t
            except (asyncio.CancelledError, ConnectionError, OSError):
                pass

    async def loop(self, kind, body, pause):
        while not self.stop:
            await self.run_conn(kind, body)
            await asyncio.sleep(random.uniform(*pause))

    # ---- faults and sampling ----

    async def chaos(self):
        loop = asyncio.get_running_loop()
        while not self.stop:
            await asyncio.sleep(4)
            if self.stop:
                break
            name = random.choice(BACKENDS)
            p = self.procs[name]
            p.kill()
            p.wait()
            kill = [time.monotonic(), name, None]
            self.kills.append(kill)
            await asyncio.sleep(random.uniform(0.3, 1.5))
            # Down until it answers a connection of our own with its
            # greeting: a process that has started is not yet a backend.
            t_restart = time.monotonic()
            self.start_backend(name)
            while True:
                if await loop.run_in_executor(None, backend_ready,
                                              self.ports[name], name):
                    kill[2] = time.monotonic()
                    self.restart_s.append(kill[2] - t_restart)
                    break
                if time.monotonic() - t_restart > 30:
                    self.fail(f"backend {name} not back 30 s after its "
                              "restart")
                    break
                if self.procs[name].poll() is not None:
                    self.restart_deaths += 1
                    self.start_backend(name)
                await asyncio.sleep(0.05)

    async def reloader(self):
        loop = asyncio.get_running_loop()
        while not self.stop:
            await asyncio.sleep(3)
            if self.stop:
                break
            self.variant ^= 1
            self.write_config(self.variant)
            if self.reloads % 2 == 0:
                self.lb.send_signal(signal.SIGHUP)
            else:
                status, body = await loop.run_in_executor(
                    None, admin_request, self.sock, "POST", "/reload")
                if status != 200:
                    self.fail(f"POST /reload: {status} {body}")
            self.reloads += 1

    async def sampler(self):
        while not self.stop:
            if self.lb.poll() is not None:
                self.fail(f"ringlb exited with status {self.lb.returncode}")
                self.stop = True
                break
            t = time.monotonic() - self.t_start
            if not self.samples or t - self.samples[-1][0] >= 10:
                s = (t, fd_count(self.lb.pid), rss_kb(self.lb.pid),
                     len(self.open))
                self.samples.append(s)
                done = len(self.conns_done)
                bad = sum(1 for c in self.conns_done if c.result != "ok")
                print(f"t={s[0]:6.0f}s fds={s[1]:5d} rss={s[2]:7d}KiB "
                      f"open={s[3]:3d} done={done} not-ok={bad} "
                      f"kills={len(self.kills)} reloads={self.reloads}",
                      flush=True)
            await asyncio.sleep(1)

    async def run(self):
        self.t_start = time.monotonic()
        duration = self.args.minutes * 60
        tasks = [asyncio.ensure_future(x) for x in (
            self.chaos(), self.reloader(), self.sampler())]
        clients = []
        for _ in range(8):
            clients.append(self.loop("short", self.short_body, (0, 0.02)))
        for _ in range(4):
            clients.append(self.loop("chat", self.chat_body, (0, 0.1)))
        for _ in range(8):
            clients.append(self.loop("long", self.long_body, (0, 0.5)))
        for _ in range(2):
            clients.append(self.loop("bulk", self.bulk_body, (0, 0.5)))
        clients = [asyncio.ensure_future(x) for x in clients]
        while not self.stop and time.monotonic() - self.t_start < duration:
            await asyncio.sleep(1)
        self.stop = True
        # Long connections see the flag and close; everything else is short.
        try:
            await asyncio.wait_for(asyncio.gather(*clients), 90)
        except asyncio.TimeoutError:
            self.fail(f"{len(self.open)} connections still open 90 s after "
                      "the end")
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- verdict ----

    def log_backend(self, c):
        """The backend ringlb's log names for c's client port, or None."""
        if self.logmap is None:
            self.logmap = {}
            pat = re.compile(r"^(\S+) info conn=\d+ client=127\.0\.0\.1:"
                             r"(\d+) listener=\S+ (?:pool=\S+ )?backend=(\S+) .* end=")
            with open(self.log, errors="replace") as f:
                for line in f:
                    m = pat.match(line)
                    if not m:
                        continue
                    t = datetime.datetime.strptime(
                        m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                            tzinfo=datetime.timezone.utc).timestamp()
                    self.logmap.setdefault(int(m.group(2)), []).append(
                        (t, m.group(3)))
        # ringlb logs a connection when it ends.  Client ports come round
        # again within a second or two at this rate, so take the line
        # nearest to this connection's end, and none from before it began.
        end = c.wall0 + (c.t1 - c.t0)
        best = None
        for t, name in self.logmap.get(c.port, []):
            if c.wall0 - 0.05 <= t <= end + 1.0:
                if best is None or abs(t - end) < best[0]:
                    best = (abs(t - end), name)
        return best[1] if best else None

    def expected(self, c):
        backend = c.backend
        if backend is None and c.port is not None:
            backend = self.log_backend(c)
            c.detail += f" (ringlb log: backend {backend})"
        if backend is None:
            return False
        # A named connection's backend can only have died after it spoke.
        start = c.t_greet if c.backend is not None else c.t0
        # Its backend was down (from the kill until it answered again) at
        # some time while it was open.
        for t, name, back in self.kills:
            if name != backend:
                continue
            if back is None:
                back = float("inf")
            if t <= c.t1 + 0.2 and back >= start - 0.2:
                if not start - 0.2 <= t:
                    self.while_restarting += 1
                return True
        return False

    def verdict(self):
        kinds = {}
        corrupt, expected, unexpected = [], [], []
        for c in self.conns_done:
            k = kinds.setdefault(c.kind, [0, 0])
            k[0] += 1
            k[1] += c.verified
            if c.result == "ok":
                continue
            if c.result == "corrupt":
                corrupt.append(c)
            elif self.expected(c):
                expected.append(c)
            else:
                unexpected.append(c)
        total = len(self.conns_done)
        nbytes = sum(c.verified for c in self.conns_done)
        print(f"connections: {total} ({', '.join(f'{k} {v[0]}' for k, v in sorted(kinds.items()))}); "
              f"bytes echoed and verified: {nbytes} "
              f"({nbytes / MIB:.0f} MiB)")
        print(f"backend kills: {len(self.kills)}, reloads: {self.reloads}")
        if self.restart_s:
            r = sorted(self.restart_s)
            print(f"restart to answering: median {r[len(r) // 2]:.2f} s, "
                  f"max {r[-1]:.2f} s; restarted processes that died: "
                  f"{self.restart_deaths}")
        lost = sum(c.sent - c.verified for c in unexpected)
        print(f"ended early, explained by a kill: {len(expected)} "
              f"({self.while_restarting} of them while the backend was "
              f"coming back); "
              f"unexpected: {len(unexpected)}; corrupted: {len(corrupt)}; "
              f"bytes lost outside kills: {lost}")
        for c in (corrupt + unexpected)[:20]:
            print(f"  {c.kind} seed {c.seed} client port {c.port} "
                  f"backend {c.backend}: "
                  f"{c.result} {c.detail} ({c.verified} of {c.sent} "
                  f"bytes, {c.t1 - c.t0:.2f} s, from "
                  f"t={c.t0 - self.t_start:.1f})")
        if corrupt:
            self.fail(f"{len(corrupt)} connections got corrupted bytes")
        if unexpected:
            self.fail(f"{len(unexpected)} unexpected connection errors")
        self.check_flat()

    def check_flat(self):
        first = [s for s in self.samples if 60 <= s[0] < 120]
        last_t = self.samples[-1][0] if self.samples else 0
        last = [s for s in self.samples if s[0] > last_t - 60]
        if not first or not last or last_t < 170:
            print("run too short for the flatness check (needs 3 minutes)")
            if self.args.minutes >= 3:
                self.fail("too few samples for the flatness check")
            return
        f_fd, l_fd = max(s[1] for s in first), max(s[1] for s in last)
        f_rss, l_rss = max(s[2] for s in first), max(s[2] for s in last)
        print(f"fds: max {f_fd} in minute 2, {l_fd} in the last minute; "
              f"RSS: max {f_rss} KiB in minute 2, {l_rss} KiB in the last "
              "minute")
        if l_fd > f_fd * 1.10 + 16:
            self.fail(f"fd count grew: {f_fd} -> {l_fd}")
        if l_rss > f_rss * 1.10 + 2048:
            self.fail(f"RSS grew: {f_rss} -> {l_rss} KiB")

    def finish(self):
        pid = self.lb.pid
        if self.lb.poll() is None:
            n = -1
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                n = fd_count(pid)
                if n == self.idle_fds:
                    break
                time.sleep(0.5)
            print(f"idle fds: {self.idle_fds} at start, {n} after the run")
            if n != self.idle_fds:
                self.fail(f"ringlb holds {n} fds after the run, "
                          f"{self.idle_fds} at start")
            try:
                status, body = admin_request(self.sock, "GET", "/status")
                st = json.loads(body)
                active = sum(lst["active"] for lst in st["listeners"])
                print(f"status: generation {st['generation']}, reloads "
                      f"{st['reloads']}, reload_failures "
                      f"{st['reload_failures']}, active {active}")
                if active != 0:
                    self.fail(f"/status says {active} active connections")
                if st["reload_failures"] != 0:
                    self.fail(f"{st['reload_failures']} reloads failed")
            except (OSError, ValueError, KeyError) as e:
                self.fail(f"GET /status: {e}")
            self.lb.send_signal(signal.SIGTERM)
            try:
                rc = self.lb.wait(15)
                if rc != 0:
                    self.fail(f"ringlb exited with {rc} after SIGTERM")
            except subprocess.TimeoutExpired:
                self.fail("ringlb did not exit within 15 s of SIGTERM")
                self.lb.kill()
        for p in self.procs.values():
            p.kill()
            p.wait()
        with open(self.log, errors="replace") as f:
            text = f.read()
        for needle in ("AddressSanitizer", "runtime error", "LeakSanitizer"):
            if needle in text:
                self.fail(f"'{needle}' in the ringlb log")
        errors = [l for l in text.splitlines() if " error " in l]
        print(f"ringlb log: {len(text.splitlines())} lines, "
              f"{len(errors)} at level error ({self.log})")
        for l in errors[:5]:
            print("  " + l)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "backend":
        die_with_parent()
        backend_main(sys.argv[2], int(sys.argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ringlb", required=True)
    ap.add_argument("--minutes", type=float,
                    default=float(os.environ.get("SOAK_MINUTES", "30")))
    ap.add_argument("--keep", action="store_true",
                    help="keep the temp dir (config, log) after a pass")
    args = ap.parse_args()
    soak = Soak(args)
    # However it ends, it ends: a hard stop well after the planned end.
    signal.signal(signal.SIGALRM, lambda *a: os._exit(3))
    signal.alarm(int(args.minutes * 60) + 300)
    t0 = time.monotonic()
    soak.start()
    try:
        asyncio.run(soak.run())
    finally:
        soak.verdict()
        soak.finish()
    print(f"soak: {args.minutes:g} min planned, "
          f"{(time.monotonic() - t0) / 60:.1f} min run, "
          f"{'FAILED' if soak.failures else 'passed'}")
    for f in soak.failures:
        print("  " + f)
    if soak.failures or args.keep:
        print(f"kept {soak.dir} (config, ringlb.log)")
    else:
        shutil.rmtree(soak.dir, ignore_errors=True)
    return 1 if soak.failures else 0


if __name__ == "__main__":
    sys.exit(main())
