"""`python -m agent run -- SCRIPT ARGS` behaves exactly like `python SCRIPT ARGS`."""

import signal
import subprocess
import sys
import textwrap
import time

import pytest

from agent import messages
from tests.conftest import EMULATOR_PROFILE, agent_cmd, read_jsonl, run_process

SCRIPTS = {
    "prints": """
        import os, sys
        print("out", sys.argv, __name__, __file__, sys.path[0] == os.path.dirname(__file__))
        print("err line", file=sys.stderr)
        import helper   # found next to the script, through sys.path[0]
        print(helper.VALUE, __spec__, __package__)
        class Thing: pass
        import pickle; print(type(pickle.loads(pickle.dumps(Thing()))).__module__)
        sys.exit(3)
    """,
    "raises": """
        def inner():
            raise ValueError("broken on purpose")
        print("before")
        inner()
    """,
    "exit_message": """
        import sys
        sys.exit("fatal: configuration missing")
    """,
    "plain": """
        print("done")
    """,
}


@pytest.fixture
def script_dir(tmp_path):
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "helper.py").write_text("VALUE = 42\n")
    for name, body in SCRIPTS.items():
        (folder / (name + ".py")).write_text(textwrap.dedent(body))
    return folder


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_output_argv_and_status_are_untouched(script_dir, tmp_path, env_with_repo, name):
    script = str(script_dir / (name + ".py"))
    out = tmp_path / "messages.jsonl"
    plain = run_process([sys.executable, script, "one", "two words"], cwd=str(tmp_path))
    wrapped = run_process(agent_cmd("run", "--profile", EMULATOR_PROFILE,
                                    "--report", "file://%s" % out, "--", script, "one", "two words"),
                          cwd=str(tmp_path), env=env_with_repo)
    assert wrapped.stdout == plain.stdout
    assert wrapped.stderr == plain.stderr
    assert wrapped.returncode == plain.returncode
    assert read_jsonl(out), "the agent reported nothing"


def test_missing_script_fails_like_python(tmp_path, env_with_repo):
    plain = run_process([sys.executable, "nope.py"], cwd=str(tmp_path))
    wrapped = run_process(agent_cmd("run", "--profile", EMULATOR_PROFILE, "--report",
                                    "file://%s/m.jsonl" % tmp_path, "--", "nope.py"),
                          cwd=str(tmp_path), env=env_with_repo)
    assert (wrapped.returncode, plain.returncode) == (2, 2)
    assert "nope.py" in wrapped.stderr and "No such file" in wrapped.stderr


def test_reports_follow_schema_v1(script_dir, tmp_path, env_with_repo):
    """status online first, then telemetry and events, status offline last; seq has no gap."""
    out = tmp_path / "messages.jsonl"
    script = tmp_path / "work.py"
    script.write_text("import agent, gc, time\n"
                      "for i in range(12):\n"
                      "    x = []; x.append(x); time.sleep(0.25)\n"
                      "agent.event('checkpoint', step=12)\n"
                      "time.sleep(0.5)\n")
    done = run_process(agent_cmd("run", "--profile", EMULATOR_PROFILE, "--report",
                                 "file://%s" % out, "--", str(script)), env=env_with_repo)
    assert done.returncode == 0, done.stderr
    got = read_jsonl(out)
    for message in got:
        assert messages.validate(message) == [], message
    assert [m["seq"] for m in got] == list(range(1, len(got) + 1))
    assert len({m["boot"] for m in got}) == 1
    assert (got[0]["type"], got[0]["state"]) == ("status", "online")
    assert (got[-1]["type"], got[-1]["state"]) == ("status", "offline")
    assert got[0]["gc_flavour"].startswith(("generational", "incremental", "free-threaded"))
    assert got[0]["ceiling_kb"] == 64 * 1024   # emulator.ini: memory_limit = 64M
    telemetry = [m for m in got if m["type"] == "telemetry"]
    assert telemetry and all(len(m["samples"]) <= 5 for m in telemetry)
    assert sum(len(m["samples"]) for m in telemetry) >= 3
    events = {m["event"]: m for m in got if m["type"] == "event"}
    assert events["app"]["name"] == "checkpoint" and events["app"]["data"] == {"step": 12}
    collect = next(m for m in got if m["type"] == "event" and m["event"] == "collect")
    assert {"rule", "generation", "collected", "duration_ms", "rss_before_kb",
            "rss_after_kb"} <= set(collect)
    # tune = auto: thresholds set at start, gc.freeze() once start-up RSS settled
    tunes = [m for m in got if m.get("event") == "tune"]
    assert {"thresholds", "freeze"} <= {m["what"] for m in tunes}
    assert all({"before", "after", "why"} <= set(m) for m in tunes)


