# Validating profiles: layered values -> a `Profile`, every problem collected at once.
#
# Problems read ``PATH:LINE: [section] key: what is wrong``; a profile either
# loads completely or raises `ProfileError` with all its problems. Rule
# sections are checked, built and described through the rule types' table
# (`agent.rules.table`), never by switching on a type here.

import os

from .. import bounds, values
from ..errors import Problem, ProfileError
from ..lean import sha256_hex
from ..rules import table as rule_table
from ..units import format_duration
from .reading import flatten, layer_text, read
from .schema import SCHEMA
from .settings import (
    AgentSettings,
    BufferSettings,
    CommandSettings,
    DeviceSettings,
    GcSettings,
    Profile,
    ReportSettings,
)

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Dict, List, Optional, Tuple  # noqa: F401 (type comments)

    from .reading import Layered, Value  # noqa: F401 (type comments)
    from .schema import Key  # noqa: F401 (type comments)

RULE_PREFIX = rule_table.PREFIX


def load(path):  # type: (str) -> Profile
    # Read and validate the profile at `path`; raise ProfileError listing every problem.
    problems = []  # type: List[Problem]
    layer = read(path, problems, ())
    profile = None if problems else _build(layer, path, problems)
    if profile is None:
        raise ProfileError(sorted(problems, key=lambda p: (p.path != path, p.path, p.line)))
    return profile


def loads(text, path="<profile>"):  # type: (str, str) -> Profile
    # Validate profile text; `extends` is resolved relative to `path`.
    problems = []  # type: List[Problem]
    layer = layer_text(text, path, problems, (os.path.realpath(path),))
    profile = None if problems else _build(layer, path, problems)
    if profile is None:
        raise ProfileError(sorted(problems, key=lambda p: (p.path != path, p.path, p.line)))
    return profile


def describe(profile):  # type: (Profile) -> str
    # A short human summary, used by `check -v` and the README's examples.
    lines = ["device %s (model %s), %d rule(s)" % (profile.device.id, profile.device.model,
                                                    len(profile.rules))]
    if profile.device.exit_action != "none":
        lines.append("  when the script ends (or is killed over memory_limit): %s"
                     % profile.device.exit_action)
    if profile.gc.tune == "auto":
        lines.append("  gc: tuned (pause budget %s, memory target %.0f%%); thresholds and "
                     "freeze_after_start are the tuner's" % (format_duration(profile.gc.pause_budget),
                                                             profile.gc.memory_target * 100))
    for rule in profile.rules:
        lines.append("  %s: %s%s" % (rule.name, rule_table.describe(rule),
                                     "" if rule.enabled else " (disabled)"))
    return "\n".join(lines)


def _convert(section, given, schema, header, problems):
    # type: (str, Dict[str, Value], Dict[str, Key], Tuple[str, int], List[Problem]) -> Dict[str, object]
    fields = {}
    for key, value in given.items():
        spec = schema.get(key)
        if spec is None:
            known = list(schema)
            problems.append(Problem(value.path, value.line, section, key,
                                    "unknown key%s" % (values.hint(key, known) or
                                                       " (known: %s)" % ", ".join(sorted(known)))))
            continue
        field, parse, _ = spec
        try:
            fields[field] = parse(value.text)
        except (ValueError, OverflowError) as exc:
            problems.append(Problem(value.path, value.line, section, key, str(exc)))
    for key, (_, _, required) in schema.items():
        if required and key not in given:
            problems.append(Problem(header[0], header[1], section, key, "missing required key"))
    return fields


