# The leak verdict: is the memory floor rising steadily, how fast, and how long to the ceiling.
#
# One definition, shared: the agent judges the samples it reports (`leak_suspected`,
# `leak_cleared`) and the console judges the same samples from its records
# (`leak_kb_per_hour`, `ceiling_eta_s`, the `leak` alert), so both say the same
# thing about the same series. How it works and where it is blind: docs/leaks.md.
#
# A single collection that gives back no RSS says nothing (pymalloc keeps arenas
# that still hold one live object; the freed room is reused, so a healthy process
# stops growing without shrinking). What a leak changes is the *floor*: the
# lowest memory after collections. So:
#
# 1. `Floors` keeps the minimum of each time window, in a fixed number of windows
#    (`CAPACITY`); when they are all used, neighbours merge and windows double,
#    so a whole boot fits in bounded memory at a coarser grain as it ages. It
#    also learns the time between full collections (a sawtooth's tooth).
# 2. `judge` merges windows to at least one tooth each (a shorter one holds a
#    garbage ramp, not a floor), then reads the floor as seen from now: the
#    suffix minimum (the lowest memory from each window to the end), so memory
#    that came back later (a collection, the end of a busy day) pulls the
#    earlier floor down with it.
# 3. A leak is a floor that rose steadily over the span judged: each quarter of
#    the span carries a share of the rise (a one-time step or a warm-up that
#    levelled off does not), the second half rose nearly as much as the first
#    (a warm-up slows down), the rise is a straight line (r^2), it lasted at
#    least `MIN_POINTS` report periods and `MIN_WINDOWS` teeth, and it already
#    used up `SHARE_OF_ROOM` of the room that was left (half of it when the
#    span is shorter than a day). That last test is what keeps a load cycle's
#    rising side from being called a leak unless the cycle itself would
#    approach the ceiling, and what fixes how early the verdict comes: with a
#    third of the room gone the leak has three quarters of its life ahead.
#    Spans judged: the whole history and its last 48, 32, 24, 16, 12, 8 and 6
#    windows, so a leak that starts after a warm-up or a long healthy time is
#    found too.
# 4. A reported leak is cleared when the floor over the most recent span rose
#    less than a quarter of what the reported rate would have added.
#
# Pure: time and memory come in as numbers; nothing here reads a clock or /proc.

import collections

from .lean import record

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Deque, List, Optional, Sequence, Tuple  # noqa: F401 (type comments)

CAPACITY = 64          # floor windows kept (x 4 numbers): bounded whatever the uptime
MIN_POINTS = 10        # a rise must last this many report periods to be judged
MIN_WINDOWS = 6        # ...and cover at least this many windows
SHARE_OF_ROOM = 1.0 / 3   # ...and have used up this share of the room then left,
SHORT_SHARE_OF_ROOM = 0.5  # or half of it when it lasted less than a day: the rising
LOAD_CYCLE = 86400.0       # side of a daily load cycle is shorter than a day
QUARTER_SHARE = 0.3    # each quarter of the span carries >= 0.3 of an even share of the rise
SLOWING = 0.6          # the second half rose at least 0.6 of the first half (a leak does not slow)
MIN_R2 = 0.8           # the floor's rise is close to a straight line
MIN_RISE_KB = 256      # below this a rise is noise whatever else it looks like
CLEAR_SHARE = 0.25     # cleared when the recent floor rose < 1/4 of the reported rate's worth
GAPS_KEPT = 16         # report spacings kept to learn the period (median: robust to outages)


