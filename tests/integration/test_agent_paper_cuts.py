"""The agent's command line and API where a new user first meets them."""

import os
import subprocess
import sys

from tests.conftest import REPO
from tests.integration.test_bundle import ENV, build


def agent(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60, **kw)


def test_run_help_lists_every_report_url_scheme():
    done = agent("run", "--help")
    text = " ".join(done.stdout.split())   # argparse wraps where the terminal ends
    for url in ("stdout:", "file:///", "mqtt://", "mqtts://", "serial:///", "drm:"):
        assert url in text, url + " missing from:\n" + done.stdout


def test_the_bundles_help_says_how_to_run_the_bundle(tmp_path):
    pyz = build(tmp_path, 1883, "dev-help", "3.10")
    for command in ([], ["run"]):
        done = subprocess.run([sys.executable, "-I", pyz, *command, "--help"], env=ENV,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "python3 gc-agent-dev-help.pyz" in done.stdout, done.stdout
        assert "python -m agent" not in done.stdout, done.stdout


def test_a_report_file_under_a_file_says_so(tmp_path):
    plain = tmp_path / "notes.txt"
    plain.write_text("a file, not a folder\n")
    script = tmp_path / "app.py"
    script.write_text("print('app ran')\n")
    done = agent("run", "--profile", os.path.join(REPO, "device_profiles", "emulator.ini"),
                 "--report", "file://%s/x.jsonl" % plain, "--", str(script))
    assert done.returncode == 0 and done.stdout == "app ran\n", done.stderr
    assert "%s is a file, not a directory" % plain in done.stderr, done.stderr
    assert "File exists" not in done.stderr


def test_collect_after_stop_says_what_it_does_and_never_raises(tmp_path):
    code = ("import agent, gc, logging\n"
            "assert agent.start(%r, 'file://%s/m.jsonl')\n"
            "agent.stop()\n"
            "print(agent.collect('x'))\n"
            "print(agent.collect(object()))\n"
            % (os.path.join(REPO, "device_profiles", "emulator.ini"), tmp_path))
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert [int(n) >= 0 for n in done.stdout.split()] == [True, True]
    warnings = [ln for ln in done.stderr.splitlines() if "collect(" in ln]
    assert len(warnings) == 2, done.stderr
    assert "reason='x'" in warnings[0] and "the agent is not running" in warnings[0], warnings
    assert "the agent is not running" in warnings[1], warnings
