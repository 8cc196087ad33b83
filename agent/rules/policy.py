# The policy: every rule's decisions for one tick, within the collection budget.
#
# `Policy` derives once per tick what every rule reads (headroom, how fast it
# shrinks, how much RSS fell, CPU history) and the collector's own events
# (`gc_disabled` / `gc_enabled`), asks each rule (built through `table.make`),
# then drops rule collections once their share of wall time is spent. What a
# rule type decides is its own module's business; this file never looks at a
# rule's type.

import collections

from . import table
from .base import REQUESTED, Decision, Tick, headroom_kb

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Deque, Dict, List, Optional, Sequence, Tuple  # noqa: F401 (type comments)

    from ..probes import Sample  # noqa: F401 (type comments)


class Policy(object):
    # Decides, tick by tick, which collections and events the rules call for.

    def __init__(self, rules, start, budget=0.02, budget_window=60.0, freeze_after=None):
        # type: (Sequence, float, float, float, Optional[float]) -> None
        self.rules = tuple(r for r in rules if r.enabled)
        self._rules = [table.make(r, start) for r in self.rules]   # UnknownRuleType: refused
        self._by_name = {r.name: r for r in self._rules}
        self.budget = budget
        self.budget_window = budget_window
        self._freeze_at = None if freeze_after is None else start + freeze_after
        self._cpu_window = max([r.cpu_window for r in self._rules] + [0.0])
        self._cpu = collections.deque()  # type: Deque[Tuple[float, float]]
        self._spent = collections.deque()  # type: Deque[Tuple[float, float]]
        self._budget_said_at = None  # type: Optional[float]
        self._last_rss = None  # type: Optional[int]
        self._last_room = None  # type: Optional[int]
        self._gc_enabled = None  # type: Optional[bool]
        self.skipped_for_budget = 0

    # -- the decision ------------------------------------------------------------

    def decide(self, sample, events, now):  # type: (Sample, Sequence[str], float) -> List[Decision]
        # Everything the rules call for at `now`, given this sample and these events.
        out = []  # type: List[Decision]
        # A collector already off at our first look (the application, or a library it
        # imported, disabled it before the agent started) is reported like a change.
        if sample.gc_enabled != (True if self._gc_enabled is None else self._gc_enabled):
            out.append(Decision("event", "", event="gc_enabled" if sample.gc_enabled else "gc_disabled"))
        self._gc_enabled = sample.gc_enabled
        dropped = None if self._last_rss is None else self._last_rss - sample.rss_kb
        self._last_rss = sample.rss_kb
        if self._cpu_window:
            self._cpu.append((now, sample.cpu_s))
            while len(self._cpu) > 2 and self._cpu[1][0] <= now - self._cpu_window:
                self._cpu.popleft()
        if self._freeze_at is not None and now >= self._freeze_at:
            self._freeze_at = None
            out.append(Decision("freeze", "start"))
        triggers = frozenset(events)
        if "signal" in triggers:   # the contract: SIGUSR1 is always a full collection
            out.append(Decision("collect", "signal", 2))
        room = headroom_kb(sample)
        shrink = max(0, self._last_room - room) if self._last_room is not None else 0
        self._last_room = room
        tick = Tick(sample, room, shrink, dropped, self._cpu, triggers)
        for rule in self._rules:
            out.extend(rule.decide(tick, now))
        return self._within_budget(out, now)

    def _within_budget(self, decisions, now):  # type: (List[Decision], float) -> List[Decision]
        while self._spent and self._spent[0][0] < now - self.budget_window:
            self._spent.popleft()
        spent = sum(d for _, d in self._spent)
        limit = self.budget * self.budget_window
        if spent < limit:
            return decisions
        kept = []
        for d in decisions:
            if d.action == "collect" and d.rule not in REQUESTED:
                self.skipped_for_budget += 1
                if self._budget_said_at is None or now - self._budget_said_at >= self.budget_window:
                    self._budget_said_at = now
                    kept.append(Decision("event", d.rule, event="budget",
                                         fields=(("spent_ms", round(spent * 1000, 3)),
                                                 ("limit_ms", round(limit * 1000, 3)),
                                                 ("window_s", self.budget_window))))
                continue
            kept.append(d)
        return kept

    # -- feedback from actions -------------------------------------------------------

    def record(self, decision, reclaimed_kb, duration_s, now):
        # type: (Decision, int, float, float) -> List[Decision]
        # Learn what a collection did (back-off); returns follow-up events, if any.
        if decision.action == "collect":
            self._spent.append((now, duration_s))
        rule = self._by_name.get(decision.rule)
        return [] if rule is None else rule.record(decision, reclaimed_kb, now)

    def dropped(self, decisions, now, futile=()):
        # type: (Sequence[Decision], float, Sequence[Decision]) -> None
        # Decisions the tuner held back: their rules learn that nothing ran, or, for
        # collections it judged futile (a live heap, docs/tuner.md), that one gave
        # nothing back, so a low-memory walk moves on as after a collection that ran.
        for decision in decisions:
            rule = self._by_name.get(decision.rule)
            if rule is not None and decision in futile:
                rule.record(decision, 0, now)
            elif rule is not None:
                rule.dropped(decision, now)

    def state(self):  # type: () -> Dict[str, object]
        # A summary for status and the `status` command.
        return {
            "low": sorted(r.name for r in self._rules if r.alarmed()),
            "budget_skipped": self.skipped_for_budget,
        }
