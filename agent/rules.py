"""Pure decisions: (sample, events, now) -> what to do.

Nothing here reads a clock, calls gc or does I/O: `now` is passed in and the
results of actions come back through `Policy.record()`. That is what lets the
tests drive every rule with a fake clock in microseconds.

Rule types (profile `[rule:NAME]`, see the README):

- ``periodic``: a collection every `every` seconds.
- ``low_memory``: when headroom (ceiling - RSS, or device free memory if
  smaller) drops below `below`, or will by the next sample if it keeps
  shrinking as fast as it did since the last one (`ahead`), announce
  `low_memory` and walk the `escalate` steps, one per `step_every` (sooner
  when the room would be gone by the next sample and collections still
  work); a collection that reclaims at least `min_reclaim` resets the walk,
  one that does not moves on and doubles the back-off (up to `backoff_max`),
  so a real leak is not thrashed (it is reported from the floor: agent/leak.py).
  Headroom above `rearm_above` ends the episode (`recovered`).
- ``event``: a collection when a trigger arrives (`app:NAME`, `link_down`,
  `link_up`, `signal`, and `idle` / `large_free` derived from samples), at
  most once per `cooldown`.

Across all rules a budget caps the share of wall time spent in collections.
"""

import collections
from typing import Deque, Dict, List, NamedTuple, Optional, Sequence, Tuple

from .probes import Sample
from .profile import RuleSettings

# Rules the budget does not limit: somebody asked for these explicitly.
REQUESTED = ("signal", "manual", "command")


class Decision(NamedTuple):
    """One thing to do. `action`: collect, callbacks, freeze or event."""

    action: str
    rule: str
    generation: int = 2
    event: str = ""                                # for action == "event"
    fields: Tuple[Tuple[str, object], ...] = ()    # extra fields for the message


def headroom_kb(sample: Sample) -> int:
    """How much more this process may grow: ceiling - RSS, or device free memory if less."""
    room = sample.ceiling_kb - sample.rss_kb if sample.ceiling_kb else sample.mem_free_kb
    if sample.mem_free_kb and sample.mem_free_kb < room:
        room = sample.mem_free_kb
    return room


class _LowState(object):
    """Where one low_memory rule is in its episode."""

    def __init__(self, step_every: float) -> None:
        self.low = False
        self.step = 0
        self.next_at = 0.0
        self.backoff = step_every
        self.ineffective = 0
        self.since = 0.0
        self.actions = 0


