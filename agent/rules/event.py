# ``event``: a collection when a trigger arrives, at most once per `cooldown`.
#
# Triggers: `app:NAME` (or `app:*`) from the application, `link_down`,
# `link_up`, `signal`, and two this rule derives from samples itself: `idle`
# (CPU below `idle_cpu` over `idle_for`, on the edge into idleness) and
# `large_free` (RSS fell by at least `large_free` since the last sample).

from .. import values
from ..lean import record
from ..units import parse_duration
from . import base
from .base import Decision

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Collection, List, Optional, Tuple  # noqa: F401 (type comments)

    from .base import Tick  # noqa: F401 (type comments)

TYPE = "event"
TRIGGERS = ("idle", "large_free", "link_down", "link_up", "signal")


class Settings(record(
        "Settings",
        "name",                                 # str
        enabled=True,                           # bool
        on=(),                                  # Tuple[str, ...]
        generation=2,                           # int
        cooldown=0.0,                           # float
        idle_cpu=0.05,                          # float
        idle_for=30.0,                          # float
        large_free_kb=8192,                     # int
)):
    # [rule:NAME] type = event.

    __slots__ = ()

    @property
    def type(self):  # type: () -> str
        return TYPE


def _triggers(value):  # type: (str) -> Tuple[str, ...]
    triggers = values.word_list(value)
    if not triggers:
        raise ValueError("is empty; the rule would never fire")
    for i, trigger in enumerate(triggers):
        if trigger.startswith("app:"):
            if len(trigger) == 4:
                raise ValueError("%r names no application event (app:NAME or app:*)" % trigger)
        elif trigger not in TRIGGERS and i and triggers[i - 1].startswith("app:"):
            # `app:foo bar`: a list splits on blanks, so a spaced name arrives as two words
            raise ValueError("%r after %r: application event names cannot contain spaces or "
                             "commas (write app:%s_%s, and name it so in agent.event())"
                             % (trigger, triggers[i - 1], triggers[i - 1][4:], trigger))
        elif trigger not in TRIGGERS:
            raise ValueError("unknown trigger %r (known: %s, app:NAME, app:*)%s"
                             % (trigger, ", ".join(TRIGGERS), values.hint(trigger, TRIGGERS)))
    return triggers


# key -> (field, parser, required), as the profile's section schema
SCHEMA = {
    "on": ("on", _triggers, True),
    "generation": ("generation", values.int_range(0, 2), False),
    "cooldown": ("cooldown", parse_duration, False),
    "idle_cpu": ("idle_cpu", values.percent, False),
    "idle_for": ("idle_for", values.positive_duration, False),
    "large_free": ("large_free_kb", values.positive_kb, False),
}


def check(rule, given, ceiling_kb):
    # type: (Settings, Collection[str], Optional[int]) -> List[Tuple[str, str]]
    # (key, message) for settings that validate one by one yet can never act.
    out = []
    if "idle" in rule.on and rule.idle_cpu <= 0:
        out.append(("idle_cpu", "0% can never be reached; idle would never fire"))
    for key, trigger in (("idle_cpu", "idle"), ("idle_for", "idle"), ("large_free", "large_free")):
        if key in given and trigger not in rule.on:
            out.append((key, "has no effect: on = does not list %s" % trigger))
    return out


def describe(rule):  # type: (Settings) -> str
    return "on %s, generation %d" % (", ".join(rule.on), rule.generation)


class Rule(base.Rule):
    # Cooldown, and the idle edge, of one event rule.

    def __init__(self, settings, start):  # type: (Settings, float) -> None
        super(Rule, self).__init__(settings, start)
        self.cpu_window = settings.idle_for if "idle" in settings.on else 0.0
        self.last = None  # type: Optional[float]
        self._before = None  # type: Optional[float]
        self.idle = False

    def decide(self, tick, now):  # type: (Tick, float) -> List[Decision]
        rule = self.settings
        derived = set()
        if "large_free" in rule.on and tick.dropped is not None and tick.dropped >= rule.large_free_kb:
            derived.add("large_free")
        if "idle" in rule.on:
            idle = self._is_idle(tick, now)
            if idle and not self.idle:
                derived.add("idle")
            self.idle = idle
        fired = [t for t in rule.on
                 if t in tick.triggers or t in derived
                 or (t == "app:*" and any(x.startswith("app:") for x in tick.triggers))]
        if not fired:
            return []
        if self.last is not None and now - self.last < rule.cooldown:
            return []
        self._before, self.last = self.last, now
        # Named by what the application or the link did, when that fired with the idle edge.
        trigger = next((t for t in fired if t != "idle"), fired[0])
        return [Decision("collect", rule.name, rule.generation, fields=(("trigger", trigger),))]

    def dropped(self, decision, now):  # type: (Decision, float) -> None
        # Held back before it ran (the tuner's quiet-heap gate): it spent no cooldown.
        self.last = self._before

    def _is_idle(self, tick, now):  # type: (Tick, float) -> bool
        then = None
        for at, cpu in tick.cpu:
            if at <= now - self.settings.idle_for:
                then = (at, cpu)
            else:
                break
        if then is None or now <= then[0]:
            return False   # not watched for a whole window yet
        return (tick.sample.cpu_s - then[1]) / (now - then[0]) < self.settings.idle_cpu
