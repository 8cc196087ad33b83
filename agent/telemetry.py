"""Telemetry batching: which samples go into `telemetry` messages, and when.

One sample every `[report] interval`, sent `[report] batch` at a time (the
first one alone, at once, so a device shows up as soon as it starts).
Collection pauses between two reported samples are summed (and their
longest kept), so a report covers every pause since the previous one.
Pure: the caller passes the samples and the clock.
"""

from .probes import Sample

TYPE_CHECKING = False
if TYPE_CHECKING:   # annotations only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Dict, List, Optional


class TelemetryBatch(object):
    """Samples waiting to be sent, and the pause totals since the last one reported."""

    def __init__(self, interval: float, size: int, start: float) -> None:
        self.interval = interval
        self.size = size
        self._next = start
        self._samples: List[Dict[str, Any]] = []
        self._pause_total = 0.0
        self._pause_max = 0.0
        self._first = True   # the first batch leaves with its first sample
        self._last_ts = None   # type: Optional[float]  # the newest sample taken into a batch

    def add(self, sample: Sample, now: float) -> bool:
        """Count the sample's pauses; True when it is due and joins the batch."""
        self._pause_total += sample.gc_pause_ms_total
        self._pause_max = max(self._pause_max, sample.gc_pause_ms_max)
        if now < self._next:
            return False
        self._next = now + self.interval
        self._samples.append(self._fields(sample))
        self._last_ts = self._samples[-1]["ts"]
        self._pause_total = self._pause_max = 0.0
        return True

    def full(self) -> bool:
        """Whether the batch holds `[report] batch` samples: time to send it.

        The first batch goes with its first sample: a cellular profile (a sample every
        5 minutes, 12 a message) would otherwise send nothing for the first hour, and a
        newly installed device must show up at once (docs/profiles.md, [report])."""
        return len(self._samples) >= (1 if self._first else self.size)

    def final(self, sample: "Optional[Sample]") -> "Optional[List[Dict[str, Any]]]":
        """What is left at stop, the newest sample included (None when nothing is)."""
        # The newest sample goes in unless it was already taken (in this batch, or in one
        # sent, as the first batch is at once): pauses and collections since the previous
        # report must not be lost at stop, nor one sample reported twice.
        if sample is not None and (self._last_ts is None or self._last_ts < round(sample.ts, 3)):
            self._samples.append(self._fields(sample))
            self._last_ts = self._samples[-1]["ts"]
        return self.take() if self._samples else None

    def take(self) -> "List[Dict[str, Any]]":
        """The samples waiting, which leave the batch."""
        batch, self._samples = self._samples, []
        if batch:
            self._first = False
        return batch

    def _fields(self, sample: Sample) -> "Dict[str, Any]":
        return {
            "ts": round(sample.ts, 3), "mem_free_kb": sample.mem_free_kb,
            "mem_total_kb": sample.mem_total_kb, "rss_kb": sample.rss_kb,
            "gc_count": list(sample.gc_count), "gc_collections": list(sample.gc_collections),
            "gc_collected": sample.gc_collected, "gc_uncollectable": sample.gc_uncollectable,
            "gc_pause_ms_total": round(self._pause_total, 3),
            "gc_pause_ms_max": round(self._pause_max, 3),
        }
