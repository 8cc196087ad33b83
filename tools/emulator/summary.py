"""Per-device results: measured from outside (RSS, kills) and read from the agent's messages.

RSS, peaks and kills come from the emulator's own readings of /proc/PID;
collections, reclaimed memory, pauses and message counts come from the
agent's schema-v1 messages in the device's file:// report (and, with
`--report drm:`, from the data points the device uploaded).
"""

import json
import os
from collections import Counter
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from agent.units import format_kb


def read_messages(folder: str) -> List[Dict[str, Any]]:
    """The messages the device's agent wrote to its file:// report (rotated part first)."""
    out = []
    for name in ("messages.jsonl.1", "messages.jsonl"):
        try:
            with open(os.path.join(folder, name), "rb") as handle:
                for line in handle:
                    try:
                        out.append(json.loads(line.decode("utf-8")))
                    except ValueError:
                        continue   # a line torn by SIGKILL: not a message
        except OSError:
            continue
    return out


def read_datapoints(folder: str) -> List[Dict[str, Any]]:
    """What the device uploaded through the emulated digidevice.datapoint."""
    try:
        with open(os.path.join(folder, "datapoints.jsonl"), "rb") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except (OSError, ValueError):
        return []


def workload_result(folder: str) -> Optional[Dict[str, Any]]:
    """The workload's own summary: the last JSON object line it printed (its last start)."""
    try:
        with open(os.path.join(folder, "output.log"), "rb") as handle:
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("--- start"):
            return None
        if line.startswith("{"):
            try:
                found = json.loads(line)
            except ValueError:
                continue
            if isinstance(found, dict):
                return found
    return None


def still_buffered(folder: str) -> int:
    """Messages the device still holds when the run ends: the records left in its flash
    journals (one per report URL, under FOLDER/flash), which it would send on its next boot.
    What a telemetry message says it buffered is a depth at that moment, most of it delivered
    right after; and what was in RAM when the process ended is gone, not buffered."""
    from agent.errors import JournalError
    from agent.journal import Journal
    flash = os.path.join(folder, "flash")
    try:
        names = sorted(os.listdir(flash))
    except OSError:
        return 0   # no [buffer] flash: nothing outlives the process
    total = 0
    for name in names:
        path = os.path.join(flash, name)
        if not os.path.isdir(path):
            continue
        try:
            journal = Journal(path)
        except JournalError:
            continue
        try:
            total += journal.pending()
        except JournalError:
            pass
        finally:
            journal.close()
    return total


def _pauses(messages: Iterable[Dict[str, Any]]):
    total = longest = 0.0
    for m in messages:
        if m.get("type") == "telemetry":
            for s in m.get("samples", ()):
                total += s.get("gc_pause_ms_total", 0.0)
                longest = max(longest, s.get("gc_pause_ms_max", 0.0))
    return total, longest


