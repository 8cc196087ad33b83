"""[gc] tune, pause_budget and memory_target: read, defaulted, and refused with file:line."""

import glob
import os

import pytest

from agent.errors import ProfileError
from agent.profile import load, loads
from tests.conftest import REPO

MINIMAL = "[device]\nid = gw-1\n[rule:p]\ntype = periodic\nevery = 15m\n"


def test_tune_is_off_by_default_with_a_2ms_budget_and_a_70_percent_target():
    gc = loads(MINIMAL).gc
    assert (gc.tune, gc.pause_budget, gc.memory_target) == ("off", 0.002, 0.70)


def test_tune_auto_with_its_settings():
    gc = loads(MINIMAL + "[gc]\ntune = Auto\npause_budget = 5ms\nmemory_target = 60%\n").gc
    assert (gc.tune, gc.pause_budget, gc.memory_target) == ("auto", 0.005, 0.60)


@pytest.mark.parametrize("line, key, words", [
    ("tune = sometimes", "tune", ["off, auto"]),
    ("tune = autp", "tune", ["did you mean auto?"]),
    ("pause_budget = fast", "pause_budget", ["not a duration"]),
    ("pause_budget = 0ms", "pause_budget", ["longer than zero"]),
    ("pause_budget = 1m", "pause_budget", ["over 10s"]),
    ("memory_target = 120%", "memory_target", ["between 0% and 100%"]),
    ("memory_target = 5%", "memory_target", ["between 10% and 95%"]),
    ("memory_target = 40M", "memory_target", ["percentage"]),
])
def test_bad_tuner_settings_are_located(line, key, words):
    text = MINIMAL + "[gc]\n" + line + "\n"
    with pytest.raises(ProfileError) as info:
        loads(text, "/site/p.ini")
    [problem] = info.value.problems
    assert (problem.key, problem.line) == (key, len(text.splitlines()))
    assert str(problem).startswith("/site/p.ini:%d: [gc] %s:" % (problem.line, key))
    for word in words:
        assert word in problem.message


def test_stock_profiles_tune_only_where_the_issue_says():
    profiles = {os.path.relpath(p, os.path.join(REPO, "device_profiles")): load(p)
                for p in glob.glob(os.path.join(REPO, "device_profiles", "**", "*.ini"),
                                   recursive=True)}
    auto = sorted(name for name, p in profiles.items() if p.gc.tune == "auto")
    assert "emulator.ini" in auto and os.path.join("examples", "auto.ini") in auto
    models = [name for name in profiles if os.sep not in name and name != "emulator.ini"]
    assert models and all(profiles[name].gc.tune == "off" for name in models)
