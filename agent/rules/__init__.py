# Pure decisions: (sample, events, now) -> what to do.
#
# Nothing here reads a clock, calls gc or does I/O: `now` is passed in and the
# results of actions come back through `Policy.record()`. That is what lets the
# tests drive every rule with a fake clock in microseconds.
#
# One module per rule type (profile `[rule:NAME]`, see docs/adding-a-rule-type.md):
#
# - ``periodic``: a collection every `every` seconds;
# - ``low_memory``: act on shrinking headroom, walk the `escalate` steps, and
#   back off when collections reclaim nothing (leaks: agent/leak.py);
# - ``event``: a collection when a trigger arrives, at most once per `cooldown`.
#
# `table.TYPES` maps a type name to its module; `policy.Policy` keeps the budget
# (the share of wall time spent in collections, across all rules) and what
# every rule reads each tick, and dispatches through the table.

from .base import REQUESTED, Decision, Rule, Tick, headroom_kb
from .policy import Policy
from .table import TYPES, UnknownRuleType

__all__ = ["REQUESTED", "TYPES", "Decision", "Policy", "Rule", "Tick", "UnknownRuleType", "headroom_kb"]
