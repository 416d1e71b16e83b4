#!/usr/bin/env python3
"""ringlb side-by-side benchmark: ringlb vs HAProxy (mode tcp) vs nginx stream
vs the direct path, on 127.0.0.1, same pools, same thread count.

Started by run.sh, which installs the packages and compiles the helpers
(echod, lat, hold) into $BENCH_BIN.  Settings come from the environment:

  THREADS=1        threads (ringlb workers, HAProxy nbthread, nginx
                   worker_processes; the backends get as many)
  ROUNDS=3         rounds; every target runs every workload once per round,
                   in a rotated order; the table shows medians
  QUICK=1          smoke run: 1 round, 2 s runs, 2000 idle connections
  DURATION=5       seconds per timed run (wrk, iperf3, latency)
  IDLE_CONNS=9000  idle connections held through each target
  LAT_RATE=2000    latency row: requests per second (64-byte ping-pong)
  BASE_PORT=19000  ports used: BASE+1..BASE+31 (backends), +1xx ringlb,
                   +2xx HAProxy, +3xx nginx
  TARGETS=ringlb,haproxy,nginx,direct
  WORKLOADS=ka,cc,bulk1,bulk4r,bulk1c,bulk4rc,redis,redisp,ka10,ka100,
            ka1000,ka8000,lat,idle
                   (bulk1c/bulk4rc: the bulk runs again with the system's
                   TCP congestion control switched to cubic for the run,
                   then restored; needs root)
  RINGLB=path      the binary to measure (default: build/ringlb)
  RINGLB_REV=text  its version for the report (default: git describe)
  RINGLB_B=path    A/B: another ringlb build, as the extra target
                   "ringlbB" (add it to TARGETS); same config, plus
  RINGLB_B_JSON=o  top-level keys merged into ringlbB's config, e.g.
                   '{"recv_buffers": 0}' (RINGLB_B defaults to RINGLB)
  RINGLB_JSON=o    the same for the "ringlb" target, e.g.
                   '{"log_level": "info", "log_format": "json"}' (the
                   bench logs at warn: no connection line is written)
  RINGLB_B_POOL_JSON=o  keys merged into every listener (its own pool) of
                   ringlbB, e.g. '{"algorithm": "maglev"}'
  RINGLB_B_SEND_PROXY=v1|v2  ringlbB's http pool sends PROXY headers, to
                   nginx backends that expect them (ports BASE+41..43,
                   `listen ... proxy_protocol`); the other pools as usual
  CLIENT_FIRST=0   leave out the options for client-speaks-first pools
                   (default 1: the HTTP and Redis listeners of ringlb get
                   "client_speaks_first": true, HAProxy's get `option
                   tcp-smart-accept` and `option tcp-smart-connect`;
                   nginx 1.22 stream has no `deferred`)
  RINGLB_B_CLIENT_FIRST=1  the same for ringlbB (default 0: builds before
                   the option refuse the key)
  REDIS_PIN=1:0:0  CPUs of the Redis rows, PROXY:SERVER:CLIENT (taskset
                   lists): the proxy alone on CPU 1, redis-server and
                   redis-benchmark on CPU 0.  Left to the scheduler the
                   rows are bimodal (see README.md); "none" leaves them so
  LAT_PIN=none     the same for the latency row (echo server, lat client);
                   default: placement left to the scheduler
  HAPROXY_SPLICE=1 give HAProxy `option splice-request` and
                   `option splice-response` (default: off, as
                   shipped)
  QUIET_WAIT=3     seconds to wait, at most, for someone else's load to pass
                   before each run
  PROFILE=strace|perf|stat  attach to each proxy during the runs and write
                   $BENCH_DIR/profile/summary.txt (see README.md)
  BENCH_DIR=dir    scratch directory (configs, logs; default /tmp/ringlb-bench)
  OUT_DIR=dir      where results.md/results.json go (default: tools/bench)

Every load loop is bounded: wrk/iperf3/lat by time, redis-benchmark by
request count, and every client runs under a hard timeout.  Traffic goes to
127.0.0.1 (and 127.0.0.2-9 as client source addresses) only.
"""
import datetime
import json
import os
import platform
import re
import resource
import select
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


QUICK = env_int("QUICK", 0) == 1
THREADS = env_int("THREADS", 1)
ROUNDS = env_int("ROUNDS", 1 if QUICK else 3)
DUR = env_int("DURATION", 2 if QUICK else 5)
IDLE_CONNS = env_int("IDLE_CONNS", 2000 if QUICK else 9000)
LAT_RATE = env_int("LAT_RATE", 2000)
BASE = env_int("BASE_PORT", 19000)
HAPROXY_SPLICE = env_int("HAPROXY_SPLICE", 0) == 1
PROFILE = os.environ.get("PROFILE", "")
QUIET_WAIT = env_int("QUIET_WAIT", 3)
BENCH_DIR = os.environ.get("BENCH_DIR") or "/tmp/ringlb-bench"
BIN = os.environ.get("BENCH_BIN") or os.path.join(BENCH_DIR, "bin")
OUT_DIR = os.environ.get("OUT_DIR") or (
    os.path.join(BENCH_DIR, "profile") if os.environ.get("PROFILE") else HERE)
RINGLB = os.environ.get("RINGLB") or os.path.join(REPO, "build", "ringlb")
RINGLB_B = os.environ.get("RINGLB_B") or RINGLB
RINGLB_JSON = json.loads(os.environ.get("RINGLB_JSON") or "{}")
RINGLB_B_JSON = json.loads(os.environ.get("RINGLB_B_JSON") or "{}")
RINGLB_B_SEND_PROXY = os.environ.get("RINGLB_B_SEND_PROXY") or ""
CLIENT_FIRST = env_int("CLIENT_FIRST", 1) == 1
RINGLB_B_CLIENT_FIRST = env_int("RINGLB_B_CLIENT_FIRST", 0) == 1
# Pools whose protocol has the client speak first (HTTP, Redis).
CLIENT_FIRST_POOLS = ("http", "redis")
RINGLB_B_POOL_JSON = json.loads(os.environ.get("RINGLB_B_POOL_JSON") or "{}")
TARGETS = [t for t in (os.environ.get("TARGETS") or
                       "ringlb,haproxy,nginx,direct").split(",") if t]
