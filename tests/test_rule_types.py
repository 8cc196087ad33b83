"""Rule types come from one table: an unknown type is refused everywhere, nothing else
switches on a type, and a new type plugs in with one module and one table line."""

import ast
import os
import re
import subprocess
import sys
import types
from typing import NamedTuple

import pytest

from agent import values
from agent.errors import ProfileError
from agent.probes import Sample
from agent.profile import describe, loads
from agent.rules import TYPES, Decision, Policy, Rule, UnknownRuleType, event, low_memory, periodic
from tests.conftest import REPO, agent_cmd


def sample(rss_kb=20000, now=0.0):
    return Sample(ts=1700000000.0 + now, mono=now, mem_free_kb=500000, mem_total_kb=1000000,
                  rss_kb=rss_kb, ceiling_kb=100000, cpu_s=0.0, gc_enabled=True,
                  gc_count=(0, 0, 0), gc_collections=(0, 0, 0), gc_collected=0, gc_uncollectable=0,
                  gc_pause_ms_total=0.0, gc_pause_ms_max=0.0)


# --- an unknown type is an error, never a fallback -------------------------------------

def test_check_refuses_an_unknown_rule_type_at_its_line(tmp_path):
    path = tmp_path / "typo.ini"
    path.write_text("[device]\nid = gw-1\n\n[rule:nightly]\ntype = periodik\nevery = 1h\n")
    done = subprocess.run(agent_cmd("check", str(path)), cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "%s:5: [rule:nightly] type: 'periodik' is not one of %s; did you mean periodic?" \
           % (path, ", ".join(TYPES)) in done.stderr


def test_a_key_of_another_rule_type_names_the_types_it_belongs_to():
    with pytest.raises(ProfileError) as info:
        loads("[device]\nid = x\n[rule:p]\ntype = periodic\nevery = 1m\nbelow = 10%\n", "/p.ini")
    [problem] = info.value.problems
    assert str(problem) == "/p.ini:6: [rule:p] below: not used by a periodic rule " \
                           "(it belongs to low_memory rules)"


class Stray(NamedTuple):
    name: str
    enabled: bool = True

    @property
    def type(self):
        return "stray"


def test_policy_refuses_a_rule_whose_type_is_not_in_the_table():
    good = loads("[device]\nid = x\n[rule:p]\ntype = periodic\nevery = 1m\n").rules
    with pytest.raises(UnknownRuleType) as info:
        Policy(good + (Stray("lost"),), start=0.0)
    assert "rule lost: type 'stray' is not one of %s" % ", ".join(TYPES) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_describe_refuses_a_rule_whose_type_is_not_in_the_table():
    profile = loads("[device]\nid = x\n[rule:p]\ntype = periodic\nevery = 1m\n")
    with pytest.raises(UnknownRuleType):
        describe(profile._replace(rules=(Stray("lost"),)))


# --- the table is the only switch -------------------------------------------------------

# A rule's type compared, or looked up, by hand: `rule.type == "periodic"`, `r.type in (...)`,
# `.type != "event"`, or the flat schema/settings the table replaced.
SWITCH = re.compile(r"""\b(rule|r|rules?|settings)\.type\b"""
                    r"""|\.type\s*(==|!=|in\b|not in\b)\s*[("']*(%s)\b"""
                    r"""|\bRULE_SCHEMA\b|\bRuleSettings\b|\bRULE_TYPES\b""" % "|".join(TYPES))


def _python_files(folder):
    for root, dirs, names in os.walk(os.path.join(REPO, folder)):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            if name.endswith(".py"):
                yield os.path.join(root, name)


def test_nothing_outside_agent_rules_switches_on_a_rule_type():
    rules_dir = os.path.join(REPO, "agent", "rules") + os.sep
    found = []
    for path in list(_python_files("agent")) + list(_python_files("tools")):
        if path.startswith(rules_dir):
            continue
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if SWITCH.search(line):
                    found.append("%s:%d: %s" % (os.path.relpath(path, REPO), number, line.strip()))
    assert found == []


def test_the_switch_pattern_catches_what_it_is_meant_to():
    for line in ('if rule.type == "periodic":', "elif r.type in ('event',):",
                 'x.type != "low_memory"', "from .profile import RULE_SCHEMA"):
        assert SWITCH.search(line), line
    assert not SWITCH.search('retain=item.type == "status"')   # message types are not rule types


def test_the_table_lists_the_shipped_types_each_with_only_its_own_settings():
    assert list(TYPES)[:3] == ["periodic", "low_memory", "event"]
    assert TYPES["periodic"] is periodic and TYPES["low_memory"] is low_memory and TYPES["event"] is event
    assert periodic.Settings._fields == ("name", "enabled", "every", "generation")
    assert "every" not in event.Settings._fields and "on" not in low_memory.Settings._fields
    for name, module in TYPES.items():
        assert module.Settings("r").type == name
        assert module.Settings._fields[:2] == ("name", "enabled")
        fields = {field for field, _, _ in module.SCHEMA.values()}
        assert fields <= set(module.Settings._fields), name


def test_each_rule_type_imports_only_the_shared_base_values_and_units():
    """A type knows no other type, the table, the policy, a clock or I/O: it can be
    added or removed alone (agent.lean gives it `record`, a namedtuple without typing).
    (The import-linter contract rules-pure covers the rest.)"""
    allowed = {"..:values", "..units", "..lean", ".base", ".:base", "typing", "collections", "math"}
    for name, module in TYPES.items():
        with open(module.__file__, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                used = {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                where = "." * node.level + (node.module or "")
                used = {where} if node.module else {"%s:%s" % (where, a.name) for a in node.names}
            else:
                continue
            assert used <= allowed, (name, used)


# --- a new type: one module, one table line ---------------------------------------------

def _toy_module():
    """A rule type as a module would define it: collect every `n`th tick, and say
    `streak` after `n` collections that reclaimed nothing."""
    toy = types.ModuleType("toy")
    toy.TYPE = "toy"

    class Settings(NamedTuple):
        name: str
        enabled: bool = True
        n: int = 3
        generation: int = 1

        @property
        def type(self):
            return "toy"

    toy.Settings = Settings
    toy.SCHEMA = {"n": ("n", values.int_range(1, 100), True),
                  "generation": ("generation", values.int_range(0, 2), False)}

    def check(rule, given, ceiling_kb):
        return [("n", "1 would collect on every tick")] if rule.n == 1 else []

    toy.check = check
    toy.describe = lambda rule: "every %d ticks, generation %d" % (rule.n, rule.generation)

    class ToyRule(Rule):
        def __init__(self, settings, start):
            super(ToyRule, self).__init__(settings, start)
            self.ticks = 0
            self.barren = 0

        def decide(self, tick, now):
            self.ticks += 1
            if self.ticks % self.settings.n:
                return []
            return [Decision("collect", self.name, self.settings.generation,
                             fields=(("headroom_kb", tick.room),))]

        def record(self, decision, reclaimed_kb, now):
            self.barren = 0 if reclaimed_kb else self.barren + 1
            return [Decision("event", self.name, event="streak")] if self.barren == self.settings.n else []

        def alarmed(self):
            return self.barren >= self.settings.n

    toy.Rule = ToyRule
    return toy


TOY_PROFILE = """\
[device]
id = x

[rule:t]
type = toy
n = {n}

[commands]
key_file = /etc/k
settable = t.n
"""


def test_a_toy_rule_type_registered_in_the_table_works_end_to_end(monkeypatch):
    monkeypatch.setitem(TYPES, "toy", _toy_module())

    profile = loads(TOY_PROFILE.format(n=3))
    [rule] = profile.rules
    assert (rule.type, rule.n, rule.generation) == ("toy", 3, 1)
    assert "  t: every 3 ticks, generation 1" in describe(profile).splitlines()
    assert profile.commands.settable == ("t.n",)   # the table's keys are settable keys too

    policy = Policy(profile.rules, start=0.0, budget=1.0)
    fired = []
    for t in range(1, 10):
        for d in policy.decide(sample(), [], float(t)):
            fired.append((t, d.action, d.rule, d.generation, d.fields))
            assert policy.record(d, 0, 0.001, float(t)) == ([Decision("event", "t", event="streak")]
                                                            if t == 9 else [])
    assert fired == [(t, "collect", "t", 1, (("headroom_kb", 80000),)) for t in (3, 6, 9)]
    assert policy.state()["low"] == ["t"]

    with pytest.raises(ProfileError) as info:   # the type's own "can never act" check, located
        loads(TOY_PROFILE.format(n=1), "/p.ini")
    assert [str(p) for p in info.value.problems] == ["/p.ini:6: [rule:t] n: 1 would collect on every tick"]


def test_without_its_table_line_the_toy_type_is_refused():
    with pytest.raises(ProfileError) as info:
        loads(TOY_PROFILE.format(n=3), "/p.ini")
    assert str(info.value.problems[0]).startswith(
        "/p.ini:5: [rule:t] type: 'toy' is not one of %s" % ", ".join(TYPES))


def test_the_agent_imports_no_heavy_module_for_the_rules_and_profile():
    code = ("import sys, agent.profile, agent.rules; "
            "print(sorted(m for m in ('hashlib', 'zipfile', 'difflib') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
