# The one table of rule types: type name -> the module that implements it.
#
# Everything that depends on a rule's type goes through here: the profile reads
# each type's keys (`schema`) and asks it to check and describe its rules, and
# `Policy` builds each rule's state (`make`). A type missing from the table is
# an error (`UnknownRuleType`), never a silent fallback to another type.
#
# A rule type module has:
#
# - ``TYPE``: its name, as written after ``type =``;
# - ``Settings``: a record (`agent.lean.record`) of ``name``, ``enabled`` and its own fields, with a
#   ``type`` property returning ``TYPE``;
# - ``SCHEMA``: its keys, ``key -> (field, parser, required)``;
# - ``check(settings, given, ceiling_kb)``: ``(key, message)`` pairs for
#   settings that validate key by key yet can never act (`given`: the keys the
#   profile wrote; `ceiling_kb`: the memory the profile names, or None);
# - ``describe(settings)``: one line for `check -v`;
# - ``Rule``: a `base.Rule` subclass holding its decide/record state.
#
# Adding a type is one module, one line below, and its tests: see
# docs/adding-a-rule-type.md.


from .. import values
from . import event, low_memory, periodic

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Dict, List, Tuple  # noqa: F401 (type comments)

PREFIX = "rule:"   # profile sections [rule:NAME]

TYPES = {module.TYPE: module for module in (
    periodic,
    low_memory,
    event,
)}

# Keys every rule has, whatever its type.
COMMON_SCHEMA = {
    "type": ("type", lambda value: value.strip().lower(), True),
    "enabled": ("enabled", values.boolean, False),
}


class UnknownRuleType(ValueError):
    # A rule names a type the table does not have.

    def __init__(self, rule_type, rule=""):  # type: (str, str) -> None
        self.rule_type = rule_type
        super(UnknownRuleType, self).__init__(
            "%s%r is not one of %s%s" % ("rule %s: type " % rule if rule else "", rule_type,
                                        ", ".join(TYPES), values.hint(rule_type, TYPES)))


def kind(rule_type):  # type: (str) -> Any
    # The module implementing `rule_type`; UnknownRuleType if there is none.
    module = TYPES.get(rule_type)
    if module is None:
        raise UnknownRuleType(rule_type)
    return module


def of(rule):
    # The module implementing the type of `rule` (a rule type's Settings).
    module = TYPES.get(rule.type)
    if module is None:
        raise UnknownRuleType(rule.type, rule.name)
    return module


def schema(rule_type):  # type: (str) -> Dict[str, Tuple]
    # Every key a rule of `rule_type` may have: the common keys and its own.
    keys = dict(COMMON_SCHEMA)
    keys.update(kind(rule_type).SCHEMA)
    return keys


def any_schema():  # type: () -> Dict[str, Tuple]
    # Every key of every type, none required: to check a rule whose type is unknown.
    keys = {}
    for module in reversed(list(TYPES.values())):   # a shared key parses as the first type's
        keys.update(module.SCHEMA)
    keys.update(COMMON_SCHEMA)
    return {key: (field, parse, False) for key, (field, parse, _) in keys.items()}


def value(rule, key):  # type: (Any, str) -> Any
    # The value `rule` (a rule type's Settings) runs with for profile key `key`, or None.
    keys = schema(rule.type)
    return getattr(rule, keys[key][0], None) if key in keys else None


def all_keys():  # type: () -> List[str]
    # Every key some rule type knows, sorted.
    return sorted(set(COMMON_SCHEMA).union(*(m.SCHEMA for m in TYPES.values())))


def owners(key):  # type: (str) -> List[str]
    # The rule types that have `key`, in table order.
    return [name for name, module in TYPES.items() if key in module.SCHEMA]


def settings(rule_type, name, fields):  # type: (str, str, Dict[str, object]) -> Any
    # `rule_type`'s Settings from parsed fields (the `type` field is the module's own).
    fields = dict(fields, name=name)
    fields.pop("type", None)
    return kind(rule_type).Settings(**fields)


def check(rule, given, ceiling_kb):  # type: (Any, Any, Any) -> List[Tuple[str, str]]
    # (key, message) for a rule that can never act; see the module's opening comment.
    return of(rule).check(rule, given, ceiling_kb)


def describe(rule):  # type: (Any) -> str
    return of(rule).describe(rule)


def make(rule, start):  # type: (Any, float) -> Any
    # The decide/record state for one rule (a `base.Rule`).
    return of(rule).Rule(rule, start)