WORKLOADS = [w for w in (os.environ.get("WORKLOADS") or
                         "ka,cc,bulk1,bulk4r,bulk1c,bulk4rc,redis,redisp,"
                         "ka10,ka100,ka1000,ka8000,lat,idle").split(",")
             if w]
# redis-benchmark is bounded by count; sized for about DUR seconds through a
# proxy on this machine (direct runs finish sooner).
REDIS_N = env_int("REDIS_N", 28000 * DUR)
REDISP_N = env_int("REDISP_N", 450000 * DUR)
# Where the Redis rows run: "PROXY:SERVER:CLIENT" CPU lists.  Three busy
# single-threaded processes on two cores land wherever the scheduler puts
# them, and the proxy's CPU per GET differs by 1.6x between placements, so
# the rows are pinned.  Default: the proxy alone on CPU 1, redis-server and
# redis-benchmark on CPU 0.  "none" leaves placement to the scheduler; with
# THREADS>1 the proxy gets every CPU.
REDIS_PIN = os.environ.get("REDIS_PIN") or "1:0:0"
# The same for the latency row (echo server, lat client); default: free.
LAT_PIN = os.environ.get("LAT_PIN") or "none"
WRK_CONNS = 64
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Backends (one set, shared by every target), and per-target listener
# ports: target offset + pool offset.
POOLS = {
    "http": [BASE + 1, BASE + 2, BASE + 3],
    "iperf": [BASE + 11],
    "redis": [BASE + 21],
    "echo": [BASE + 31],
}
POOL_OFF = {"http": 1, "iperf": 11, "redis": 21, "echo": 31}
# The same http backends, reading a PROXY header first (nginx
# proxy_protocol), for RINGLB_B_SEND_PROXY.
PROXY_HTTP = [BASE + 41, BASE + 42, BASE + 43]
TARGET_OFF = {"ringlb": 100, "haproxy": 200, "nginx": 300, "ringlbB": 400}
# Keep-alive at more and more connections: how the cost per request grows.
KA_SCALE = {"ka10": 10, "ka100": 100, "ka1000": 1000, "ka8000": 8000}
WL_POOL = {"ka": "http", "cc": "http", "bulk1": "iperf", "bulk4r": "iperf",
           "ka10": "http", "ka100": "http", "ka1000": "http",
           "ka8000": "http",
           "bulk1c": "iperf", "bulk4rc": "iperf",
           "redis": "redis", "redisp": "redis", "lat": "echo", "idle": "echo"}

LOG = sys.stderr


def say(msg):
    print("bench: " + msg, file=LOG, flush=True)


def port_of(target, pool):
    if target == "direct":
        return POOLS[pool][0]
    return BASE + TARGET_OFF[target] + POOL_OFF[pool]


def run_cmd(argv, timeout):
    """Run a client to completion; returns (rc, stdout, stderr)."""
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout,
                           text=True)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return -999, out, "timed out after %ss" % timeout


def first_line(path):
    try:
        with open(path) as f:
            return f.readline().strip()
    except OSError:
        return ""


def cmd_out(argv):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=20)
        return p.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


# ---------------------------------------------------------------- processes

