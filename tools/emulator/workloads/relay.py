"""Workload: a bursty message relay: bursts of thousands of messages with cycles, then quiet.

Every `--every` seconds a burst of `--burst` messages arrives (at `--rate` a
second, open loop: a message's latency runs from its arrival to its relay, so
a gc pause delays every message queued behind it). Relaying a message parses
it, builds an envelope <-> message cycle (as protocol stacks do), looks its
topic up in a long-lived routing table of `--routes` entries, keeps the last
message of each topic as the retained one (the one it replaces dies as a
cycle, often in the old generation) and hands it to a bounded outgoing queue.
Between bursts the relay is quiet. Pauses are timed per phase through
gc.callbacks (busy: a burst is being relayed; idle: quiet), and full
collections are counted by phase and by who started them (automatic, or
explicit through gc.collect(): the agent, an injected policy).

    python tools/emulator/workloads/relay.py --burst 5000 --every 3 --seconds 20

It prints a summary line for people and, last, one JSON object: the common
fields (see tools/emulator/workloads/__init__.py), messages, bursts,
latency_ms {p50, p99, max}, busy_pauses and idle_pauses {count, total_ms,
max_ms, by_generation}, full_collections {busy, idle} x {automatic, explicit}.
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
PAUSES = {"busy": [], "idle": []}   # phase -> [(generation, seconds, cpu seconds)]
FULL = {}                           # "busy automatic" -> count, ...
_pause_started = [0.0, "start", False, 0.0]
_THREAD_CPU = time.CLOCK_THREAD_CPUTIME_ID   # the collector's own time, as in server.py
_explicit = set()                   # threads inside gc.collect() now
_real_collect = gc.collect


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


def _counted_collect(*args, **kwargs):
    """gc.collect, marked so the callback knows this collection was asked for."""
    me = threading.get_ident()
    _explicit.add(me)
    try:
        return _real_collect(*args, **kwargs)
    finally:
        _explicit.discard(me)


def on_gc(what: str, info: dict) -> None:
    """gc.callbacks hook: time each collection, file it under the phase it began in."""
    if what == "start":
        _pause_started[0], _pause_started[1] = time.perf_counter(), PHASE
        _pause_started[2] = threading.get_ident() in _explicit
        _pause_started[3] = time.clock_gettime(_THREAD_CPU)
        return
    generation = info.get("generation", 2)
    PAUSES.setdefault(_pause_started[1], []).append((generation, time.perf_counter() - _pause_started[0],
                                                     time.clock_gettime(_THREAD_CPU) - _pause_started[3]))
    if generation >= 2:
        key = "%s %s" % (_pause_started[1], "explicit" if _pause_started[2] else "automatic")
        FULL[key] = FULL.get(key, 0) + 1


def percentile(values: list, share: float) -> float:
    if not values:
        return 0.0
    return values[min(max(1, math.ceil(share * len(values))), len(values)) - 1]


def pause_summary(pauses: list) -> dict:
    by_generation = [0, 0, 0]
    for pause in pauses:
        by_generation[min(int(pause[0]), 2)] += 1
    return {"count": len(pauses), "total_ms": round(sum(p[1] for p in pauses) * 1000, 3),
            "max_ms": round(max([p[1] for p in pauses] or [0.0]) * 1000, 3),
            "max_cpu_ms": round(max([p[2] for p in pauses] or [0.0]) * 1000, 3),
            "by_generation": by_generation}


class Relay(object):
    """Routing table, retained message per topic, a bounded outgoing queue."""

    def __init__(self, routes: int, topics: int) -> None:
        self.routes = {"site/%d" % i: {"to": ["uplink", "log"], "hits": 0} for i in range(routes)}
        self.topics = topics
        self.retained = {}
        self.outgoing = collections.deque(maxlen=1000)
        self.relayed = 0

    def relay(self, n: int) -> None:
        topic = "site/%d" % (n % self.topics)
        raw = json.dumps({"topic": topic, "seq": n, "values": [n, n + 1, n + 2], "tags": {"q": 1}})
        message = json.loads(raw)
        envelope = {"message": message, "route": self.routes.get(topic), "hops": []}
        message["envelope"] = envelope                 # message <-> envelope: a cycle
        envelope["hops"].append({"at": n, "by": "relay"})
        route = envelope["route"]
        if route is not None:
            route["hits"] += 1
        self.retained[topic] = message                 # the one it replaces dies as a cycle
        self.outgoing.append(envelope)
        self.relayed += 1


def main(argv=None) -> int:
    global PHASE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to run")
    parser.add_argument("--burst", type=int, default=5000, help="messages per burst (default 5000)")
    parser.add_argument("--every", type=float, default=3.0, help="seconds from a burst to the next")
    parser.add_argument("--rate", type=float, default=10000.0, help="arrivals a second within a burst")
    parser.add_argument("--routes", type=int, default=20000, help="entries in the routing table")
    parser.add_argument("--topics", type=int, default=2000, help="distinct topics (retained messages)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary lines")
    args = parser.parse_args(argv)
    relay = Relay(args.routes, max(1, args.topics))
    gc.collect()
    gc.collect = _counted_collect
    gc.callbacks.append(on_gc)
    stats_before = gc.get_stats()
    start = time.monotonic()
    end = start + args.seconds
    latencies = []
    bursts = 0
    burst_at = start
    while burst_at < end:
        PHASE = "busy"
        bursts += 1
        if not args.quiet:
            print("t=%5.1fs burst %d" % (time.monotonic() - start, bursts), flush=True)
        for i in range(args.burst):
            arrival = burst_at + i / args.rate
            wait = arrival - time.monotonic()
            if wait > 0.001:
                time.sleep(wait)
            relay.relay(relay.relayed)
            latencies.append(max(0.0, time.monotonic() - arrival))
            if time.monotonic() >= end:
                break
        PHASE = "idle"
        burst_at += args.every
        while time.monotonic() < min(burst_at, end):
            time.sleep(min(0.05, max(0.0, min(burst_at, end) - time.monotonic())))
    PHASE = "end"
    gc.callbacks.remove(on_gc)
    latencies.sort()
    lat = {"p50": round(percentile(latencies, 0.50) * 1000, 3),
           "p99": round(percentile(latencies, 0.99) * 1000, 3),
           "max": round((latencies[-1] if latencies else 0.0) * 1000, 3)}
    busy, idle = pause_summary(PAUSES["busy"]), pause_summary(PAUSES["idle"])
    full = {phase: {who: FULL.get("%s %s" % (phase, who), 0) for who in ("automatic", "explicit")}
            for phase in ("busy", "idle")}
    print("relay: %d messages in %d bursts, latency p50 %.2fms p99 %.2fms max %.2fms; gc pauses "
          "busy %d (%.1fms, max %.2fms), idle %d (%.1fms)"
          % (len(latencies), bursts, lat["p50"], lat["p99"], lat["max"], busy["count"],
             busy["total_ms"], busy["max_ms"], idle["count"], idle["total_ms"]), flush=True)
    print(summary("relay", start, stats_before, messages=len(latencies), bursts=bursts,
                  latency_ms=lat, busy_pauses=busy, idle_pauses=idle, full_collections=full),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