class Policy(object):
    """Decides, tick by tick, which collections and events the rules call for."""

    def __init__(self, rules: Sequence[RuleSettings], start: float, budget: float = 0.02,
                 budget_window: float = 60.0, freeze_after: Optional[float] = None) -> None:
        self.rules = tuple(r for r in rules if r.enabled)
        self.budget = budget
        self.budget_window = budget_window
        self._freeze_at = None if freeze_after is None else start + freeze_after
        self._next: Dict[str, float] = {}   # periodic: next due time
        self._last: Dict[str, float] = {}   # event: last firing
        self._low: Dict[str, _LowState] = {}
        self._idle: Dict[str, bool] = {}
        for rule in self.rules:
            if rule.type == "periodic":
                self._next[rule.name] = start + rule.every
            elif rule.type == "low_memory":
                self._low[rule.name] = _LowState(rule.step_every)
        idle_windows = [r.idle_for for r in self.rules if r.type == "event" and "idle" in r.on]
        self._cpu_window = max(idle_windows) if idle_windows else 0.0
        self._cpu: Deque[Tuple[float, float]] = collections.deque()
        self._spent: Deque[Tuple[float, float]] = collections.deque()
        self._budget_said_at: Optional[float] = None
        self._last_rss: Optional[int] = None
        self._last_room: Optional[int] = None
        self._gc_enabled: Optional[bool] = None
        self.skipped_for_budget = 0

    # -- the decision ------------------------------------------------------------

    def decide(self, sample: Sample, events: Sequence[str], now: float) -> List[Decision]:
        """Everything the rules call for at `now`, given this sample and these events."""
        out: List[Decision] = []
        triggers = set(events)
        self._derive(sample, now, triggers, out)
        if self._freeze_at is not None and now >= self._freeze_at:
            self._freeze_at = None
            out.append(Decision("freeze", "start"))
        if "signal" in triggers:   # the contract: SIGUSR1 is always a full collection
            out.append(Decision("collect", "signal", 2))
        room = headroom_kb(sample)
        # How much headroom the last sample interval ate: a process that grows 8M a
        # tick is killed between two samples if we wait for it to cross `below`.
        shrink = max(0, self._last_room - room) if self._last_room is not None else 0
        self._last_room = room
        for rule in self.rules:
            if rule.type == "periodic":
                if now >= self._next[rule.name]:
                    self._next[rule.name] = now + rule.every
                    out.append(Decision("collect", rule.name, rule.generation))
            elif rule.type == "low_memory":
                self._low_memory(rule, sample, room, room - shrink * rule.ahead, now, out)
            else:
                self._event(rule, triggers, now, out)
        return self._within_budget(out, now)

    def _derive(self, sample: Sample, now: float, triggers: set, out: List[Decision]) -> None:
        """Events computed from samples: idle, large_free, gc switched off or on."""
        # A collector already off at our first look (the application, or a library it
        # imported, disabled it before the agent started) is reported like a change.
        if sample.gc_enabled != (True if self._gc_enabled is None else self._gc_enabled):
            out.append(Decision("event", "", event="gc_enabled" if sample.gc_enabled else "gc_disabled"))
        self._gc_enabled = sample.gc_enabled
        if self._last_rss is not None:
            dropped = self._last_rss - sample.rss_kb
            for rule in self.rules:
                if rule.type == "event" and "large_free" in rule.on and dropped >= rule.large_free_kb:
                    triggers.add("large_free:" + rule.name)
        self._last_rss = sample.rss_kb
        if not self._cpu_window:
            return
        self._cpu.append((now, sample.cpu_s))
        while len(self._cpu) > 2 and self._cpu[1][0] <= now - self._cpu_window:
            self._cpu.popleft()
        for rule in self.rules:
            if rule.type != "event" or "idle" not in rule.on:
                continue
            idle = self._is_idle(rule, now, sample.cpu_s)
            if idle and not self._idle.get(rule.name):
                triggers.add("idle:" + rule.name)
            self._idle[rule.name] = idle

    def _is_idle(self, rule: RuleSettings, now: float, cpu_now: float) -> bool:
        then = None
        for at, cpu in self._cpu:
            if at <= now - rule.idle_for:
                then = (at, cpu)
            else:
                break
        if then is None or now <= then[0]:
            return False   # not watched for a whole window yet
        return (cpu_now - then[1]) / (now - then[0]) < rule.idle_cpu

    def _event(self, rule: RuleSettings, triggers: set, now: float, out: List[Decision]) -> None:
        fired = [t for t in rule.on
                 if t in triggers
                 or (t == "app:*" and any(x.startswith("app:") for x in triggers))
                 or (t in ("idle", "large_free") and t + ":" + rule.name in triggers)]
        if not fired:
            return
        last = self._last.get(rule.name)
        if last is not None and now - last < rule.cooldown:
            return
        self._last[rule.name] = now
        out.append(Decision("collect", rule.name, rule.generation, fields=(("trigger", fired[0]),)))

    def _low_memory(self, rule: RuleSettings, sample: Sample, room: int, expected: int, now: float,
                    out: List[Decision]) -> None:
        st = self._low[rule.name]
        ceiling = sample.ceiling_kb or sample.mem_total_kb
        below = rule.below.resolve(ceiling)
        info = (("headroom_kb", room), ("below_kb", below), ("ceiling_kb", ceiling))
        if expected < room:
            info += (("expected_kb", expected),)
        if st.low:
            if room >= rule.rearm_above.resolve(ceiling):
                out.append(Decision("event", rule.name, event="recovered",
                                    fields=info + (("episode_s", round(now - st.since, 3)),
                                                   ("actions", st.actions))))
                self._low[rule.name] = _LowState(rule.step_every)
                return
            # step_every paces the walk, but while collections still work it must not
            # wait past the sample after which there is no room left.
            if expected >= below or (now < st.next_at and (expected > 0 or st.ineffective)):
                return
        elif expected < below:
            st.low, st.since = True, now
            out.append(Decision("event", rule.name, event="low_memory", fields=info))
        else:
            return
        step = rule.escalate[st.step]
        st.actions += 1
        st.next_at = now + rule.step_every
        if step.startswith("collect"):
            out.append(Decision("collect", rule.name, int(step[-1]), fields=(("step", step),)))
            return   # record() moves the walk on, once it knows what came back
        if step == "callbacks":
            out.append(Decision("callbacks", rule.name, fields=info))
        else:
            out.append(Decision("event", rule.name, event="alert",
                                fields=info + (("ineffective_collections", st.ineffective),)))
        self._advance(rule, st, now)

    def _advance(self, rule: RuleSettings, st: _LowState, now: float) -> None:
        st.step += 1
        if st.step >= len(rule.escalate):   # walked every step: back off, then start over
            st.step = 0
            st.next_at = now + st.backoff
            st.backoff = min(st.backoff * 2, rule.backoff_max)

    def _within_budget(self, decisions: List[Decision], now: float) -> List[Decision]:
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

    def record(self, decision: Decision, reclaimed_kb: int, duration_s: float,
               now: float) -> List[Decision]:
        """Learn what a collection did (back-off); returns follow-up events (none today)."""
        if decision.action == "collect":
            self._spent.append((now, duration_s))
        st = self._low.get(decision.rule)
        if st is None or decision.action != "collect" or not st.low:
            return []
        rule = next(r for r in self.rules if r.name == decision.rule)
        if reclaimed_kb >= rule.min_reclaim_kb:
            st.step, st.ineffective, st.backoff = 0, 0, rule.step_every
            return []
        st.ineffective += 1
        self._advance(rule, st, now)
        # A collection that gives back no RSS is no sign of a leak (pymalloc keeps
        # arenas that still hold a live object): leaks are judged from the memory
        # floor in agent/leak.py (docs/leaks.md). Here it only slows the walk down.
        return []

    def state(self) -> Dict[str, object]:
        """A summary for status and the `status` command."""
        return {
            "low": sorted(name for name, st in self._low.items() if st.low),
            "budget_skipped": self.skipped_for_budget,
        }
