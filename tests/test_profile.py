"""Profiles: loading, extends, every problem located, the hash, device ids, `check`."""

import glob
import os
import re
import subprocess
import sys
import textwrap

import pytest

from agent.errors import ProfileError
from agent.profile import load, loads, resolve_device_id
from agent.units import Amount

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MINIMAL = """\
[device]
id = gw-1

[rule:periodic]
type = periodic
every = 15m
"""

FULL = """\
; a profile with every section
[profile]
description = an IX20 at a customer site

[device]
id = ix20-0042
model = IX20
memory_limit = 40M
ram = 256M
python = 3.6.10

[agent]
tick = 500ms
budget = 5%
budget_window = 2m
signals = no
probe = proc

[gc]
thresholds = 700, 10, 10
freeze_after_start = 30s

[rule:periodic]
type = periodic
every = 15m
generation = 1

[rule:low-memory]
type = low_memory
below = 15%
rearm_above = 25%
escalate = collect2, callbacks, event
step_every = 10s
min_reclaim = 1M
leak_after = 4
backoff_max = 5m

[rule:idle]
type = event
on = idle, link_down, app:client_disconnected
generation = 0
cooldown = 60s
idle_cpu = 3%
idle_for = 20s

[report]
urls = stdout:, file:///tmp/gc-agent-test.jsonl
interval = 30s
batch = 5

[buffer]
ram = 128K
"""


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def line_of(text, line):
    """1-based number of the one line of `text` that reads exactly `line`."""
    lines = text.splitlines()
    assert lines.count(line) == 1, "test text must hold %r exactly once" % line
    return lines.index(line) + 1


def problems_of(text, path="/site/p.ini"):
    with pytest.raises(ProfileError) as info:
        loads(text, path)
    return info.value.problems


# --- valid profiles ----------------------------------------------------------------


def test_a_full_profile_loads_with_every_setting(tmp_path):
    path = write(tmp_path / "ix20.ini", FULL)
    profile = load(path)
    assert profile.path == path
    assert profile.device.id == "ix20-0042"
    assert profile.device.model == "IX20"
    assert profile.device.memory_limit_kb == 40 * 1024
    assert profile.device.ram_kb == 256 * 1024
    assert profile.device.python == "3.6.10"
    assert profile.agent.tick == pytest.approx(0.5)
    assert profile.agent.budget == pytest.approx(0.05)
    assert profile.agent.budget_window == pytest.approx(120.0)
    assert profile.agent.signals is False
    assert profile.agent.probe == "proc"
    assert profile.gc.thresholds == (700, 10, 10)
    assert profile.gc.freeze_after == pytest.approx(30.0)
    assert profile.report.urls == ("stdout:", "file:///tmp/gc-agent-test.jsonl")
    assert profile.report.interval == pytest.approx(30.0)
    assert profile.report.batch == 5
    assert profile.buffer.ram_bytes == 128 * 1024

    rules = {rule.name: rule for rule in profile.rules}
    assert set(rules) == {"periodic", "low-memory", "idle"}
    periodic = rules["periodic"]
    assert (periodic.type, periodic.every, periodic.generation) == ("periodic", 900.0, 1)
    low = rules["low-memory"]
    assert low.type == "low_memory"
    assert low.below == Amount(fraction=0.15)
    assert low.rearm_above == Amount(fraction=0.25)
    assert low.escalate == ("collect2", "callbacks", "event")
    assert (low.step_every, low.min_reclaim_kb, low.leak_after, low.backoff_max) == (10.0, 1024, 4, 300.0)
    idle = rules["idle"]
    assert idle.type == "event"
    assert idle.on == ("idle", "link_down", "app:client_disconnected")
    assert (idle.generation, idle.cooldown) == (0, 60.0)
    assert idle.idle_cpu == pytest.approx(0.03)
    assert idle.idle_for == pytest.approx(20.0)


def test_a_minimal_profile_gets_the_defaults():
    profile = loads(MINIMAL)
    assert profile.device.id == "gw-1"
    assert profile.device.memory_limit_kb is None   # auto
    assert profile.gc.thresholds is None            # keep the interpreter's
    assert profile.gc.freeze_after is None          # never freeze
    assert profile.agent.signals is True
    assert profile.report.urls == ("stdout:",)
    assert len(profile.rules) == 1 and profile.rules[0].every == 900.0