class Service:
    """A long-running server started by the benchmark and stopped by it."""

    def __init__(self, name, argv, logname=None):
        self.name = name
        self.argv = argv
        self.log = os.path.join(BENCH_DIR, (logname or name) + ".log")
        self.proc = None

    def start(self):
        f = open(self.log, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=f, stderr=f,
                                     stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        f.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        """The process and all its descendants (nginx master + workers)."""
        if not self.alive():
            return []
        kids = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    s = f.read()
            except OSError:
                continue
            ppid = int(s.rsplit(")", 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(d))
        out, todo = [], [self.proc.pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo.extend(kids.get(p, []))
        return out

    def stop(self):
        if not self.alive():
            return
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # Only our own process group: it was started in its own session.
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass


def cpu_seconds(pids):
    """utime+stime of every process (all threads, including exited ones)."""
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_ports(target):
    return all(wait_port(port_of(target, pool)) for pool in POOLS)


def port_busy(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- configs

def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def backend_services():
    d = BENCH_DIR
    os.makedirs(os.path.join(d, "nginx-http"), exist_ok=True)
    listen = "".join("        listen 127.0.0.1:%d;\n" % p
                     for p in POOLS["http"])
    listen_pp = "".join("        listen 127.0.0.1:%d proxy_protocol;\n" % p
                        for p in PROXY_HTTP)
    tmp = os.path.join(d, "nginx-http")
    conf = write(os.path.join(d, "nginx-http.conf"), f"""\
daemon off;
master_process on;
worker_processes {THREADS};
worker_rlimit_nofile 20000;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log crit;
events {{ worker_connections 19000; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {{
{listen}        default_type text/plain;
        location / {{ return 200 "ok\\n"; }}
    }}
    server {{
{listen_pp}        default_type text/plain;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
""")
    return [
        Service("nginx-http", ["nginx", "-p", tmp + "/", "-e",
                               tmp + "/error.log", "-c", conf]),
        Service("iperf3", ["iperf3", "-s", "-B", "127.0.0.1", "-p",
                           str(POOLS["iperf"][0])]),
        Service("redis", ["redis-server", "--port", str(POOLS["redis"][0]),
                          "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--protected-mode", "no",
                          "--daemonize", "no", "--dir", d]),
        Service("echod", [os.path.join(BIN, "echod"), "127.0.0.1",
                          str(POOLS["echo"][0])]),
    ]


def ringlb_service(target="ringlb", binary=None):
    listeners = []
    for pool, ports in POOLS.items():
        listeners.append({
            "name": pool,
            "listen": "127.0.0.1:%d" % port_of(target, pool),
            "backends": [{"name": "%s%d" % (pool, i + 1),
                          "address": "127.0.0.1:%d" % p}
                         for i, p in enumerate(ports)],
            "health_check": {"enabled": False},
            "timeouts": {"connect_ms": 3000, "idle_ms": 600000},
        })
        if (CLIENT_FIRST and pool in CLIENT_FIRST_POOLS and
                (target != "ringlbB" or RINGLB_B_CLIENT_FIRST)):
            listeners[-1]["client_speaks_first"] = True
    conf = {"workers": THREADS, "log_level": "warn", "shutdown_grace_ms": 0,
            "admin": {"socket": os.path.join(BENCH_DIR,
                                             target + "-admin.sock")},
            "listeners": listeners}
    if target == "ringlb":
        conf.update(RINGLB_JSON)
    if target == "ringlbB":
        conf.update(RINGLB_B_JSON)
        for l in listeners:
            l.update(RINGLB_B_POOL_JSON)
        if RINGLB_B_SEND_PROXY:
            http = next(l for l in listeners if l["name"] == "http")
            http["send_proxy"] = RINGLB_B_SEND_PROXY
            for b, p in zip(http["backends"], PROXY_HTTP):
                b["address"] = "127.0.0.1:%d" % p
    path = write(os.path.join(BENCH_DIR, target + ".json"),
                 json.dumps(conf, indent=2) + "\n")
    return Service(target, [binary or RINGLB, "-c", path])


def haproxy_maxconn():
    # HAProxy wants about 2 fds per connection (plus 2 per pipe with
    # splicing) and a few more; stay under the 20,000 hard limit.
    return min(IDLE_CONNS + 500, 9700 if HAPROXY_SPLICE else 9950)


def haproxy_service():
    mc = haproxy_maxconn()
    sections = []
    for pool, ports in POOLS.items():
        servers = "".join("    server %s%d 127.0.0.1:%d\n" % (pool, i + 1, p)
                          for i, p in enumerate(ports))
        smart = ("    option tcp-smart-accept\n"
                 "    option tcp-smart-connect\n"
                 if CLIENT_FIRST and pool in CLIENT_FIRST_POOLS else "")
        sections.append("listen %s\n    bind 127.0.0.1:%d\n%s%s" %
                        (pool, port_of("haproxy", pool), smart, servers))
    splice = ("    option splice-request\n    option splice-response\n"
              if HAPROXY_SPLICE else "")
    pipes = "    maxpipes 200\n" if HAPROXY_SPLICE else ""
    conf = write(os.path.join(BENCH_DIR, "haproxy.cfg"), f"""\
global
    nbthread {THREADS}
    maxconn {mc}
{pipes}
defaults
    mode tcp
    balance roundrobin
    maxconn {mc}
    timeout connect 3s
    timeout client 10m
    timeout server 10m
{splice}
""" + "\n".join(sections))
    return Service("haproxy", ["haproxy", "-db", "-f", conf])


def nginx_stream_service():
    tmp = os.path.join(BENCH_DIR, "nginx-stream")
    os.makedirs(tmp, exist_ok=True)
    blocks = []
    for pool, ports in POOLS.items():
        servers = "".join("        server 127.0.0.1:%d;\n" % p for p in ports)
        blocks.append(f"""\
    upstream {pool} {{
{servers}    }}
    server {{
        listen 127.0.0.1:{port_of("nginx", pool)};
        proxy_pass {pool};
        proxy_timeout 10m;
    }}
""")
    module = "/usr/lib/nginx/modules/ngx_stream_module.so"
    conf = write(os.path.join(BENCH_DIR, "nginx-stream.conf"), f"""\
load_module {module};
daemon off;
master_process on;
worker_processes {THREADS};
worker_rlimit_nofile 20000;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 19900; }}
stream {{
{"".join(blocks)}}}
""")
    return Service("nginx", ["nginx", "-p", tmp + "/", "-e",
                             tmp + "/error.log", "-c", conf])


# ---------------------------------------------------------------- workloads

def parse_wrk(out):
    r = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if m:
        secs = float(m.group(2)) * {"s": 1, "ms": 1e-3, "m": 60,
                                    "us": 1e-6}.get(m.group(3), 1)
        r["units"] = int(m.group(1))
        r["secs"] = secs
        r["rate"] = int(m.group(1)) / secs
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", out)
    r["errors"] = sum(int(x) for x in m.groups()) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["errors"] += int(m.group(1))
    m = re.search(r"Latency\s+([\d.]+)(\w+)", out)
    if m:
        r["lat_avg_us"] = float(m.group(1)) * {"us": 1, "ms": 1e3,
                                               "s": 1e6}.get(m.group(2), 1)
    return r


def wl_wrk(port, close, conns=WRK_CONNS):
    argv = ["wrk", "-t2", "-c%d" % conns, "-d%ds" % DUR, "--timeout",
            "5s"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append("http://127.0.0.1:%d/" % port)
    rc, out, err = run_cmd(argv, DUR + 30)
    r = parse_wrk(out)
    if rc != 0 or "rate" not in r:
        r["failed"] = "wrk rc=%s %s" % (rc, (err or out)[-300:])
    r["cmd"] = shlex.join(argv)
    return r


def wl_iperf(port, streams, reverse):
    argv = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(DUR),
            "-P", str(streams), "-J", "--connect-timeout", "3000"]
    if reverse:
        argv.append("-R")
    rc, out, err = run_cmd(argv, DUR + 30)
    r = {"cmd": shlex.join(argv)}
    try:
        j = json.loads(out)
        s = j["end"]["sum_received"]
        r["units"] = s["bytes"]
        r["secs"] = s["seconds"]
        r["rate"] = s["bits_per_second"] / 1e9
        if "error" in j:
            r["failed"] = j["error"]
    except (ValueError, KeyError, TypeError):
        r["failed"] = "iperf3 rc=%s %s" % (rc, (err or out)[-300:])
    return r


def cpu_list(text):
    out = set()
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def redis_pins(spec=None):
    """(proxy, server, client) CPU sets, or None when placement is free."""
    spec = spec or REDIS_PIN
    if spec == "none":
        return None
    f = spec.split(":")
    if len(f) != 3:
        raise SystemExit("REDIS_PIN/LAT_PIN want PROXY:SERVER:CLIENT, got "
                         "%r" % spec)
    pins = [cpu_list(x) for x in f]
    if THREADS > 1:
        pins[0] = set(os.sched_getaffinity(0))
    return pins


def redis_pin_text():
    text = pin_text(redis_pins(), ("proxy", "redis-server",
                                   "redis-benchmark"), "REDIS_PIN")
    lat = redis_pins(LAT_PIN)
    if lat:
        text += "; latency row pinned %s" % pin_text(lat, ("proxy", "echo",
                                                           "lat"), "")
    return text


def pin_text(pins, names, var):
    if not pins:
        return "nowhere (%s=none)" % var
    return ", ".join("%s on CPU %s" % (n, ",".join(str(c) for c in
                                                    sorted(p)))
                     for n, p in zip(names, pins))


def pin_pids(pids, cpus):
    """Every thread of every process: taskset -a."""
    for p in pids:
        try:
            tids = [int(t) for t in os.listdir("/proc/%d/task" % p)]
        except OSError:
            continue
        for t in tids:
            try:
                os.sched_setaffinity(t, cpus)
            except OSError:
                pass


def wl_redis(port, pipeline, client_cpus=None):
    n = REDISP_N if pipeline > 1 else REDIS_N
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t",
            "get", "-n", str(n), "-c", "50", "-P", str(pipeline), "--csv"]
    if client_cpus:
        argv = ["taskset", "-c", ",".join(str(c) for c in
                                          sorted(client_cpus))] + argv
    t0 = time.time()
    rc, out, err = run_cmd(argv, 120)
    secs = time.time() - t0
    r = {"cmd": shlex.join(argv), "units": n, "secs": secs}
    for line in out.splitlines():
        f = [x.strip('"') for x in line.split(",")]
        if f and f[0] == "GET" and len(f) > 1:
            r["rate"] = float(f[1])
            if len(f) > 7:
                r["p50_ms"] = float(f[4])
                r["p99_ms"] = float(f[6])
    if rc != 0 or "rate" not in r:
        r["failed"] = "redis-benchmark rc=%s %s" % (rc, (err or out)[-300:])
    return r


def wl_lat(port, client_cpus=None):
    argv = [os.path.join(BIN, "lat"), "127.0.0.1", str(port), str(LAT_RATE),
            str(DUR), "64"]
    if client_cpus:
        argv = ["taskset", "-c", ",".join(str(c) for c in
                                          sorted(client_cpus))] + argv
    rc, out, err = run_cmd(argv, DUR + 30)
    r = {"cmd": shlex.join(argv)}
    try:
        j = json.loads(out.strip().splitlines()[-1])
        r.update(j)
        r["units"] = j["n"]
        if j.get("errors"):
            r["failed"] = "lat: %d errors" % j["errors"]
    except (ValueError, IndexError):
        r["failed"] = "lat rc=%s %s" % (rc, (err or out)[-300:])
    return r


def wl_idle(port, svc):
    """Hold IDLE_CONNS connections; RSS of the target before and with them."""
    pids = svc.pids() if svc else []
    before = rss_kib(pids)
    argv = [os.path.join(BIN, "hold"), "127.0.0.1", str(port),
            str(IDLE_CONNS), "8", "60"]
    r = {"cmd": shlex.join(argv), "rss_idle_kib": before}
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([p.stdout], [], [], 75)
        line = p.stdout.readline() if ready else ""
        m = re.match(r"ready (\d+) (\d+) (\d+)", line)
        if not m:
            r["failed"] = "hold: no ready line (%r)" % line
        else:
            ok, bad, ms = (int(x) for x in m.groups())
            time.sleep(0.5)
            after = rss_kib(pids)
            r.update({"conns": ok, "conns_failed": bad, "setup_ms": ms,
                      "rss_held_kib": after, "units": ok,
                      "rate": ok})
            if ok and svc:
                r["rss_per_conn_b"] = (after - before) * 1024.0 / ok
            if bad:
                r["failed"] = "%d of %d connections failed" % (bad,
                                                               IDLE_CONNS)
        p.stdin.write("go\n")
        p.stdin.flush()
        p.wait(timeout=70)
    except (subprocess.TimeoutExpired, BrokenPipeError, OSError) as e:
        r["failed"] = "hold: %s" % e
        p.kill()
        p.wait()
    # Let the proxy finish tearing down before the next run.
    time.sleep(1.5)
    return r


def machine_busy_s():
    """CPU time the whole machine spent busy, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / CLK_TCK


def kernel_helpers():
    """ksoftirqd threads: they run the network softirqs that our own
    traffic raises when the kernel defers them, so their CPU is ours."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and first_line("/proc/%s/comm" % d).startswith(
                "ksoftirqd/"):
            out.append(int(d))
    return out


def children_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def profiler_start(target, wl, rnd, pids):
    """PROFILE=perf|strace: attach to the target for the timed part."""
    if not PROFILE or not pids:
        return None
    base = os.path.join(BENCH_DIR, "profile", "%s-%s-r%d" % (target, wl, rnd))
    os.makedirs(os.path.dirname(base), exist_ok=True)
    secs = str(max(1, DUR - 1))
    if PROFILE == "perf":
        argv = ["perf", "record", "-q", "-e", "cpu-clock", "-F", "1999",
                "-g", "-p", ",".join(str(p) for p in pids), "-o",
                base + ".perf.data", "--", "sleep", secs]
    elif PROFILE == "stat":
        # Wake-ups (context switches) and system calls per unit of work.
        argv = ["perf", "stat", "-x,", "-e",
                "task-clock,context-switches,cpu-migrations,"
                "raw_syscalls:sys_enter",
                "-p", ",".join(str(p) for p in pids), "-o",
                base + ".stat.txt", "--", "sleep", secs]
    else:
        argv = ["timeout", "-s", "INT", secs, "strace", "-c", "-f", "-o",
                base + ".strace.txt"]
        for p in pids:
            argv += ["-p", str(p)]
    log = open(base + ".%s.log" % PROFILE, "w")
    proc = subprocess.Popen(argv, stdout=log, stderr=log)
    log.close()
    return proc, base, float(secs)


def profiler_stop(prof, r):
    if not prof:
        return
    proc, base, secs = prof
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    r["profile"] = base
    # Units done while the profiler was attached, assuming a steady rate.
    r["profile_units"] = r.get("rate", 0) * secs if r.get("rate") else None


def wait_quiet(max_s=QUIET_WAIT):
    """Give a burst of someone else's load (a test suite) a few seconds to
    pass before a run: wait while the machine is busier than 0.2 cores with
    nothing of ours running.  Bounded; returns the seconds waited."""
    t0 = time.time()
    while time.time() - t0 < max_s:
        m0 = machine_busy_s()
        time.sleep(0.25)
        if (machine_busy_s() - m0) / 0.25 < 0.2:
            break
    return time.time() - t0


CC_SYSCTL = "/proc/sys/net/ipv4/tcp_congestion_control"
cc_saved = None


def cc_set(name):
    """Switch the system's default TCP congestion control; True if done."""
    global cc_saved
    try:
        with open(CC_SYSCTL) as f:
            cur = f.read().strip()
        if cc_saved is None:
            cc_saved = cur
        with open(CC_SYSCTL, "w") as f:
            f.write(name)
        return True
    except OSError:
        return False


def cc_restore():
    global cc_saved
    if cc_saved is not None:
        try:
            with open(CC_SYSCTL, "w") as f:
                f.write(cc_saved)
        except OSError as e:
            say("cannot restore %s to %s: %s" % (CC_SYSCTL, cc_saved, e))
        cc_saved = None


def run_workload(wl, target, svc, others, rnd=0):
    if wl in ("bulk1c", "bulk4rc"):
        # Every socket of the run (client, proxy, server) is created
        # while cubic is the default, so none of them is paced.
        if not cc_set("cubic"):
            return {"failed": "needs root to switch %s" % CC_SYSCTL}
        try:
            return run_workload(wl[:-1], target, svc, others, rnd)
        finally:
            cc_restore()
    port = port_of(target, WL_POOL[wl])
    pins, server = None, None
    if wl in ("redis", "redisp"):
        pins, server = redis_pins(), "redis"
    elif wl == "lat":
        pins, server = redis_pins(LAT_PIN), "echod"
    pids = svc.pids() if svc else []
    spids = [p for o in others if o.name == server for p in o.pids()]
    if pins:
        pin_pids(pids, pins[0])
        pin_pids(spids, pins[1])
    waited = wait_quiet()
    opids = [p for o in others for p in o.pids()] + kernel_helpers()
    c0, o0 = cpu_seconds(pids), cpu_seconds(opids)
    m0, k0 = machine_busy_s(), children_cpu_s()
    t0 = time.time()
    prof = profiler_start(target, wl, rnd, pids) if wl != "idle" else None
    if wl == "ka":
        r = wl_wrk(port, False)
    elif wl == "cc":
        r = wl_wrk(port, True)
    elif wl in KA_SCALE:
        r = wl_wrk(port, False, KA_SCALE[wl])
    elif wl == "bulk1":
        r = wl_iperf(port, 1, False)
    elif wl == "bulk4r":
        r = wl_iperf(port, 4, True)
    elif wl == "redis":
        r = wl_redis(port, 1, pins and pins[2])
    elif wl == "redisp":
        r = wl_redis(port, 16, pins and pins[2])
    elif wl == "lat":
        r = wl_lat(port, pins and pins[2])
    elif wl == "idle":
        r = wl_idle(port, svc)
    else:
        raise ValueError(wl)
    r["wall_s"] = time.time() - t0
    profiler_stop(prof, r)
    if pins:
        everywhere = set(os.sched_getaffinity(0))
        pin_pids(pids + spids, everywhere)
        r["pins"] = LAT_PIN if wl == "lat" else REDIS_PIN
    cpu = cpu_seconds(pids) - c0
    ours = cpu + cpu_seconds(opids) - o0 + children_cpu_s() - k0
    # CPU that none of the benchmark's processes used: someone else's load
    # (a test suite, a build) sharing the cores during this run.
    busy = machine_busy_s() - m0
    r["foreign_cpu_s"] = max(0.0, busy - ours)
    # How many of the cores the whole machine kept busy: near the core
    # count, the cores are the limit of the run, not the proxy.
    r["machine_cores"] = busy / r["wall_s"] if r["wall_s"] > 0 else None
    r["quiet_wait_s"] = waited
    if svc:
        r["cpu_s"] = cpu
        u = r.get("units")
        if u and wl in ("bulk1", "bulk4r"):
            r["cpu_per_unit"] = cpu / (u / 1e9)         # CPU-s per GB
        elif u and wl != "idle":
            r["cpu_per_unit"] = cpu / u * 1e6            # CPU-us per unit
        if svc.alive() is False:
            r["failed"] = (r.get("failed", "") + " target died").strip()
    return r


# ---------------------------------------------------------------- report

# (key, label, workload, field, unit, higher_is_better, goal vs HAProxy as
# (comparison, factor) on the ringlb/HAProxy ratio).  Every row also wants
# ringlb ahead of nginx stream.
ROWS = [
    ("ka_rate", "keep-alive HTTP, wrk -c64", "ka", "rate", "req/s", True,
     (">=", 1.15)),
    ("ka_cpu", "  proxy CPU per request", "ka", "cpu_per_unit", "µs", False,
     ("<=", 0.6)),
    ("cc_rate", "new connection per request", "cc", "rate", "conn/s", True,
     (">=", 1.3)),
    ("cc_cpu", "  proxy CPU per connection", "cc", "cpu_per_unit", "µs",
     False, ("<=", 0.6)),
    ("bulk1_rate", "bulk, 1 stream", "bulk1", "rate", "Gbit/s", True,
     (">=", 2.0, 0.85)),
    ("bulk1_cpu", "  proxy CPU per GB", "bulk1", "cpu_per_unit", "s/GB",
     False, ("<=", 0.3)),
    ("bulk4r_rate", "bulk, 4 streams reversed", "bulk4r", "rate", "Gbit/s",
     True, None),
    ("bulk4r_cpu", "  proxy CPU per GB", "bulk4r", "cpu_per_unit", "s/GB",
     False, ("<=", 0.3)),
    ("bulk1c_rate", "bulk, 1 stream, cubic", "bulk1c", "rate", "Gbit/s",
     True, (">=", 1.8)),
    ("bulk1c_cpu", "  proxy CPU per GB", "bulk1c", "cpu_per_unit", "s/GB",
     False, ("<=", 0.3)),
    ("bulk4rc_rate", "bulk, 4 streams reversed, cubic", "bulk4rc", "rate",
     "Gbit/s", True, None),
    ("bulk4rc_cpu", "  proxy CPU per GB", "bulk4rc", "cpu_per_unit", "s/GB",
     False, ("<=", 0.3)),
    ("redis_rate", "Redis GET, -c50", "redis", "rate", "req/s", True,
     (">=", 1.15)),
    ("redis_cpu", "  proxy CPU per request", "redis", "cpu_per_unit", "µs",
     False, ("<=", 0.6)),
    ("redisp_rate", "Redis GET, -c50 -P16", "redisp", "rate", "req/s", True,
     (">=", 1.15)),
    ("redisp_cpu", "  proxy CPU per request", "redisp", "cpu_per_unit", "µs",
     False, ("<=", 0.6)),
    ("ka10_cpu", "keep-alive, wrk -c10: proxy CPU per request", "ka10",
     "cpu_per_unit", "µs", False, None),
    ("ka100_cpu", "  -c100", "ka100", "cpu_per_unit", "µs", False, None),
    ("ka1000_cpu", "  -c1000", "ka1000", "cpu_per_unit", "µs", False, None),
    ("ka8000_cpu", "  -c8000", "ka8000", "cpu_per_unit", "µs", False, None),
    ("lat_p50", "64 B ping-pong @%d/s, p50" % LAT_RATE, "lat", "p50_us", "µs",
     False, None),
    ("lat_p99", "64 B ping-pong @%d/s, p99" % LAT_RATE, "lat", "p99_us", "µs",
     False, ("<=", 1.0)),
    ("lat_p99w", "  p99, median of 1-s windows", "lat", "p99w_us", "µs",
     False, ("<=", 1.0)),
    ("idle_conns", "idle connections held", "idle", "conns", "conns", True,
     None),
    ("idle_rss", "  proxy RSS per idle connection", "idle", "rss_per_conn_b",
     "bytes", False, ("<", 1.0)),
]


def fmt(v, unit):
    if v is None:
        return "–"
    if unit in ("Gbit/s",):
        return "%.2f" % v
    if unit in ("s/GB",):
        return "%.3f" % v
    if unit in ("µs",):
        if v < 1:
            return "%.2f" % v
        return "%.1f" % v if v < 100 else "%.0f" % v
    return "%.0f" % v


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def goal_text(key, higher, goal, rv, hv, nv, dv=None):
    """Whether ringlb meets its goal on this row: vs HAProxy and vs nginx.
    A goal (op, factor, direct) is also met at direct × the direct path."""
    if rv is None:
        return ""
    parts = []
    if goal is not None and hv:
        op, factor = goal[:2]
        r = rv / hv
        ok = {">=": r >= factor, "<=": r <= factor, "<": r < factor}[op]
        text = "%s%g×H" % (op.replace(">=", "≥").replace("<=", "≤"), factor)
        if len(goal) > 2:
            text += " or ≥%g×D" % goal[2]
            ok = ok or (dv is not None and rv >= goal[2] * dv)
        parts.append("%s %s" % (text, "✓" if ok else "✗"))
    if nv is not None and key != "idle_conns":
        ok = rv >= nv if higher else rv <= nv
        parts.append("vs N %s" % ("✓" if ok else "✗"))
    return ", ".join(parts)


def summarize(results):
    rows = []
    for key, label, wl, field, unit, higher, goal in ROWS:
        if wl not in WORKLOADS:
            continue
        vals, per_round = {}, {}
        for t in TARGETS:
            runs = results.get(wl, {}).get(t, [])
            xs = [r.get(field) for r in runs if not r.get("failed")]
            per_round[t] = [r.get(field) for r in runs]
            vals[t] = median(xs)
        rv, hv = vals.get("ringlb"), vals.get("haproxy")
        nv, dv = vals.get("nginx"), vals.get("direct")
        rows.append({
            "key": key, "label": label, "unit": unit,
            "higher_is_better": higher, "median": vals,
            "rounds": per_round,
            "ringlb_vs_haproxy": ratio(rv, hv),
            "ringlb_vs_direct": ratio(rv, dv),
            "nginx_vs_haproxy": ratio(nv, hv),
            "goal": goal_text(key, higher, goal, rv, hv, nv, dv),
        })
    return rows


BBR_NOTE = ("The system's TCP congestion control is bbr, which paces every "
            "sender, on loopback too: the plain bulk rows (direct included) "
            "are capped by pacing, not by CPU, and two paced hops in a row "
            "(client to proxy, proxy to server) are slower than one. The "
            "`cubic` rows run the same bulk tests with cubic as the system "
            "default for the run, so no socket is paced and the proxies' "
            "own costs show.")


def noise_notes(results):
    """Rounds where the direct path (the physical reference) was off."""
    notes = []
    for wl in ("ka", "cc", "bulk1", "bulk4r", "bulk1c", "bulk4rc", "redis",
               "redisp"):
        runs = results.get(wl, {}).get("direct", [])
        xs = [r.get("rate") for r in runs]
        good = [x for x in xs if x]
        if len(good) < 2:
            continue
        med = statistics.median(good)
        for i, x in enumerate(xs):
            if x and x < 0.85 * med:
                notes.append("round %d: direct %s at %.0f%% of its median "
                             "(machine busy?)" % (i + 1, wl, 100 * x / med))
    busy = []
    nruns = 0
    for wl, per in results.items():
        for t, runs in per.items():
            for r in runs:
                nruns += 1
                f = r.get("foreign_cpu_s", 0)
                if f > 0.1 * r.get("wall_s", 1):
                    busy.append((f / r["wall_s"], r["round"], t, wl))
    if busy:
        busy.sort(reverse=True)
        notes.append("%d of %d runs shared the cores with other load (more "
                     "than 0.1 core on average used by processes outside "
                     "the benchmark); worst: %s" % (
                         len(busy), nruns, "; ".join(
                             "round %d %s %s %.2f cores" % (rn, t, wl, c)
                             for c, rn, t, wl in busy[:5])))
    for wl, per in results.items():
        for t, runs in per.items():
            for i, r in enumerate(runs):
                if r.get("failed"):
                    notes.append("round %d: %s %s failed: %s" %
                                 (i + 1, t, wl, r["failed"][:200]))
                elif r.get("errors"):
                    notes.append("round %d: %s %s: %d client errors" %
                                 (i + 1, t, wl, r["errors"]))
    return notes


def markdown(meta, rows, notes):
    cols = [t for t in ("ringlb", "ringlbB", "haproxy", "nginx", "direct")
            if t in TARGETS]
    head = ["workload", "unit"] + cols + ["ringlb÷HAProxy", "ringlb÷direct",
                                          "nginx÷HAProxy", "ringlb goal"]
    out = ["# ringlb benchmark", "",
           "%s, THREADS=%d, ROUNDS=%d, %d s runs, medians of the rounds." %
           (meta["date"], THREADS, ROUNDS, DUR), "",
           "- machine: %s, %s cores, kernel %s, TCP congestion control %s" %
           (meta["machine"]["cpu"], meta["machine"]["nproc"],
            meta["machine"]["kernel"],
            meta["machine"].get("tcp_congestion_control", "?")),
           "- versions: " + ", ".join("%s %s" % (k, v) for k, v in
                                      meta["versions"].items()),
           "- reproduce: `%s`" % meta["command"], "",
           "| " + " | ".join(head) + " |",
           "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]

    def rfmt(x):
        return "–" if x is None else "%.2f" % x

    for r in rows:
        cells = [r["label"], r["unit"]]
        cells += [fmt(r["median"].get(t), r["unit"]) for t in cols]
        cells += [rfmt(r["ringlb_vs_haproxy"]), rfmt(r["ringlb_vs_direct"]),
                  rfmt(r["nginx_vs_haproxy"]), r["goal"]]
        out.append("| " + " | ".join(cells) + " |")
    out += ["",
            "Proxy CPU is user+system time of every process of the target "
            "(all threads; nginx master and workers), per unit of work done "
            "in the run. H = HAProxy, N = nginx stream, D = direct; for "
            "CPU, latency and RSS rows lower is better. Idle RSS per "
            "connection is (RSS with the connections held − RSS before) / "
            "connections, on a freshly "
            "started proxy. Latency runs from each request's due time, so a "
            "stall delays every request due meanwhile; the 1-s-window p99 "
            "is robust to rare whole-machine stalls, which hit every target "
            "alike on this VM.",
            "",
            "Setup: %s" % meta["setup"]]
    if notes:
        out += ["", "Notes:", ""] + ["- " + n for n in notes]
    return "\n".join(out) + "\n"


def machine_info():
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1048576)
    return {"nproc": os.cpu_count(), "kernel": platform.release(),
            "cpu": cpu, "memory": mem,
            "fd_limit": cmd_out(["sh", "-c", "ulimit -n"]),
            # BBR paces every sender, loopback included: it caps the bulk
            # rows (direct too) well below what the CPUs could move.
            "tcp_congestion_control": first_line(
                "/proc/sys/net/ipv4/tcp_congestion_control")}


def versions():
    rev = os.environ.get("RINGLB_REV") or cmd_out(
        ["git", "-C", REPO, "describe", "--always", "--dirty", "--tags"])
    rv = cmd_out([RINGLB, "-V"]).replace("ringlb ", "", 1)
    return {
        "ringlb": ("%s (%s)" % (rv, rev)).strip(),
        "haproxy": cmd_out(["haproxy", "-v"]).splitlines()[0].split()[2],
        "nginx": cmd_out(["nginx", "-v"]).replace("nginx version: nginx/",
                                                  ""),
        "wrk": cmd_out(["wrk", "-v"]).splitlines()[0].split()[1]
        if cmd_out(["wrk", "-v"]) else "",
        "iperf3": cmd_out(["iperf3", "-v"]).split()[1],
        "redis": re.sub(r".*v=(\S+).*", r"\1",
                        cmd_out(["redis-server", "-v"])),
    }


# ---------------------------------------------------------------- main

def sanity(target):
    """One request of each kind through the target; '' or what failed."""
    try:
        with socket.create_connection(("127.0.0.1",
                                       port_of(target, "http")), 3) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close"
                      b"\r\n\r\n")
            data = b""
            while True:
                b = s.recv(4096)
                if not b:
                    break
                data += b
            if not data.startswith(b"HTTP/1.1 200") or b"ok" not in data:
                return "http reply %r" % data[:60]
        with socket.create_connection(("127.0.0.1",
                                       port_of(target, "redis")), 3) as s:
            s.sendall(b"PING\r\n")
            if not s.recv(64).startswith(b"+PONG"):
                return "redis PING"
        with socket.create_connection(("127.0.0.1",
                                       port_of(target, "echo")), 3) as s:
            s.sendall(b"hello")
            if s.recv(64) != b"hello":
                return "echo"
    except OSError as e:
        return str(e)
    return ""


def main():
    os.makedirs(BENCH_DIR, exist_ok=True)
    all_ports = [p for ps in POOLS.values() for p in ps] + PROXY_HTTP
    for t in TARGETS:
        if t != "direct":
            all_ports += [port_of(t, pool) for pool in POOLS]
    busy = [p for p in all_ports if port_busy(p)]
    if busy:
        say("ports already in use: %s (set BASE_PORT)" % busy)
        return 1

    backends = backend_services()
    proxies = {}
    makers = {"ringlb": ringlb_service, "haproxy": haproxy_service,
              "nginx": nginx_stream_service,
              "ringlbB": lambda: ringlb_service("ringlbB", RINGLB_B)}
    for t in TARGETS:
        if t in makers:
            proxies[t] = makers[t]()
    started = []

    def cleanup(*_):
        cc_restore()
        for s in reversed(started):
            s.stop()

    def on_signal(sig, _frame):
        cleanup()
        sys.exit(128 + sig)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        for s in backends + list(proxies.values()):
            s.start()
            started.append(s)
        for p in all_ports:
            if not wait_port(p):
                say("nothing listens on 127.0.0.1:%d; see the logs in %s" %
                    (p, BENCH_DIR))
                return 1
        # A value for GET to fetch (redis-benchmark asks for this key).
        with socket.create_connection(("127.0.0.1", POOLS["redis"][0])) as s:
            s.sendall(b"SET key:__rand_int__ xxx\r\n")
            s.recv(64)
        for t in TARGETS:
            if t != "direct":
                err = sanity(t)
                if err:
                    say("%s fails a sanity request: %s" % (t, err))
                    return 1
        say("THREADS=%d ROUNDS=%d DURATION=%ds IDLE_CONNS=%d targets=%s" %
            (THREADS, ROUNDS, DUR, IDLE_CONNS, ",".join(TARGETS)))
        results = {wl: {t: [] for t in TARGETS} for wl in WORKLOADS}
        t_start = time.time()
        for rnd in range(ROUNDS):
            order = TARGETS[rnd % len(TARGETS):] + TARGETS[:rnd %
                                                           len(TARGETS)]
            for wl in WORKLOADS:
                for t in order:
                    svc = proxies.get(t)
                    if svc and not svc.alive():
                        say("%s died; restarting it" % t)
                        svc.start()
                        wait_ports(t)
                    elif svc and wl == "idle":
                        # Allocators and pools keep what earlier runs
                        # touched; RSS per connection is measured on a
                        # fresh process, the same way for every target.
                        svc.stop()
                        svc.start()
                        wait_ports(t)
                        time.sleep(0.5)
                    r = run_workload(wl, t, svc, backends, rnd + 1)
                    r["round"] = rnd + 1
                    results[wl][t].append(r)
                    if wl.startswith("bulk") and r.get("failed"):
                        # iperf3 -s can stay stuck on a broken test.
                        backends[1].stop()
                        backends[1].start()
                        wait_port(POOLS["iperf"][0])
                    say("round %d %-6s %-7s %s" % (
                        rnd + 1, wl, t, short(r)))
        say("done in %.0f s" % (time.time() - t_start))
    finally:
        cleanup()

    cmd = "THREADS=%d ROUNDS=%d%s tools/bench/run.sh" % (
        THREADS, ROUNDS, " QUICK=1" if QUICK else "")
    if os.environ.get("RINGLB"):
        cmd = "RINGLB=%s %s" % (shlex.quote(RINGLB), cmd)
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"),
        "threads": THREADS, "rounds": ROUNDS, "quick": QUICK,
        "duration_s": DUR, "idle_conns": IDLE_CONNS, "lat_rate": LAT_RATE,
        "machine": machine_info(), "versions": versions(),
        "command": cmd,
        "setup": ("127.0.0.1 only. Pools: HTTP = 3 nginx backends "
                  "(`return 200`, worker_processes=%d), bulk = 1 iperf3 "
                  "server, Redis = 1 redis-server, echo = 1 epoll echo "
                  "server; direct = the first backend of the pool without a "
                  "proxy. ringlb workers=%d log_level=warn%s; HAProxy mode "
                  "tcp nbthread=%d, no logs%s%s; nginx stream "
                  "worker_processes=%d (no TCP_DEFER_ACCEPT in 1.22 stream), "
                  "no access log. Health checks off everywhere. wrk -t2 "
                  "-c64; iperf3 -P1 and -P4 -R; redis-benchmark -t get -c50 "
                  "(-n %d) and -P16 (-n %d), pinned %s; latency: 64 B echo "
                  "at %d/s on "
                  "one connection; idle: %d connections from 127.0.0.2-9, "
                  "each with a 1-byte round trip." %
                  (THREADS, THREADS,
                   ", client_speaks_first on the HTTP and Redis listeners"
                   if CLIENT_FIRST else "", THREADS,
                   ", splice-request/response" if HAPROXY_SPLICE else
                   ", no splicing (as shipped)",
                   ", tcp-smart-accept and tcp-smart-connect on HTTP and "
                   "Redis" if CLIENT_FIRST else "", THREADS, REDIS_N,
                   REDISP_N, redis_pin_text(), LAT_RATE, IDLE_CONNS)),
    }
    rows = summarize(results)
    notes = noise_notes(results)
    if meta["machine"]["tcp_congestion_control"] == "bbr":
        notes.append(BBR_NOTE)
    md = markdown(meta, rows, notes)
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "results.md"), "w") as f:
        f.write(md)
    with open(os.path.join(OUT_DIR, "results.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows, "notes": notes,
                   "runs": results}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    sys.stdout.write(md)
    if PROFILE:
        sys.stdout.write(profile_summary(results))
    return 0


def profile_summary(results):
    """Per profiled run: syscalls per unit of work (strace) or the hottest
    symbols (perf).  Also written to $BENCH_DIR/profile/summary.txt."""
    out = []
    for wl, per in results.items():
        for t, runs in per.items():
            for r in runs:
                base = r.get("profile")
                if not base:
                    continue
                units = r.get("profile_units") or 0
                out.append("== %s %s round %d (%s; ~%.0f units profiled)" %
                           (t, wl, r["round"], PROFILE, units))
                if PROFILE == "strace":
                    out += strace_table(base + ".strace.txt", units)
                elif PROFILE == "stat":
                    out += stat_table(base + ".stat.txt", units)
                else:
                    rep = cmd_out(["perf", "report", "-i",
                                   base + ".perf.data", "--stdio",
                                   "--no-children", "-g", "none",
                                   "--percent-limit", "0.7", "--sort",
                                   "dso,sym"])
                    with open(base + ".perf.txt", "w") as f:
                        f.write(rep + "\n")
                    out += [l for l in rep.splitlines()
                            if l.strip() and not l.startswith("#")][:40]
                out.append("")
    text = "\n".join(out) + "\n"
    with open(os.path.join(BENCH_DIR, "profile", "summary.txt"), "w") as f:
        f.write(text)
    return text


def stat_table(path, units):
    """perf stat -x, output: each event's count and count per unit."""
    rows = []
    try:
        with open(path) as f:
            for line in f:
                f_ = line.strip().split(",")
                if len(f_) < 3 or line.startswith("#"):
                    continue
                try:
                    v = float(f_[0])
                except ValueError:
                    continue
                rows.append("%-28s %14.0f %12.4f per unit" %
                            (f_[2], v, v / units if units else 0))
    except OSError as e:
        rows.append("no perf stat output: %s" % e)
    return rows


def strace_table(path, units):
    rows = []
    try:
        with open(path) as f:
            for line in f:
                m = re.match(r"\s*([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)"
                             r"\s+(\d+)?\s*(\w+)\s*$", line)
                if m and m.group(6) != "total":
                    rows.append((int(m.group(4)), m.group(6),
                                 int(m.group(5) or 0)))
    except OSError:
        return ["(no strace output)"]
    rows.sort(reverse=True)
    res = ["%-20s %10s %10s %8s" % ("syscall", "calls", "per unit",
                                     "errors")]
    for calls, name, errs in rows[:20]:
        res.append("%-20s %10d %10.3f %8d" % (name, calls,
                                              calls / units if units else 0,
                                              errs))
    total = sum(c for c, _, _ in rows)
    res.append("%-20s %10d %10.3f" % ("total", total,
                                      total / units if units else 0))
    return res


def short(r):
    if r.get("failed"):
        return "FAILED " + r["failed"][:120]
    bits = []
    for k in ("rate", "p50_us", "p99_us", "rss_per_conn_b", "cpu_s",
              "cpu_per_unit", "errors"):
        if r.get(k) is not None:
            bits.append("%s=%.4g" % (k, r[k]))
    return " ".join(bits)


if __name__ == "__main__":
    sys.exit(main())
