"""Each workload runs alone, ends with its JSON summary, and does what its name says;
server's idle hints reach a running agent. Real subprocesses; RSS also from outside (wait4)."""

import os
import subprocess
import sys

import pytest

from tests.conftest import EMULATOR_PROFILE, REPO, agent_cmd, read_jsonl, run_process
from tools.emulator.workloads import NAMES, parse_summary, path

COMMON = {"workload", "seconds", "peak_rss_kb", "rss_kb", "gc_enabled", "collections", "python"}
SHORT = {
    "cycles": ["--rate", "5"],
    "bigfree": ["--block", "2M", "--rate", "8"],
    "leak": ["--rate", "8"],
    "server": ["--busy", "0.5", "--idle", "0.5", "--heap", "5000"],
    "gcoff": ["--rate", "5"],
    "webheap": ["--busy", "0.5", "--idle", "0.5", "--heap", "5000"],
    "relay": ["--burst", "500", "--every", "0.5", "--routes", "500"],
}


def run_alone(name: str, *args: str):
    done = run_process([sys.executable, path(name), "--seconds", "2", *args])
    assert done.returncode == 0, done.stderr
    summary = parse_summary(done.stdout)
    assert summary is not None, done.stdout
    return done, summary


@pytest.mark.parametrize("name", NAMES)
def test_runs_alone_and_ends_with_its_json_summary(name):
    done, summary = run_alone(name, *SHORT[name])
    lines = done.stdout.strip().splitlines()
    assert lines[-2].startswith(name + ": ")             # the line for people
    assert parse_summary(lines[-1]) == summary           # the JSON is the very last line
    assert set(summary) >= COMMON and summary["workload"] == name
    assert 1.9 <= summary["seconds"] < 10
    assert summary["peak_rss_kb"] > 0 and len(summary["collections"]) == 3
    assert done.stderr == ""


@pytest.mark.parametrize("name", NAMES)
def test_help_explains_how_to_run_it(name):
    shown = subprocess.run([sys.executable, path(name), "--help"], capture_output=True,
                           text=True, timeout=30)
    assert shown.returncode == 0 and "--seconds" in shown.stdout and "--quiet" in shown.stdout


def test_leak_grows_rss_and_nothing_frees_it():
    done, summary = run_alone("leak", "--rate", "8", "--quiet")
    leaked_kb = summary["leaked_mb"] * 1024
    assert leaked_kb > 10 * 1024                         # 8 MB/s for 2 s
    assert summary["rss_growth_kb"] >= 0.9 * leaked_kb
    assert done.peak_rss_kb >= summary["rss_start_kb"] + 0.9 * leaked_kb   # seen from outside


def test_bigfree_blocks_stay_in_memory_when_only_the_automatic_collector_runs():
    done, summary = run_alone("bigfree", "--block", "4M", "--rate", "8", "--quiet")
    assert summary["blocks"] >= 4 and summary["gc_enabled"] is True
    assert summary["live_blocks"] > summary["blocks"] / 2     # garbage, still held
    assert done.peak_rss_kb > summary["live_blocks"] * 4 * 1024


def test_gcoff_leaves_the_collector_off_alone_and_under_the_agent(tmp_path, env_with_repo):
    _, alone = run_alone("gcoff", "--rate", "5", "--quiet")
    assert alone["gc_enabled"] is False and alone["found_enabled"] == 0
    assert alone["collections"] == [0, 0, 0]
    out = tmp_path / "m.jsonl"
    done = run_process(agent_cmd("run", "--profile", EMULATOR_PROFILE, "--report", "file://%s" % out,
                                 "--", path("gcoff"), "--rate", "12", "--seconds", "4", "--quiet"),
                       env=env_with_repo)
    assert done.returncode == 0, done.stderr
    summary = parse_summary(done.stdout)
    assert summary["gc_enabled"] is False and summary["found_enabled"] == 0
    assert summary["collections"][2] > 0                 # the agent collected, gc stayed off
    assert any(m.get("event") == "gc_disabled" for m in read_jsonl(out))


