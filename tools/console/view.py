"""What an operator sees: the fleet table (riskiest first) and one device in detail.

Pure rendering: rows in (as `Store.devices()` gives them), rich renderables
out, so `watch`, `watch --once`, `devices` and the tests all draw the same
thing. Fits an 80-column terminal: columns are short, never wrap, and give
way with an ellipsis.
"""

import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from .alerts import headroom_kb
from .apps import grouped
from .ingest import SILENT_FACTOR
from .leaks import soonest_first
from .safetext import clean, text

SPARK = "▁▂▃▄▅▆▇█"
STATE_STYLE = {"online": "green", "offline": "bold red"}
ALERT_SHORT = {"offline": "off", "ceiling": "ceil", "escalated": "esc", "leak": "leak",
               "dropped": "drop"}


def state_of(device: Dict[str, Any], now: float, default_interval: float = 3600.0) -> str:
    """online or offline; a device nobody updated for SILENT_FACTOR x its period is offline."""
    if device.get("state") == "offline":
        return "offline"
    last = device.get("last_seen") or 0.0
    if now - last > SILENT_FACTOR * (device.get("interval_s") or default_interval):
        return "offline"
    return "online"


def risk(device: Dict[str, Any], now: float, default_interval: float = 3600.0) -> float:
    """Higher is worse: offline, then alerts, then least headroom, then missing messages."""
    score = 0.0
    if state_of(device, now, default_interval) == "offline":
        score += 1000
    score += 100 * len(device.get("alerts") or {})
    room, ceiling = headroom_kb(device), device.get("ceiling_kb")
    if room is not None and ceiling:
        score += 100 * (1 - max(0.0, min(1.0, room / float(ceiling))))
    if device.get("missing"):
        score += 5
    return score


def mb(kb: Optional[float]) -> str:
    """Kilobytes as a short human size: 812K, 38M, 1.2G."""
    if kb is None:
        return "-"
    if kb < 1000:
        return "%dK" % kb
    if kb < 1000 * 1024:
        return "%.0fM" % (kb / 1024.0) if kb >= 10 * 1024 else "%.1fM" % (kb / 1024.0)
    return "%.1fG" % (kb / 1024.0 / 1024.0)


