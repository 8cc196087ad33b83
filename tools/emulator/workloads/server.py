"""Workload: a server with busy and idle phases, whose requests suffer gc pauses.

Busy phases take requests at `--rps` (open loop: each request has an arrival
time, and its latency runs from then to its answer, so a gc pause delays every
request queued behind it). A request builds container objects with cycles
(request <-> context, as frameworks do), touches a long-lived cache of
`--heap` objects, which is what makes full collections slow, and computes for
`--work` ms. Idle phases sleep. Every gc pause is timed through `gc.callbacks` and filed under the
phase it started in, so one can see whether collections happen while
requests wait (busy) or while nobody waits (idle).

At the start of each idle phase the server sends `agent.event(HINT)` (default
`idle`; `--hint none` sends nothing) when the agent is importable and
running, so it runs alone too. The event reaches rules with
`on = app:HINT`. The agent also finds idle time by itself (`on = idle`: CPU
below `idle_cpu` over `idle_for`), but only `idle_for` into an idle phase.
Run it alone:

    python tools/emulator/workloads/server.py --busy 3 --idle 3 --seconds 20

and with the agent:

    python -m agent run --profile device_profiles/emulator.ini -- \\
        tools/emulator/workloads/server.py --busy 3 --idle 3 --seconds 20

It prints a line at each phase change (not with --quiet), a summary line for
people, and, last, the same as one JSON object for the emulator: the common
fields (see tools/emulator/workloads/__init__.py) and requests, busy_phases,
idle_phases, latency_ms {p50, p99, max} (busy phases), busy_pauses and
idle_pauses {count, total_ms, max_ms, by_generation}, hint, hints_sent,
agent_running.
"""

import argparse
import collections
import gc
import json
import math
import os
import platform
import resource
import sys
import time

PHASE = "start"
PAUSES = {"busy": [], "idle": []}   # phase -> [(generation, seconds)]; also "start", "end"
_pause_started = [0.0, "start"]


def rss_kb() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def summary(name: str, started: float, stats_before: list, **fields) -> str:
    """The final JSON line every workload prints: common fields, then its own."""
    after = gc.get_stats()
    out = {"workload": name, "seconds": round(time.monotonic() - started, 3),
           "peak_rss_kb": max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, rss_kb()),
           "rss_kb": rss_kb(),
           "gc_enabled": gc.isenabled(),
           "collections": [a["collections"] - b["collections"] for a, b in zip(after, stats_before)],
           "python": platform.python_version()}
    out.update(fields)
    return json.dumps(out, sort_keys=False)


def on_gc(what: str, info: dict) -> None:
    """gc.callbacks hook: time each collection, file it under the phase it began in."""
    if what == "start":
        _pause_started[0], _pause_started[1] = time.perf_counter(), PHASE
    else:
        PAUSES.setdefault(_pause_started[1], []).append((info.get("generation", 2),
                                          time.perf_counter() - _pause_started[0]))