def test_server_measures_latency_and_pauses_and_sends_no_hint_alone():
    _, summary = run_alone("server", "--busy", "0.5", "--idle", "0.5", "--heap", "5000", "--quiet")
    assert summary["requests"] > 100 and summary["busy_phases"] == 2 and summary["idle_phases"] == 2
    latency = summary["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert summary["busy_pauses"]["count"] > 0            # request handling triggers young collections
    assert sum(summary["busy_pauses"]["by_generation"]) == summary["busy_pauses"]["count"]
    assert summary["hints_sent"] == 0 and summary["agent_running"] is False


def test_server_takes_hand_set_thresholds_and_a_full_collection_at_each_idle_phase():
    # What docs/tuner.md's young-generation table is measured with.
    _, off = run_alone("server", "--busy", "0.5", "--idle", "0.5", "--heap", "5000", "--quiet",
                       "--thresholds", "0")
    assert off["busy_pauses"]["count"] == 0 and off["collections"] == [0, 0, 0]
    _, idle = run_alone("server", "--busy", "0.5", "--idle", "0.5", "--heap", "5000", "--quiet",
                        "--thresholds", "300,10,1000000", "--collect-idle")
    assert idle["full_collections"]["idle"]["explicit"] == 2     # one per idle phase
    assert idle["full_collections"]["busy"] == {"automatic": 0, "explicit": 0}
    done = run_process([sys.executable, path("server"), "--thresholds", "7x"])
    assert done.returncode == 2 and "give one to three whole numbers" in done.stderr


def test_server_idle_hints_reach_a_running_agent_and_trigger_its_rule(tmp_path, env_with_repo):
    with open(EMULATOR_PROFILE) as handle:
        text = handle.read()
    assert "on = idle, app:checkpoint" in text
    profile = tmp_path / "hinted.ini"
    profile.write_text(text.replace("on = idle, app:checkpoint", "on = app:idle")
                       .replace("idle_cpu = 5%\n", "").replace("idle_for = 5s\n", "")
                       .replace("cooldown = 10s", "cooldown = 200ms"))
    checked = run_process(agent_cmd("check", str(profile)), env=env_with_repo)
    assert checked.returncode == 0, checked.stderr
    out = tmp_path / "m.jsonl"
    done = run_process(agent_cmd("run", "--profile", str(profile), "--report", "file://%s" % out,
                                 "--", path("server"), "--seconds", "3", "--busy", "0.5",
                                 "--idle", "0.5", "--heap", "5000", "--quiet"),
                       env=env_with_repo, cwd=REPO)
    assert done.returncode == 0, done.stderr
    summary = parse_summary(done.stdout)
    assert summary["agent_running"] is True and summary["hints_sent"] == summary["idle_phases"] == 3
    got = read_jsonl(out)
    hints = [m for m in got if m.get("event") == "app" and m.get("name") == "idle"]
    assert len(hints) == 3
    collected = [m for m in got if m.get("event") == "collect" and m.get("rule") == "idle"]
    assert collected and all(m["trigger"] == "app:idle" for m in collected)
    pauses = summary["busy_pauses"]["by_generation"][2] + summary["idle_pauses"]["by_generation"][2]
    assert pauses >= len(collected)                     # the agent's collections were timed too


def test_parse_summary_picks_the_workload_line_among_agent_messages():
    text = '{"v":1,"type":"status"}\ncycles: made 1\n{"workload": "cycles", "x": 1}\n{"v":1}\n'
    assert parse_summary(text) == {"workload": "cycles", "x": 1}
    assert parse_summary("killed\n{broken") is None
    with pytest.raises(ValueError, match="one of cycles, bigfree"):
        path("nope")
    assert all(os.path.exists(path(name)) for name in NAMES)


COLLECTOR_THREAD = """
import gc, runpy, sys, threading, time
def collect():
    while True:
        time.sleep(0.1)
        gc.collect()
threading.Thread(target=collect, daemon=True).start()
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("name, args", [
    ("webheap", ["--busy", "0.5", "--idle", "0.5", "--heap", "20000", "--keep", "50"]),
    ("relay", ["--burst", "2000", "--every", "0.5", "--routes", "500"]),
])
def test_full_collections_are_told_apart_automatic_from_explicit(name, args):
    """What the tuner's tests count: full collections by phase, and whether the
    interpreter ran them (a threshold passed) or somebody called gc.collect()."""
    _, alone = run_alone(name, "--quiet", *args)
    full = alone["full_collections"]
    assert set(full) == {"busy", "idle"} and full["busy"]["explicit"] == full["idle"]["explicit"] == 0
    done = run_process([sys.executable, "-c", COLLECTOR_THREAD, path(name), "--seconds", "2",
                        "--quiet", *args])
    assert done.returncode == 0, done.stderr
    full = parse_summary(done.stdout)["full_collections"]
    assert full["busy"]["explicit"] + full["idle"]["explicit"] >= 5    # one every 0.1 s
    assert full["busy"]["automatic"] + full["idle"]["automatic"] <= alone_total(alone)


def alone_total(summary) -> int:
    full = summary["full_collections"]
    return sum(full[p]["automatic"] for p in full) + 1