def ago(ts: Optional[float], now: float) -> str:
    """A time as how long ago: 5s, 3m, 2h, 4d."""
    if not ts:
        return "-"
    age = max(0.0, now - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if age >= size:
            return "%d%s" % (age // size, unit)
    return "%ds" % age


def sparkline(values: Sequence[float], width: int = 40) -> str:
    """Values as a row of block characters, scaled between their own min and max."""
    values = list(values)[-width:]
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(SPARK[int((v - low) / span * (len(SPARK) - 1))] for v in values)


def fleet_table(devices: Iterable[Dict[str, Any]], now: Optional[float] = None,
                title: str = "", default_interval: float = 3600.0, width: int = 80,
                selected: Optional[str] = None) -> Table:
    """The fleet, riskiest device first, laid out for a terminal `width` columns wide."""
    now = time.time() if now is None else now
    rows = ordered(devices, now, default_interval)
    # Every device-supplied string goes in as Text (safetext.py): never read as markup.
    table = Table(title=Text(title) if title else None, box=None, pad_edge=False, padding=(0, 1),
                  collapse_padding=True, header_style="bold underline",
                  show_edge=False,
                  title_justify="left", expand=False)
    wide = width >= 100   # FREE (and the percentage) only where there is room for them
    columns = [("DEVICE", "left", 8, 24 if wide else 16), ("MODEL", "left", 4, 6), ("STATE", "left", 7, 7),
               ("RSS/CEIL", "right", 8, 13 if wide else 8)]
    if wide:
        columns.append(("FREE", "right", 5, 6))
    columns += [("LAST GC", "left", 8, 9), ("BY RULE", "left", 9, 16 if wide else 9),
                ("ALERTS", "left", 6, 16 if wide else 9), ("MISS", "right", 4, 6),
                ("SEEN", "right", 4, 4)]
    for name, justify, least, most in columns:
        table.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis",
                         min_width=least, max_width=most)
    blank = [""] * (len(columns) - 1)
    for label, d in grouped(rows):   # each device once, its applications beneath (apps.py)
        if d is None:   # a device known only by its applications
            table.add_row(text(label), *blank, style="bold")
            continue
        state = state_of(d, now, default_interval)
        reason = d.get("reason") or ("silent" if state != d.get("state") else "")
        # offline says why: stopped (clean stop), lost (its Will), silent (3x its period)
        state_text = Text(state if state == "online" else (reason or "offline"),
                          style=STATE_STYLE.get(state, ""))
        ceiling, rss = d.get("ceiling_kb"), d.get("rss_kb")
        pct = " %d%%" % round(100.0 * rss / ceiling) if wide and ceiling and rss is not None else ""
        memory = Text("%s/%s%s" % (mb(rss), mb(ceiling), pct))
        room = headroom_kb(d)
        if room is not None and ceiling and room < 0.2 * ceiling:
            memory.stylize("bold yellow" if room >= 0.1 * ceiling else "bold red")
        last_gc = "-"
        if d.get("last_collect_ts"):
            reclaimed = d.get("last_reclaimed_kb")
            last_gc = "%s %s" % (ago(d["last_collect_ts"], now),
                                 "-" + mb(reclaimed) if reclaimed and reclaimed > 0 else "0")
        rules = " ".join("%s%d" % (_short_rule(clean(r)), n)
                         for r, n in sorted((d.get("rules") or {}).items(), key=lambda x: -x[1]))
        alerts = ",".join(clean(ALERT_SHORT.get(k, k)) + _leak_left(d, k)
                          for k in (d.get("alerts") or {}))
        cells = [text(label), text(d.get("model") or "-"), state_text, memory]
        if wide:
            cells.append(mb(d.get("mem_free_kb")))
        cells += [last_gc, Text(rules or "-"), Text(alerts or "-", style="bold red" if alerts else "dim"),
                  "-" if d.get("missing") is None else str(d["missing"]), ago(d.get("last_seen"), now)]
        table.add_row(*cells, style="reverse" if d["device"] == selected else None)
    return table


def shown_order(devices: Iterable[Dict[str, Any]], now: float,
                default_interval: float = 3600.0) -> List[str]:
    """Device ids in the order `fleet_table` shows them (for moving through it with keys)."""
    return [d["device"] for _, d in grouped(ordered(devices, now, default_interval))
            if d is not None]


def ordered(devices: Iterable[Dict[str, Any]], now: float,
            default_interval: float = 3600.0) -> List[Dict[str, Any]]:
    """Devices soonest to their ceiling at their leak's rate first, then riskiest (ties by name)."""
    return sorted(devices, key=order_key(now, default_interval))


def order_key(now: float, default_interval: float = 3600.0) -> Callable[[Dict[str, Any]], tuple]:
    """The table's order as a sort key (fleet.py keeps the first N of a stream by it)."""
    return lambda d: (soonest_first(d), -risk(d, now, default_interval), d["device"])


def _leak_left(device: Dict[str, Any], kind: str) -> str:
    """`:5h` after `leak`: the time left before the ceiling at the leak's rate."""
    eta = device.get("ceiling_eta_s")
    if kind != "leak" or eta is None:
        return ""
    return ":" + ago(time.time() - eta, time.time())


def _short_rule(rule: str) -> str:
    return {"low-memory": "low", "periodic": "per", "command": "cmd", "signal": "sig",
            "idle": "idle"}.get(rule, rule[:5])


def summary(devices: Sequence[Dict[str, Any]], now: float, stats: Optional[Dict[str, int]] = None,
            default_interval: float = 3600.0) -> str:
    """One line over the table: how many devices in which state, and what ingest saw."""
    online = sum(1 for d in devices if state_of(d, now, default_interval) == "online")
    alerts = sum(len(d.get("alerts") or {}) for d in devices)
    line = "%d devices: %d online, %d offline; %d alerts" % (len(devices), online,
                                                           len(devices) - online, alerts)
    if stats:
        line += "; %d msgs, %d dup, %d bad" % (stats.get("recorded", 0), stats.get("duplicates", 0),
                                              stats.get("bad", 0))
    return line


def device_detail(device: Dict[str, Any], samples: Sequence[Any], events: Sequence[Dict[str, Any]],
                  alerts: Sequence[Dict[str, Any]], now: Optional[float] = None,
                  default_interval: float = 3600.0) -> Group:
    """One device: its status, a memory sparkline, recent events and alerts."""
    now = time.time() if now is None else now
    state = state_of(device, now, default_interval)
    status = device.get("status") or {}
    head = Text()
    head.append("%s " % clean(device["device"]), style="bold")
    head.append(state if state == "online" else "offline (%s)" % (device.get("reason") or "silent"),
                style=STATE_STYLE.get(state, ""))
    head.append("  model %s  python %s  agent %s  gc %s\n" % (
        clean(device.get("model")), clean(status.get("python")), clean(status.get("agent")),
        clean(status.get("gc_flavour"))))
    head.append("boot %s  ceiling %s  rss %s  free %s  headroom %s  missing %s  seen %s ago\n" % (
        clean(device.get("boot")), mb(device.get("ceiling_kb")), mb(device.get("rss_kb")),
        mb(device.get("mem_free_kb")), mb(headroom_kb(device)),
        "-" if device.get("missing") is None else device["missing"],
        ago(device.get("last_seen"), now)))
    rss = [s["rss_kb"] for s in samples]
    if rss:
        head.append("rss  %s %s..%s\n" % (sparkline(rss, 50), mb(min(rss)), mb(max(rss))), style="cyan")
        free = [s["mem_free_kb"] for s in samples]
        head.append("free %s %s..%s\n" % (sparkline(free, 50), mb(min(free)), mb(max(free))),
                    style="green")
    for kind, detail in (device.get("alerts") or {}).items():
        head.append("ALERT %s: %s\n" % (clean(kind), clean(detail)), style="bold red")
    table = Table(title="recent events", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for name, least in (("AGO", 4), ("EVENT", 9), ("RULE", 10), ("DETAIL", 20)):
        table.add_column(name, no_wrap=True, overflow="ellipsis", min_width=least)
    for event in list(events)[-15:][::-1]:
        detail = []
        if "rss_before_kb" in event and "rss_after_kb" in event:
            detail.append("rss %s->%s" % (mb(event["rss_before_kb"]), mb(event["rss_after_kb"])))
        if "generation" in event:
            detail.append("gen%s" % clean(event["generation"]))
        if "collected" in event:
            detail.append("%s objs" % clean(event["collected"]))
        if isinstance(event.get("duration_ms"), (int, float)):
            detail.append("%.1fms" % event["duration_ms"])
        for field in ("step", "trigger", "name", "error"):
            if field in event:
                detail.append("%s=%s" % (field, clean(event[field])))
        table.add_row(ago(event["ts"], now), text(event["event"]), text(event.get("rule") or "-"),
                      Text(" ".join(detail)))
    history = Table(title="alert history", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for name in ("AGO", "ALERT", "STATE", "DETAIL"):
        history.add_column(name, no_wrap=True, overflow="ellipsis")
    for alert in list(alerts)[-8:][::-1]:
        history.add_row(ago(alert["ts"], now), text(alert["kind"]), text(alert["state"]),
                        text(alert["detail"]))
    parts: List[Any] = [head, table]
    if alerts:
        parts.append(history)
    return Group(*parts)
