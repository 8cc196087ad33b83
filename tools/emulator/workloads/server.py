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
idle_pauses {count, total_ms, max_ms, max_cpu_ms, by_generation,
median_cpu_ms_by_generation, max_cpu_ms_by_generation}, hint, hints_sent,
agent_running, heap, and full_collections {busy, idle} x {automatic, explicit}:
full collections by phase, automatic (the interpreter's thresholds) or
explicit (somebody called gc.collect(): the agent, an injected policy).
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
import threading
import time

PHASE = "start"
PAUSES = {"busy": [], "idle": []}   # phase -> [(generation, seconds, cpu seconds)]; also "start", "end"
_pause_started = [0.0, "start", False, 0.0]
# A pause's wall time includes whatever else the machine did meanwhile (the floor,
# which never collects, has requests stalled 5-12 ms on a busy VM); the collecting
# thread's CPU clock is the collector's own work (docs/tuner.md, "Reading the table").
_THREAD_CPU = time.CLOCK_THREAD_CPUTIME_ID
# Full collections by phase and by who started them: "automatic" ones the
# interpreter ran because a threshold was passed, "explicit" ones somebody
# called gc.collect() for (the agent, an injected policy). gc.collect is
# wrapped so a collection can tell which it is from the thread it runs in.
FULL = {}                           # "busy automatic" -> count, ...
_explicit = set()                   # threads inside gc.collect() now
_real_collect = gc.collect


def _counted_collect(*args, **kwargs):
    me = threading.get_ident()
    _explicit.add(me)
    try:
        return _real_collect(*args, **kwargs)
    finally:
        _explicit.discard(me)


def full_collections() -> dict:
    """{"busy": {"automatic": n, "explicit": n}, "idle": {...}} for the summary."""
    return {phase: {who: FULL.get("%s %s" % (phase, who), 0) for who in ("automatic", "explicit")}
            for phase in ("busy", "idle")}


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
        _pause_started[2] = threading.get_ident() in _explicit
        _pause_started[3] = time.clock_gettime(_THREAD_CPU)
    else:
        generation = info.get("generation", 2)
        PAUSES.setdefault(_pause_started[1], []).append((
            generation, time.perf_counter() - _pause_started[0],
            time.clock_gettime(_THREAD_CPU) - _pause_started[3]))
        if generation >= 2:
            key = "%s %s" % (_pause_started[1], "explicit" if _pause_started[2] else "automatic")
            FULL[key] = FULL.get(key, 0) + 1


def percentile(values: list, share: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not values:
        return 0.0
    rank = max(1, math.ceil(share * len(values)))
    return values[min(rank, len(values)) - 1]


def pause_summary(pauses: list) -> dict:
    """Count, total and longest of (generation, wall s, cpu s) pauses; max_cpu_ms is the collector's own.

    Per generation too: the median and longest CPU ms (which generation sets the
    longest pause, and whether it is the tail or the typical one).
    """
    by_generation = [0, 0, 0]
    cpu = [[], [], []]
    for pause in pauses:
        by_generation[min(int(pause[0]), 2)] += 1
        cpu[min(int(pause[0]), 2)].append(pause[2] * 1000)
    for values in cpu:
        values.sort()
    return {"count": len(pauses), "total_ms": round(sum(p[1] for p in pauses) * 1000, 3),
            "max_ms": round(max([p[1] for p in pauses] or [0.0]) * 1000, 3),
            "max_cpu_ms": round(max([p[2] for p in pauses] or [0.0]) * 1000, 3),
            "by_generation": by_generation,
            "median_cpu_ms_by_generation": [round(percentile(v, 0.5), 3) for v in cpu],
            "max_cpu_ms_by_generation": [round(v[-1] if v else 0.0, 3) for v in cpu]}


class Server(object):
    """Request handling: container objects, a cycle per request, a bounded long-lived cache."""

    def __init__(self, objects: int, heap: int, work: float, entry: str = "dict",
                 payload: int = 0, keep: int = 0) -> None:
        self.objects = objects
        self.recent = collections.deque(maxlen=keep) if keep else None
        self.work = work
        self.cache = collections.OrderedDict()
        self._entry = self._list_entry if entry == "list" else self._dict_entry
        self._payload = payload
        for i in range(heap):
            self.cache[i] = self._entry(i, str(i))
        self.heap = heap
        self.served = 0

    def handle(self, n: int) -> int:
        request = {"id": n, "headers": {"host": "gateway", "n": str(n)}, "context": None}
        context = {"request": request, "items": []}
        request["context"] = context                 # request <-> context: a cycle per request
        for i in range(self.objects):
            context["items"].append({"i": i, "tags": [i, n]})
        body = json.dumps({"id": n, "count": len(context["items"]),
                           "cached": self._key(self.cache.get(n % self.heap))})
        self.cache[self.heap + n] = self._entry(n, body)   # churn in the long-lived heap
        if self.recent is not None:   # sessions: live a while, then die as cycles in the old generation
            self.recent.append(request)
        self.cache.popitem(last=False)
        deadline = time.perf_counter() + self.work     # the request's own computing, no allocations
        spin = 0
        while time.perf_counter() < deadline:
            spin = (spin * 31 + 7) & 0xFFFF
        self.served += 1
        return len(body)

    @staticmethod
    def _key(entry):
        if entry is None:
            return None
        return entry["key"] if isinstance(entry, dict) else entry[0]

    def _dict_entry(self, key: int, value: str) -> dict:
        if self._payload:
            return {"key": key, "value": [key, value, b"x" * self._payload]}
        return {"key": key, "value": [key, value]}

    def _list_entry(self, key: int, value: str) -> list:   # one container per entry: a big heap in less RAM
        return [key, value, b"x" * self._payload] if self._payload else [key, value]


def agent_module():
    """The agent package if it is importable and running in this process, else None."""
    try:
        import agent
    except ImportError:
        return None
    running = getattr(agent, "running", None)
    return agent if running is not None and running() is not None else None




def _thresholds(text: str) -> "tuple":
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not 1 <= len(values) <= 3 or min(values) < 0:
        raise argparse.ArgumentTypeError("%r: give one to three whole numbers, e.g. 700,10,10" % text)
    return values


def main(argv=None, name: str = "server", doc: str = "", defaults=None) -> int:
    global PHASE
    parser = argparse.ArgumentParser(description=(doc or __doc__).split("\n\n")[0])
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
    parser.add_argument("--entry", choices=("dict", "list"), default="dict",
                        help="shape of a cache entry: dict (3 containers) or list (1)")
    parser.add_argument("--payload", type=int, default=0,
                        help="bytes of payload per cache entry (memory without gc work)")
    parser.add_argument("--keep", type=int, default=0,
                        help="requests kept alive for a while (the last N), as sessions are: they "
                             "die as cycles after reaching the old generation")
    parser.add_argument("--thresholds", type=_thresholds, metavar="T0,T1,T2",
                        help="set the collector's thresholds first, as a hand-tuned application "
                             "would (the young-generation trade-off in docs/tuner.md)")
    parser.add_argument("--collect-idle", action="store_true",
                        help="a full collection at the start of each idle phase, as the tuner runs")
    parser.add_argument("--quiet", action="store_true", help="print only the summary lines")
    parser.set_defaults(**(defaults or {}))
    args = parser.parse_args(argv)
    if args.thresholds:
        gc.set_threshold(*args.thresholds)
    hint = None if args.hint.lower() in ("", "none", "off") else args.hint
    server = Server(args.objects, max(1, args.heap), args.work / 1000.0, args.entry, args.payload,
                    args.keep)
    gc.collect()                                   # start from a clean heap, then measure
    gc.collect = _counted_collect
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
        if args.collect_idle:
            gc.collect()
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
    print(name + ": %d requests in %d busy phases, latency p50 %.2fms p99 %.2fms max %.2fms; "
          "gc pauses busy %d (%.1fms, max %.2fms), idle %d (%.1fms)"
          % (len(latencies), phases["busy"], lat["p50"], lat["p99"], lat["max"], busy["count"],
             busy["total_ms"], busy["max_ms"], idle["count"], idle["total_ms"]), flush=True)
    print(summary(name, start, stats_before, requests=len(latencies),
                  busy_phases=phases["busy"], idle_phases=phases["idle"], latency_ms=lat,
                  busy_pauses=busy, idle_pauses=idle, hint=hint, hints_sent=hints_sent,
                  agent_running=agent_module() is not None, full_collections=full_collections(),
                  heap=args.heap), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
