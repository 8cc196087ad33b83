# ``low_memory``: act before headroom runs out, and back off rather than thrash.
#
# When headroom (ceiling - RSS, or device free memory if smaller) drops below
# `below`, or will by the next sample if it keeps shrinking as fast as it did
# since the last one (`ahead` samples), announce `low_memory` and walk the
# `escalate` steps, one per `step_every` (sooner when the room would be gone by
# the next sample and collections still work). A collection that reclaims at
# least `min_reclaim` resets the walk; one that does not moves on and doubles
# the back-off (up to `backoff_max`), so a real leak is not thrashed (it is
# reported from the memory floor: agent/leak.py, docs/leaks.md). Headroom above
# `rearm_above` ends the episode (`recovered`).

from .. import values
from ..lean import record
from ..units import Amount, format_kb, parse_amount
from . import base
from .base import Decision

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Collection, List, Optional, Tuple  # noqa: F401 (type comments)

    from .base import Tick  # noqa: F401 (type comments)

TYPE = "low_memory"
ESCALATION_STEPS = ("collect0", "collect1", "collect2", "callbacks", "event")


class Settings(record(
        "Settings",
        "name",                                 # str
        enabled=True,                           # bool
        below=Amount(fraction=0.15),            # Amount
        rearm_above=Amount(fraction=0.25),      # Amount
        escalate=("collect0", "collect2", "callbacks", "event"),  # Tuple[str, ...]
        step_every=5.0,                         # float
        min_reclaim_kb=256,                     # int
        leak_after=3,                           # int: accepted, no effect: leaks are judged from
                                                # the floor (docs/leaks.md)
        backoff_max=600.0,                      # float
        ahead=1,                                # int: samples of growth to anticipate
)):
    # [rule:NAME] type = low_memory.

    __slots__ = ()

    @property
    def type(self):  # type: () -> str
        return TYPE


def _escalate(value):  # type: (str) -> Tuple[str, ...]
    steps = values.word_list(value)
    if not steps:
        raise ValueError("is empty; the rule would never act (steps: %s)" % ", ".join(ESCALATION_STEPS))
    bad = [step for step in steps if step not in ESCALATION_STEPS]
    if bad:   # name every bad step at once, so one `check` round shows them all
        named = []
        for step in bad:
            close = values.closest(step, ESCALATION_STEPS)
            named.append("%r (did you mean %s?)" % (step, close) if close else repr(step))
        raise ValueError("unknown step%s %s (steps: %s)" % ("s" if len(bad) > 1 else "",
                                                            ", ".join(named),
                                                            ", ".join(ESCALATION_STEPS)))
    return steps


# key -> (field, parser, required), as the profile's section schema
SCHEMA = {
    "below": ("below", parse_amount, True),
    "rearm_above": ("rearm_above", parse_amount, False),
    "escalate": ("escalate", _escalate, False),
    "step_every": ("step_every", values.positive_duration, False),
    "min_reclaim": ("min_reclaim_kb", values.kb, False),
    "leak_after": ("leak_after", values.int_range(1, 1000), False),
    "backoff_max": ("backoff_max", values.positive_duration, False),
    "ahead": ("ahead", values.int_range(0, 10), False),
}


def check(rule, given, ceiling_kb):
    # type: (Settings, Collection[str], Optional[int]) -> List[Tuple[str, str]]
    # (key, message) for thresholds that validate one by one yet can never act.
    out = []
    below, rearm = rule.below, rule.rearm_above
    if below.resolve(1 << 30) == 0 and below.resolve(1) == 0:
        out.append(("below", "0 can never be reached; the rule would never fire"))
    elif (below.fraction is None) == (rearm.fraction is None) and \
            rearm.resolve(1 << 30) <= below.resolve(1 << 30):
        out.append(("rearm_above", "%s must be above below = %s, or the rule never re-arms"
                    % (rearm, below)))
    if rearm.fraction is not None and rearm.fraction >= 1.0:
        out.append(("rearm_above", "100% of the ceiling is never free (RSS is never 0): "
                    "the episode would never end"))
    if below.fraction is not None and below.fraction >= 1.0:
        out.append(("below", "100% of the ceiling is always below: the rule would fire on every tick"))
    # `below = 50M` with `rearm_above = 10%` inverts on a small ceiling: check it
    # against the memory the profile names (memory_limit, else ram).
    if ceiling_kb and (below.fraction is None) != (rearm.fraction is None):
        low, high = below.resolve(ceiling_kb), rearm.resolve(ceiling_kb)
        if high <= low:
            said = "" if "rearm_above" in given else "(default) "
            out.append(("rearm_above", "%s%s of a %s ceiling is %s, not above below = %s: the rule "
                        "would never re-arm" % (said, rearm, format_kb(ceiling_kb),
                                                format_kb(high), format_kb(low))))
    return out


