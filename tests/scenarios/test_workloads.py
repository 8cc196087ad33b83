"""`bigfree` and `gcoff` under the emulator profile's 64M limit: killed alone, alive with the agent.

- bigfree: large blocks die inside cycles; the automatic collector counts
  objects, not bytes, so it almost never runs and RSS climbs to the limit.
- gcoff: the application turns the collector off; the agent collects anyway
  and never turns the application's collector back on.
"""

import pytest

from tests.scenarios.conftest import EMULATOR_INI, Emulation, background, messages

RUNS = {"bigfree": ("--duration", "12"), "gcoff": ("--duration", "14")}


def _register(workload, args):
    @background(workload + "-alone")
    def alone(folder):
        return Emulation(folder, "--profile", EMULATOR_INI, "--workload", workload, "--no-agent", *args)

    @background(workload + "-agent")
    def agent(folder):
        return Emulation(folder, "--profile", EMULATOR_INI, "--workload", workload, *args)


for _name, _args in RUNS.items():
    _register(_name, _args)


@pytest.mark.parametrize("workload", sorted(RUNS))
def test_killed_alone_alive_with_the_agent(launched, workload):
    alone = launched[workload + "-alone"].result()["devices"][0]
    run = launched[workload + "-agent"]
    with_agent = run.result()["devices"][0]
    assert alone["outcome"] == "OOM-killed", alone
    assert with_agent["outcome"] == "survived", with_agent
    assert with_agent["peak_rss_kb"] < with_agent["limit_kb"] == 64 * 1024
    assert with_agent["collections"].get("low-memory", 0) >= 1 and with_agent["reclaimed_kb"] > 0
    if workload == "gcoff":
        assert with_agent["workload"]["found_enabled"] == 0      # never switched back on behind its back
        assert not with_agent["workload"]["gc_enabled"]
        # the agent reported the collector's state (gc_disabled, unless the
        # application switched it off before the agent's first sample)
        sent = messages(run.device_folder(with_agent["device"]))
        assert any(m.get("event") == "collect" for m in sent)
    else:
        assert with_agent["workload"]["freed"] > 0               # blocks given back, counted by the workload