def test_report_stdout_prints_json_lines(tmp_path, env_with_repo):
    script = tmp_path / "s.py"
    script.write_text("print('app says hi')\n")
    done = run_process(agent_cmd("run", "--profile", EMULATOR_PROFILE, "--report", "stdout:",
                                 "--", str(script)), env=env_with_repo)
    lines = done.stdout.splitlines()
    assert "app says hi" in lines
    import json
    reported = [json.loads(line) for line in lines if line.startswith("{")]
    assert reported[0]["type"] == "status"
    assert reported[-1]["state"] == "offline"
    assert all(messages.validate(m) == [] for m in reported)


def test_invalid_profile_warns_and_still_runs_the_script(tmp_path, env_with_repo):
    profile = tmp_path / "bad.ini"
    profile.write_text("[device]\nid = x\nmemory_limt = 40M\n")
    script = tmp_path / "s.py"
    script.write_text("print('still running'); raise SystemExit(4)\n")
    done = run_process(agent_cmd("run", "--profile", str(profile), "--", str(script)),
                       env=env_with_repo)
    assert done.returncode == 4
    assert done.stdout == "still running\n"
    assert "bad.ini:3: [device] memory_limt: unknown key; did you mean memory_limit?" in done.stderr
    assert "without the agent" in done.stderr
    strict = run_process(agent_cmd("run", "--strict", "--profile", str(profile), "--", str(script)),
                         env=env_with_repo)
    assert strict.returncode == 2 and strict.stdout == ""


def _start_alone(tmp_path, env):
    out = tmp_path / "alone.jsonl"
    proc = subprocess.Popen(agent_cmd("run", "--profile", EMULATOR_PROFILE, "--report",
                                      "file://%s" % out), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (out.exists() and out.read_text()):
        time.sleep(0.05)
    return proc, out


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_agent_alone_stops_cleanly_on_signal(tmp_path, env_with_repo, signum):
    proc, out = _start_alone(tmp_path, env_with_repo)
    time.sleep(0.6)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    got = read_jsonl(out)
    assert got[-1]["type"] == "status" and got[-1]["state"] == "offline"
    assert any(m["type"] == "telemetry" for m in got)


def test_sigusr1_runs_a_full_collection(tmp_path, env_with_repo):
    proc, out = _start_alone(tmp_path, env_with_repo)
    proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 20
    found = []
    while time.monotonic() < deadline and not found:
        time.sleep(0.1)
        found = [m for m in read_jsonl(out) if m.get("event") == "collect" and m["rule"] == "signal"]
    proc.terminate()
    proc.communicate(timeout=20)
    assert found and found[0]["generation"] == 2


def test_sigterm_with_script_reports_offline_and_dies_like_python(tmp_path, env_with_repo):
    out = tmp_path / "m.jsonl"
    script = tmp_path / "sleeper.py"
    script.write_text("import time\nprint('up', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen(agent_cmd("run", "--profile", EMULATOR_PROFILE, "--report",
                                      "file://%s" % out, "--", str(script)),
                            env=env_with_repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"up\n"
    proc.terminate()
    proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGTERM   # what `python sleeper.py` gives
    assert read_jsonl(out)[-1]["state"] == "offline"


def test_version_from_any_directory(tmp_path, env_with_repo):
    done = run_process(agent_cmd("--version"), cwd=str(tmp_path), env=env_with_repo)
    assert done.returncode == 0 and done.stdout.startswith("gc-agent 0.")


@pytest.mark.parametrize("target", ["folder", "app.pyz", "no-main"])
def test_directories_and_zipapps_run_like_python(tmp_path, env_with_repo, target):
    import zipapp
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "__main__.py").write_text(
        "import sys\nprint(__name__, sys.argv, sys.path[0] == __file__.rsplit('/', 1)[0])\n"
        "def f():\n    raise ValueError('from __main__')\nf()\n")
    zipapp.create_archive(str(folder), str(tmp_path / "app.pyz"))
    (tmp_path / "no-main").mkdir()
    plain = run_process([sys.executable, target, "x"], cwd=str(tmp_path))
    wrapped = run_process(agent_cmd("run", "--profile", EMULATOR_PROFILE, "--report",
                                    "file://%s/m.jsonl" % tmp_path, "--", target, "x"),
                          cwd=str(tmp_path), env=env_with_repo)
    assert (wrapped.stdout, wrapped.stderr, wrapped.returncode) == \
        (plain.stdout, plain.stderr, plain.returncode)
    assert plain.returncode == 1 and plain.stderr


