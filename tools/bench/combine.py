#!/usr/bin/env python3
"""One table from several `make bench` runs: the range over the runs.

  tools/bench/combine.py [--rows cpu|other] RUN1/results.json RUN2/results.json ...

Each run's row value is that run's median over its rounds; the table shows
the lowest and highest of those over the runs (one number when they agree
to the shown precision), and the same for ringlb÷HAProxy and
ringlb÷direct.  The goal column judges the median over the runs of the
ratio against the goal bench.py gives the row.  CPU rows come first: they
are the figures that hold when client, proxy and server share the cores.
Rows that no run has are left out, and the Redis rows come only from the
runs that placed them as the latest run did (pinned the same way, or not).  `--rows cpu` prints only the CPU
rows (without the direct path's columns, which have none), `--rows other`
only the rest.
"""
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (ROWS, fmt, goal_text)

def group(key):
    """CPU per unit of work first, then rates, then latency and memory."""
    if key.endswith("_cpu"):
        return 0
    if key.endswith("_rate"):
        return 1
    if key.startswith("lat"):
        return 2
    return 3


def redis_setup(run):
    """How a run placed its Redis rows: the setup text's pinning, if any."""
    setup = run["meta"].get("setup", "")
    m = re.search(r"pinned (.*?)(; latency| ;|; |\.? ?latency:|$)", setup)
    return "pinned " + m.group(1).strip(" ,;") if m else "unpinned"


def span(xs, unit):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    lo, hi = bench.fmt(min(xs), unit), bench.fmt(max(xs), unit)
    return lo if lo == hi else "%s–%s" % (lo, hi)


def rspan(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    lo, hi = "%.2f" % min(xs), "%.2f" % max(xs)
    return lo if lo == hi else "%s–%s" % (lo, hi)


def main():
    args = sys.argv[1:]
    only = None
    if len(args) > 1 and args[0] == "--rows":
        only, args = args[1], args[2:]
        if only not in ("cpu", "other"):
            raise SystemExit("--rows wants cpu or other")
    if not args:
        raise SystemExit(__doc__)
    runs = []
    for path in args:
        with open(path) as f:
            runs.append(json.load(f))
    targets = [t for t in ("ringlb", "haproxy", "nginx", "direct")
               if any(t in r["median"] for run in runs for r in run["rows"])]
    labels, rate_label = {}, {}
    for key, label, wl, _field, unit, higher, goal in bench.ROWS:
        if key.endswith("_rate"):
            rate_label[wl] = label
    for key, label, wl, _field, unit, higher, goal in bench.ROWS:
        # A CPU row stands apart from its rate row here: name the workload.
        label = label.strip()
        if label.startswith("proxy") and wl in rate_label:
            label = "%s: %s" % (rate_label[wl], label)
        elif label.startswith("-c"):
            label = "keep-alive, wrk %s: proxy CPU per request" % label
        elif label.startswith("p99,"):
            label = "64 B ping-pong, " + label
        labels[key] = (label, unit, higher, goal)
    keys = [k for k, *_ in bench.ROWS
            if any(r["key"] == k for run in runs for r in run["rows"])]
    keys.sort(key=group)
    if only:
        keys = [k for k in keys if (group(k) == 0) == (only == "cpu")]
    if only == "cpu":
        targets = [t for t in targets if t != "direct"]
    head = (["workload", "unit"] + targets + ["ringlb÷HAProxy"] +
            ([] if only == "cpu" else ["ringlb÷direct"]) +
            ["goal (median)"])
    # Redis rows only from runs that placed them the same way as the
    # latest run: pinned and unpinned Redis rows are different measurements.
    placed = redis_setup(runs[-1])
    redis_runs = [run for run in runs if redis_setup(run) == placed]
    print("%d runs: %s" % (len(runs), ", ".join(
        "%s (%s)" % (run["meta"]["date"], run["meta"]["versions"].get(
            "ringlb", "?")) for run in runs)))
    if len(redis_runs) < len(runs):
        print("Redis rows: the %d runs with them %s" % (len(redis_runs),
                                                          placed))
    print()
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
    for k in keys:
        label, unit, higher, goal = labels[k]
        rows = [r for run in (redis_runs if k.startswith("redis") else
                              runs)
                for r in run["rows"] if r["key"] == k]
        cells = [label, unit]
        for t in targets:
            cells.append(span([r["median"].get(t) for r in rows], unit))
        rh = [r.get("ringlb_vs_haproxy") for r in rows]
        rd = [r.get("ringlb_vs_direct") for r in rows]
        cells.append(rspan(rh))
        if only != "cpu":
            cells.append(rspan(rd))
        med = {t: statistics.median([r["median"][t] for r in rows
                                     if r["median"].get(t) is not None])
               for t in targets
               if any(r["median"].get(t) is not None for r in rows)}
        cells.append(bench.goal_text(k, higher, goal, med.get("ringlb"),
                                     med.get("haproxy"), None,
                                     med.get("direct")))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
