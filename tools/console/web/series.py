"""A device's history for a chart: samples downsampled on the server, events and spans to mark.

Whatever the range, a chart gets at most `points` values per series
(MAX_POINTS): when a range holds more samples than that, they are grouped into
equal time buckets and each bucket keeps its worst case (the highest RSS, the
lowest free memory, the longest pause), so a spike or a dip never vanishes
from a zoomed-out chart. SQLite does the grouping (one indexed query), so
30 days of one-minute samples cost a few tens of milliseconds, not a 300 MB
list of rows. Collections are placed on the drawn RSS line (interpolated at
their time), so a marker sits on the line it explains.

Marked as well: restarts (a new boot), kills (a boot that ended without a
clean stop, shown as `oom` when its last RSS was within OOM_NEAR of the
ceiling: the console cannot see the kernel's reason, only that the process
died close to its limit), agent `alert` and `leak_suspected` events,
low-memory episodes (`low_memory` until `recovered`), console alerts and
outages (no sample for more than SILENT_FACTOR x the usual spacing).
"""

import bisect
import json
import sqlite3
import statistics
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..colours import rule_colour
from ..ingest import SILENT_FACTOR
from ..store import reclaimed_kb

MAX_POINTS = 2000
MAX_COLLECTIONS = 2000
MAX_GAPS = 100          # buckets are MAX_POINTS - MAX_GAPS, so gap breaks fit in the budget
OOM_NEAR = 0.90
RECENT_EVENTS = 50


def connect(path: str) -> sqlite3.Connection:
    """A read-only connection to the console's database (one per request: SQLite is cheap)."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10.0)
    db.row_factory = sqlite3.Row
    return db


def samples(db: sqlite3.Connection, device: str, since: float, until: float,
            points: int = MAX_POINTS) -> Dict[str, Any]:
    """Columns t, rss_kb, free_kb, pause_ms (None where the line breaks), and how they were made."""
    points = max(10, min(points, MAX_POINTS))
    raw = db.execute("SELECT COUNT(*) FROM samples WHERE device=? AND ts>=? AND ts<=?",
                     (device, since, until)).fetchone()[0]
    buckets = points - MAX_GAPS
    if raw <= buckets:
        rows = db.execute("SELECT ts, rss_kb, mem_free_kb, pause_ms_max FROM samples "
                          "WHERE device=? AND ts>=? AND ts<=? ORDER BY ts",
                          (device, since, until)).fetchall()
        width = 0.0
    else:
        first, last = db.execute("SELECT MIN(ts), MAX(ts) FROM samples WHERE device=? AND ts>=? "
                                 "AND ts<=?", (device, since, until)).fetchone()
        width = max((last - first) / float(buckets), 1e-3)
        rows = db.execute("SELECT MIN(ts), MAX(rss_kb), MIN(mem_free_kb), MAX(pause_ms_max) "
                          "FROM samples WHERE device=? AND ts>=? AND ts<=? "
                          "GROUP BY CAST((ts - ?) / ? AS INTEGER) ORDER BY 1",
                          (device, since, until, first, width)).fetchall()
    columns = with_gaps([tuple(r) for r in rows], width)
    return {"t": columns[0], "rss_kb": columns[1], "free_kb": columns[2], "pause_ms": columns[3],
            "raw": raw, "bucket_s": round(width, 3)}


def with_gaps(rows: Sequence[Tuple], width: float) -> List[List[Any]]:
    """Rows (ts, values...) as columns, with a None row wherever samples stop for a while.

    A break is a gap longer than SILENT_FACTOR x the median spacing (and than two
    buckets when downsampled): the chart then shows an outage as a hole, never
    as a straight line across it. At most MAX_GAPS breaks.
    """
    if not rows:
        return [[] for _ in range(4)]
    limit = max(SILENT_FACTOR * _median_gap([r[0] for r in rows]), 2.0 * width)
    out: List[Tuple] = [rows[0]]
    gaps = 0
    for before, row in zip(rows, rows[1:]):
        if gaps < MAX_GAPS and limit > 0 and row[0] - before[0] > limit:
            out.append((before[0] + (row[0] - before[0]) / 2.0,) + (None,) * (len(row) - 1))
            gaps += 1
        out.append(row)
    return [list(c) for c in zip(*out)]


def _median_gap(times: Sequence[float]) -> float:
    if len(times) < 3:
        return 0.0
    return statistics.median(b - a for a, b in zip(times, times[1:]))


def outages(times: Sequence[float], rss: Sequence[Optional[float]]) -> List[Tuple[float, float]]:
    """(start, end) around each break `with_gaps` made."""
    spans = []
    for i, value in enumerate(rss):
        if value is None and 0 < i < len(times) - 1:
            spans.append((times[i - 1], times[i + 1]))
    return spans


def on_line(times: Sequence[float], values: Sequence[Optional[float]], at: float) -> Optional[float]:
    """The drawn line's value at `at` (linear between its points), None off the line."""
    i = bisect.bisect_left(times, at)
    if i < len(times) and times[i] == at:
        return values[i]
    if i == 0 or i >= len(times) or values[i - 1] is None or values[i] is None:
        return None
    t0, t1, v0, v1 = times[i - 1], times[i], values[i - 1], values[i]
    return v0 + (v1 - v0) * (at - t0) / (t1 - t0)


