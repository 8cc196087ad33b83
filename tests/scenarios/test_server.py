"""`server`: fewer gc pauses inside busy phases with the idle rule than with the default collector.

Both runs start together. The pauses are counted by the workload itself (a
gc.callbacks hook filing each pause under the phase it started in), so the
outcome does not rest on the agent's report.
"""

import os

from tests.scenarios.conftest import EMULATOR_INI, PROFILES, Emulation, background


@background("server-default")
def _default(folder):
    return Emulation(folder, "--profile", EMULATOR_INI, "--workload", "server", "--duration", "12",
                     "--no-agent")


@background("server-tuned")
def _tuned(folder):
    return Emulation(folder, "--profile", os.path.join(PROFILES, "server-idle.ini"),
                     "--workload", "server", "--duration", "12")


def test_idle_rule_moves_pauses_out_of_busy_phases(launched):
    alone = launched["server-default"].result()["devices"][0]
    with_agent = launched["server-tuned"].result()["devices"][0]
    busy_alone = alone["workload"]["busy_pauses"]["count"]
    busy_agent = with_agent["workload"]["busy_pauses"]["count"]

    assert alone["outcome"] == with_agent["outcome"] == "survived"
    assert busy_agent < busy_alone / 4, (busy_agent, busy_alone)
    # The collections moved into the idle phases, where nobody waits ...
    assert with_agent["collections"].get("idle", 0) >= 1
    assert with_agent["workload"]["idle_pauses"]["by_generation"][2] >= 1
    # ... and memory did not pay for it: still far under the 64M limit.
    assert with_agent["peak_rss_kb"] < 48 * 1024
