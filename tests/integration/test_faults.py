"""Faults inside the agent never reach the application.

A sitecustomize module, imported by the interpreter at start-up, breaks the
agent from outside (no test hooks in the product): the rules raise on every
tick, or the transport raises on every send.
"""

import sys
import textwrap

import pytest

from tests.conftest import EMULATOR_PROFILE, REPO, agent_cmd, read_jsonl, run_process

FAULTS = {
    "rules": """
        import agent.rules
        def broken(self, *args, **kwargs):
            raise RuntimeError("injected rule fault")
        agent.rules.Policy.decide = broken
    """,
    "transport": """
        import agent.transports.file
        def broken(self, item):
            raise RuntimeError("injected transport fault")
        agent.transports.file.FileTransport.send = broken
    """,
    "probe": """
        import agent.probes
        def broken(self):
            raise OSError("injected probe fault")
        agent.probes.Probe.sample = broken
    """,
}

APP = """
    import sys, time
    print("app start", sys.argv[1:])
    sys.stderr.write("app warning\\n")
    garbage = []
    for i in range(20):
        x = {"i": i}; x["self"] = x
        time.sleep(0.1)
    print("app end")
    sys.exit(5)
"""


@pytest.mark.parametrize("part", sorted(FAULTS))
def test_injected_fault_leaves_the_script_untouched(tmp_path, part):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(FAULTS[part]))
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(APP))
    env = {"PYTHONPATH": "%s:%s" % (site, REPO), "PATH": "/usr/bin:/bin"}
    out = tmp_path / "m.jsonl"
    plain = run_process([sys.executable, str(script), "a"], env=env)
    wrapped = run_process(agent_cmd("run", "--profile", EMULATOR_PROFILE, "--report",
                                    "file://%s" % out, "--", str(script), "a"), env=env)
    assert (wrapped.stdout, wrapped.stderr, wrapped.returncode) == \
        (plain.stdout, plain.stderr, plain.returncode) == \
        ("app start ['a']\napp end\n", "app warning\n", 5)
    if part == "transport":
        assert not out.exists() or out.read_text() == ""
        return
    got = read_jsonl(out)
    errors = [m for m in got if m.get("event") == "error" and part in m["part"]]
    assert errors and "injected" in errors[0]["error"]
    assert got[-1]["state"] == "offline"   # the rest of the agent kept working