def collections(db: sqlite3.Connection, device: str, since: float, until: float,
                line: Dict[str, Any], limit: int = MAX_COLLECTIONS) -> List[Dict[str, Any]]:
    """Collections in the range, each on the RSS line, coloured by rule; thinned past `limit`.

    Thinning keeps, per time bucket and rule, the collection that gave back the
    most, with how many it stands for (`n`).
    """
    rows = db.execute("SELECT ts, rule, reclaimed_kb, body FROM events WHERE device=? AND "
                      "event='collect' AND ts>=? AND ts<=? ORDER BY ts",
                      (device, since, until)).fetchall()
    if len(rows) > limit:
        width = (rows[-1][0] - rows[0][0]) / float(limit // 4 or 1) or 1.0
        kept: Dict[Tuple, List] = {}
        for row in rows:
            key = (int((row[0] - rows[0][0]) / width), row[1])
            best = kept.get(key)
            if best is None:
                kept[key] = [row, 1]
            else:
                best[1] += 1
                if (row[2] or 0) > (best[0][2] or 0):
                    best[0] = row
        picked = sorted(kept.values(), key=lambda pair: pair[0][0])[:limit]
    else:
        picked = [[row, 1] for row in rows]
    out = []
    for row, count in picked:
        body = json.loads(row[3])
        rule = row[1] or "?"
        out.append({"ts": row[0], "rule": rule, "colour": rule_colour(rule),
                    "reclaimed_kb": row[2], "n": count, "generation": body.get("generation"),
                    "duration_ms": body.get("duration_ms"),
                    "y_kb": on_line(line["t"], line["rss_kb"], row[0])})
    return out


def marks(db: sqlite3.Connection, device: str, since: float, until: float,
          ceiling_kb: Optional[int]) -> Dict[str, List[Dict[str, Any]]]:
    """Points in time (restarts, kills, alerts, leak suspicions) and spans (low memory, offline)."""
    points: List[Dict[str, Any]] = []
    spans: List[Dict[str, Any]] = []
    boots = db.execute("SELECT boot, MIN(ts), MAX(ts) FROM samples WHERE device=? "
                       "GROUP BY boot ORDER BY 2", (device,)).fetchall()
    clean = set()
    for (body,) in db.execute("SELECT body FROM messages WHERE device=? AND type='status'",
                              (device,)):
        status = json.loads(body)
        if status.get("state") == "offline" and not status.get("will"):
            clean.add(status.get("boot"))
    for before, boot in zip(boots, boots[1:]):
        if not since <= boot[1] <= until:
            continue
        if before[0] in clean:
            points.append({"ts": boot[1], "kind": "restart", "label": "restart (clean stop)"})
            continue
        last = db.execute("SELECT rss_kb FROM samples WHERE device=? AND boot=? ORDER BY ts DESC "
                          "LIMIT 1", (device, before[0])).fetchone()
        near = bool(ceiling_kb and last and last[0] >= OOM_NEAR * ceiling_kb)
        points.append({"ts": before[2], "kind": "oom" if near else "restart",
                       "label": "killed near its ceiling (%dK): likely OOM" % last[0] if near
                       else "restart (previous run ended without a clean stop)"})
    episode = None
    for ts, event, rule in db.execute("SELECT ts, event, rule FROM events WHERE device=? AND "
                                      "event IN ('low_memory', 'recovered', 'alert', "
                                      "'leak_suspected') AND ts<=? ORDER BY ts", (device, until)):
        if event == "low_memory":
            episode = episode or ts
        elif event == "recovered":
            if episode is not None and ts >= since:
                spans.append({"from": max(episode, since), "to": ts, "kind": "low_memory",
                              "label": "low memory"})
            episode = None
        elif ts >= since:
            points.append({"ts": ts, "kind": event, "label": "%s (rule %s)" % (event, rule)})
    if episode is not None:
        spans.append({"from": max(episode, since), "to": until, "kind": "low_memory",
                      "label": "low memory (not recovered)"})
    offline = None
    for ts, kind, state, detail in db.execute("SELECT ts, kind, state, detail FROM alerts "
                                              "WHERE device=? AND ts<=? ORDER BY ts",
                                              (device, until)):
        if kind == "offline":
            if state == "raised":
                offline = (ts, detail)
            elif offline is not None:
                if ts >= since:
                    spans.append({"from": max(offline[0], since), "to": ts, "kind": "outage",
                                  "label": "offline (%s)" % offline[1]})
                offline = None
        elif state == "raised" and ts >= since:
            points.append({"ts": ts, "kind": "alert", "label": "alert %s: %s" % (kind, detail)})
    if offline is not None:
        spans.append({"from": max(offline[0], since), "to": until, "kind": "outage",
                      "label": "offline (%s)" % offline[1]})
    return {"points": points, "spans": spans}


def recent_events(db: sqlite3.Connection, device: str,
                  limit: int = RECENT_EVENTS) -> List[Dict[str, Any]]:
    rows = db.execute("SELECT body FROM events WHERE device=? ORDER BY ts DESC LIMIT ?",
                      (device, limit)).fetchall()
    out = []
    for (body,) in rows:
        event = json.loads(body)
        event["reclaimed_kb"] = reclaimed_kb(event)
        if event.get("event") == "collect":
            event["colour"] = rule_colour(event.get("rule") or "?")
        out.append(event)
    return out


def history(db: sqlite3.Connection, device: str, since: float, until: float,
            ceiling_kb: Optional[int], points: int = MAX_POINTS) -> Dict[str, Any]:
    """Everything the device page's charts draw for [since, until]."""
    line = samples(db, device, since, until, points)
    found = marks(db, device, since, until, ceiling_kb)
    for start, end in outages(line["t"], line["rss_kb"]):
        found["spans"].append({"from": start, "to": end, "kind": "outage",
                               "label": "no samples"})
    return {"device": device, "since": since, "until": until, "ceiling_kb": ceiling_kb,
            "series": line, "collections": collections(db, device, since, until, line),
            "points": found["points"], "spans": found["spans"]}
