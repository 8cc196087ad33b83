"""A large fleet on one screen: the riskiest devices and the counts, in bounded memory.

`devices` and `watch` used to load every device row and hand them all to rich:
100,000 devices took 72 s and 285 MB. `top` streams the rows from the store
once, keeps only the `limit` riskiest (a heap) and counts the rest, so time
grows with the fleet but memory does not, and rich lays out at most `limit`
rows. See docs/console-robustness.md.
"""

import heapq
import itertools
from typing import Any, Dict, Iterable, List, NamedTuple, Optional

from . import view

SHOWN = 500   # rows in the `devices` table unless --limit says otherwise; --json lists every one


class Fleet(NamedTuple):
    """The riskiest `rows` (riskiest first) and counts over the whole fleet."""

    rows: List[Dict[str, Any]]
    total: int
    online: int
    alerts: int

    @property
    def hidden(self) -> int:
        return self.total - len(self.rows)


def top(devices: Iterable[Dict[str, Any]], now: float, limit: int = SHOWN,
        default_interval: float = 3600.0) -> Fleet:
    """One pass over `devices`: the `limit` riskiest (ties by id), and the counts."""
    total = online = alerts = 0
    heap: list = []
    tie = itertools.count()
    for device in devices:
        total += 1
        if view.state_of(device, now, default_interval) == "online":
            online += 1
        alerts += len(device.get("alerts") or {})
        # heapq keeps the smallest on top: the least risky of those kept goes first
        key = (view.risk(device, now, default_interval), _neg(device["device"]), next(tie))
        if len(heap) < limit:
            heapq.heappush(heap, (key, device))
        elif limit > 0 and key > heap[0][0]:
            heapq.heapreplace(heap, (key, device))
    rows = view.ordered([d for _, d in heap], now, default_interval)
    return Fleet(rows, total, online, alerts)


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


class _neg(object):
    """Reverses string order, so of two devices at equal risk the one first by name wins."""

    __slots__ = ("s",)

    def __init__(self, s: str) -> None:
        self.s = s

    def __lt__(self, other: "_neg") -> bool:
        return self.s > other.s

    def __gt__(self, other: "_neg") -> bool:
        return self.s < other.s

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _neg) and self.s == other.s