def _rule(section, given, header, problems):
    # type: (str, Dict[str, Value], Tuple[str, int], List[Problem]) -> Any
    name = section[len(RULE_PREFIX):].strip()
    if not name:
        problems.append(Problem(header[0], header[1], section, "", "a rule needs a name: [rule:NAME]"))
        return None
    if len(name) > bounds.NAME_MAX:   # events carry it; readers refuse longer (agent/bounds.py)
        problems.append(Problem(header[0], header[1], section, "", "a rule name is at most %d "
                                "characters" % bounds.NAME_MAX))
        return None
    types = list(rule_table.TYPES)
    type_value = given.get("type")
    if type_value is None:
        problems.append(Problem(header[0], header[1], section, "type",
                                "missing required key (one of %s)" % ", ".join(types)))
        return None
    rule_type = type_value.text.strip().lower()
    if rule_type not in rule_table.TYPES:
        problems.append(Problem(type_value.path, type_value.line, section, "type",
                                "%r is not one of %s%s" % (type_value.text, ", ".join(types),
                                                          values.hint(rule_type, types))))
        # Check the other keys too, against every type's keys, so one round of
        # `check` names all of a rule's typos (docs/profiles.md, "Checking a profile").
        others = {k: v for k, v in given.items() if k != "type"}
        _convert(section, others, rule_table.any_schema(), header, problems)
        return None
    before = len(problems)
    fields = _convert(section, given, rule_table.schema(rule_type), header, problems)
    for i in range(before, len(problems)):   # say why a key of another rule type is unknown
        p = problems[i]
        if p.message.startswith("unknown key") and p.key in rule_table.all_keys():
            problems[i] = p._replace(message="not used by a %s rule (it belongs to %s rules)"
                                     % (rule_type, ", ".join(rule_table.owners(p.key))))
    if len(problems) > before:
        return None
    return rule_table.settings(rule_type, name, fields)


def _check_rules(rules, device, layer, problems):
    # type: (List, Dict[str, object], Layered, List[Problem]) -> None
    # Rules that validate key by key yet can never act, asked of each rule's type with
    # the memory the profile names (memory_limit, else ram) when it names one.
    ceiling = device.get("memory_limit_kb") or device.get("ram_kb")
    for rule in rules:
        section = RULE_PREFIX + rule.name
        given = layer.sections[section]
        for key, message in rule_table.check(rule, set(given), ceiling or None):
            value = given.get(key)
            path, line = (value.path, value.line) if value else layer.headers[section]
            problems.append(Problem(path, line, section, key, message))


def _build(layer, path, problems):  # type: (Layered, str, List[Problem]) -> Optional[Profile]
    parts = {}
    rules = []
    for section, given in layer.sections.items():
        header = layer.headers[section]
        if section.startswith(RULE_PREFIX):
            rule = _rule(section, given, header, problems)
            if rule is not None:
                rules.append(rule)
            continue
        schema = SCHEMA.get(section)
        if schema is None:
            hint = values.hint(section, list(SCHEMA) + ["rule:NAME"])
            problems.append(Problem(header[0], header[1], section, "",
                                    "unknown section%s" % (hint or " (known: %s, rule:NAME)"
                                                           % ", ".join(SCHEMA))))
            continue
        parts[section] = _convert(section, given, schema, header, problems)
    _check_rules(rules, parts.get("device", {}), layer, problems)
    if "device" not in layer.sections:
        problems.append(Problem(path, 1, "device", "id",
                                "missing required key (add a [device] section with id = ...)"))
    if not rules and not problems:
        problems.append(Problem(path, 1, "", "",
                                "no [rule:NAME] section: the agent would only watch; add at least "
                                "one rule (docs/profiles.md, \"The rules\")"))
    if problems:
        return None
    text = flatten(layer)
    return Profile(
        path=path,
        sha256=sha256_hex(text.encode("utf-8")),
        text=text,
        device=DeviceSettings(**parts["device"]),
        agent=AgentSettings(**parts.get("agent", {})),
        gc=GcSettings(**parts.get("gc", {})),
        rules=tuple(rules),
        report=ReportSettings(**parts.get("report", {})),
        buffer=BufferSettings(**parts.get("buffer", {})),
        commands=CommandSettings(**parts.get("commands", {})),
    )
