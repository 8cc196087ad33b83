"""What happens to a script over its limit or hung: kills, exit actions, reboots, the watchdog.

The three runs are light (no agent) and start together, once for the module.
"""

import os

import pytest

from tests.scenarios.conftest import EMULATOR_INI, IX20_INI, Emulation, killed_at_limit

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("device_life")
    started = {
        # Killed over 40M every ~3 s; reboot each time, until three boots came
        # faster than the window: then the device waits (60 s here) like Dia did.
        "reboot": Emulation(folder / "reboot", "--profile", IX20_INI, "--workload", "cycles",
                            "--no-agent", "--limit", "40M", "--exit-action", "reboot",
                            "--reboot-delay", "300ms", "--rapid-reboot", "3,30s,60s",
                            "--duration", "12", "--", "--rate", "12"),
        "watchdog": Emulation(folder / "watchdog", "--profile", IX20_INI, "--workload",
                              os.path.join(APPS, "watchdog.py"), "--no-agent", "--duration", "5"),
        "crash": Emulation(folder / "crash", "--profile", IX20_INI, "--workload",
                           os.path.join(APPS, "crash_registered.py"), "--no-agent", "--duration", "4",
                           "--reboot-delay", "1s", "--rapid-reboot", "2,1m,1h"),
        "restart": Emulation(folder / "restart", "--profile", EMULATOR_INI, "--workload", "cycles",
                             "--no-agent", "--limit", "30M", "--exit-action", "restart",
                             "--duration", "6", "--", "--rate", "16"),
    }
    return {name: (run, run.result()) for name, run in started.items()}


def test_reboot_exit_action_backs_off_after_rapid_reboots(runs):
    device = runs["reboot"][1]["devices"][0]
    assert device["outcome"] == "OOM-killed"
    assert device["boots"] == 3 and device["starts"] == 3, device
    assert len(device["oom_kills"]) == 3
    assert [k["boot"] for k in device["oom_kills"]] == [1, 2, 3]
    assert device["rapid_reboot_waits"] == 1
    assert all(killed_at_limit(k, 40 * 1024) for k in device["oom_kills"]), device["oom_kills"]


def test_appmonitor_restarts_a_hung_application_and_digidevice_answers(runs):
    run, summary = runs["watchdog"]
    device = summary["devices"][0]
    reasons = [k["reason"] for k in device["kills"]]
    assert reasons and set(reasons) == {"appmonitor"}, device["kills"]
    assert device["starts"] == len(reasons) + 1 and device["boots"] == 1   # RESTART: same boot
    with open(os.path.join(run.device_folder(device["device"]), "output.log")) as handle:
        output = handle.read()
    assert "Model            : IX20" in output
    assert "Total Memory     : 262144" in output
    ram = int(output.split("ram available: ")[1].split()[0])
    assert 100 * 2 ** 20 < ram < 192 * 2 ** 20   # 256M - 64M firmware - the script's own RSS


def test_restart_exit_action_keeps_the_boot(runs):
    device = runs["restart"][1]["devices"][0]
    assert device["boots"] == 1 and len(device["oom_kills"]) >= 2
    assert device["starts"] == len(device["oom_kills"]) + 1


def test_a_registered_application_that_ends_gets_the_monitor_action(runs):
    # The profile's exit action is none; the monitor's REBOOT wins for a registered
    # application, then the rapid-reboot back-off holds the third boot.
    device = runs["crash"][1]["devices"][0]
    assert device["outcome"] == "failed" and not device["kills"]
    # the monitor acts once the timeout (1 s) passes without a refresh, not at the exit
    assert "registered application ended; REBOOT in 0." in runs["crash"][1]["log"]
    assert device["boots"] == 2 and device["rapid_reboot_waits"] == 1
