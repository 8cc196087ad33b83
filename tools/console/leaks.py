"""Leaks per device: the agent's own verdict (agent/leak.py) run on the recorded telemetry.

The console judges the same samples the agent judged on the device, with the
same code, so the two agree; it needs no event from the device (an old agent,
or one whose events were lost, is judged all the same). Per device and boot a
`LeakWatch` is fed every telemetry sample of the current boot; a new boot
starts a new baseline. The verdict is kept in the `leaks` table so `devices`
and the live view read it without judging again; a device without a row there
(a database filled by another tool) is judged from its stored telemetry when
read. How the verdict is made: docs/leaks.md.
"""

import json
import sqlite3
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from agent.leak import LeakWatch
from agent.leakrecords import feed, judge_stored

SCHEMA = """
CREATE TABLE IF NOT EXISTS leaks (
    device TEXT PRIMARY KEY, boot TEXT NOT NULL, ts REAL NOT NULL,
    leak_kb_per_hour REAL, ceiling_eta_s REAL, confidence REAL);
"""


def detail(rate_kb_per_hour: float, eta_s: Optional[float]) -> str:
    """The alert's sentence: the rate and the time left."""
    rate = ("%.1f MB/h" % (rate_kb_per_hour / 1024.0) if rate_kb_per_hour >= 1024
            else "%.0f KB/h" % rate_kb_per_hour)
    if eta_s is None:
        return "memory floor rising %s (no ceiling known)" % rate
    return "memory floor rising %s: ceiling in %s at this rate" % (rate, duration(eta_s))


def duration(seconds: float) -> str:
    """4d 3h, 5h 20m, 12m, 40s."""
    seconds = max(0, int(seconds))
    if seconds >= 86400:
        return "%dd %dh" % (seconds // 86400, seconds % 86400 // 3600)
    if seconds >= 3600:
        return "%dh %dm" % (seconds // 3600, seconds % 3600 // 60)
    if seconds >= 60:
        return "%dm" % (seconds // 60)
    return "%ds" % seconds


class FleetLeaks(object):
    """One LeakWatch per device (its current boot); bounded: CAPACITY windows each."""

    def __init__(self) -> None:
        self.watches: Dict[str, Tuple[str, LeakWatch]] = {}
        self._saved: Dict[str, tuple] = {}

    def save(self, db: sqlite3.Connection, devices: Iterable[Dict[str, Any]]) -> None:
        """Write the verdicts that changed since the last save (one transaction, or none)."""
        changed = []
        for device in devices:
            row = _row(device)
            if self._saved.get(device["device"]) != row[1:2] + row[3:]:
                changed.append(row)
        if changed:
            with db:
                db.executemany("INSERT OR REPLACE INTO leaks VALUES (?,?,?,?,?,?)", changed)
            for row in changed:
                self._saved[row[0]] = row[1:2] + row[3:]

    def forget(self, device: str) -> None:
        """The device left the console's memory (its verdict stays in the `leaks` table)."""
        self.watches.pop(device, None)
        self._saved.pop(device, None)

    def watch(self, device: str, boot: str) -> LeakWatch:
        held = self.watches.get(device)
        if held is None or held[0] != boot:
            held = self.watches[device] = (boot, LeakWatch())
        return held[1]

    def telemetry(self, device: Dict[str, Any], message: Dict[str, Any]) -> None:
        """Feed a telemetry message of the device's current boot; updates the device's leak fields."""
        watch = self.watch(device["device"], message["boot"])
        ceiling = device.get("ceiling_kb") or 0
        feed(watch, message["samples"], ceiling)
        apply(device, watch)

    def new_boot(self, device: Dict[str, Any], boot: str) -> None:
        self.watches[device["device"]] = (boot, LeakWatch())
        apply(device, self.watches[device["device"]][1])


def apply(device: Dict[str, Any], watch: LeakWatch) -> None:
    """The verdict into the device's state: the two fields and the `leak` alert's detail."""
    verdict = watch.verdict
    if verdict.leak:
        device["leak_kb_per_hour"] = verdict.rate_kb_per_hour
        device["ceiling_eta_s"] = verdict.ceiling_eta_s
        device["leak_confidence"] = verdict.confidence
        device["leak"] = detail(verdict.rate_kb_per_hour, verdict.ceiling_eta_s)
    else:
        device["leak_kb_per_hour"] = device["ceiling_eta_s"] = device["leak_confidence"] = None
        device.pop("leak", None)


def stored_telemetry(store, device: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The telemetry messages recorded for the device's current boot (the key's own index)."""
    rows = store.db.execute("SELECT body FROM messages WHERE device=? AND boot=? AND type='telemetry'",
                            (device["device"], device.get("boot") or ""))
    out = []
    for (body,) in rows:
        try:
            out.append(json.loads(body))
        except ValueError:   # a row another tool wrote badly is no telemetry
            continue
    return out


# -- the leaks table ---------------------------------------------------------------------------

def _row(d: Dict[str, Any]) -> tuple:
    """(device, boot, ts, rate, eta, confidence); ts: when the console last heard the device."""
    return (d["device"], d.get("boot") or "", d.get("last_seen") or 0.0,
            d.get("leak_kb_per_hour"), d.get("ceiling_eta_s"), d.get("leak_confidence"))


def annotate(store, devices: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Add `leak_kb_per_hour` and `ceiling_eta_s` (None when no leak is judged) to `devices`.

    `ceiling_eta_s` is counted from the device's last sample, as recorded.
    """
    return list(annotate_each(store, devices))


def annotate_each(store, devices: Iterable[Dict[str, Any]]) -> Iterator[Dict[str, Any]]:
    """`annotate`, one device at a time: a fleet of any size in flat memory (fleet.py)."""
    has_table = _has_table(store.db)
    for device in devices:
        row = store.db.execute("SELECT boot, leak_kb_per_hour, ceiling_eta_s FROM leaks "
                               "WHERE device=?", (device["device"],)).fetchone() if has_table else None
        if row is not None and row[0] == (device.get("boot") or ""):
            device["leak_kb_per_hour"], device["ceiling_eta_s"] = row[1], row[2]
            yield device
            continue
        watch = judge_stored(stored_telemetry(store, device), device)
        verdict = watch.verdict
        device["leak_kb_per_hour"] = verdict.rate_kb_per_hour if verdict.leak else None
        device["ceiling_eta_s"] = verdict.ceiling_eta_s if verdict.leak else None
        yield device


def soonest_first(device: Dict[str, Any]) -> float:
    """Sort key: devices closest to their ceiling at their leak's rate first; no leak last."""
    eta = device.get("ceiling_eta_s")
    return float("inf") if eta is None else float(eta)


def _has_table(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='leaks'"
                      ).fetchone() is not None