def test_keep_auto_and_off_words_are_understood():
    profile = loads(MINIMAL + "[gc]\nthresholds = keep\nfreeze_after_start = off\n"
                              "[agent]\nprobe = AUTO\n")
    assert profile.gc.thresholds is None
    assert profile.gc.freeze_after is None
    assert profile.agent.probe == "auto"


def test_a_disabled_rule_is_loaded_but_marked_disabled():
    profile = loads(MINIMAL + "[rule:off]\ntype = periodic\nevery = 1m\nenabled = no\n")
    enabled = {rule.name: rule.enabled for rule in profile.rules}
    assert enabled == {"periodic": True, "off": False}


def test_a_profile_without_any_rule_is_refused():
    problems = problems_of("[device]\nid = gw-1\n")
    assert len(problems) == 1
    assert "no [rule:NAME] section" in problems[0].message


# --- extends --------------------------------------------------------------------------

BASE = """\
[device]
id = base-id
model = IX20
memory_limit = 64M

[rule:periodic]
type = periodic
every = 15m
generation = 2

[rule:base-only]
type = event
on = link_down
"""


def test_extends_overrides_the_base_key_by_key(tmp_path):
    write(tmp_path / "base.ini", BASE)
    child = write(tmp_path / "child.ini", """\
        [profile]
        extends = base.ini

        [device]
        model = IX30

        [rule:periodic]
        every = 5m

        [rule:child-only]
        type = periodic
        every = 1h
        """)
    profile = load(child)
    assert profile.device.id == "base-id"                 # from the base
    assert profile.device.model == "IX30"                 # overridden
    assert profile.device.memory_limit_kb == 64 * 1024    # from the base
    rules = {rule.name: rule for rule in profile.rules}
    assert set(rules) == {"periodic", "base-only", "child-only"}
    assert rules["periodic"].every == 300.0               # overridden...
    assert rules["periodic"].generation == 2              # ...key by key
    assert rules["base-only"].on == ("link_down",)


