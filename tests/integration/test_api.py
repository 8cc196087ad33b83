"""Embedding: agent.start() and friends, from an application's own code."""

import json
import sys
import textwrap

from tests.conftest import EMULATOR_PROFILE, run_process

APP = """
    import agent, json, sys
    freed = []
    assert agent.collect() >= 0                       # works before start: plain gc.collect
    agent.on_low_memory(lambda info: freed.append(info))
    assert agent.start(%(profile)r, report=%(report)r) is True
    assert agent.start(%(profile)r) is True           # twice: a warning, no second agent
    agent.event("checkpoint", step=1, obj=object())   # a field that is not JSON: sent by repr
    agent.event("bad name!")                          # misuse: a warning, no exception
    agent.event(42)
    agent.collect(generation=7)                       # misuse: a warning, collects generation 2
    agent.on_low_memory("not callable")
    n = agent.collect(1, reason="warmup")
    agent.stop()
    agent.stop()                                      # twice is fine
    print("app finished", n >= 0)
"""


def test_embedded_agent_reports_and_misuse_only_warns(tmp_path, env_with_repo):
    out = tmp_path / "m.jsonl"
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(APP % {"profile": EMULATOR_PROFILE,
                                             "report": "file://%s" % out}))
    done = run_process([sys.executable, str(script)], env=env_with_repo)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "app finished True\n"
    for text in ("start() called twice", "event('bad name!')", "event(42)",
                 "collect(generation=7)", "not callable"):
        assert text in done.stderr
    got = [json.loads(line) for line in out.read_text().splitlines()]
    app = [m for m in got if m.get("event") == "app"]
    assert app[0]["name"] == "checkpoint" and app[0]["data"]["step"] == 1
    assert app[0]["data"]["obj"].startswith("<object object")
    collects = [m for m in got if m.get("event") == "collect"]
    assert {(m["rule"], m["generation"]) for m in collects} >= {("manual", 2), ("warmup", 1)}
    assert got[-1]["state"] == "offline"


def test_start_with_a_bad_profile_warns_and_returns_false(tmp_path, env_with_repo):
    bad = tmp_path / "bad.ini"
    bad.write_text("[device]\nid = a b c\n[rule:x]\ntype = periodic\nevery = 0s\n")
    script = tmp_path / "app.py"
    script.write_text("import agent\nprint(agent.start(%r))\nprint(agent.collect())\n" % str(bad))
    done = run_process([sys.executable, str(script)], env=env_with_repo)
    assert done.returncode == 0
    assert done.stdout.splitlines()[0] == "False"
    assert "bad.ini:2: [device] id:" in done.stderr
    assert "bad.ini:5: [rule:x] every: '0s' must be longer than zero" in done.stderr
