"""A large fleet on one screen: the first devices of the table and the counts, in bounded memory.

`devices` and `watch` used to load every device row and hand them all to rich:
100,000 devices took 72 s and 285 MB. `top` streams the rows from the store
once (leak verdicts looked up one device at a time, leaks.annotate_each), keeps
only the first `limit` in the table's order (a heap) and counts the rest, so
time grows with the fleet but memory does not, and rich lays out at most
`limit` rows. `json_lines` puts every device in the table's order through a
temporary SQLite file instead of a list. See docs/console-robustness.md.
"""

import heapq
import json
import sqlite3
from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Optional

from . import leaks, view
from .apps import split_id

SHOWN = 500   # rows in the `devices` table unless --limit says otherwise; --json lists every one


class Fleet(NamedTuple):
    """The first `rows` in the table's order and counts over the whole fleet."""

    rows: List[Dict[str, Any]]
    total: int
    online: int
    alerts: int

    @property
    def hidden(self) -> int:
        return self.total - len(self.rows)


def devices(store) -> Iterator[Dict[str, Any]]:
    """Every device of `store`, leak fields added, one at a time."""
    return leaks.annotate_each(store, store.iter_devices())


def top(stream: Iterable[Dict[str, Any]], now: float, limit: int = SHOWN,
        default_interval: float = 3600.0) -> Fleet:
    """One pass over `stream`: the first `limit` in the table's order, and the counts."""
    counts = {"total": 0, "online": 0, "alerts": 0}

    def counted() -> Iterator[Dict[str, Any]]:
        for device in stream:
            counts["total"] += 1
            if view.state_of(device, now, default_interval) == "online":
                counts["online"] += 1
            counts["alerts"] += len(device.get("alerts") or {})
            yield device

    rows = heapq.nsmallest(max(0, limit), counted(), key=view.order_key(now, default_interval))
    for _ in counted():   # nsmallest(0, ...) reads nothing: count all the same
        pass
    return Fleet(rows, counts["total"], counts["online"], counts["alerts"])


def json_lines(stream: Iterable[Dict[str, Any]], now: float,
               default_interval: float = 3600.0) -> Iterator[str]:
    """Each device as a JSON line (with `state_now`), in the table's order, in flat memory."""
    key = view.order_key(now, default_interval)
    spill = sqlite3.connect("")   # a private temporary file: SQLite sorts it, not this process
    try:
        spill.execute("CREATE TABLE rows (eta REAL, risk REAL, device TEXT, line TEXT)")
        batch: List[tuple] = []
        for device in stream:
            device["state_now"] = view.state_of(device, now, default_interval)
            device["host"], device["app"] = split_id(device["device"])   # null for plain ids
            eta, risk, name = key(device)
            batch.append((eta if eta != float("inf") else None, risk, name,
                          json.dumps(device, sort_keys=True)))
            if len(batch) >= 1000:
                spill.executemany("INSERT INTO rows VALUES (?,?,?,?)", batch)
                batch = []
        spill.executemany("INSERT INTO rows VALUES (?,?,?,?)", batch)
        # NULLS LAST by hand (SQLite < 3.30 has no NULLS LAST): no leak sorts after any eta
        for (line,) in spill.execute("SELECT line FROM rows ORDER BY eta IS NULL, eta, risk, "
                                     "device"):
            yield line
    finally:
        spill.close()


def summary(fleet: Fleet, stats: Optional[Dict[str, int]] = None) -> str:
    """`view.summary`'s line for the whole fleet, plus what the table leaves out."""
    line = "%d devices: %d online, %d offline; %d alerts" % (fleet.total, fleet.online,
                                                           fleet.total - fleet.online, fleet.alerts)
    if stats:
        line += "; %d msgs, %d dup, %d bad" % (stats.get("recorded", 0), stats.get("duplicates", 0),
                                              stats.get("bad", 0))
        not_written = stats.get("unwritten", 0)
        if not_written:
            line += ", %d unwritten" % not_written
    if fleet.hidden:
        line += "\nthe %d riskiest shown; %d more not shown" % (len(fleet.rows), fleet.hidden)
    return line
