# Digi Remote Manager's limits on device uploads, as pure decisions.
#
# Remote Manager takes at most 250 data points and 2 MB in one upload, at most
# 60 uploads a minute (12 on Developer accounts), one at a time; over a limit it
# answers with an error. The `drm:` transport stays inside them:
#
# - `plan()` picks the points of the next upload: whole messages while they fit,
#   and a message with more points than one upload takes (a telemetry message is
#   1 + 2 x samples points) is split over several uploads; it leaves the outbox
#   when its last point is up;
# - `RateLimit` spaces uploads so no rolling minute holds more than `per_minute`;
# - `classify()` tells a throttled or refused upload (back off, shrink; the link
#   is fine) from a lost link (journal, reconnect).
#
# See docs/field.md, "Remote Manager's limits".

import collections

from .lean import record

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Deque, List, Sequence  # noqa: F401 (type comments)

MAX_POINTS = 250
MAX_BYTES = 2 * 1024 * 1024
PER_MINUTE = 60
WINDOW = 60.0
POINT_OVERHEAD = 96   # bytes a point costs besides its stream name and value (timestamp, type, units, commas)


def point_bytes(stream_id, data):  # type: (str, object) -> int
    # What one point adds to an upload, generously counted.
    return len(stream_id.encode("utf-8")) + len(str(data).encode("utf-8")) + POINT_OVERHEAD


class Plan(record("Plan", "points", "complete", "partial")):   # ints
    # The next upload: `points` points from the flattened queue, which completes
    # `complete` whole messages and leaves `partial` points of the next one sent.

    __slots__ = ()


def plan(per_message, already=0, max_points=MAX_POINTS, max_bytes=MAX_BYTES):
    # type: (Sequence[Sequence[int]], int, int, int) -> Plan
    # Plan the next upload from each waiting message's point sizes (bytes per point);
    # the first message's first `already` points went up before. Always at least one
    # point, so a queue never wedges.
    taken = size = complete = 0
    partial = already
    for index, sizes in enumerate(per_message):
        rest = list(sizes[already:]) if index == 0 else list(sizes)
        for point in rest:
            if taken and (taken + 1 > max_points or size + point > max_bytes):
                return Plan(taken, complete, partial)
            taken += 1
            size += point
            partial += 1
        complete += 1
        partial = 0
    return Plan(taken, complete, partial)


class RateLimit(object):
    # At most `per_minute` uploads in any rolling minute (`clock` is monotonic seconds).

    def __init__(self, per_minute=PER_MINUTE):  # type: (int) -> None
        self.per_minute = max(1, int(per_minute))
        self._starts = collections.deque()  # type: Deque[float]

    def next_at(self, now):  # type: (float) -> float
        # When the next upload may start (`now` or later).
        while self._starts and self._starts[0] <= now - WINDOW:
            self._starts.popleft()
        if len(self._starts) < self.per_minute:
            return now
        return self._starts[0] + WINDOW

    def started(self, now):  # type: (float) -> None
        self._starts.append(now)


_THROTTLED = ("throttl", "too many requests", "rate limit", "429", "too many uploads",
              "one at a time", "in progress")
_REFUSED = ("too many data points", "too large", "payload", "at most", "exceeds", "413")


def classify(error):  # type: (BaseException) -> str
    # 'throttled' (wait, then send the same), 'refused' (too big: send less), or 'link'.
    text = str(error).lower()
    if any(word in text for word in _THROTTLED):
        return "throttled"
    if any(word in text for word in _REFUSED):
        return "refused"
    return "link"


def sizes_of(points):  # type: (List[object]) -> List[int]
    # Byte sizes of digidevice DataPoints (stream_id and data attributes).
    return [point_bytes(getattr(p, "stream_id", ""), getattr(p, "data", "")) for p in points]
