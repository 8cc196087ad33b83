"""The fleet table as JSON rows, and what changed since a browser's last update.

A row is what the page shows of a device (no more: 1,000 devices stream as a
few tens of kilobytes). `Changes` remembers, per browser connection, the rows
it last sent, and sends only rows that differ and ids that went away: a live
page then costs bytes in proportion to what changes, not to the fleet, and a
page left open for days holds one table, not a growing history.
"""

import fnmatch
import time
from typing import Any, Dict, Iterable, List, Optional

from ..alerts import headroom_kb
from ..apps import split_id
from ..colours import rule_colours
from ..view import risk, state_of


def row(device: Dict[str, Any], now: float, default_interval: float,
        missing: Optional[int] = None) -> Dict[str, Any]:
    """One device as the fleet page shows it."""
    state = state_of(device, now, default_interval)
    reason = device.get("reason") or ("silent" if state != device.get("state") else None)
    host, app = split_id(device["device"])
    return {
        "device": device["device"],
        "host": host,
        "app": app,
        "model": device.get("model"),
        "state": state if state == "online" else (reason if reason == "stopped" else "offline"),
        "reason": reason,
        "rss_kb": device.get("rss_kb"),
        "ceiling_kb": device.get("ceiling_kb"),
        "free_kb": device.get("mem_free_kb"),
        "headroom_kb": headroom_kb(device),
        "last_collect_ts": device.get("last_collect_ts"),
        "last_collect_rule": device.get("last_collect_rule"),
        "last_reclaimed_kb": device.get("last_reclaimed_kb"),
        "rules": dict(device.get("rules") or {}),
        "rule_colours": rule_colours(device.get("rules") or {}),
        "alerts": dict(device.get("alerts") or {}),
        "missing": missing if missing is not None else device.get("missing"),
        "last_seen": device.get("last_seen"),
        "buffered": device.get("buffered"),
        "dropped": device.get("dropped"),
        "leak_kb_per_hour": device.get("leak_kb_per_hour"),
        "ceiling_eta_s": device.get("ceiling_eta_s"),
        # Stopped on purpose is no risk: below every device that is up (the terminal table
        # keeps offline devices first whatever the reason).
        "risk": round(risk(device, now, default_interval) - (2000 if reason == "stopped" else 0), 1),
    }


def rows(devices: Iterable[Dict[str, Any]], now: Optional[float] = None,
         default_interval: float = 3600.0) -> List[Dict[str, Any]]:
    """Every device's row, riskiest first."""
    now = time.time() if now is None else now
    out = [row(d, now, default_interval) for d in devices]
    out.sort(key=lambda r: (-r["risk"], r["device"]))
    return out


def matches(item: Dict[str, Any], pattern: str = "", model: str = "", state: str = "") -> bool:
    """The page's filters: a glob (or substring) of the id, a model, a state (or `alerting`)."""
    if pattern:
        glob = pattern if any(c in pattern for c in "*?[") else "*%s*" % pattern
        if not fnmatch.fnmatchcase(item["device"], glob):
            return False
    if model and (item.get("model") or "") != model:
        return False
    if state == "alerting":
        return bool(item.get("alerts"))
    return not state or item["state"] == state


def counts(items: Iterable[Dict[str, Any]]) -> Dict[str, int]:
    out = {"devices": 0, "online": 0, "offline": 0, "stopped": 0, "alerting": 0}
    for item in items:
        out["devices"] += 1
        out[item["state"] if item["state"] in out else "offline"] += 1
        out["alerting"] += bool(item["alerts"])
    return out


class Changes(object):
    """What one browser has been sent; `update(rows)` returns only what differs from that."""

    def __init__(self) -> None:
        self.sent: Dict[str, Dict[str, Any]] = {}

    def update(self, items: List[Dict[str, Any]]) -> Dict[str, Any]:
        first = not self.sent
        current = {item["device"]: item for item in items}
        changed = [item for name, item in current.items() if self.sent.get(name) != item]
        removed = [name for name in self.sent if name not in current]
        self.sent = current
        return {"full": first, "rows": changed, "removed": removed}
