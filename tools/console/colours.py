"""One colour per collection rule, the same in `plot` PNGs and on the web console's charts.

Rules the agent names itself have fixed colours; any other rule name (a
profile's own `[rule:NAME]`) gets one from the palette by a stable hash of its
name, so a rule keeps its colour from plot to plot and from page to page.
Colours are CSS hex strings (matplotlib takes them as they are).
"""

import zlib
from typing import Dict, Iterable

FIXED = {
    "periodic": "#1f77b4",
    "low-memory": "#d62728",
    "idle": "#2ca02c",
    "event": "#9467bd",
    "signal": "#8c564b",
    "command": "#e377c2",
    "manual": "#7f7f7f",
    "app": "#bcbd22",
    "large-free": "#17becf",
    "?": "#444444",
}
PALETTE = ("#ff7f0e", "#6a3d9a", "#b15928", "#1b9e77", "#e7298a", "#66a61e", "#a6761d",
           "#386cb0", "#f0027f", "#bf5b17")

# What else a chart marks, coloured the same everywhere too.
MARKS = {
    "restart": "#555555",
    "oom": "#000000",
    "alert": "#d62728",
    "low_memory": "#ff9896",
    "leak_suspected": "#8c564b",
    "outage": "#cccccc",
}


def rule_colour(rule: str) -> str:
    """The colour of collections made by `rule`."""
    rule = rule or "?"
    if rule in FIXED:
        return FIXED[rule]
    return PALETTE[zlib.crc32(rule.encode("utf-8")) % len(PALETTE)]


def rule_colours(rules: Iterable[str]) -> Dict[str, str]:
    return {rule: rule_colour(rule) for rule in rules}
