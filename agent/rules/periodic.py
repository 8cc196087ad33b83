# ``periodic``: a collection every `every` seconds.
#
# [rule:NAME]
# type = periodic
# every = 10m          (required)
# generation = 2

from .. import values
from ..lean import record
from ..units import format_duration
from . import base
from .base import Decision

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Collection, List, Optional, Tuple  # noqa: F401 (type comments)

    from .base import Tick  # noqa: F401 (type comments)

TYPE = "periodic"


class Settings(record(
        "Settings",
        "name",                                 # str
        enabled=True,                           # bool
        every=0.0,                              # float
        generation=2,                           # int
)):
    # [rule:NAME] type = periodic.

    __slots__ = ()

    @property
    def type(self):  # type: () -> str
        return TYPE


# key -> (field, parser, required), as the profile's section schema
SCHEMA = {
    "every": ("every", values.positive_duration, True),
    "generation": ("generation", values.int_range(0, 2), False),
}


def check(rule, given, ceiling_kb):
    # type: (Settings, Collection[str], Optional[int]) -> List[Tuple[str, str]]
    # (key, message) for settings that validate one by one yet can never act: none here.
    return []


def describe(rule):  # type: (Settings) -> str
    return "every %s, generation %d" % (format_duration(rule.every), rule.generation)


class Rule(base.Rule):
    # When the next collection is due.

    def __init__(self, settings, start):  # type: (Settings, float) -> None
        super(Rule, self).__init__(settings, start)
        self.next_at = start + settings.every

    def decide(self, tick, now):  # type: (Tick, float) -> List[Decision]
        if now < self.next_at:
            return []
        self.next_at = now + self.settings.every
        return [Decision("collect", self.name, self.settings.generation)]