def test_start_up_problems_are_said_once_and_the_script_still_runs(tmp_path, env_with_repo):
    script = tmp_path / "s.py"
    script.write_text("print('ran')\n")
    done = run_process(agent_cmd("run", "--profile", EMULATOR_PROFILE, "--log", "/proc/nope/log",
                                 "--report", "file:///proc/nope/m.jsonl", "--", str(script)),
                       env=env_with_repo)
    assert (done.returncode, done.stdout) == (0, "ran\n")
    assert "--log /proc/nope/log: No such file or directory" in done.stderr
    assert "report file:///proc/nope/m.jsonl: " in done.stderr and "keep retrying" in done.stderr


def test_strict_refuses_a_device_id_that_cannot_be_filled_in(tmp_path, env_with_repo):
    profile = tmp_path / "p.ini"
    profile.write_text("[device]\nid = ${env:GCAGENT_UNSET_FOR_TEST}\n"
                       "[rule:p]\ntype = periodic\nevery = 1m\n")
    script = tmp_path / "s.py"
    script.write_text("print('ran')\n")
    done = run_process(agent_cmd("run", "--strict", "--profile", str(profile), "--", str(script)),
                       env=env_with_repo)
    assert done.returncode == 2 and done.stdout == ""
    assert "GCAGENT_UNSET_FOR_TEST is not set" in done.stderr


def test_a_missing_script_starts_no_agent(tmp_path, env_with_repo):
    done = run_process(agent_cmd("run", "--profile", EMULATOR_PROFILE, "--report",
                                 "file://%s/m.jsonl" % tmp_path, "--", "missing.py"),
                       cwd=str(tmp_path), env=env_with_repo)
    assert done.returncode == 2
    assert not (tmp_path / "m.jsonl").exists()


def test_relative_file_urls_are_refused(env_with_repo):
    done = run_process(agent_cmd("run", "--profile", EMULATOR_PROFILE, "--report", "file:out.jsonl"),
                       env=env_with_repo)
    assert done.returncode == 2 and "three slashes and an absolute path" in done.stderr


MODULES = {
    "greet.py": """
        import os, sys
        print(sys.argv, repr(sys.path[0]), __name__, __file__, __spec__.name, __package__)
        import helper   # found through sys.path[0], the working directory
        print(helper.VALUE, file=sys.stderr)
        sys.exit(3)
    """,
    "helper.py": "VALUE = 42\n",
    "tool/__init__.py": "",
    "tool/__main__.py": """
        import sys
        from . import core
        print(sys.argv, __name__, __spec__.name, __package__)
        core.fail()
    """,
    "tool/core.py": """
        def fail():
            raise ValueError("broken on purpose")
    """,
}


@pytest.mark.parametrize("target", [["-m", "greet", "one", "two words"], ["-mgreet", "x"],
                                    ["-m", "tool", "--flag"], ["-m", "tool.core"],
                                    ["-m", "nope"], ["-m", "tool.nope"]])
def test_modules_run_like_python_dash_m(tmp_path, env_with_repo, target):
    """`run -- -m MODULE ARGS` is `python -m MODULE ARGS`: argv[0] the module's file,
    sys.path[0] the working directory, packages' __main__, tracebacks and status."""
    app = tmp_path / "app"
    for name, body in MODULES.items():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(textwrap.dedent(body))
    plain = run_process([sys.executable] + target, cwd=str(app), env=env_with_repo)
    wrapped = run_process(agent_cmd("run", "--profile", EMULATOR_PROFILE, "--report",
                                    "file://%s/m.jsonl" % tmp_path, "--", *target),
                          cwd=str(app), env=env_with_repo)
    assert (wrapped.stdout, wrapped.stderr, wrapped.returncode) == \
        (plain.stdout, plain.stderr, plain.returncode)
    assert plain.returncode in (0, 1, 3)
    if target[-1] not in ("nope", "tool.nope"):
        assert read_jsonl(tmp_path / "m.jsonl"), "the agent did not run alongside the module"


def test_dash_m_without_our_dashes_is_pointed_at_the_right_form(env_with_repo):
    done = run_process(agent_cmd("run", "--profile", EMULATOR_PROFILE, "-m", "http.server"),
                       env=env_with_repo)
    assert done.returncode == 2
    assert "-- -m http.server" in done.stderr
