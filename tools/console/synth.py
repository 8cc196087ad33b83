"""A made-up device history written straight into a console database (benchmarks, tests, docs).

`history(db, "ix20-0001", days=30)` records one-minute samples for 30 days as
the agent would send them (schema-v1 messages through the console's own
Ingestor, 60 samples a telemetry message): a slow leak that a daily periodic
collection and low-memory collections hold back, a low-memory episode each
week, one kill close to the ceiling (a new boot follows), a six-hour outage,
an `alert` and a `leak_suspected` event. Deterministic for a given seed.
"""

import math
import random
from typing import Any, Dict, List

from agent import messages

from .ingest import Ingestor
from .store import Store


def _status(env: messages.Envelope, ceiling_kb: int, state: str = "online",
            **extra: Any) -> Dict[str, Any]:
    return env.make("status", state=state, agent="0.1", python="3.10.13",
                    gc_flavour="generational-700", model="IX20", profile="/etc/config/gcagent/ix20.ini",
                    profile_sha256="0" * 64, ceiling_kb=ceiling_kb, uptime_s=1.0, **extra)


def history(path: str, device: str = "ix20-0001", days: float = 30.0, step: float = 60.0,
            end: float = 0.0, ceiling_kb: int = 65536, seed: int = 1) -> Dict[str, int]:
    """Write the history; returns counts (samples, collections, boots)."""
    import time
    rng = random.Random(seed)
    end = end or time.time()
    start = end - days * 86400
    clock = [start]
    store = Store(path)
    ingest = Ingestor(store, clock=lambda: clock[0], default_interval=3600.0)
    env = messages.Envelope(device, clock=lambda: clock[0])
    ingest.accept(messages.encode(_status(env, ceiling_kb)))
    n = int(days * 86400 / step)
    outage = (start + 0.6 * days * 86400, start + 0.6 * days * 86400 + 6 * 3600)
    kill_at = start + 0.4 * days * 86400
    batch: List[Dict[str, Any]] = []
    rss, base, low = 30000.0, 30000.0, False
    counts = {"samples": 0, "collections": 0, "boots": 1}
    for i in range(n):
        ts = start + i * step
        clock[0] = ts
        if outage[0] <= ts < outage[1]:
            continue
        rss += rng.uniform(-30, 60) + 15 * math.sin(i / 90.0)
        day = (ts - start) / 86400
        if int(day) % 7 == 3:
            rss += 25   # a busy day each week: low memory
        sample = {"ts": round(ts, 3), "mem_free_kb": int(150000 - rss / 2), "mem_total_kb": 262144,
                  "rss_kb": int(rss), "gc_count": [100, 3, 1], "gc_collections": [i, i // 10, i // 100],
                  "gc_collected": i, "gc_uncollectable": 0,
                  "gc_pause_ms_total": round(rng.uniform(0.1, 2.0), 3),
                  "gc_pause_ms_max": round(rng.uniform(0.05, 1.0) + (8 if i % 997 == 0 else 0), 3)}
        batch.append(sample)
        counts["samples"] += 1
        event = None
        if rss > 0.85 * ceiling_kb:
            if not low:
                ingest.accept(messages.encode(env.make("event", event="low_memory",
                                                       rule="low-memory", headroom_kb=int(ceiling_kb - rss))))
                low = True
            event = ("low-memory", rss, base + rng.uniform(0, 3000))
        elif i % 1440 == 720:
            event = ("periodic", rss, rss - rng.uniform(200, 3000))
        elif i % 240 == 17 and rng.random() < 0.3:
            event = ("idle", rss, rss - rng.uniform(50, 800))
        if event is not None:
            ingest.accept(messages.encode(env.make(
                "event", event="collect", rule=event[0], generation=2, collected=1000,
                duration_ms=round(rng.uniform(1, 12), 2), rss_before_kb=int(event[1]),
                rss_after_kb=int(event[2]))))
            rss = event[2]
            counts["collections"] += 1
            if low and rss < 0.75 * ceiling_kb:
                ingest.accept(messages.encode(env.make("event", event="recovered", rule="low-memory")))
                low = False
        if i == n // 5:
            ingest.accept(messages.encode(env.make("event", event="alert", rule="low-memory")))
        if i == n // 2:
            ingest.accept(messages.encode(env.make("event", event="leak_suspected", rule="low-memory")))
        if len(batch) >= 60 or i == n - 1:
            ingest.accept(messages.encode(env.make("telemetry", samples=batch, buffered=0, dropped=0)))
            batch = []
        if kill_at <= ts < kill_at + step:   # killed near the ceiling: a new boot follows
            if batch:
                batch[-1]["rss_kb"] = int(0.97 * ceiling_kb)
                ingest.accept(messages.encode(env.make("telemetry", samples=batch, buffered=0,
                                                       dropped=0)))
                batch = []
            env = messages.Envelope(device, clock=lambda: clock[0])
            clock[0] = ts + step / 2
            ingest.accept(messages.encode(_status(env, ceiling_kb)))
            rss = base
            counts["boots"] += 1
    ingest.flush()
    store.close()
    return counts


if __name__ == "__main__":   # python -m tools.console.synth DB [DEVICE] [DAYS]: prints the counts
    import json
    import sys
    print(json.dumps(history(sys.argv[1], *sys.argv[2:3],
                             **({"days": float(sys.argv[3])} if len(sys.argv) > 3 else {}))))