def test_extends_is_relative_to_the_file_that_names_it(tmp_path, monkeypatch):
    # child -> ../common/mid.ini -> base.ini, which must be common/base.ini,
    # not the decoy next to the child, whatever the current directory.
    write(tmp_path / "common" / "base.ini", BASE)
    write(tmp_path / "sites" / "base.ini", "[device]\nid = decoy\n")
    write(tmp_path / "common" / "mid.ini", "[profile]\nextends = base.ini\n[device]\nmodel = EX15\n")
    child = write(tmp_path / "sites" / "child.ini", "[profile]\nextends = ../common/mid.ini\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    profile = load(child)
    assert profile.device.id == "base-id"
    assert profile.device.model == "EX15"


def test_loads_resolves_extends_relative_to_the_path_it_is_given(tmp_path):
    write(tmp_path / "base.ini", BASE)
    profile = loads("[profile]\nextends = base.ini\n", path=str(tmp_path / "child.ini"))
    assert profile.device.id == "base-id"


def test_an_extends_cycle_is_an_error_naming_the_files(tmp_path):
    a = write(tmp_path / "a.ini", "[profile]\nextends = b.ini\n" + MINIMAL)
    write(tmp_path / "b.ini", "[profile]\nextends = a.ini\n")
    with pytest.raises(ProfileError) as info:
        load(a)
    problems = info.value.problems
    assert len(problems) == 1
    assert problems[0].key == "extends"
    assert "a.ini" in problems[0].message and "b.ini" in problems[0].message


def test_a_profile_extending_itself_is_an_error(tmp_path):
    path = write(tmp_path / "self.ini", "[profile]\nextends = self.ini\n" + MINIMAL)
    with pytest.raises(ProfileError) as info:
        load(path)
    assert [p.key for p in info.value.problems] == ["extends"]


def test_a_missing_base_is_reported_at_the_extends_line(tmp_path):
    text = "; site profile\n[device]\nid = gw-1\n\n[profile]\nextends = common/missing.ini\n"
    child = write(tmp_path / "child.ini", text)
    with pytest.raises(ProfileError) as info:
        load(child)
    problems = info.value.problems
    assert len(problems) == 1
    problem = problems[0]
    assert (problem.path, problem.line) == (child, line_of(text, "extends = common/missing.ini"))
    assert (problem.section, problem.key) == ("profile", "extends")
    assert "missing.ini" in problem.message
    assert str(problem).startswith("%s:%d: [profile] extends: " % (child, problem.line))


def test_a_problem_in_the_base_is_located_in_the_base(tmp_path):
    base_text = "[device]\nid = base-id\n\n[agent]\ntik = 1s\n"
    base = write(tmp_path / "base.ini", base_text)
    child = write(tmp_path / "child.ini", "[profile]\nextends = base.ini\n" + MINIMAL)
    with pytest.raises(ProfileError) as info:
        load(child)
    [problem] = info.value.problems
    assert (problem.path, problem.line, problem.key) == (base, line_of(base_text, "tik = 1s"), "tik")


def test_an_unreadable_profile_is_a_profile_error(tmp_path):
    with pytest.raises(ProfileError) as info:
        load(str(tmp_path / "nope.ini"))
    [problem] = info.value.problems
    assert "cannot read profile" in problem.message


def test_a_profile_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.ini"
    path.write_bytes(b"[device]\nid = gw-1\nmodel = caf\xe9\n")
    with pytest.raises(ProfileError) as info:
        load(str(path))
    [problem] = info.value.problems
    assert problem.line == 3
    assert "UTF-8" in problem.message


# --- every problem at once, located --------------------------------------------------

MANY_PROBLEMS = """\
; every kind of mistake, once
[device]
model = IX20
memory_limit = 40Q

[agent]
tik = 1s

[rule:periodic]
type = periodic
every = 15m
below = 10%

[rule:low]
type = low_memory
below = 25%
rearm_above = 20%

[rule:idle]
type = event
on = idle
idle_cpu = 0%

[reprot]
urls = stdout:
"""


def test_every_problem_is_reported_at_once_with_its_line():
    path = "/site/many.ini"
    problems = problems_of(MANY_PROBLEMS, path)
    found = {(p.section, p.key): p for p in problems}
    assert len(found) == len(problems) == 7

    def check(section, key, line, *words):
        problem = found[(section, key)]
        assert problem.path == path
        assert problem.line == line, str(problem)
        for word in words:
            assert word in problem.message, str(problem)
        where = "[%s] %s" % (section, key) if key else "[%s]" % section
        assert str(problem) == "%s:%d: %s: %s" % (path, line, where, problem.message)

    text = MANY_PROBLEMS
    check("agent", "tik", line_of(text, "tik = 1s"), "unknown key", "did you mean tick?")
    check("device", "memory_limit", line_of(text, "memory_limit = 40Q"), "'40Q'", "not a size")
    check("device", "id", line_of(text, "[device]"), "missing")
    check("reprot", "", line_of(text, "[reprot]"), "unknown section", "report")
    check("rule:periodic", "below", line_of(text, "below = 10%"), "periodic", "low_memory")
    check("rule:low", "rearm_above", line_of(text, "rearm_above = 20%"), "20%", "25%", "above")
    check("rule:idle", "idle_cpu", line_of(text, "idle_cpu = 0%"), "0%", "idle")


def test_a_profile_without_a_device_section_misses_the_device_id():
    problems = problems_of("[rule:p]\ntype = periodic\nevery = 1m\n")
    assert [(p.line, p.section, p.key) for p in problems] == [(1, "device", "id")]
    assert "missing" in problems[0].message


def test_the_default_rearm_above_must_also_be_above_below():
    text = "[device]\nid = a\n[rule:low]\ntype = low_memory\nbelow = 30%\n"
    [problem] = problems_of(text)
    assert (problem.key, problem.line) == ("rearm_above", line_of(text, "[rule:low]"))


@pytest.mark.parametrize("key_line, key, words", [
    ("type = evnt", "type", ["'evnt'", "did you mean event?"]),
    ("generation = 3", "generation", ["out of range"]),
    ("cooldown = soon", "cooldown", ["not a duration"]),
    ("on = idel", "on", ["unknown trigger 'idel'", "did you mean idle?"]),
    ("on = app:", "on", ["names no application event"]),
    ("large_free = 1M", "large_free", ["has no effect", "large_free"]),
])
def test_bad_event_rule_values_are_located(key_line, key, words):
    lines = ["[device]", "id = gw-1", "", "[rule:ev]", "type = event", "on = app:x", "cooldown = 1s"]
    base_key = key_line.split(" =")[0]
    lines = [ln for ln in lines if not ln.startswith(base_key + " =")]
    lines.append(key_line)
    text = "\n".join(lines) + "\n"
    problems = problems_of(text)
    assert [(p.key, p.line) for p in problems] == [(key, line_of(text, key_line))]
    for word in words:
        assert word in problems[0].message


@pytest.mark.parametrize("section_text, key, words", [
    ("[gc]\nthresholds = 700, 10", "thresholds", ["three whole numbers"]),
    ("[agent]\nbudget = 0%", "budget", ["above 0%"]),
    ("[agent]\nprobe = prco", "probe", ["did you mean proc?"]),
    ("[agent]\nsignals = maybe", "signals", ["yes or no"]),
    ("[report]\nurls = gopher://x", "urls", ["unknown report URL scheme"]),
    ("[report]\nbatch = 0", "batch", ["out of range"]),
    ("[buffer]\nram = 0", "ram", ["larger than zero"]),
    ("[device]\nmemory_limit = 512K", "memory_limit", ["below 1M"]),
])
def test_bad_values_in_other_sections_are_located(section_text, key, words):
    text = "[rule:p]\ntype = periodic\nevery = 1m\n" + section_text + "\n"
    if not section_text.startswith("[device]"):
        text = "[device]\nid = gw-1\n" + text
    else:
        text = text.replace("[device]\n", "[device]\nid = gw-1\n")
    problems = problems_of(text)
    assert [p.key for p in problems] == [key]
    assert problems[0].line == len(text.splitlines())   # the value is on the last line
    for word in words:
        assert word in problems[0].message


def test_a_key_set_twice_is_reported_at_the_second():
    text = "[device]\nid = a\nmodel = IX20\nid = b\n"
    [problem] = problems_of(text)
    assert (problem.key, problem.line) == ("id", 4)
    assert "twice" in problem.message


def test_text_before_the_first_section_is_located():
    text = "id = gw-1\n" + MINIMAL
    [problem] = problems_of(text)
    assert problem.line == 1
    assert "before the first [section]" in problem.message


def test_an_unknown_device_id_template_is_refused():
    text = MINIMAL.replace("id = gw-1", "id = gw-${mac}")
    [problem] = problems_of(text)
    assert (problem.section, problem.key, problem.line) == ("device", "id", 2)
    assert "${mac}" in problem.message


# --- the profile hash --------------------------------------------------------------------

SETTINGS = """\
[device]
id = gw-1
model = IX20

[report]
urls = stdout:
    file:///tmp/out.jsonl

[rule:periodic]
type = periodic
every = 15m
"""

SAME_SETTINGS_REFORMATTED = """\
; the same settings, written differently
[device]
ID=gw-1          ; an inline comment
Model   :   IX20

# another comment

[report]
urls = stdout:
          file:///tmp/out.jsonl
[rule:periodic]
type=periodic
every  =  15m
"""


def test_the_hash_ignores_formatting():
    assert loads(SETTINGS).sha256 == loads(SAME_SETTINGS_REFORMATTED).sha256


def test_the_hash_is_a_sha256_hex_digest():
    assert re.match(r"^[0-9a-f]{64}$", loads(SETTINGS).sha256)


@pytest.mark.parametrize("old, new", [
    ("every = 15m", "every = 16m"),
    ("model = IX20", "model = IX30"),
    ("id = gw-1", "id = gw-2"),
    ("type = periodic", "type = periodic\ngeneration = 1"),
])
def test_the_hash_changes_with_the_settings(old, new):
    assert loads(SETTINGS).sha256 != loads(SETTINGS.replace(old, new)).sha256


def test_the_hash_covers_the_settings_inherited_through_extends(tmp_path):
    write(tmp_path / "base.ini", SETTINGS)
    child = write(tmp_path / "child.ini", "[profile]\nextends = base.ini\n")
    assert load(child).sha256 == loads(SETTINGS).sha256
    write(tmp_path / "base.ini", SETTINGS.replace("every = 15m", "every = 30m"))
    assert load(child).sha256 != loads(SETTINGS).sha256


# --- device ids ------------------------------------------------------------------------------


def profile_with_id(device_id):
    return loads(MINIMAL.replace("id = gw-1", "id = " + device_id), "/site/p.ini")


def test_hostname_in_the_device_id_is_the_short_host_name(monkeypatch):
    monkeypatch.setattr(os, "uname", lambda: ("Linux", "gateway-7.example.com", "6", "#1", "armv7l"))
    assert resolve_device_id(profile_with_id("gw-${hostname}"), environ={}) == "gw-gateway-7"


def test_environment_variables_fill_the_device_id():
    profile = profile_with_id("site-${env:SITE}-${env:UNIT}")
    assert resolve_device_id(profile, environ={"SITE": "north", "UNIT": "7"}) == "site-north-7"


def test_a_literal_device_id_is_kept():
    assert resolve_device_id(profile_with_id("ix20-0042"), environ={}) == "ix20-0042"


def test_an_unset_environment_variable_is_a_profile_error_naming_it():
    with pytest.raises(ProfileError) as info:
        resolve_device_id(profile_with_id("gw-${env:GC_AGENT_UNSET_VAR}"), environ={})
    [problem] = info.value.problems
    assert (problem.path, problem.section, problem.key) == ("/site/p.ini", "device", "id")
    assert "GC_AGENT_UNSET_VAR" in problem.message


def test_a_filled_in_device_id_is_always_a_usable_id():
    device_id = resolve_device_id(profile_with_id("gw-${env:SITE}"),
                                  environ={"SITE": "Main Street/№ 5" + "x" * 80})
    assert re.match(r"^[A-Za-z0-9._-]{1,64}$", device_id)
    assert device_id.startswith("gw-Main")


# --- python -m agent check, as a real subprocess --------------------------------------------


def run_check(*paths):
    return subprocess.run([sys.executable, "-m", "agent", "check", *paths], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_check_accepts_every_shipped_device_profile():
    paths = sorted(glob.glob(os.path.join(REPO, "device_profiles", "*.ini")))
    assert paths, "no device_profiles/*.ini to check"
    result = run_check(*paths)
    assert result.returncode == 0, result.stderr
CHECK_THREE_PROBLEMS = """\
[device]
model = IX20
memory_limit = 40Q

[agent]
tick = 1s
bugdet = 5%

[rule:periodic]
type = periodic
every = 15m
"""


def test_check_reports_each_problem_on_one_line_and_exits_2(tmp_path):
    path = write(tmp_path / "bad.ini", CHECK_THREE_PROBLEMS)
    result = run_check(path)
    assert result.returncode == 2
    lines = [ln for ln in result.stderr.splitlines() if re.match(r"^.+:\d+: ", ln)]
    assert len(lines) == 3, result.stderr
    text = CHECK_THREE_PROBLEMS
    expected = {
        "memory_limit": "%s:%d: [device] memory_limit: " % (path, line_of(text, "memory_limit = 40Q")),
        "id": "%s:%d: [device] id: " % (path, line_of(text, "[device]")),
        "bugdet": "%s:%d: [agent] bugdet: " % (path, line_of(text, "bugdet = 5%")),
    }
    for key, prefix in expected.items():
        matching = [ln for ln in lines if ln.startswith(prefix)]
        assert len(matching) == 1, (key, result.stderr)
    assert "did you mean budget?" in result.stderr


def test_check_exits_2_when_one_of_several_profiles_is_bad(tmp_path):
    good = write(tmp_path / "good.ini", MINIMAL)
    bad = write(tmp_path / "bad.ini", CHECK_THREE_PROBLEMS)
    result = run_check(good, bad)
    assert result.returncode == 2
    assert good not in result.stderr
    assert bad in result.stderr


def test_problem_lines_are_right_after_a_header_with_a_comment_and_for_a_nul_in_extends(tmp_path):
    text = "[device]\nid = x\n\n[agent] ; timing\ntik = 1s\n[rule:p]\ntype = periodic\nevery = 1m\n"
    with pytest.raises(ProfileError) as err:
        loads(text, str(tmp_path / "p.ini"))
    assert [(p.line, p.key) for p in err.value.problems] == [(5, "tik")]
    with pytest.raises(ProfileError) as err:
        loads("[profile]\nextends = a\x00b\n" + text, str(tmp_path / "q.ini"))
    assert err.value.problems[0].line == 2 and err.value.problems[0].key == "extends"


def test_mixed_units_that_invert_the_hysteresis_on_the_named_ceiling_are_refused(tmp_path):
    text = ("[device]\nid = x\nmemory_limit = 40M\n[rule:low]\ntype = low_memory\nbelow = 10M\n"
            "rearm_above = 20%\n")
    with pytest.raises(ProfileError) as err:
        loads(text, str(tmp_path / "p.ini"))
    [problem] = err.value.problems
    assert (problem.line, problem.key) == (7, "rearm_above")
    assert "8M" in problem.message and "never re-arm" in problem.message
    assert loads(text.replace("20%", "30%"), str(tmp_path / "p.ini")).rules[0].name == "low"