def describe(rule):  # type: (Settings) -> str
    return "below %s (re-arm above %s): %s" % (rule.below, rule.rearm_above, " -> ".join(rule.escalate))


class _Episode(object):
    # Where the rule is in one episode of low memory.

    def __init__(self, step_every):  # type: (float) -> None
        self.low = False
        self.step = 0
        self.next_at = 0.0
        self.backoff = step_every
        self.ineffective = 0
        self.since = 0.0
        self.actions = 0


class Rule(base.Rule):
    # The escalation walk through one episode, and what collections in it reclaimed.

    def __init__(self, settings, start):  # type: (Settings, float) -> None
        super(Rule, self).__init__(settings, start)
        self.st = _Episode(settings.step_every)

    def alarmed(self):  # type: () -> bool
        return self.st.low

    def decide(self, tick, now):  # type: (Tick, float) -> List[Decision]
        rule, st, sample, room = self.settings, self.st, tick.sample, tick.room
        # How much headroom the last sample interval ate: a process that grows 8M a
        # tick is killed between two samples if we wait for it to cross `below`.
        expected = room - tick.shrink * rule.ahead
        ceiling = sample.ceiling_kb or sample.mem_total_kb
        below = rule.below.resolve(ceiling)
        info = (("headroom_kb", room), ("below_kb", below), ("ceiling_kb", ceiling))
        if expected < room:
            info += (("expected_kb", expected),)
        out = []
        if st.low:
            if room >= rule.rearm_above.resolve(ceiling):
                self.st = _Episode(rule.step_every)
                return [Decision("event", rule.name, event="recovered",
                                 fields=info + (("episode_s", round(now - st.since, 3)),
                                                ("actions", st.actions)))]
            # step_every paces the walk, but while collections still work it must not
            # wait past the sample after which there is no room left.
            if expected >= below or (now < st.next_at and (expected > 0 or st.ineffective)):
                return []
        elif expected < below:
            st.low, st.since = True, now
            out.append(Decision("event", rule.name, event="low_memory", fields=info))
        else:
            return []
        step = rule.escalate[st.step]
        st.actions += 1
        st.next_at = now + rule.step_every
        if step.startswith("collect"):
            out.append(Decision("collect", rule.name, int(step[-1]), fields=(("step", step),)))
            return out   # record() moves the walk on, once it knows what came back
        if step == "callbacks":
            out.append(Decision("callbacks", rule.name, fields=info))
        else:
            out.append(Decision("event", rule.name, event="alert",
                                fields=info + (("ineffective_collections", st.ineffective),)))
        self._advance(now)
        return out

    def _advance(self, now):  # type: (float) -> None
        rule, st = self.settings, self.st
        st.step += 1
        if st.step >= len(rule.escalate):   # walked every step: back off, then start over
            st.step = 0
            st.next_at = now + st.backoff
            st.backoff = min(st.backoff * 2, rule.backoff_max)

    def record(self, decision, reclaimed_kb, now):  # type: (Decision, int, float) -> List[Decision]
        rule, st = self.settings, self.st
        if decision.action != "collect" or not st.low:
            return []
        if reclaimed_kb >= rule.min_reclaim_kb:
            st.step, st.ineffective, st.backoff = 0, 0, rule.step_every
            return []
        st.ineffective += 1
        self._advance(now)
        # A collection that gives back no RSS is no sign of a leak (pymalloc keeps
        # arenas that still hold a live object): leaks are judged from the memory
        # floor in agent/leak.py (docs/leaks.md). Here it only slows the walk down.
        return []
