# Telemetry batching: which samples go into `telemetry` messages, and when.
#
# One sample every `[report] interval`, sent `[report] batch` at a time; the
# first sample goes at once (with the cellular profiles' 12 samples of 5
# minutes the first telemetry would otherwise come an hour after start).
# Collection pauses between two reported samples are summed (and their
# longest kept), so a report covers every pause since the previous one.
# Pure: the caller passes the samples and the clock.


TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Dict, List, Optional  # noqa: F401 (type comments)

    from .probes import Sample  # noqa: F401 (type comments)


class TelemetryBatch(object):
    # Samples waiting to be sent, and the pause totals since the last one reported.

    def __init__(self, interval, size, start):  # type: (float, int, float) -> None
        self.interval = interval
        self.size = size
        self._next = start
        self._samples = []  # type: List[Dict[str, Any]]
        self._pause_total = 0.0
        self._pause_max = 0.0
        self._sent = False    # nothing sent yet: the first sample goes alone
        self._sent_ts = 0.0   # the newest sample sent (not sent again at stop)

    def add(self, sample, now):  # type: (Sample, float) -> bool
        # Count the sample's pauses; True when it is due and joins the batch.
        self._pause_total += sample.gc_pause_ms_total
        self._pause_max = max(self._pause_max, sample.gc_pause_ms_max)
        if now < self._next:
            return False
        self._next = now + self.interval
        self._samples.append(self._fields(sample))
        self._pause_total = self._pause_max = 0.0
        return True

    def full(self):  # type: () -> bool
        # Whether the batch holds `[report] batch` samples: time to send it.
        return len(self._samples) >= self.size or (bool(self._samples) and not self._sent)

    def final(self, sample):  # type: (Optional[Sample]) -> Optional[List[Dict[str, Any]]]
        # What is left at stop, the newest sample included (None when nothing is).
        # The newest sample goes in unless it is already the batch's last: pauses and
        # collections since the previous report must not be lost at stop.
        newest = self._samples[-1]["ts"] if self._samples else self._sent_ts
        if sample is not None and newest < round(sample.ts, 3):
            self._samples.append(self._fields(sample))
        return self.take() if self._samples else None

    def take(self):  # type: () -> List[Dict[str, Any]]
        # The samples waiting, which leave the batch.
        batch, self._samples = self._samples, []
        if batch:
            self._sent, self._sent_ts = True, batch[-1]["ts"]
        return batch

    def _fields(self, sample):  # type: (Sample) -> Dict[str, Any]
        return {
            "ts": round(sample.ts, 3), "mem_free_kb": sample.mem_free_kb,
            "mem_total_kb": sample.mem_total_kb, "rss_kb": sample.rss_kb,
            "gc_count": list(sample.gc_count), "gc_collections": list(sample.gc_collections),
            "gc_collected": sample.gc_collected, "gc_uncollectable": sample.gc_uncollectable,
            "gc_pause_ms_total": round(self._pause_total, 3),
            "gc_pause_ms_max": round(self._pause_max, 3),
        }
