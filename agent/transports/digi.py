# `drm:` : reports to Digi Remote Manager as data points, through `digidevice.datapoint`.
#
# Each message becomes one data point of type JSON on the stream
# `PREFIX/TYPE` (`gcagent/status`, `gcagent/telemetry`, `gcagent/event`,
# `gcagent/resp`; Remote Manager prepends the device id itself), stamped
# with the message's own `ts`. Each telemetry sample also becomes numeric
# points on `PREFIX/rss_kb` and `PREFIX/mem_free_kb`, so Remote Manager can
# chart memory without parsing JSON.
#
# Points are sent in batches with `upload_multiple`, the call a device makes
# over its one management connection: a batch goes when it holds `batch`
# messages, when its oldest has waited `flush` seconds, or at once with a
# status message (online at start, offline at stop). A message leaves the
# agent's outbox only when its batch uploaded (the same acknowledgement path
# as MQTT's PUBACK); a failed upload marks the link down, keeps the batch,
# and retries with a doubling delay, while new messages wait in the outbox and
# spill to the journal as with any other link.
#
# `upload_multiple` blocks for as long as the management connection takes (up
# to its 20 s timeout on a stalled cellular link), so it runs on an uploader
# thread of this transport's own, one batch at a time: the agent thread only
# hands batches over and collects results in `poll()`, and keeps sampling and
# collecting meanwhile.
#
# Remote Manager's limits (250 points and 2 MB an upload, `rate` uploads a
# minute, one at a time) are kept by agent/drmlimits.py: a message too big for
# one upload goes up in parts, uploads are spaced, and a throttled or refused
# upload backs off without counting as a lost link.
#
# URL: `drm:` or `drm:?batch=20&flush=5s&stream=gcagent&rate=60` (`rate=12` for
# Developer accounts).

import json
import threading
import time

from ..drmlimits import MAX_BYTES, MAX_POINTS, RateLimit, classify, plan, sizes_of
from ..errors import TransportError
from ..lean import query_items
from ..units import parse_duration
from .base import Transport, TransportEvent

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, List, Optional, Tuple  # noqa: F401 (type comments)

    from ..outbox import Outgoing  # noqa: F401 (type comments)
    from .base import Context  # noqa: F401 (type comments)

UPLOAD_TIMEOUT = 20.0
MAX_RETRY = 60.0
_NUMERIC = ("rss_kb", "mem_free_kb")


def parse_drm_url(url):  # type: (str) -> Any
    # drm:[?batch=N&flush=S&stream=PREFIX] -> (batch, flush_s, prefix or None).
    rest = url.partition(":")[2]
    if rest.startswith("//"):
        raise ValueError("%r: write drm: (no host: the device's own Remote Manager connection "
                         "is used)" % url)
    path, _, query = rest.partition("?")
    if path:
        raise ValueError("%r: drm: takes no path; options go after ?" % url)
    options = {}
    for name, value in query_items(query):
        options.setdefault(name, []).append(value)
    unknown = sorted(set(options) - {"batch", "flush", "stream", "rate"})
    if unknown:
        raise ValueError("%r: unknown option %s (known: batch, flush, stream, rate)"
                         % (url, ", ".join(unknown)))
    drm_rate(url)
    try:
        batch = int(options["batch"][-1]) if "batch" in options else 20
        flush = parse_duration(options["flush"][-1]) if "flush" in options else 5.0
    except ValueError as exc:
        raise ValueError("%r: batch is a whole number, flush a duration such as 5s" % url) from exc
    if not 1 <= batch <= 250 or not 0 <= flush <= 3600:
        raise ValueError("%r: batch must be 1..250 and flush 0s..1h" % url)
    stream = options["stream"][-1].strip("/") if "stream" in options else None
    if stream is not None and not stream:
        raise ValueError("%r: stream is empty" % url)
    return batch, flush, stream