def _bisect_right(values, x):  # type: (Sequence[float], float) -> int
    # bisect.bisect_right, here because the bisect module loads a C extension that costs
    # the application about 30 KB of RSS (docs/footprint.md) for a search of <= CAPACITY items.
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if x < values[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


class Verdict(record(
        "Verdict",
        "leak",                                 # bool
        rate_kb_per_hour=None,                  # Optional[float]
        confidence=0.0,                         # float
        ceiling_eta_s=None,                     # Optional[float]: None: no leak, or no ceiling known
        floor_kb=None,                          # Optional[int]
        span_s=0.0,                             # float: how long a stretch the verdict rests on
        why="",                                 # str
)):
    # What the floor says now. `leak` False: rate and eta are None.

    __slots__ = ()


class Floors(object):
    # The minimum memory of each time window, in at most `capacity` windows.

    def __init__(self, capacity=CAPACITY):  # type: (int) -> None
        self.capacity = max(8, capacity - capacity % 2)
        self.width = 0.0            # seconds a window spans; 0: one sample each
        self.start = []  # type: List[float]  # window start times (sorted)
        self.end = []  # type: List[float]
        self.low_t = []  # type: List[float]  # when the window's minimum was seen
        self.low = []  # type: List[int]
        self.gaps = collections.deque(maxlen=GAPS_KEPT)  # type: Deque[float]
        self.cycles = collections.deque(maxlen=GAPS_KEPT)  # type: Deque[float]
        self.last_collection = None  # type: Optional[float]
        self.ignored = 0            # samples older than the oldest window (counted, not kept)

    def __len__(self):  # type: () -> int
        return len(self.low)

    def clear(self):  # type: () -> None
        self.width = 0.0
        self.start, self.end, self.low_t, self.low = [], [], [], []
        self.gaps.clear()
        self.cycles.clear()
        self.last_collection = None

    def period(self):  # type: () -> float
        # Median spacing of the samples (0 until two arrived).
        return _median(self.gaps)

    def cycle(self):  # type: () -> float
        # Median time between full collections (0 until two were seen).
        return _median(self.cycles)

    def tooth(self):  # type: () -> float
        # The sawtooth's tooth. With one full collection seen so far it is at least the
        # time since that one: what came after is a garbage ramp, not a floor (a program
        # piling up garbage from its start looks like a leak until its next collection).
        if self.cycles or self.last_collection is None or not self.end:
            return self.cycle()
        return max(0.0, self.end[-1] - self.last_collection)

    def add(self, t, kb, collected=False):  # type: (float, int, bool) -> bool
        # One sample; late ones (a replay) land in their own window. True: a new window.
        #
        # `collected`: a full collection ran since the previous sample (its
        # gc_collections[2] went up), which tells how long the sawtooth's teeth are.
        if collected:
            if self.last_collection is not None and t > self.last_collection:
                self.cycles.append(t - self.last_collection)
            self.last_collection = t
        if self.low and t <= self.end[-1]:
            if t < self.start[0]:
                self.ignored += 1
                return False
            i = max(0, _bisect_right(self.start, t) - 1)
            if kb < self.low[i]:
                self.low[i], self.low_t[i] = kb, t
            self.end[i] = max(self.end[i], t)
            return False
        if self.low:
            self.gaps.append(t - self.end[-1])
        if self.low and t < self.start[-1] + self.width:
            self.end[-1] = t
            if kb < self.low[-1]:
                self.low[-1], self.low_t[-1] = kb, t
            return False
        self.start.append(t)
        self.end.append(t)
        self.low_t.append(t)
        self.low.append(kb)
        if len(self.low) >= self.capacity:
            self._merge()
        return True

    def _merge(self):  # type: () -> None
        start, end, low_t, low = [], [], [], []
        for i in range(0, len(self.low) - 1, 2):
            j = i if self.low[i] <= self.low[i + 1] else i + 1
            start.append(self.start[i])
            end.append(self.end[i + 1])
            low_t.append(self.low_t[j])
            low.append(self.low[j])
        if len(self.low) % 2:
            start.append(self.start[-1])
            end.append(self.end[-1])
            low_t.append(self.low_t[-1])
            low.append(self.low[-1])
        self.start, self.end, self.low_t, self.low = start, end, low_t, low
        span = self.end[-1] - self.start[0]
        self.width = max(self.width * 2, span / float(len(self.low)))

    def points(self):  # type: () -> List[Tuple[float, int]]
        # (time, floor) per window, oldest first.
        return list(zip(self.low_t, self.low))


def _median(values):  # type: (Sequence[float]) -> float
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def rebin(points, width):  # type: (Sequence[Tuple[float, int]], float) -> List[Tuple[float, int]]
    # Windows merged so each spans `width` (a collection cycle), so each holds a floor.
    #
    # The newest window, when it spans less than `width`, may hold no collection
    # (a garbage ramp, not a floor): it is left out.
    if width <= 0 or len(points) < 2:
        return list(points)
    out = []  # type: List[Tuple[float, int]]
    begin = points[0][0]
    low = points[0]
    for t, kb in points[1:]:
        if t - begin >= width:
            out.append(low)
            begin, low = t, (t, kb)
        elif kb < low[1]:
            low = (t, kb)
    if points[-1][0] - begin >= width:
        out.append(low)
    return out


def suffix_minima(values):  # type: (Sequence[int]) -> List[int]
    # out[i] = min(values[i:]): the floor at i as seen from the end.
    out = list(values)
    for i in range(len(out) - 2, -1, -1):
        if out[i + 1] < out[i]:
            out[i] = out[i + 1]
    return out


def _fit(ts, ys):  # type: (Sequence[float], Sequence[float]) -> Tuple[float, float]
    # Least-squares slope (per second) and r^2.
    n = float(len(ts))
    mt, my = sum(ts) / n, sum(ys) / n
    stt = sum((t - mt) ** 2 for t in ts)
    syy = sum((y - my) ** 2 for y in ys)
    sty = sum((t - mt) * (y - my) for t, y in zip(ts, ys))
    if stt <= 0 or syy <= 0:
        return 0.0, 0.0
    return sty / stt, sty * sty / (stt * syy)


def _judge_span(ts, floor, ceiling_kb, min_span):
    # type: (Sequence[float], Sequence[int], int, float) -> Verdict
    span = ts[-1] - ts[0]
    if len(ts) < MIN_WINDOWS or span < min_span or span <= 0:
        return Verdict(False, span_s=span, why="too short")
    rise = floor[-1] - floor[0]
    room = ceiling_kb - floor[-1] if ceiling_kb else None
    if rise < MIN_RISE_KB:
        return Verdict(False, span_s=span, why="flat")
    n = len(ts)
    cuts = [0, n // 4, n // 2, (3 * n) // 4, n - 1]
    quarters = [floor[cuts[k + 1]] - floor[cuts[k]] for k in range(4)]
    spread = min(quarters) / (rise / 4.0)
    if spread < QUARTER_SHARE:
        return Verdict(False, span_s=span, why="not steady (a step, a warm-up or a cycle)")
    if quarters[2] + quarters[3] < SLOWING * (quarters[0] + quarters[1]):
        return Verdict(False, span_s=span, why="slowing down (a warm-up levelling off)")
    slope, r2 = _fit(ts, floor)
    if slope <= 0 or r2 < MIN_R2:
        return Verdict(False, span_s=span, why="not a straight rise")
    share = SHARE_OF_ROOM if span >= LOAD_CYCLE else SHORT_SHARE_OF_ROOM
    if room is not None and rise < share * max(room, 0):
        return Verdict(False, span_s=span, why="rise still small against the room left")
    eta = max(0.0, room / slope) if room is not None else None
    confidence = round(r2 * min(1.0, spread), 2)
    return Verdict(True, round(slope * 3600.0, 1), confidence,
                   None if eta is None else round(eta, 1), floor[-1], round(span, 3),
                   "floor rose %d KB in %d s" % (rise, span))


def judge(points, ceiling_kb, period, cycle=0.0):
    # type: (Sequence[Tuple[float, int]], int, float, float) -> Verdict
    # The verdict on (time, floor) windows, oldest first.
    #
    # `period`: seconds between samples; `cycle`: seconds between full
    # collections (0: unknown), the length of a sawtooth tooth: windows shorter
    # than that hold a garbage ramp, not a floor, so they are merged first.
    # `ceiling_kb` 0 means unknown: a leak is judged without the room test and has no eta.
    min_span = max(MIN_POINTS * period, MIN_WINDOWS * cycle)
    if len(points) < MIN_WINDOWS or points[-1][0] - points[0][0] < min_span:
        return Verdict(False, why="too short")
    points = rebin(points, cycle)
    if len(points) < MIN_WINDOWS:
        return Verdict(False, why="too short")
    ts = [float(p[0]) for p in points]
    floor = suffix_minima([int(p[1]) for p in points])
    if floor[-1] - floor[0] < MIN_RISE_KB:   # no span of it can have risen more
        return Verdict(False, span_s=ts[-1] - ts[0], why="flat")
    best = Verdict(False, span_s=0.0, why="too short")
    n = len(ts)
    starts = [0] + [n - k for k in (48, 32, 24, 16, 12, 8, MIN_WINDOWS) if k < n]
    for start in starts:
        verdict = _judge_span(ts[start:], floor[start:], ceiling_kb, min_span)
        if verdict.leak:
            return verdict
        if best.why == "too short":
            best = verdict
    return best


def recent_rise_kb(points, seconds):  # type: (Sequence[Tuple[float, int]], float) -> Tuple[float, float]
    # (rise of the floor, span) over the last `seconds` of windows.
    if not points:
        return 0.0, 0.0
    t_end = points[-1][0]
    tail = [p for p in points if p[0] >= t_end - seconds]
    if len(tail) < 2:
        tail = list(points[-2:])
    floor = suffix_minima([p[1] for p in tail])
    return float(floor[-1] - floor[0]), float(tail[-1][0] - tail[0][0])


class LeakWatch(object):
    # Feed it samples of one boot; it says when a leak starts and when it stops.
    #
    # `feed` returns ("leak_suspected" | "leak_cleared", fields) on a change, else
    # None; `verdict` is the latest judgement (while a leak is held, its rate and eta).

    def __init__(self, capacity=CAPACITY):  # type: (int) -> None
        self.floors = Floors(capacity)
        self.reported = None  # type: Optional[Verdict]
        self.verdict = Verdict(False, why="no samples")
        self.ceiling_kb = 0
        self._full = None   # last cumulative count of full collections seen
        self._new_windows = 0

    def reset(self):  # type: () -> None
        # A new boot: the old baseline says nothing about the new process.
        self._full = None
        self._new_windows = 0
        self.floors.clear()
        self.reported = None
        self.verdict = Verdict(False, why="new boot")

    def observe(self, t, rss_kb, ceiling_kb, gc_collections):
        # type: (float, int, int, Sequence[int]) -> Optional[Tuple[str, dict]]
        # One telemetry sample as reported (ts, rss_kb, ceiling, gc_collections).
        #
        # The agent and the console both call this with the same samples, so they
        # reach the same verdict.
        full = gc_collections[-1] if gc_collections else 0
        collected = self._full is not None and full > self._full
        self._full = full
        return self.feed(t, rss_kb, ceiling_kb, collected)

    def feed(self, t, kb, ceiling_kb=0, collected=False):
        # type: (float, int, int, bool) -> Optional[Tuple[str, dict]]
        # One sample (time, RSS), the ceiling then, and whether a full collection ran since
        # the previous sample; judged each time the windows grew by a sixteenth.
        if ceiling_kb:
            self.ceiling_kb = ceiling_kb
        if not self.floors.add(t, kb, collected):
            return None
        # The verdict moves a window at a time; judging when the history grew by 1/16
        # keeps the cost flat (a few judgements per doubling) and delays it by 1/16 at most.
        self._new_windows += 1
        if self._new_windows < max(1, len(self.floors) // 16):
            return None
        self._new_windows = 0
        points = self.floors.points()
        verdict = judge(points, self.ceiling_kb, self.floors.period(), self.floors.tooth())
        if verdict.leak:
            self.verdict = verdict
            if self.reported is None:
                self.reported = verdict
                return "leak_suspected", _fields(verdict)
            self.reported = verdict
            return None
        if self.reported is None:
            self.verdict = verdict
            return None
        # Held until the floor stops rising: over the latest span the verdict rested
        # on (at least MIN_POINTS periods), less than CLEAR_SHARE of the reported rate.
        window = max(MIN_POINTS * self.floors.period(), self.reported.span_s / 4.0,
                     MIN_WINDOWS * self.floors.cycle())
        rise, span = recent_rise_kb(rebin(points, self.floors.cycle()), window)
        expected = self.reported.rate_kb_per_hour / 3600.0 * span
        if span >= 0.9 * window and rise < CLEAR_SHARE * expected:
            cleared = self.reported
            self.reported = None
            self.verdict = verdict
            return "leak_cleared", {"rate_kb_per_hour": cleared.rate_kb_per_hour,
                                    "floor_rise_kb": int(rise), "over_s": round(span, 1)}
        held = self.reported
        room = self.ceiling_kb - points[-1][1] if self.ceiling_kb else None
        eta = None
        if room is not None and held.rate_kb_per_hour:
            eta = round(max(0.0, room) / (held.rate_kb_per_hour / 3600.0), 1)
        self.verdict = held._replace(ceiling_eta_s=eta, why="held: " + verdict.why)
        return None


def _fields(verdict):  # type: (Verdict) -> dict
    return {"rate_kb_per_hour": verdict.rate_kb_per_hour, "confidence": verdict.confidence,
            "ceiling_eta_s": verdict.ceiling_eta_s, "floor_kb": verdict.floor_kb,
            "span_s": round(verdict.span_s, 1)}
