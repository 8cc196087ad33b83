"""`gc-console plot`: one device's memory and collections over time, as a PNG.

RSS and the headroom left against the ceiling (left axis), the device's free
memory (right axis: on a gateway it is close to the ceiling's scale, on a
desktop emulator it is the host's and would flatten the rest); a marker for every collection,
coloured by rule and labelled with the RSS it gave back; outages (no sample
for more than SILENT_FACTOR x the usual spacing) shaded. Uses matplotlib's
Agg backend: no display needed.
"""

import datetime
import statistics
from typing import Any, Dict, List, Sequence

from .ingest import SILENT_FACTOR
from .safetext import clean
from .store import Store, reclaimed_kb


class NothingToPlot(Exception):
    """The store holds no samples for that device; the message names the ones it has."""


def outages(times: Sequence[float]) -> List[tuple]:
    """(start, end) of every gap between samples longer than SILENT_FACTOR x the median spacing."""
    if len(times) < 3:
        return []
    gaps = [b - a for a, b in zip(times, times[1:])]
    usual = statistics.median(gaps) or 1.0
    return [(a, b) for a, b in zip(times, times[1:]) if b - a > SILENT_FACTOR * usual]


def plot(store: Store, device: str, out: str, since: float = 0.0,
         width: float = 11.0, height: float = 5.5, dpi: int = 100) -> Dict[str, Any]:
    """Draw `device` into `out` (PNG); returns what was drawn (counts, for the CLI to print)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    samples = store.samples(device, since)
    if not samples:
        known = ", ".join(clean(d["device"]) for d in store.recent_devices(20)) or "none"
        raise NothingToPlot("no samples of device %r in %s (devices there: %s)"
                            % (device, store.path, known))
    info = store.device(device) or {}
    ceiling = info.get("ceiling_kb")
    times = [s["ts"] for s in samples]
    when = [datetime.datetime.fromtimestamp(t) for t in times]
    fig, ax = plt.subplots(figsize=(width, height), dpi=dpi)
    ax.plot(when, [s["rss_kb"] / 1024.0 for s in samples], color="tab:blue", lw=1.8, label="RSS")
    if ceiling:
        headroom = [max(0.0, (ceiling - s["rss_kb"]) / 1024.0) for s in samples]
        ax.plot(when, headroom, color="tab:green", lw=1.4, label="headroom to ceiling")
        ax.axhline(ceiling / 1024.0, color="tab:red", ls="--", lw=1.2,
                   label="ceiling %.0fM" % (ceiling / 1024.0))
    free_ax = ax.twinx()
    free_ax.plot(when, [s["mem_free_kb"] / 1024.0 for s in samples], color="tab:olive", lw=1.0,
                 ls=":", label="device free memory (right)")
    free_ax.set_ylabel("device free memory, MB")
    for start, end in outages(times):
        ax.axvspan(datetime.datetime.fromtimestamp(start), datetime.datetime.fromtimestamp(end),
                   color="0.85", zorder=0)
    collects = [e for e in store.events(device) if e["event"] == "collect" and e["ts"] >= since]
    colours = _rule_colours(sorted(set(e.get("rule") or "?" for e in collects)))
    labelled = set()
    for event in collects:
        rule = event.get("rule") or "?"
        y = (event.get("rss_after_kb") or event.get("rss_before_kb") or 0) / 1024.0
        at = datetime.datetime.fromtimestamp(event["ts"])
        ax.scatter([at], [y], color=colours[rule], s=36, zorder=5, edgecolors="black", lw=0.5,
                   label=None if rule in labelled else "collect: %s" % _label(rule))
        labelled.add(rule)
        reclaimed = reclaimed_kb(event)
        if reclaimed is not None and len(collects) <= 60:   # labels on a crowded plot are noise
            ax.annotate("%+dK" % -reclaimed, (at, y), textcoords="offset points", xytext=(0, 6),
                        fontsize=7, ha="center", color=colours[rule])
    ax.set_ylabel("MB")
    ax.set_title("%s (%s): memory and collections" % (_label(device), _label(info.get("model") or "?")))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    more, more_labels = free_ax.get_legend_handles_labels()
    ax.legend(handles + more, labels + more_labels, loc="best", fontsize=8, framealpha=0.8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out, format="png")
    plt.close(fig)
    return {"samples": len(samples), "collections": len(collects), "outages": len(outages(times))}


def _rule_colours(rules: Sequence[str]) -> Dict[str, Any]:
    palette = ["tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan",
               "black", "tab:gray"]
    return {rule: palette[i % len(palette)] for i, rule in enumerate(rules)}


def _label(name: str) -> str:
    """A device's string as literal plot text (no mathtext `$...$`, no control bytes)."""
    return clean(name).replace("$", r"\$")