def percentile(values: list, share: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not values:
        return 0.0
    rank = max(1, math.ceil(share * len(values)))
    return values[min(rank, len(values)) - 1]


def pause_summary(pauses: list) -> dict:
    by_generation = [0, 0, 0]
    for generation, _ in pauses:
        by_generation[min(int(generation), 2)] += 1
    return {"count": len(pauses), "total_ms": round(sum(s for _, s in pauses) * 1000, 3),
            "max_ms": round(max([s for _, s in pauses] or [0.0]) * 1000, 3),
            "by_generation": by_generation}


class Server(object):
    """Request handling: container objects, a cycle per request, a bounded long-lived cache."""

    def __init__(self, objects: int, heap: int, work: float) -> None:
        self.objects = objects
        self.work = work
        self.cache = collections.OrderedDict()
        for i in range(heap):
            self.cache[i] = {"key": i, "value": [i, str(i)]}
        self.heap = heap
        self.served = 0

    def handle(self, n: int) -> int:
        request = {"id": n, "headers": {"host": "gateway", "n": str(n)}, "context": None}
        context = {"request": request, "items": []}
        request["context"] = context                 # request <-> context: a cycle per request
        for i in range(self.objects):
            context["items"].append({"i": i, "tags": [i, n]})
        body = json.dumps({"id": n, "count": len(context["items"]),
                           "cached": self.cache.get(n % self.heap, {}).get("key")})
        self.cache[self.heap + n] = {"key": n, "value": [n, body]}   # churn in the long-lived heap
        self.cache.popitem(last=False)
        deadline = time.perf_counter() + self.work     # the request's own computing, no allocations
        spin = 0
        while time.perf_counter() < deadline:
            spin = (spin * 31 + 7) & 0xFFFF
        self.served += 1
        return len(body)


def agent_module():
    """The agent package if it is importable and running in this process, else None."""
    try:
        import agent
    except ImportError:
        return None
    running = getattr(agent, "running", None)
    return agent if running is not None and running() is not None else None


def main(argv=None) -> int:
    global PHASE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to run")
    parser.add_argument("--busy", type=float, default=3.0, help="seconds per busy phase (default 3)")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds per idle phase (default 3)")
    parser.add_argument("--rps", type=float, default=200.0, help="requests a second when busy")
    parser.add_argument("--objects", type=int, default=300, help="container objects per request")
    parser.add_argument("--work", type=float, default=1.0,
                        help="ms of CPU per request besides allocating (default 1; 200 rps x 1 ms "
                             "keeps busy phases above an idle rule's idle_cpu)")
    parser.add_argument("--heap", type=int, default=20000,
                        help="long-lived entries in the cache (default 20000)")
    parser.add_argument("--hint", default="idle",
                        help="agent.event name sent at each idle phase ('none': send nothing)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary lines")
    args = parser.parse_args(argv)
    hint = None if args.hint.lower() in ("", "none", "off") else args.hint
    server = Server(args.objects, max(1, args.heap), args.work / 1000.0)
    gc.collect()                                   # start from a clean heap, then measure
    gc.callbacks.append(on_gc)
    stats_before = gc.get_stats()
    start = time.monotonic()
    end = start + args.seconds
    latencies = []
    phases = {"busy": 0, "idle": 0}
    hints_sent = 0
    phase_start = start
    while phase_start < end:
        PHASE = "busy"
        phases["busy"] += 1
        busy_end = min(phase_start + args.busy, end)
        if not args.quiet:
            print("t=%5.1fs busy" % (time.monotonic() - start), flush=True)
        arrival = phase_start
        while arrival < busy_end and time.monotonic() < end:
            wait = arrival - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            server.handle(len(latencies))
            latencies.append(time.monotonic() - arrival)
            arrival += 1.0 / args.rps
        idle_end = min(busy_end + args.idle, end)
        if time.monotonic() >= idle_end:
            phase_start = max(idle_end, time.monotonic())
            continue
        PHASE = "idle"
        phases["idle"] += 1
        if not args.quiet:
            print("t=%5.1fs idle" % (time.monotonic() - start), flush=True)
        found = agent_module() if hint else None
        if found is not None:
            found.event(hint, phase=phases["idle"])
            hints_sent += 1
        while time.monotonic() < idle_end:
            time.sleep(min(0.05, max(0.0, idle_end - time.monotonic())))
        phase_start = idle_end
    PHASE = "end"
    gc.callbacks.remove(on_gc)
    latencies.sort()
    lat = {"p50": round(percentile(latencies, 0.50) * 1000, 3),
           "p99": round(percentile(latencies, 0.99) * 1000, 3),
           "max": round((latencies[-1] if latencies else 0.0) * 1000, 3)}
    busy, idle = pause_summary(PAUSES["busy"]), pause_summary(PAUSES["idle"])
    print("server: %d requests in %d busy phases, latency p50 %.2fms p99 %.2fms max %.2fms; "
          "gc pauses busy %d (%.1fms, max %.2fms), idle %d (%.1fms)"
          % (len(latencies), phases["busy"], lat["p50"], lat["p99"], lat["max"], busy["count"],
             busy["total_ms"], busy["max_ms"], idle["count"], idle["total_ms"]), flush=True)
    print(summary("server", start, stats_before, requests=len(latencies),
                  busy_phases=phases["busy"], idle_phases=phases["idle"], latency_ms=lat,
                  busy_pauses=busy, idle_pauses=idle, hint=hint, hints_sent=hints_sent,
                  agent_running=agent_module() is not None), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
