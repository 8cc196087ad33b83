# The self-tuning collector (`[gc] tune = auto`): pure decisions, like agent/rules/.
#
# Nothing here reads a clock, calls gc or does I/O. Each tick the agent passes a
# `Reading` (time, memory, the process's CPU time, the thresholds, the longest
# pause per generation since the last tick from agent/gcwatch.py) and the rules'
# decisions; it gets back the rule decisions to carry out, those it judged futile
# (`futile`), and its own `Change`s (thresholds, gc.freeze(), a full collection),
# and hears each collection's outcome through `record()`. docs/tuner.md, "How it
# decides", says what it does and why: busy or idle phases from CPU time; threshold2
# off, threshold0 and threshold1 on the pause budget; full collections at idle and past
# `memory_target`; freeze once start-up settles; memory first near `below`; a live
# heap and a quiet heap left alone.

import collections

from .lean import record
from .rules import REQUESTED

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Deque, Dict, List, Optional, Sequence, Tuple  # noqa: F401 (type comments)

    from .rules import Decision  # noqa: F401 (type comments)

IDLE_CPU = 0.05            # share of a core under which the process counts as idle
HIGH_THRESHOLD2 = 1000000  # automatic full collections effectively off (gen1 runs this often)
MIN_THRESHOLD0 = 100
MAX_THRESHOLD0 = 8000      # and at most 4x the interpreter's
FUTILE_OBJECTS = 100       # an idle collection freeing fewer objects (and no RSS) was not worth it
IDLE_BACKOFF_MAX = 300.0
QUIET_MAX = 300.0          # a quiet heap still gets a rule's full collection this often
FREEZE_WAIT = 10           # settle windows to wait for an idle phase before freezing anyway
CALM_TICKS = 8             # busy ticks with small young pauses before thresholds drift back up
YOUNG_SHARE = 0.5          # young or middle pauses longer than this share of pause_budget: down
CALM_SHARE = 1.0 / 6       # shorter than this share, CALM_TICKS running: threshold0 up
MIDDLE_SHARE = 0.25        # a run's longest middle pause is ~3x the median: threshold1 down (no RSS cost)
MIN_THRESHOLD1 = 1         # middle pauses measured shortest at this floor (docs/tuner.md)


class Reading(record(
        "Reading",
        "now",                      # float
        "rss_kb",                   # int
        "ceiling_kb",               # int
        "headroom_kb",              # int
        "below_kb",                 # int: the largest low-memory `below` (crossed first); 0 without one
        "cpu_s",                    # float: the process's CPU time
        "thresholds",               # Tuple[int, ...]: gc.get_threshold() now
        pause_ms=(0.0, 0.0, 0.0),   # longest pause per generation since the last tick
        collections=(0, 0, 0),      # collections per generation since the last tick
        idle_hint=False,            # the application posted app:idle
        gc_ms=0.0,                  # all collection pauses since the last tick
        pending=0,                  # gc.get_count()[0]: young objects since the last young collection
        gc_enabled=True,            # gc.isenabled()
)):
    # What the tuner sees each tick. Memory in KB, times in seconds, pauses in ms.

    __slots__ = ()


class Change(record(
        "Change",
        "what",                     # str: thresholds, freeze or collect
        "why",                      # str
        before=None,
        after=None,
        generation=2,               # int: for collect
)):
    # One thing the tuner does: `thresholds`, `freeze` or `collect` (generation).

    __slots__ = ()


