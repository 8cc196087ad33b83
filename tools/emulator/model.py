"""The emulated device: what a profile says about the hardware, and the script's limits.

A profile's `[device]` section gives the model (`model`, `ram`, `python`),
the script's "Maximum memory" (`memory_limit`, as in the DAL auto-start
entry) and what happens when the script ends (`exit_action`: none, restart,
reboot). The emulator reads them through agent.profile, the same parser the
agent uses, so a profile that the emulator accepts is one the device accepts.
"""

import os
from typing import NamedTuple, Optional

from agent.profile import Profile, load
from agent.units import format_kb

DEFAULT_RAM_KB = 256 * 1024       # every DAL model profiled so far (IX10/IX20/IX30...)
DEFAULT_BASELINE_KB = 64 * 1024   # what firmware daemons hold before any script runs


class DeviceModel(NamedTuple):
    """Hardware and auto-start facts of one emulated device."""

    profile_path: str
    model: str
    ram_kb: int                      # physical RAM of the model
    baseline_kb: int                 # RAM the firmware itself holds
    script_limit_kb: Optional[int]   # the auto-start entry's "Maximum memory" (None: none)
    exit_action: str                 # none | restart | reboot
    python: str                      # the model's Python, as the profile says (for people)

    @property
    def kill_at_kb(self) -> int:
        """RSS over which the script is killed: its limit, or all the RAM the firmware leaves."""
        room = self.ram_kb - self.baseline_kb
        return min(self.script_limit_kb, room) if self.script_limit_kb else room

    def describe(self) -> str:
        """One line for people: model, RAM and the limit the emulator enforces."""
        limit = ("script limit %s" % format_kb(self.script_limit_kb) if self.script_limit_kb
                 else "no script limit (killed when the %s left by the firmware is gone)"
                 % format_kb(self.ram_kb - self.baseline_kb))
        return "%s, RAM %s (firmware holds %s), %s, exit action %s" % (
            self.model, format_kb(self.ram_kb), format_kb(self.baseline_kb), limit, self.exit_action)


def model_from_profile(path: str, limit_kb: Optional[int] = None,
                       exit_action: Optional[str] = None,
                       baseline_kb: int = DEFAULT_BASELINE_KB) -> DeviceModel:
    """The device a profile describes; `limit_kb` / `exit_action` override the profile's.

    Raises agent.errors.ProfileError (every problem, with file and line) for a bad profile.
    """
    profile: Profile = load(path)
    device = profile.device
    ram = device.ram_kb or DEFAULT_RAM_KB
    return DeviceModel(
        profile_path=os.path.abspath(path), model=device.model, ram_kb=ram,
        baseline_kb=min(baseline_kb, ram // 2),
        script_limit_kb=limit_kb if limit_kb is not None else device.memory_limit_kb,
        exit_action=exit_action or device.exit_action, python=device.python)


def overlay_profile(model: DeviceModel, device_id: str, flash_dir: str,
                    profile_flash: str, in_cgroup: bool = False) -> str:
    """The INI text each device's agent runs with: the user's profile, plus what the
    emulator must change for this device.

    - `[device] id`: distinct per device in a fleet;
    - `[device] memory_limit`: the script's limit (what docs/profiles.md, "The ceiling",
      tells users to write on a real device), or the model's RAM when the profile says auto,
      because the agent on this desktop would otherwise see the desktop's RAM
      as its ceiling: /proc/meminfo cannot be faked without root; but `auto`
      when the device runs in a memory cgroup of its own (`in_cgroup`): the
      agent then finds the kernel's limit, as on the device;
    - `[buffer] flash`: the journal moves into the device's folder (the profile's
      path, such as /etc/config/gcagent/outbox, is the device's, not this desktop's).
    """
    limit = "auto" if in_cgroup else "%dK" % (model.script_limit_kb or model.ram_kb)
    lines = ["; written by gc-emulator for one emulated device; the profile is %s"
             % model.profile_path,
             "[profile]", "extends = %s" % model.profile_path, "",
             "[device]", "id = %s" % device_id, "memory_limit = %s" % limit, "",
             # one script per emulated device: it reports under the device id itself
             "[agent]", "app =", ""]
    if profile_flash:
        lines += ["[buffer]", "flash = %s" % flash_dir, ""]
    return "\n".join(lines)
