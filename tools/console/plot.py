"""`gc-console plot`: one device's memory and collections over time, as a PNG.

The same picture as the web console's device page (tools/console/web/series.py
makes the data for both): RSS against the ceiling and the device's free
memory (right axis: on a desktop emulator it is the host's and would flatten
the rest), the longest gc pause per point below; each collection a marker on
the RSS line, coloured by rule with the colours of tools/console/colours.py
(the same in every plot and on the web page); restarts, kills near the
ceiling, agent alerts and leak suspicions as vertical lines; outages and
low-memory episodes shaded. Any range is downsampled on the way (at most
2,000 points a series, each the worst case of its time bucket), so 30 days of
one-minute samples draw in about a second. The time axis shows dates and the
time zone (local, or `tz` such as UTC). The legend sits outside the data.
Uses matplotlib's Agg backend: no display needed.
"""

import datetime
import time
from typing import Any, Dict, List, Optional, Sequence

from .colours import MARKS
from .safetext import clean
from .store import Store

LINE_KINDS = {"restart": "restart", "oom": "killed near ceiling (OOM?)",
              "alert": "alert", "leak_suspected": "leak suspected"}


class NothingToPlot(Exception):
    """The store holds no samples for that device; the message names the ones it has."""


def outages(times: Sequence[float]) -> List[tuple]:
    """(start, end) of every gap between samples longer than SILENT_FACTOR x the median spacing."""
    from .web.series import outages as spans
    from .web.series import with_gaps
    columns = with_gaps([(t, 0) for t in times], 0.0)
    return spans(columns[0], columns[1])


def _zone(tz: Optional[datetime.tzinfo]) -> tuple:
    """The tzinfo to draw in and its name for the axis label."""
    if tz is not None:
        return tz, datetime.datetime.now(tz).tzname()
    local = datetime.datetime.now().astimezone().tzinfo
    return local, time.strftime("%Z") or datetime.datetime.now(local).strftime("UTC%z")


def plot(store: Store, device: str, out: str, since: float = 0.0, until: Optional[float] = None,
         width: float = 11.0, height: float = 5.5, dpi: int = 100,
         tz: Optional[datetime.tzinfo] = None) -> Dict[str, Any]:
    """Draw `device` into `out` (PNG); returns what was drawn (counts, for the CLI to print)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from .web import series
    info = store.device(device) or {}
    db = series.connect(store.path)
    try:
        if until is None:   # up to now, or to the last sample if the device's clock runs ahead
            last = db.execute("SELECT MAX(ts) FROM samples WHERE device=?", (device,)).fetchone()[0]
            until = max(last or 0.0, time.time()) + 1.0   # events are stamped to the ms
        found = series.history(db, device, since, until, info.get("ceiling_kb"))
    finally:
        db.close()
    line = found["series"]
    if not line["raw"]:
        known = ", ".join(clean(d["device"]) for d in store.recent_devices(20)) or "none"
        raise NothingToPlot("no samples of device %r in %s (devices there: %s)"
                            % (device, store.path, known))
    zone, zone_name = _zone(tz)

    def when(ts: float) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(ts, zone)

    def mb(values: Sequence[Optional[float]]) -> List[float]:
        return [float("nan") if v is None else v / 1024.0 for v in values]

    xs = [when(t) for t in line["t"]]
    fig, (ax, pause_ax) = plt.subplots(2, 1, figsize=(width, height), dpi=dpi, sharex=True,
                                       gridspec_kw={"height_ratios": [3, 1]})
    ax.plot(xs, mb(line["rss_kb"]), color="#1f77b4", lw=1.6, label="RSS", zorder=3)
    ceiling = found["ceiling_kb"]
    if ceiling:
        ax.axhline(ceiling / 1024.0, color="#d62728", ls="--", lw=1.2,
                   label="ceiling %.0fM" % (ceiling / 1024.0))
    free_ax = ax.twinx()
    free_ax.plot(xs, mb(line["free_kb"]), color="#8c8c00", lw=0.9, ls=":",
                 label="device free memory (right)")
    free_ax.set_ylabel("free, MB")
    pause_ax.plot(xs, [float("nan") if v is None else v for v in line["pause_ms"]],
                  color="#9467bd", lw=0.9)
    pause_ax.set_ylabel("longest\npause, ms")
    handles: List[Any] = []
    shaded = set()
    for span in found["spans"]:
        colour = MARKS["outage"] if span["kind"] == "outage" else MARKS["low_memory"]
        for axis in (ax, pause_ax):
            axis.axvspan(when(span["from"]), when(span["to"]), color=colour, alpha=0.45, zorder=0,
                         lw=0)
        shaded.add(span["kind"])
    for kind in sorted(shaded):
        handles.append(Patch(color=MARKS["outage" if kind == "outage" else "low_memory"],
                             alpha=0.45, label="outage" if kind == "outage" else "low memory"))
    drawn_lines = set()
    for point in found["points"]:
        colour = MARKS.get(point["kind"], MARKS["alert"])
        for axis in (ax, pause_ax):
            axis.axvline(when(point["ts"]), color=colour, lw=1.4 if point["kind"] == "oom" else 1.0,
                         ls="--" if point["kind"] == "restart" else "-", zorder=2)
        drawn_lines.add(point["kind"])
    for kind in sorted(drawn_lines):
        handles.append(Line2D([], [], color=MARKS.get(kind, MARKS["alert"]),
                              ls="--" if kind == "restart" else "-", label=LINE_KINDS.get(kind, kind)))
    by_rule: Dict[str, List[Any]] = {}
    for c in found["collections"]:
        if c["y_kb"] is not None:
            by_rule.setdefault(c["rule"], [c["colour"], [], []])
            by_rule[c["rule"]][1].append(when(c["ts"]))
            by_rule[c["rule"]][2].append(c["y_kb"] / 1024.0)
    for rule, (colour, at, y) in sorted(by_rule.items()):
        ax.scatter(at, y, color=colour, s=30, zorder=5, edgecolors="black", linewidths=0.5,
                   label="collect: %s" % _label(rule))
    ax.set_ylabel("MB")
    ax.set_title("%s (%s): memory and collections" % (_label(device),
                                                       _label(info.get("model") or "?")))
    locator = mdates.AutoDateLocator(tz=zone)
    pause_ax.xaxis.set_major_locator(locator)
    pause_ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))
    pause_ax.set_xlabel("time (%s)" % zone_name)
    for axis in (ax, pause_ax):
        axis.grid(True, alpha=0.3)
    mine, labels = ax.get_legend_handles_labels()
    more, more_labels = free_ax.get_legend_handles_labels()
    fig.legend(mine + more + handles, labels + more_labels + [h.get_label() for h in handles],
               loc="upper left", bbox_to_anchor=(0.80, 0.93), fontsize=8, frameon=False)
    fig.subplots_adjust(left=0.07, right=0.73, top=0.92, bottom=0.12, hspace=0.08)
    fig.savefig(out, format="png")
    plt.close(fig)
    return {"samples": line["raw"], "points": len(line["t"]),
            "collections": len(found["collections"]),
            "outages": sum(1 for s in found["spans"] if s["kind"] == "outage")}


def _label(name: str) -> str:
    """A device's string as literal plot text (no mathtext `$...$`, no control bytes)."""
    return clean(name).replace("$", r"\$")
