"""The agent keeps a cycle-heavy application with gc disabled under its ceiling.

RSS is measured from outside: the kernel's peak RSS of the child (wait4).
"""

import os
import sys

from tests.conftest import EMULATOR_PROFILE, WORKLOADS, agent_cmd, read_jsonl, run_process

CEILING_KB = 64 * 1024    # device_profiles/emulator.ini: memory_limit = 64M
WORKLOAD = [os.path.join(WORKLOADS, "cycles.py"), "--rate", "25", "--seconds", "5", "--gc-off",
            "--quiet"]


def test_gc_off_cycles_exceed_the_ceiling_without_the_agent():
    done = run_process([sys.executable, *WORKLOAD])
    assert done.returncode == 0, done.stderr
    assert done.peak_rss_kb > CEILING_KB * 1.2, done.peak_rss_kb


def test_low_memory_rule_keeps_gc_off_cycles_under_the_ceiling(tmp_path, env_with_repo):
    out = tmp_path / "m.jsonl"
    done = run_process(agent_cmd("run", "--profile", EMULATOR_PROFILE,
                                 "--report", "file://%s" % out, "--", *WORKLOAD), env=env_with_repo)
    assert done.returncode == 0, done.stderr
    assert done.peak_rss_kb < CEILING_KB, done.peak_rss_kb
    got = read_jsonl(out)
    low = [m for m in got if m.get("event") == "collect" and m["rule"] == "low-memory"]
    assert low, "no low-memory collection was reported"
    assert sum(m["collected"] for m in low) > 1000
    assert any(m["rss_before_kb"] - m["rss_after_kb"] > 1024 for m in low)
    assert any(m.get("event") == "gc_disabled" for m in got)
