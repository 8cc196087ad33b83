"""The device model read from a profile, the per-device overlay, and the CLI's refusals."""

import os
import subprocess
import sys

from agent.profile import load
from tests.conftest import REPO
from tests.scenarios.conftest import EMULATOR_INI, IX20_INI, PROFILES
from tools.emulator.model import model_from_profile, overlay_profile


def test_the_model_comes_from_the_profile_and_the_limit_can_be_given():
    ix20 = model_from_profile(IX20_INI)
    assert (ix20.model, ix20.ram_kb, ix20.script_limit_kb, ix20.exit_action) == ("IX20", 262144, None, "none")
    assert ix20.kill_at_kb == 256 * 1024 - 64 * 1024          # all the firmware leaves
    limited = model_from_profile(IX20_INI, limit_kb=40 * 1024, exit_action="reboot")
    assert limited.kill_at_kb == 40 * 1024 and limited.exit_action == "reboot"
    assert model_from_profile(EMULATOR_INI).kill_at_kb == 64 * 1024   # memory_limit = 64M


def test_the_overlay_is_the_users_profile_with_this_devices_id_limit_and_flash(tmp_path):
    model = model_from_profile(os.path.join(PROFILES, "journal.ini"))
    path = tmp_path / "profile.ini"
    path.write_text(overlay_profile(model, "emulator-07", str(tmp_path / "flash"),
                                    "/etc/config/gcagent/outbox"))
    profile = load(str(path))
    assert profile.device.id == "emulator-07"
    assert profile.device.memory_limit_kb == 64 * 1024
    assert profile.buffer.flash == str(tmp_path / "flash")
    assert profile.report.interval == 0.5      # everything else is the user's profile


def _emulator(*args):
    return subprocess.run([sys.executable, "-m", "tools.emulator", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_bad_input_is_refused_before_anything_starts(tmp_path):
    bad = tmp_path / "bad.ini"
    bad.write_text("[device]\nid = x\nexit_action = rebot\n[rule:p]\ntype = periodic\nevery = 1m\n")
    result = _emulator("run", "--profile", str(bad), "--workload", "cycles")
    assert result.returncode == 2
    assert "bad.ini:3: [device] exit_action" in result.stderr and "reboot?" in result.stderr
    result = _emulator("run", "--profile", EMULATOR_INI, "--workload", "cycle")
    assert result.returncode == 2 and "known: bigfree, cycles" in result.stderr
    result = _emulator("run", "--profile", EMULATOR_INI, "--workload", "cycles",
                       "--fault", "slow-link:delay=1s")
    assert result.returncode == 2 and "--report mqtt://" in result.stderr
    result = _emulator("run", "--profile", EMULATOR_INI, "--workload", "cycles", "--fault", "flood")
    assert result.returncode == 2 and "unknown kind" in result.stderr
    # the emulator reads an MQTT URL as the agent does: a password in it is refused, not proxied
    result = _emulator("run", "--profile", EMULATOR_INI, "--workload", "cycles",
                       "--report", "mqtt://dev:secret@127.0.0.1:1883")
    assert result.returncode == 2 and "--report: " in result.stderr
    assert "no password in the URL" in result.stderr
