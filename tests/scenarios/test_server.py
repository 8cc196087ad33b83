"""`server`: full collections leave busy phases with server-idle.ini (the tuner), not with the default.

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


def test_tuner_moves_full_collections_out_of_busy_phases(launched):
    alone = launched["server-default"].result()["devices"][0]
    with_agent = launched["server-tuned"].result()["devices"][0]
    full_alone = alone["workload"]["full_collections"]
    full_agent = with_agent["workload"]["full_collections"]

    assert alone["outcome"] == with_agent["outcome"] == "survived"
    # The default collector runs full collections while requests wait; the tuner none ...
    assert full_alone["busy"]["automatic"] >= 1, full_alone
    assert full_agent["busy"] == {"automatic": 0, "explicit": 0}, full_agent
    # ... it runs them in the idle phases, where nobody waits ...
    assert with_agent["collections"].get("tune", 0) >= 1
    assert with_agent["workload"]["idle_pauses"]["by_generation"][2] >= 1
    # ... and memory did not pay for it: still far under the 64M limit.
    assert with_agent["peak_rss_kb"] < 48 * 1024