def drm_rate(url):  # type: (str) -> int
    # Uploads a minute the URL allows (`rate=`, 1..60; 60 by default, 12 for Developer accounts).
    values = [value for name, value in query_items(url.partition("?")[2]) if name == "rate" and value]
    if not values:
        return 60
    try:
        rate = int(values[-1])
    except ValueError:
        rate = 0
    if not 1 <= rate <= 60:
        raise ValueError("%r: rate is uploads a minute, 1..60 (Remote Manager takes 60, "
                         "12 on Developer accounts)" % url)
    return rate


class DigiTransport(Transport):
    # Status, telemetry and events as Remote Manager data points.

    scheme = "drm"
    has_link = True

    @classmethod
    def check_url(cls, url):  # type: (str) -> None
        parse_drm_url(url)

    def __init__(self, url, context=None, clock=time.monotonic):
        # type: (str, Optional[Context], Any) -> None
        super(DigiTransport, self).__init__(url, context)
        self.batch, self.flush, stream = parse_drm_url(url)
        self.prefix = stream or self.context.settings.prefix
        self._clock = clock
        self._datapoint = None
        self._pending = []  # type: List[Outgoing]  # in flight first, then waiting
        self._oldest = 0.0
        self._events = []  # type: List[TransportEvent]
        self._up = None  # type: Optional[bool]
        self._failures = 0
        self._retry_at = 0.0
        self.uploads = 0
        self._limit = RateLimit(drm_rate(url))
        self._max_points = MAX_POINTS   # halved when Remote Manager refuses an upload as too big
        self._partial = 0               # points of the first pending message already uploaded
        self._plan = None               # what the upload in flight completes (drmlimits.Plan)
        self.throttled = 0              # uploads Remote Manager throttled or refused
        # The hand-over to the uploader thread: one batch at a time.
        self._cond = threading.Condition()
        self._job = None  # type: Optional[Tuple[int, list]]  # (messages, points) to upload
        self._done = None  # type: Optional[Tuple[int, Optional[BaseException]]]
        self._inflight = 0                                     # messages handed over, not yet done
        self._thread = None  # type: Optional[threading.Thread]
        self._closes = 0                                       # an uploader ends when this moves on

    def open(self):  # type: () -> None
        if self._datapoint is not None:
            return
        try:
            from digidevice import datapoint
        except ImportError as exc:
            raise TransportError("drm: needs the digidevice package, present on Digi devices "
                                 "(and under gc-emulator); it is not importable here") from exc
        self._datapoint = datapoint
        self._set_link(True)

    def ready(self):  # type: () -> bool
        # A full batch waits for its upload before more are taken.
        return self._up is True and len(self._pending) < self.batch

    def send(self, item):  # type: (Outgoing) -> bool
        if self._datapoint is None:
            self.open()
        if not self._pending:
            self._oldest = self._clock()
        self._pending.append(item)
        # A status goes at once, with whatever waits before it: Remote Manager shows
        # the device online promptly, and "offline" (the last message at a stop)
        # never waits for a flush that the process will not live to see.
        now = self._clock()
        if self._urgent() and now >= self._retry_at and now >= self._limit.next_at(now):
            self._hand_over()
        return False   # acknowledged from poll() once its batch is uploaded

    def poll(self):  # type: () -> List[TransportEvent]
        self._collect()
        if self._pending and self._datapoint is not None and not self._inflight:
            now = self._clock()
            if self._up is False:
                due = self._retry_at
            else:
                due = max(now if self._urgent() else self._oldest + self.flush, self._retry_at)
            if now >= due and now >= self._limit.next_at(now):
                self._hand_over()
        out, self._events = self._events, []
        return out

    def _urgent(self):  # type: () -> bool
        return len(self._pending) >= self.batch or any(i.type == "status" for i in self._pending)

    def _points(self, items):  # type: (List[Outgoing]) -> list
        dp = self._datapoint
        points = []
        for item in items:
            try:
                message = json.loads(item.body.decode("utf-8"))
            except ValueError:
                continue
            ts = message.get("ts")
            points.append(dp.DataPoint("%s/%s" % (self.prefix, item.type), item.body.decode("utf-8"),
                                       timestamp=ts, data_type=dp.DataType.JSON))
            for sample in message.get("samples", ()) if item.type == "telemetry" else ():
                for key in _NUMERIC:
                    if isinstance(sample.get(key), int):
                        points.append(dp.DataPoint("%s/%s" % (self.prefix, key), sample[key],
                                                   timestamp=sample.get("ts"), units="KB",
                                                   data_type=dp.DataType.INT))
        return points

    # -- the uploader thread ---------------------------------------------------------

    def _hand_over(self):  # type: () -> None
        # Give the pending messages to the uploader, unless a batch is on its way already.
        if self._inflight or not self._pending:
            return
        per_message = [self._points([item]) for item in self._pending]
        per_message[0] = per_message[0][self._partial:]
        self._plan = plan([sizes_of(p) for p in per_message], 0, self._max_points, MAX_BYTES)
        points = [p for ps in per_message for p in ps][:self._plan.points]
        self._inflight = max(1, self._plan.complete)
        self._limit.started(self._clock())
        job = (self._inflight, points)
        with self._cond:
            self._job = job
            self._cond.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._uploader, args=(self._datapoint, self._closes),
                                            name="gc-agent drm upload", daemon=True)
            self._thread.start()

    def _uploader(self, datapoint, closes):  # type: (Any, int) -> None
        while True:
            with self._cond:
                while self._job is None and self._closes == closes:
                    self._cond.wait()
                if self._job is None:
                    return
                count, points = self._job
                self._job = None
            error = None  # type: Optional[BaseException]
            try:
                if points:
                    datapoint.upload_multiple(points, timeout=UPLOAD_TIMEOUT)
            except Exception as exc:   # DataPointException, TimeoutError, ValueError: all "not delivered"
                error = exc
            with self._cond:
                self._done = (count, error)
                self._cond.notify_all()

    def _collect(self):  # type: () -> None
        # Take the uploader's result, if it has one.
        if not self._inflight:
            return
        with self._cond:
            done, self._done = self._done, None
        if done is None:
            return
        count, exc = done
        self._inflight = 0
        kind = classify(exc) if exc is not None else ""
        if kind in ("throttled", "refused"):
            # Remote Manager is there and said no: wait (throttled) or send less (refused);
            # the link is up, and nothing is journalled for it.
            self.throttled += 1
            if kind == "refused":
                self._max_points = max(1, self._max_points // 2)
            self._failures += 1
            self._retry_at = self._clock() + min(MAX_RETRY, 2.0 ** min(self._failures, 6))
            if self.throttled == 1 or self.throttled % 100 == 0:
                self._events.append(TransportEvent("error", "Remote Manager %s an upload (%d so far): "
                                                   "%s" % (kind, self.throttled, exc)))
            return
        if exc is not None:
            self._failures += 1
            self._retry_at = self._clock() + min(MAX_RETRY, 2.0 ** min(self._failures - 1, 6))
            if self._up is not False:
                self._events.append(TransportEvent("error", "Remote Manager upload failed: %s: %s"
                                                   % (type(exc).__name__, exc)))
            self._set_link(False)
            return
        self._failures = 0
        self.uploads += 1
        finished = self._plan
        count = finished.complete
        self._partial = finished.partial if count else self._partial + finished.partial
        batch = self._pending[:count]
        del self._pending[:count]
        self._oldest = self._clock()
        self._set_link(True)
        self._events.extend(TransportEvent("ack", item) for item in batch)

    def _set_link(self, up):  # type: (bool) -> None
        if self._up is not up:
            self._up = up
            self._events.append(TransportEvent("link", up))

    def close(self):  # type: () -> None
        # Let the uploader thread end once it is idle; never waits for it. The agent's
        # stop pumps until its deadline first, so the final status has had its chance;
        # whatever is still unacknowledged has gone to the journal by now.
        with self._cond:
            self._closes += 1
            self._cond.notify_all()
        self._thread = None
        self._datapoint = None

    def describe(self):  # type: () -> str
        return "drm:"
