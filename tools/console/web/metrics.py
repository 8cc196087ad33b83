"""`/metrics`: the fleet in the Prometheus text format.

Every series starts with `gcagent_` and carries `device="ID"`; the only other
labels are `rule` (a profile's rule names: a handful) and `alert` (five
kinds), so the series count grows with the fleet and nothing else. Base units
(`_bytes`, `_seconds`) and `_total` counters, as Prometheus names things.

The collector reads the ingestor's state when scraped (a copy under its lock)
and registers in a registry of its own: none of prometheus_client's default
collectors run in the console, in particular not its gc-callback metric,
which was removed from the library after deadlocks (client_python #322, #429).
Counters the ingestor does not keep (pause time, bytes reclaimed) are summed
by `Tally` from the messages as they are recorded, seeded from the database
at start; a counter that restarts with the console is what Prometheus'
`rate()` expects.
"""

import sqlite3
import threading
import time
from typing import Any, Callable, Dict, Iterable, List

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..alerts import KINDS, headroom_kb
from ..store import reclaimed_kb
from ..view import state_of

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Tally(object):
    """Per device: seconds of gc pause and bytes reclaimed, summed over every recorded message."""

    def __init__(self, db_path: str) -> None:
        self.lock = threading.Lock()
        self.pause_s: Dict[str, float] = {}
        self.reclaimed: Dict[str, int] = {}
        db = sqlite3.connect(db_path, timeout=30.0)
        try:
            for device, total in db.execute("SELECT device, SUM(pause_ms_total) FROM samples "
                                            "GROUP BY device"):
                self.pause_s[device] = (total or 0.0) / 1000.0
            for device, total in db.execute("SELECT device, SUM(reclaimed_kb) FROM events WHERE "
                                            "event='collect' AND reclaimed_kb > 0 GROUP BY device"):
                self.reclaimed[device] = int(total or 0) * 1024
        finally:
            db.close()

    def __call__(self, message: Dict[str, Any]) -> None:
        device = message["device"]
        with self.lock:
            if message["type"] == "telemetry":
                pause = sum(s["gc_pause_ms_total"] for s in message["samples"]) / 1000.0
                self.pause_s[device] = self.pause_s.get(device, 0.0) + pause
            elif message["type"] == "event" and message.get("event") == "collect":
                gained = reclaimed_kb(message)
                if gained and gained > 0:
                    self.reclaimed[device] = self.reclaimed.get(device, 0) + gained * 1024

    def forget(self, device: str) -> None:
        with self.lock:
            self.pause_s.pop(device, None)
            self.reclaimed.pop(device, None)


class FleetCollector(object):
    """A prometheus_client collector over a snapshot of the fleet."""

    def __init__(self, snapshot: Callable[[], List[Dict[str, Any]]], tally: Tally,
                 default_interval: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        self.snapshot = snapshot
        self.tally = tally
        self.default_interval = default_interval
        self.clock = clock

    def collect(self) -> Iterable[Any]:
        now = self.clock()
        devices = self.snapshot()
        gauges = {
            "online": GaugeMetricFamily("gcagent_online", "1 when the device is online",
                                        labels=["device"]),
            "rss": GaugeMetricFamily("gcagent_rss_bytes", "resident memory of the application",
                                     labels=["device"]),
            "ceiling": GaugeMetricFamily("gcagent_ceiling_bytes", "the memory ceiling the agent "
                                         "keeps the application under", labels=["device"]),
            "headroom": GaugeMetricFamily("gcagent_headroom_bytes", "how much more the "
                                          "application may grow (ceiling minus RSS, or free "
                                          "memory if less)", labels=["device"]),
            "free": GaugeMetricFamily("gcagent_mem_free_bytes", "the device's free memory",
                                      labels=["device"]),
            "buffered": GaugeMetricFamily("gcagent_buffered_messages", "messages waiting in the "
                                          "agent's outbox", labels=["device"]),
            "dropped": GaugeMetricFamily("gcagent_dropped_messages", "messages the agent lost to "
                                         "a full outbox this boot", labels=["device"]),
            "alerts": GaugeMetricFamily("gcagent_alerts", "alerts active on the device",
                                        labels=["device"]),
            "alert": GaugeMetricFamily("gcagent_alert", "1 while the alert of this kind is "
                                       "active", labels=["device", "alert"]),
            "seen": GaugeMetricFamily("gcagent_last_seen_timestamp_seconds", "when the console "
                                      "last heard from the device", labels=["device"]),
        }
        collections = CounterMetricFamily("gcagent_collections", "collections the agent made, "
                                          "by rule", labels=["device", "rule"])
        pauses = CounterMetricFamily("gcagent_gc_pause_seconds", "time the collector paused "
                                     "the application", labels=["device"])
        reclaimed = CounterMetricFamily("gcagent_reclaimed_bytes", "RSS given back by the "
                                        "agent's collections", labels=["device"])
        with self.tally.lock:
            pause_s, gained = dict(self.tally.pause_s), dict(self.tally.reclaimed)
        for device in devices:
            name = [device["device"]]
            online = state_of(device, now, self.default_interval) == "online"
            gauges["online"].add_metric(name, 1.0 if online else 0.0)
            for key, column in (("rss", "rss_kb"), ("ceiling", "ceiling_kb"),
                                ("free", "mem_free_kb")):
                if device.get(column) is not None:
                    gauges[key].add_metric(name, device[column] * 1024.0)
            room = headroom_kb(device)
            if room is not None:
                gauges["headroom"].add_metric(name, room * 1024.0)
            for key in ("buffered", "dropped"):
                gauges[key].add_metric(name, float(device.get(key) or 0))
            active = device.get("alerts") or {}
            gauges["alerts"].add_metric(name, float(len(active)))
            for kind in KINDS:
                gauges["alert"].add_metric(name + [kind], 1.0 if kind in active else 0.0)
            if device.get("last_seen"):
                gauges["seen"].add_metric(name, float(device["last_seen"]))
            for rule, count in sorted((device.get("rules") or {}).items()):
                collections.add_metric(name + [rule], float(count))
            pauses.add_metric(name, pause_s.get(device["device"], 0.0))
            reclaimed.add_metric(name, float(gained.get(device["device"], 0)))
        yield from list(gauges.values()) + [collections, pauses, reclaimed]


def registry(collector: FleetCollector) -> CollectorRegistry:
    """A registry holding only the fleet (no process, platform or gc collectors)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    return reg


def render(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)
