"""Small things users ran into: help that names every report URL and its own program,
a reason passed where the generation goes."""

import subprocess
import sys

from tests.conftest import EMULATOR_PROFILE, agent_cmd, run_process


def test_run_help_names_every_kind_of_report_url(env_with_repo):
    done = run_process(agent_cmd("run", "--help"), env=env_with_repo)
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for scheme in ("stdout:", "file:///", "mqtt://", "mqtts://", "serial:///", "drm:", "memory:"):
        assert scheme in text, scheme
    assert "-- -m MODULE" in text


def test_a_bundles_help_names_the_bundle(tmp_path):
    from tests.integration.test_bundle import ENV, build
    pyz = build(tmp_path, 1883, "dev-help", "3.10")
    done = subprocess.run([sys.executable, "-I", pyz, "--help"], env=ENV, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert "usage: python3 gc-agent-dev-help.pyz" in done.stdout
    assert "python -m agent" not in done.stdout


def test_collect_with_a_reason_where_the_generation_goes_says_so(env_with_repo):
    code = ("import agent, logging\nlogging.basicConfig()\n"
            "print(type(agent.collect('after-import')).__name__)\n")
    done = run_process([sys.executable, "-c", code], env=env_with_repo)
    assert done.stdout == "int\n"
    assert "the first argument is the generation (0, 1 or 2); write collect(2, " \
           "reason='after-import')" in done.stderr


def test_a_script_shorter_than_one_tick_still_gets_telemetry(tmp_path, env_with_repo):
    import json
    profile = tmp_path / "slow.ini"
    profile.write_text("[device]\nid = d\nmemory_limit = 64M\n[agent]\ntick = 1m\n"
                       "[rule:p]\ntype = periodic\nevery = 1h\n")
    script = tmp_path / "quick.py"
    script.write_text("print('quick')\n")
    out = tmp_path / "m.jsonl"
    done = run_process(agent_cmd("run", "--profile", str(profile), "--report", "file://%s" % out,
                                 "--", str(script)), env=env_with_repo)
    assert (done.returncode, done.stdout) == (0, "quick\n"), done.stderr
    got = [json.loads(line) for line in out.read_text().splitlines()]
    telemetry = [m for m in got if m["type"] == "telemetry"]
    assert len(telemetry) == 1 and telemetry[0]["samples"][0]["rss_kb"] > 0


def test_a_report_path_under_a_file_names_the_file(tmp_path, env_with_repo):
    (tmp_path / "logs").write_text("a file, not a folder")
    script = tmp_path / "s.py"
    script.write_text("print('ran')\n")
    done = run_process(agent_cmd("run", "--profile", EMULATOR_PROFILE, "--report",
                                 "file://%s/logs/gc/m.jsonl" % tmp_path, "--", str(script)),
                       env=env_with_repo)
    assert (done.returncode, done.stdout) == (0, "ran\n")
    assert "%s/logs is a file, not a directory" % tmp_path in done.stderr
    assert "File exists" not in done.stderr
