"""`cycles` under a 40M script limit: killed without the agent, alive with it (IX20 profile).

The workload aims at 4 MB/s of reference cycles (it makes about 3 MB/s)
with the collector disabled, as some libraries do. Both runs start together
and last 22 s; in that time the workload makes over 1.5 times the limit in
garbage, so surviving means the agent's collections gave it back, not that
the run was too short to fill up. (The IX20 profile acts at 8M of headroom:
over 2 s of growth at this rate, against its 1 s tick.)
"""

import os

from tests.scenarios.conftest import IX20_INI, Emulation, background, killed_at_limit, messages

ARGS = ("--profile", IX20_INI, "--workload", "cycles", "--limit", "40M", "--duration", "22",
        "--", "--rate", "4")


@background("cycles-alone")
def _alone(folder):
    return Emulation(os.path.join(folder, "alone"), "--no-agent", *ARGS)


@background("cycles-agent")
def _with_agent(folder):
    return Emulation(os.path.join(folder, "agent"), *ARGS)


def test_cycles_is_oom_killed_alone_and_survives_with_the_agent(launched):
    without = launched["cycles-alone"].result()["devices"][0]
    with_agent = launched["cycles-agent"].result()["devices"][0]

    limit = 40 * 1024
    # Without the agent: killed by the kernel's OOM killer at the cgroup's limit, or
    # (no cgroup) by the emulator, which read RSS over the limit from outside.
    assert without["outcome"] == "OOM-killed", without
    assert killed_at_limit(without["oom_kills"][0], limit), without["oom_kills"]

    # With the agent: never over the limit, and it really ran the whole time.
    assert with_agent["outcome"] == "survived", with_agent
    assert with_agent["peak_rss_kb"] < limit
    workload = with_agent["workload"]       # the workload's own last line: it ran to its end
    assert workload["seconds"] >= 20 and not workload["gc_enabled"]
    assert workload["garbage_mb"] * 1024 > 1.5 * limit
    assert sum(with_agent["collections"].values()) >= 1
    assert with_agent["reclaimed_kb"] > 0


# `bigfree` at 8 MB/s (4 MB blocks, each in a cycle the automatic collector never
# looks at) grows by the whole of the IX20 profile's 8M margin in one 1 s tick:
# waiting for headroom to cross `below` gets it killed between two samples. The
# low-memory rule's look-ahead (`ahead = 1`, _base.ini) acts a sample early.
BIGFREE = ("--profile", IX20_INI, "--workload", "bigfree", "--limit", "40M", "--duration", "15")


@background("bigfree-ix20")
def _bigfree(folder):
    return Emulation(folder, *BIGFREE)


def test_bigfree_growing_a_whole_margin_per_tick_survives_on_the_ix20_profile(launched):
    device = launched["bigfree-ix20"].result()["devices"][0]
    assert device["outcome"] == "survived", device
    assert device["peak_rss_kb"] < 40 * 1024
    workload = device["workload"]
    assert workload["seconds"] >= 12   # ran to its end (the emulator takes ~1 s to start it)
    assert workload["garbage_mb"] * 1024 > 2 * 40 * 1024   # over twice the limit made and given back
    assert workload["freed"] >= workload["blocks"] - 4
    assert device["collections"].get("low-memory", 0) >= 3


def test_the_limit_is_the_kernels_and_the_agent_finds_it(launched):
    """The scenario suite runs under real memory cgroups (as root, as in CI): the kernel
    kills the application alone; the agent, with `memory_limit = auto`, reports the
    cgroup's limit as its ceiling."""
    alone, agent = launched["cycles-alone"].result(), launched["cycles-agent"].result()
    for run in (alone, agent):
        assert run["enforced_by"] in ("cgroup-v1", "cgroup-v2"), (
            "the emulator could not make a memory cgroup (%s): run the scenario suite as root "
            "on a machine with the cgroup memory controller (see docs/field.md)" % run["enforcement"])
    assert alone["devices"][0]["oom_kills"][0]["by"] == "kernel"
    device = agent["devices"][0]
    assert device["outcome"] == "survived", device
    status = [m for m in messages(os.path.join(agent["folder"], device["device"]))
              if m.get("type") == "status" and m.get("state") == "online"]
    assert status and status[0]["ceiling_source"] == agent["enforced_by"]
    assert status[0]["ceiling_kb"] == 40 * 1024
