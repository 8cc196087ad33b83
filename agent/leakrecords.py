# The leak verdict on recorded telemetry: what the console and the bench judge.
#
# The verdict itself is `agent.leak` (one definition, docs/leaks.md); this feeds
# it the samples of stored `telemetry` messages, as the agent feeds it the
# samples it reports, skipping samples whose numbers make no sense.

import math

from .leak import LeakWatch

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Iterable  # noqa: F401 (type comments)


def judge_stored(messages, device):  # type: (Iterable[dict], dict) -> LeakWatch
    # A device's verdict from its recorded telemetry messages of its current boot
    # (`device`: `boot` and `ceiling_kb`). The console and the bench judge records with it.
    watch = LeakWatch()
    boot = device.get("boot")
    samples = []
    for message in messages:
        if message.get("type") == "telemetry" and message.get("boot") == boot:
            samples.extend(message.get("samples") or ())
    feed(watch, samples, device.get("ceiling_kb") or 0)
    return watch


def feed(watch, samples, ceiling_kb):  # type: (LeakWatch, Iterable[dict], object) -> None
    # Samples oldest first; one whose numbers make no sense (a device's bug, or a row
    # another tool stored) is skipped: the schema checks types, not values.
    good = []
    for sample in samples:
        try:
            ts, rss = float(sample["ts"]), int(sample["rss_kb"])
            counts = [int(c) for c in sample.get("gc_collections") or ()]
        except (KeyError, TypeError, ValueError, OverflowError):
            continue
        if math.isfinite(ts) and 0 <= rss < 1 << 40:
            good.append((ts, rss, counts))
    ceiling = ceiling_kb if isinstance(ceiling_kb, int) and 0 < ceiling_kb < 1 << 40 else 0
    for ts, rss, counts in sorted(good, key=lambda s: s[0]):
        watch.observe(ts, rss, ceiling, counts)
