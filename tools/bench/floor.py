#!/usr/bin/env python3
"""Split a proxy's CPU profile into the kernel's TCP/socket work and the rest.

  perf record -e cpu-clock -F 1999 -g -p PID -o FILE -- sleep N
  tools/bench/floor.py FILE [CPU_PER_UNIT]
  tools/bench/floor.py --top CLASS FILE    where a class's samples are

Every sample is put in one class by walking its call chain from the leaf
towards the root and taking the first frame that decides:

  tcp/socket   the kernel's network stack: TCP, IP, loopback, sockets,
               skbs, splice into and out of sockets, and the wake-up of the
               peer that a send or receive does (sock_def_readable ...)
  event loop   io_uring's own code (submission, completion, poll arming,
               task work, its fd look-ups, the wait in io_cqring_wait), or
               epoll's for an epoll proxy, and the sleeping in either
  syscall      system call entry and exit
  user         the proxy's own code and libc
  other        anything else (timers, page faults, memory management ...)

The first class is the floor the issue speaks of: what any proxy moving
these bytes through two loopback hops pays in the kernel, whatever its
event loop.  With CPU_PER_UNIT (µs per request, or s/GB) the script also
prints each class times it.
"""
import re
import subprocess
import sys

NET = re.compile(
    r"^(__)?(tcp|inet|ip_|ipv4|ipv6|ip6_|sock|sk_|skb|kfree_skb|"
    r"consume_skb|napi|netif|net_|dev_|loopback|bbr|cubictcp|"
    r"splice|skb_splice|generic_splice|do_splice|pipe_|"
    r"security_sock|security_socket|selinux_socket|apparmor_socket|"
    r"process_backlog|lock_sock|release_sock|"
    r"sch_direct|qdisc|pfifo|validate_xmit|dst_|fib_|neigh|nf_|"
    r"sys_(sendto|recvfrom|accept|connect|socket|setsockopt|getsockopt|"
    r"shutdown|sendmsg|recvmsg|splice)|"
    r"x64_sys_(socket|setsockopt|getsockopt|connect|accept|shutdown|"
    r"sendto|recvfrom|sendmsg|recvmsg|splice)|_sys_(sendmsg|recvmsg)|"
    r"sockfs|move_addr|copy_msghdr|mptcp|secure_tcp|reqsk)")
LOOP = re.compile(r"^(__)?(io_|io_uring|do_sys_io_uring|"
                  r"x64_sys_io_uring|tctx_|task_work_run|task_work|"
                  r"ep_|do_epoll|x64_sys_epoll|epoll)")
SYSCALL = re.compile(r"^(entry_SYSCALL|do_syscall_64|syscall_exit|"
                     r"__syscall|exit_to_user_mode|syscall_enter|"
                     r"x64_sys_call)")
SCHED = re.compile(r"^(__)?(schedule|finish_task_switch|"
                   r"schedule_hrtimeout|pick_next|context_switch)")

CLASSES = ("tcp/socket", "event loop", "syscall", "user", "other")


def classify(frames):
    """frames: list of (sym, dso), leaf first."""
    return classify_at(frames)[0]


def classify_at(frames):
    """(class, the frame that decided it)."""
    c, at = _classify(frames)
    return c, at


def _classify(frames):
    if not frames:
        return "other", "?"
    sym, dso = frames[0]
    if "kernel" not in dso and not dso.startswith("[k"):
        return "user", sym
    sched = None
    for sym, dso in frames:
        if "kernel" not in dso and not dso.startswith("[k"):
            break
        if NET.match(sym):
            return "tcp/socket", sym
        if LOOP.match(sym):
            return "event loop", sched or sym
        if SCHED.match(sym):
            sched = sched or "sleep/wake (" + sym + ")"
        if SYSCALL.match(sym):
            return ("event loop", sched) if sched else ("syscall", sym)
    return "other", frames[0][0]


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    args = sys.argv[1:]
    top = None
    if len(args) > 1 and args[0] == "--top":
        top, args = args[1], args[2:]
    if not args:
        raise SystemExit(__doc__)
    sys.argv[1:] = args
    per_unit = float(sys.argv[2]) if len(sys.argv) > 2 else None
    out = subprocess.run(["perf", "script", "-i", sys.argv[1], "-F",
                          "ip,sym,dso"], capture_output=True, text=True,
                         check=True).stdout
    counts = dict.fromkeys(CLASSES, 0)
    where = {}
    frames = []
    line_re = re.compile(r"^\s*[0-9a-f]+\s+(\S+?)(\+0x[0-9a-f]+)?\s+\((.*)\)")
    for line in out.splitlines() + [""]:
        if not line.strip():
            if frames:
                c, at = classify_at(frames)
                counts[c] += 1
                if c == top:
                    where[at] = where.get(at, 0) + 1
            frames = []
            continue
        m = line_re.match(line)
        if m:
            frames.append((m.group(1), m.group(3)))
    total = sum(counts.values())
    if not total:
        raise SystemExit("no samples in %s" % sys.argv[1])
    if top:
        for at, n in sorted(where.items(), key=lambda x: -x[1])[:25]:
            print("%6.1f%%  %s" % (100.0 * n / total, at))
        return
    print("%-12s %8s %7s%s" % ("class", "samples", "share",
                              "   per unit" if per_unit else ""))
    for c in CLASSES:
        share = counts[c] / total
        print("%-12s %8d %6.1f%%%s" % (
            c, counts[c], 100 * share,
            "   %.3f" % (share * per_unit) if per_unit else ""))
    print("%-12s %8d" % ("total", total))
    if per_unit:
        floor = counts["tcp/socket"] / total * per_unit
        print("floor (tcp/socket): %.3f per unit; measured %.3f = %.2fx "
              "the floor" % (floor, per_unit, per_unit / floor))


if __name__ == "__main__":
    main()
