# What every rule type shares: the decision it returns, the tick it reads, its base class.
#
# A rule type (one module beside this one, listed in `table.TYPES`) subclasses
# `Rule` for its decide/record state; `Policy` builds one per enabled rule and
# calls it once a tick with a `Tick`. Nothing here reads a clock, calls gc or
# does I/O.

from ..lean import record

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, List  # noqa: F401 (type comments)

    from ..probes import Sample  # noqa: F401 (type comments)

# Rules the budget does not limit: somebody asked for these explicitly.
REQUESTED = ("signal", "manual", "command")


class Decision(record(
        "Decision",
        "action",                   # str
        "rule",                     # str
        generation=2,               # int
        event="",                   # str: for action == "event"
        fields=(),                  # Tuple[Tuple[str, object], ...]: extra fields for the message
)):
    # One thing to do. `action`: collect, callbacks, freeze or event.

    __slots__ = ()


class Tick(record(
        "Tick",
        "sample",                   # Sample
        "room",                     # int: headroom_kb(sample)
        "shrink",                   # int: headroom lost since the last sample (>= 0)
        "dropped",                  # Optional[int]: RSS fallen since the last sample; None at the first
        "cpu",                      # Deque[Tuple[float, float]]: (mono, cpu_s) over the
                                    # longest window a rule asked for
        "triggers",                 # frozenset: events this tick: app:NAME, link_down, signal, ...
)):
    # What the policy knows at one tick, derived once for every rule.

    __slots__ = ()


def headroom_kb(sample):  # type: (Sample) -> int
    # How much more this process may grow: ceiling - RSS, or device free memory if less.
    room = sample.ceiling_kb - sample.rss_kb if sample.ceiling_kb else sample.mem_free_kb
    if sample.mem_free_kb and sample.mem_free_kb < room:
        room = sample.mem_free_kb
    return room


class Rule(object):
    # One enabled rule's state between ticks. Subclasses implement `decide`.

    # Seconds of (mono, cpu_s) history this rule reads from `Tick.cpu`; the policy
    # keeps the longest any rule asks for, and none when every rule says 0.
    cpu_window = 0.0

    def __init__(self, settings, start):  # type: (Any, float) -> None
        self.settings = settings
        self.name = settings.name

    def decide(self, tick, now):  # type: (Tick, float) -> List[Decision]
        # What this rule calls for at `now`.
        raise NotImplementedError

    def record(self, decision, reclaimed_kb, now):  # type: (Decision, int, float) -> List[Decision]
        # Learn what one of this rule's collections did; follow-up events, if any.
        return []

    def dropped(self, decision, now):  # type: (Decision, float) -> None
        # One of this rule's decisions was held back before it ran.
        return None

    def alarmed(self):  # type: () -> bool
        # True while the rule is in an episode (a low_memory rule below its threshold).
        return False