class Tuner(object):
    # Decides thresholds, freeze and full collections from readings; see the module text.

    def __init__(self, start, pause_budget_ms=2.0, memory_target=0.70, flavour="generational-700",
                 can_freeze=True, tick=1.0, min_reclaim_kb=256, rule_types=None):
        # type: (float, float, float, str, bool, float, int, Optional[Dict[str, str]]) -> None
        self.budget_ms = pause_budget_ms
        self.memory_target = memory_target
        self.flavour = flavour
        self.rule_types = dict(rule_types or {})
        self.min_reclaim_kb = min_reclaim_kb
        self.window = max(1.0, 2.0 * tick)     # CPU window for busy/idle
        self.settle = max(2.0, 3.0 * tick)     # flat RSS this long: start-up is over
        self.started = start
        self.freeze = "pending" if can_freeze else "unavailable"   # pending, ready, done
        self._ready_at = 0.0
        self._settled_why = ""
        self.defaults = None  # type: Optional[Tuple[int, ...]]  # the interpreter's, at first reading
        self.applied = None  # type: Optional[Tuple[int, ...]]
        self.young = (0, 0)                   # latency thresholds (threshold0, threshold1)
        self.level = "relaxed"                # relaxed | target | pressure
        self.busy = False
        self._cpu = collections.deque()  # type: Deque[Tuple[float, float]]
        self._gc_s = 0.0
        self._busy_since = None  # type: Optional[float]
        self._rss = collections.deque()  # type: Deque[Tuple[float, int]]
        self._calm = 0
        self._over = 0
        self._inside = False
        self._max0 = MAX_THRESHOLD0
        self._min0 = MIN_THRESHOLD0
        self._idle_done = False               # one idle collection per idle phase
        self._idle_gap = 0.0                  # back-off between idle collections
        self._promoted = 0                    # gen1 collections since the last full one
        self._froze = False                   # froze last tick: its young collection promoted nothing
        self._last_full_at = None  # type: Optional[float]
        self._last_full_rss = None  # type: Optional[int]
        self._live_rss = None  # type: Optional[int]  # a full collection reclaimed nothing at this RSS
        self._live_step = 0
        self._owed = False                    # a full collection deferred to the next idle
        self.deferred = 0                     # rule collections held back from busy phases
        self.skipped = 0                      # rule collections with nothing to look at or gain
        self.futile = []  # type: List[Decision]  # this tick's rule collections on a live heap
        self.collections = 0                  # full collections the tuner ran

    # -- the decision ------------------------------------------------------------------

    def decide(self, r, decisions):
        # type: (Reading, Sequence[Decision]) -> Tuple[List[Decision], List[Change]]
        # The rule decisions to carry out, and the tuner's own changes, at `r.now`.
        changes = []  # type: List[Change]
        if self.defaults is None:
            self.defaults = tuple(r.thresholds)
            self.young = (self.defaults[0], self.defaults[1] if len(self.defaults) > 1 else 10)
            self._max0 = min(MAX_THRESHOLD0, 4 * self.defaults[0])
            # Lower, young collections promote so much of what is briefly alive that
            # the old generation's garbage costs more RSS than the pauses buy.
            self._min0 = max(MIN_THRESHOLD0, self.defaults[0] // 2)
        self._promoted += r.collections[1] if len(r.collections) > 1 else 0
        if self._live_rss is not None and r.rss_kb <= self._live_rss - self._live_step:
            self._live_rss = None     # memory freed since, without a full collection: a new heap
        if self._froze:   # what the collection before the freeze promoted is frozen too
            self._promoted, self._froze = 0, False
        self._phase(r)
        self._settled_freeze(r, changes)
        level = self._level(r)
        self._adapt_young(r)
        self._thresholds(r, level, changes)
        kept = self._gate(r, decisions)
        rules_collect = any(d.action == "collect" and d.generation == 2 for d in kept)
        if not rules_collect:
            self._full_collection(r, changes)
        return kept, changes

    def _phase(self, r):  # type: (Reading) -> None
        # CPU spent inside collections (the tuner's own idle ones too) is not the
        # application being busy.
        self._gc_s += r.gc_ms / 1000.0
        work = r.cpu_s - self._gc_s
        last = self._cpu[-1] if self._cpu else None
        self._cpu.append((r.now, work))
        while len(self._cpu) > 2 and self._cpu[1][0] <= r.now - self.window:
            self._cpu.popleft()
        then, cpu = self._cpu[0]
        share = (work - cpu) / (r.now - then) if r.now > then else 1.0
        # The last tick alone too: a busy phase shows at its first tick, not a window later.
        tick = (work - last[1]) / (r.now - last[0]) if last and r.now > last[0] else 0.0
        busy = (share >= IDLE_CPU or tick >= 2 * IDLE_CPU) and not r.idle_hint
        if r.idle_hint:
            self._cpu.clear()                  # measure the idle phase from here
            self._cpu.append((r.now, work))
        if not busy:
            self._busy_since = None
        elif self._busy_since is None:
            self._busy_since = r.now
        elif r.now - self._busy_since >= self.window:
            self._idle_done = False            # a real busy phase earns a new idle collection
        self.busy = busy

    def _settled_freeze(self, r, changes):  # type: (Reading, List[Change]) -> None
        self._rss.append((r.now, r.rss_kb))
        while len(self._rss) > 2 and self._rss[1][0] <= r.now - self.settle:
            self._rss.popleft()
        # Settled, but no idle phase came (or this one's full collection ran before start-up
        # settled, and nothing was promoted since): freeze after a young collection (short)
        # rather than wait; any old generation garbage is frozen with it.
        spent = not self.busy and self._idle_done and self._promoted == 0
        if self.freeze == "ready" and (spent or r.now - self._ready_at >= FREEZE_WAIT * self.settle):
            changes.append(Change("collect", "before freeze (%s)" % (
                "idle, its full collection done" if spent else "no idle phase came"), generation=1))
            self._freeze(changes)
            return
        if self.freeze != "pending" or r.now - self._rss[0][0] < self.settle * 0.99:
            return
        values = [kb for _, kb in self._rss]
        if max(values) - min(values) > max(1024, r.ceiling_kb // 100):
            return
        # Freeze right after the next idle full collection, so no garbage is frozen
        # and no full collection lands in a busy phase for it.
        self.freeze, self._ready_at = "ready", r.now
        self._settled_why = "start-up growth settled: RSS within %dK for %.0fs" % (
            max(values) - min(values), self.settle)

    def _freeze(self, changes):  # type: (List[Change]) -> None
        self.freeze, self._froze = "done", True
        changes.append(Change("freeze", self._settled_why, False, True))

    def _level(self, r):  # type: (Reading) -> str
        near = r.below_kb + r.ceiling_kb // 10
        self._inside = r.headroom_kb < r.below_kb
        if r.headroom_kb < near:
            self.level = "pressure"
        elif r.rss_kb >= self.memory_target * r.ceiling_kb:
            self.level = "target"
        else:
            self.level = "relaxed"
        return self.level

    def _adapt_young(self, r):  # type: (Reading) -> None
        # 3 busy ticks running: middle pauses (~t0 x t1 objects) over MIDDLE_SHARE lower t1, young ones t0;
        # t0 x (t1 + 2), objects per promoting middle collection, stays >= d0/2 x (d1 + 2) (docs/tuner.md).
        if not self.busy or sum(r.collections[:2]) == 0:
            return
        t0, t1 = self.young
        young, middle = r.pause_ms[0], r.pause_ms[1]
        lower1 = middle > self.budget_ms * MIDDLE_SHARE and middle >= young and t1 > MIN_THRESHOLD1 \
            and self.flavour.startswith("generational")
        if lower1 or max(young, middle) > self.budget_ms * YOUNG_SHARE:
            self._over, self._calm = self._over + 1, 0
            if self._over >= 3:
                t1, d1 = max(MIN_THRESHOLD1, int(t1 * 0.7)) if lower1 else t1, (self.defaults + (10,))[1]
                floor = min(self._max0, max(self._min0, -(-self._min0 * (d1 + 2) // (t1 + 2))))
                self.young, self._over = (max(floor, t0 if lower1 else int(t0 * 0.7)), t1), 0
        elif max(young, middle) < self.budget_ms * CALM_SHARE:   # CALM_TICKS of it: threshold0 up
            self._over, self._calm = 0, self._calm + 1
            if self._calm >= CALM_TICKS and t0 < self._max0:
                self.young, self._calm = (min(self._max0, int(t0 * 1.25) + 1), t1), 0
        else:
            self._over = self._calm = 0

    def _wanted(self, level):  # type: (str) -> Tuple[int, ...]
        d = self.defaults
        t0, t1 = self.young
        if self.flavour == "free-threaded":   # one generation: every collection is a full one
            return (d[0] // 2 if level == "pressure" else d[0],) + tuple(d[1:])
        if self.flavour == "incremental":     # threshold2 means nothing; leave the rest alone
            return (min(t0, d[0] // 2) if level == "pressure" else t0,) + tuple(d[1:])
        if level == "relaxed":
            return (t0, t1, HIGH_THRESHOLD2)
        # Memory wins: young garbage sooner (more so inside the low-memory zone), threshold1 the interpreter's
        # (promoting less); full collections the tuner's and rules' (automatic ones come busy or not).
        if level == "pressure" and self._inside:
            return (min(t0, d[0] // 2), d[1], HIGH_THRESHOLD2)
        return (min(t0, d[0]), d[1], HIGH_THRESHOLD2)

    def _thresholds(self, r, level, changes):  # type: (Reading, str, List[Change]) -> None
        wanted = self._wanted(level)
        if self.applied is None:
            before = tuple(r.thresholds)
            why = "start: young collections within the %gms pause budget; full collections " \
                  "at idle, or at %d%% of the ceiling, by the tuner" % (self.budget_ms,
                                                                        self.memory_target * 100)
        elif wanted == self.applied:
            return
        else:
            before = self.applied
            why = self._why(r, level, wanted)
        self.applied = wanted
        if tuple(before) != wanted:
            changes.append(Change("thresholds", why, list(before), list(wanted)))

    def _why(self, r, level, wanted):  # type: (Reading, str, Tuple[int, ...]) -> str
        if level == "pressure":
            return "headroom %dK nears below %dK: memory first" % (r.headroom_kb, r.below_kb)
        if level == "target":
            return "RSS %dK past memory_target %d%%" % (r.rss_kb, self.memory_target * 100)
        if self.applied and wanted[1] < self.applied[1]:
            return "middle pauses %.2fms over a quarter of the %gms budget" % (r.pause_ms[1], self.budget_ms)
        if self.applied and wanted[0] < self.applied[0]:
            return "young/middle pauses %.2f/%.2fms over half the %gms budget" % (
                r.pause_ms[0], r.pause_ms[1], self.budget_ms)
        return "young pauses well under the %gms budget" % self.budget_ms

    # -- full collections -------------------------------------------------------------------

    def _is_live(self, rss_kb):  # type: (int) -> bool
        return self._live_rss is not None and abs(rss_kb - self._live_rss) < self._live_step

    def _gate(self, r, decisions):  # type: (Reading, Sequence[Decision]) -> List[Decision]
        # Hold rule-driven full collections out of busy phases when they cannot help.
        kept = []
        self.futile = []  # type: List[Decision]
        # A live heap: the low-memory rule's full collections wait for idle until
        # the room is really running out (half of `below` left): then memory wins.
        live = self._live_rss is not None and r.headroom_kb >= r.below_kb // 2
        for d in decisions:
            kind = self.rule_types.get(d.rule, "")
            held = (d.action == "collect" and d.generation == 2 and d.rule not in REQUESTED
                    and kind in ("low_memory", "periodic"))
            if held and self.busy and (kind == "periodic" or live):
                self.deferred += 1
                self._owed = True
                continue
            # Idle, RSS where a full collection found the heap live and nothing promoted
            # since: another gives nothing back either, and one begun late in an idle
            # phase runs into the next busy one. The rule hears it was futile, so a
            # low-memory walk moves on to the application's callbacks (docs/tuner.md,
            # "A live heap is left alone").
            if held and live and self._is_live(r.rss_kb) and self._promoted == 0 \
                    and r.now - (self._last_full_at or 0.0) < QUIET_MAX:
                self.futile.append(d)
                self.skipped += 1
                continue
            if self._quiet(r, d, kind):
                self.skipped += 1
                continue
            kept.append(d)
        return kept

    def _quiet(self, r, d, kind):  # type: (Reading, Decision, str) -> bool
        # A timer's or the idle edge's full collection with nothing new to look at: no
        # middle-generation collection (nothing promoted) since the last full one, fewer
        # young objects waiting than one young collection takes, and RSS where that one
        # left it (a few objects can hold megabytes: counts ignore size). On an idle
        # application a pause for nothing (docs/tuner.md, "Quiet heaps"). Old objects can
        # die without any allocation, and threshold2 is off: so only while memory is
        # relaxed, for QUIET_MAX at most, never with the collector off.
        if not self.flavour.startswith("generational") or self._last_full_at is None:
            return False
        if d.action != "collect" or d.generation != 2 or d.rule in REQUESTED:
            return False
        trigger = dict(d.fields).get("trigger")
        if not (kind == "periodic" or (kind != "low_memory" and trigger == "idle")):
            return False
        grown = r.rss_kb - (self._last_full_rss or 0) >= max(512, r.ceiling_kb // 64)
        return (self._promoted == 0 and r.pending < self.defaults[0] and r.gc_enabled and not grown
                and self.level == "relaxed" and r.now - self._last_full_at < QUIET_MAX)

    def _full_collection(self, r, changes):  # type: (Reading, List[Change]) -> None
        target = self.memory_target * r.ceiling_kb
        grown = self._last_full_rss is None or r.rss_kb >= self._last_full_rss + max(
            1024, r.ceiling_kb // 20)
        # Past the target, collect now, unless the last full collection showed the
        # heap live (gave no RSS back): then at the next idle phase, until the room
        # is really running out.
        critical = r.headroom_kb < max(r.below_kb // 2, r.ceiling_kb // 10)
        if r.rss_kb >= target and grown and self._live_rss is not None and self.busy \
                and not critical:
            self._owed = True
        elif r.rss_kb >= target and grown and not self._is_live(r.rss_kb):
            changes.append(Change("collect", "RSS %dK past memory_target %d%% and growing"
                                  % (r.rss_kb, self.memory_target * 100)))
            self.collections += 1
            self._last_full_rss = r.rss_kb   # until record() says what it left
            return
        if self.busy:
            return
        # A long idle phase in which memory keeps growing (a slow leak, a queue filling)
        # is worth another collection: nobody waits for it. Growth paces these (one
        # per 1/40 of the ceiling), not the back-off: it also gives the leak verdict
        # (docs/leaks.md) the sawtooth of full collections it reads the floor from.
        grew = self._last_full_rss is not None and r.rss_kb >= self._last_full_rss + max(
            1024, r.ceiling_kb // 40)
        if self._idle_done and grew:
            self.collections += 1
            changes.append(Change("collect", "idle, RSS grew %dK" % (r.rss_kb - self._last_full_rss)))
            self._last_full_rss = r.rss_kb
            return
        if self._idle_done:
            return
        if self._last_full_at is not None and r.now - self._last_full_at < self._idle_gap:
            return
        if self._promoted or self._owed or self.freeze == "ready":
            self._idle_done = True
            self.collections += 1
            changes.append(Change("collect", "idle" + (" (deferred from busy)" if self._owed else "")))
            if self.freeze == "ready":
                self._freeze(changes)

    def record(self, generation, reclaimed_kb, collected, rss_after_kb, now, ceiling_kb=0):
        # type: (int, int, int, int, float, int) -> None
        # What a full collection (anyone's) did; young ones teach the tuner nothing here.
        if generation < 2:
            return
        self._last_full_at = now
        self._last_full_rss = rss_after_kb
        self._promoted = 0
        self._owed = False
        self._idle_done = self._idle_done or not self.busy   # a rule's counts as this idle phase's
        if reclaimed_kb >= self.min_reclaim_kb:
            self._live_rss = None
        else:
            self._live_rss = rss_after_kb
            room = ceiling_kb - rss_after_kb if ceiling_kb else 0
            self._live_step = max(512, min(ceiling_kb // 20, room // 2)) if ceiling_kb else 1024
        if reclaimed_kb < self.min_reclaim_kb and collected < FUTILE_OBJECTS:
            self._idle_gap = min(IDLE_BACKOFF_MAX, max(self.window, self._idle_gap * 2))
        else:
            self._idle_gap = 0.0

    def state(self):  # type: () -> Dict[str, object]
        # For status: what the tuner is doing and why.
        return {"phase": "busy" if self.busy else "idle", "level": self.level,
                "thresholds": list(self.applied) if self.applied else None,
                "freeze": self.freeze, "live_heap_kb": self._live_rss,
                "collections": self.collections, "deferred": self.deferred, "skipped": self.skipped,
                "pause_budget_ms": self.budget_ms, "memory_target": self.memory_target}