def device_report(device, at_broker: Optional[Dict[str, Set[Tuple[str, int]]]] = None) -> Dict[str, Any]:
    """Everything the summary says about one device, as JSON-ready values."""
    messages = read_messages(device.folder)
    events = [m for m in messages if m.get("type") == "event"]
    collects = [m for m in events if m.get("event") == "collect"]
    telemetry = [m for m in messages if m.get("type") == "telemetry"]
    # buffered is a depth (kept as buffered_reported), dropped a count since boot: the last
    # of each boot, summed
    last_by_boot: Dict[str, Dict[str, Any]] = {}
    for m in telemetry:
        last_by_boot[m.get("boot", "")] = m
    pause_total, pause_max = _pauses(messages)
    oom = [k for k in device.kills if k.reason == "oom"]
    report = {
        "device": device.id,
        "outcome": ("OOM-killed" if oom else "killed" if device.kills else
                    "failed" if any(device.exits) else "survived"),
        "oom_kills": [{"at_s": k.at, "rss_kb": k.rss_kb, "boot": k.boot, "by": k.by,
                       "charged_kb": k.charged_kb} for k in oom],
        "kills": [k._asdict() for k in device.kills],
        "boots": device.boot,
        "starts": len(device.starts),
        "rapid_reboot_waits": device.backoffs,
        "peak_rss_kb": device.peak_rss_kb,
        "limit_kb": device.model.kill_at_kb,
        "collections": dict(Counter(m.get("rule", "?") for m in collects)),
        "reclaimed_kb": sum(max(0, m.get("rss_before_kb", 0) - m.get("rss_after_kb", 0))
                            for m in collects),
        "agent_pause_ms_max": round(max((m.get("duration_ms", 0.0) for m in collects), default=0.0), 2),
        "gc_pause_ms_total": round(pause_total, 2),
        "gc_pause_ms_max": round(pause_max, 2),
        "events": dict(Counter(m.get("event") for m in events if m.get("event") != "collect")),
        "messages": len(messages),
        "boots_seen": len({m.get("boot") for m in messages}),
        "buffered": sum(m.get("buffered", 0) for m in last_by_boot.values()),
        "dropped": sum(m.get("dropped", 0) for m in last_by_boot.values()),
        "console": device.console_path,
        "python": next((m.get("python") for m in messages if m.get("type") == "status"), None),
    }
    result = workload_result(device.folder)
    if result is not None:
        report["workload"] = result
    points = read_datapoints(device.folder)
    if points:
        report["drm_datapoints"] = len(points)
        report["drm_messages"] = sum(1 for p in points if p.get("data_type") == "JSON")
    if at_broker is not None:   # this run's boots only: the broker keeps earlier runs' retained status
        boots = {m.get("boot") for m in messages}
        report["at_broker"] = sum(1 for boot, _ in at_broker.get(device.id, ()) if boot in boots)
    # `buffered`: what never arrived, where arrival is measured (the broker, Remote Manager),
    # else what is left in the device's journals; the agent's own last report of its outbox
    # depth counts messages delivered after it.
    report["buffered_reported"] = report["buffered"]
    report["buffered"] = still_buffered(device.folder)
    arrived = None
    if at_broker is not None:
        arrived = set(at_broker.get(device.id, ()))
    elif points:
        arrived = set()
        for p in points:
            if p.get("data_type") == "JSON":
                try:
                    body = json.loads(p["data"])
                    arrived.add((body.get("boot"), body.get("seq")))
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
    if arrived is not None:
        report["buffered"] = len({(m.get("boot"), m.get("seq")) for m in messages} - arrived)
    return report


def _when(report: Dict[str, Any]) -> str:
    kills = report["oom_kills"]
    if kills:
        return "OOM-killed at %.1fs%s" % (kills[0]["at_s"], " (x%d)" % len(kills) if len(kills) > 1 else "")
    if report["kills"]:
        return "killed (%s)" % report["kills"][0]["reason"]
    return report["outcome"]


def table(reports: List[Dict[str, Any]]) -> str:
    """The summary as a fixed-width table, one row per device."""
    header = ["device", "outcome", "peak RSS / limit", "collections by rule", "reclaimed",
              "pause max", "msgs sent/buf/drop"]
    with_broker = any("at_broker" in r for r in reports)
    if with_broker:
        header.append("at broker")
    rows = [header]
    for r in reports:
        rules = ", ".join("%s %d" % kv for kv in sorted(r["collections"].items())) or "-"
        row = [r["device"], _when(r), "%s / %s" % (format_kb(r["peak_rss_kb"]), format_kb(r["limit_kb"])),
               rules, format_kb(r["reclaimed_kb"]),
               "%.1f ms" % max(r["gc_pause_ms_max"], r["agent_pause_ms_max"]),
               "%d / %d / %d" % (r["messages"], r["buffered"], r["dropped"])]
        if with_broker:
            row.append(str(r.get("at_broker", "-")))
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    survived = sum(1 for r in reports if r["outcome"] == "survived")
    lines.append("%d of %d device(s) survived" % (survived, len(reports)))
    notable = Counter()
    for r in reports:
        for name in ("leak_suspected", "low_memory", "alert", "budget", "error", "disabled"):
            notable[name] += r["events"].get(name, 0)
    said = ", ".join("%s %d" % (k, v) for k, v in sorted(notable.items()) if v)
    if said:
        lines.append("agent events: " + said)
    return "\n".join(lines)
