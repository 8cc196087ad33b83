"""One emulated device: its script in a subprocess, watched from outside like DAL does.

The device's script is the real agent around a workload
(`python -m agent run --profile P --report URL -- workload.py ...`), or the
workload alone (`--no-agent`). The model's limit is enforced by the kernel
when the emulator could make a memory cgroup for the device (cgroup.py: the
OOM killer ends the script, recognised by SIGKILL and the cgroup's OOM count);
otherwise every poll the emulator reads the child's RSS from /proc/PID/statm
and SIGKILLs it over the limit. Either way the kill is recorded, then the
auto-start exit action runs:

- ``none``: the device stays up, the script stays down;
- ``restart``: the script starts again at once (same boot);
- ``reboot``: a new boot after `reboot_delay`, unless the last starts came
  too fast: like Digi's Dia framework, when the average time between the last
  `rapid_count` starts is under `rapid_window`, wait `rapid_wait` first.

The emulated digidevice package reads what the emulator publishes here:
runt.json (RAM available: the model's RAM minus the firmware's baseline minus
the script's RSS), and appmonitor registrations, which this class enforces.
"""

import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from typing import Dict, List, NamedTuple, Optional

from .model import DeviceModel

_MONITOR_ACTIONS = {"KILL": "none", "RESTART": "restart", "REBOOT": "reboot"}
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
ONBOARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "onboard")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Timing(NamedTuple):
    """Reboot timing; Dia's rapid-reboot defaults (20 minutes, 10 minutes, 3 starts)."""

    reboot_delay: float = 3.0
    rapid_window: float = 1200.0
    rapid_wait: float = 600.0
    rapid_count: int = 3


class Kill(NamedTuple):
    """A kill the emulator did: when (seconds since the run began), why, at what RSS."""

    at: float
    reason: str          # oom | power-loss | appmonitor
    rss_kb: int          # the last RSS read from /proc
    boot: int
    by: str = "emulator"   # emulator (a SIGKILL of ours) | kernel (the cgroup's OOM killer)
    charged_kb: int = 0    # kernel kills: the most the cgroup was ever charged


def rss_kb(pid: int) -> int:
    """Resident set size of `pid` from /proc, 0 once it is gone."""
    try:
        with open("/proc/%d/statm" % pid, "rb") as handle:
            return int(handle.read().split()[1]) * PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


class Device(object):
    """The life of one emulated device over a run."""

    def __init__(self, index: int, device_id: str, folder: str, model: DeviceModel,
                 command: List[str], env: Dict[str, str], timing: Optional[Timing] = None,
                 t0: Optional[float] = None, log=None, cgroup=None) -> None:
        self.index = index
        self.id = device_id
        self.folder = folder
        self.model = model
        self.command = command
        self.env = env
        self.timing = timing or Timing()
        self.t0 = time.monotonic() if t0 is None else t0
        self.log = log or (lambda text: None)
        self.cgroup = cgroup         # a cgroup.MemoryCgroup: the kernel enforces the limit
        self._oom_before = 0
        self._restart_command = ""   # appmonitor RESTART: what runs instead of the script next
        self._monitor_due = None     # (when, action, restart_command) for an app that ended registered
        self.proc: Optional[subprocess.Popen] = None
        self.state = "off"           # off | waiting | running | down | powered-off | stopping | stopped
        self.start_at: Optional[float] = None
        self.boot = 0                # device boots (the first start is boot 1)
        self.starts: List[float] = []
        self.boot_times: List[float] = []
        self.kills: List[Kill] = []
        self.exits: List[int] = []   # exit statuses of scripts that ended by themselves
        self.peak_rss_kb = 0
        self.rss_now_kb = 0
        self.boot_wall = time.time()
        self.console_path = ""
        self.backoffs = 0
        self._output = None
        self._boot_pending = False
        self._kill_at = self._term_at = 0.0
        self._term_sent = False
        os.makedirs(os.path.join(folder, "appmonitor"), exist_ok=True)

    # -- timeline -------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.t0

    def power_on(self, at: float) -> None:
        """Boot the device (first boot) at `at` seconds into the run."""
        self.state = "waiting"
        self.start_at = at
        self._boot_pending = True

    def _new_boot(self, at: float) -> None:
        self._boot_pending = False
        self.boot += 1
        self.boot_times.append(at)
        self.boot_wall = time.time()

    def poll(self) -> None:
        """Start what is due, watch what runs, apply exit actions."""
        now = self.now()
        if self.state == "stopping":   # no more kills or restarts: the run is over for it
            self._stopping()
            return
        if self.state == "down" and self._monitor_due is not None and now >= self._monitor_due[0]:
            _, action, command = self._monitor_due
            self._monitor_due = None
            self._monitor_acts(now, action, command)
        if self.state == "waiting" and now >= self.start_at:
            if self._boot_pending:
                self._new_boot(now)
            self._start(now)
        if self.state != "running":
            return
        code = self.proc.poll()
        if code is not None:
            self._ended(now, code)
            return
        kb = rss_kb(self.proc.pid)
        self.rss_now_kb = kb
        self.peak_rss_kb = max(self.peak_rss_kb, kb)
        if self.cgroup is None and kb > self.model.kill_at_kb:
            self.kill("oom", kb)
            return
        self._watchdog(now)

    def _start(self, now: float) -> None:
        self._clear_registrations()   # a new process: the old one's registrations died with it
        self.starts.append(now)
        self._output = open(os.path.join(self.folder, "output.log"), "ab")  # noqa: SIM115 (open while the script runs)
        self._output.write(b"--- start %d (boot %d) at %.1fs\n" % (len(self.starts), self.boot, now))
        self._output.flush()
        # the auto-start entry's command line: what an app passes as appmonitor's restart_command
        env = dict(self.env, GCEMU_BOOT=str(self.boot),
                   GCEMU_SCRIPT_COMMAND=" ".join(shlex.quote(word) for word in self.command))
        command = self.command
        if self._restart_command:
            command, self._restart_command = ["/bin/sh", "-c", self._restart_command], ""
        if self.cgroup is not None:
            command = self.cgroup.wrap(command)
            self._oom_before = self.cgroup.oom_kills()
            self.cgroup.reset_peak()
        self.proc = subprocess.Popen(command, cwd=self.folder, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._output, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.state = "running"
        self.log("%s: script started (boot %d, pid %d)" % (self.id, self.boot, self.proc.pid))

    def kill(self, reason: str, kb: Optional[int] = None, then_action: bool = True) -> None:
        """SIGKILL the script now and record why; then the exit action (unless told not to)."""
        if self.state != "running":
            return
        kb = kb if kb is not None else rss_kb(self.proc.pid)
        self.peak_rss_kb = max(self.peak_rss_kb, kb)
        self._signal(signal.SIGKILL)
        self.proc.wait()
        now = self.now()
        self.kills.append(Kill(round(now, 2), reason, kb, self.boot))
        self.log("%s: killed (%s) at %.1fs, RSS %dK against %dK" % (self.id, reason, now, kb,
                                                                    self.model.kill_at_kb))
        self._close_output()
        self.state = "down"
        if then_action:
            self._exit_action(now, self.model.exit_action)

    def power_loss(self, off: Optional[float]) -> None:
        """Power cut: SIGKILL whatever runs, then boot again after `off` (or the boot delay)."""
        if self.state in ("stopping", "stopped"):   # the run is over for this device
            return
        now = self.now()
        if self.state == "running":
            self.kill("power-loss", then_action=False)
        flash = os.path.join(self.folder, "flash")
        if os.path.isdir(flash):   # the journal as the power cut left it, for the record
            shutil.copytree(flash, os.path.join(self.folder, "flash-at-power-loss-%d" % len(self.kills)))
        self.state = "powered-off"
        self._reboot(now, self.timing.reboot_delay if off is None else off)

    def _ended(self, now: float, code: int) -> None:
        if self._killed_by_kernel(code):
            charged = self.cgroup.peak_kb()
            self.kills.append(Kill(round(now, 2), "oom", self.rss_now_kb, self.boot, "kernel", charged))
            self.log("%s: OOM-killed by the kernel at %.1fs, %dK charged against %dK (cgroup; RSS "
                     "last read %dK)" % (self.id, now, charged, self.model.kill_at_kb, self.rss_now_kb))
            self._close_output()
            self.state = "down"
            self._clear_registrations()
            self._exit_action(now, self.model.exit_action)
            return
        self.exits.append(code)
        self.log("%s: script ended with status %d at %.1fs" % (self.id, code, now))
        self._close_output()
        self.state = "down"
        registered = self._registrations()
        self._clear_registrations()
        if registered:   # the monitor acts once `timeout` passes without a refresh (Digi's stub)
            _, entry, refreshed = registered[0]
            wait = max(0.0, refreshed + entry.get("timeout_ms", 0) / 1000.0 - time.time())
            self.log("%s: appmonitor: registered application ended; %s in %.1fs"
                     % (self.id, entry.get("action", "KILL"), wait))
            self._monitor_due = (now + wait, entry.get("action", "KILL"),
                                 entry.get("restart_command", ""))
            return
        self._exit_action(now, self.model.exit_action)

    def _monitor_acts(self, now: float, action: str, restart_command: str) -> None:
        """The monitor's action: KILL (nothing more), RESTART (run `restart_command`;
        without one nothing runs, as the stub says), REBOOT."""
        if action == "RESTART":
            if not restart_command:
                self.log("%s: appmonitor: RESTART without a restart_command: nothing to run"
                         % self.id)
                return
            self._restart_command = restart_command
        self._exit_action(now, _MONITOR_ACTIONS.get(action, "none"))

    def _killed_by_kernel(self, code: int) -> bool:
        """Died by SIGKILL that nobody here sent, while the cgroup's OOM count went up."""
        if self.cgroup is None or code != -signal.SIGKILL:
            return False
        return self.cgroup.oom_kills() > self._oom_before

    def _exit_action(self, now: float, action: str) -> None:
        if action == "restart":
            self.state = "waiting"
            self.start_at = now
        elif action == "reboot":
            self._reboot(now, self.timing.reboot_delay)

    def _reboot(self, now: float, delay: float) -> None:
        """Boot again after `delay`; Dia's check at start-up holds back a boot loop, whatever its cause."""
        wait = delay
        recent = self.boot_times[-self.timing.rapid_count:]
        if len(recent) >= self.timing.rapid_count:
            gaps = [b - a for a, b in zip(recent, recent[1:] + [now])]
            if sum(gaps) / len(gaps) < self.timing.rapid_window:
                wait += self.timing.rapid_wait
                self.backoffs += 1
                self.log("%s: rapid reboots (average %.1fs apart): waiting %.0fs before booting"
                         % (self.id, sum(gaps) / len(gaps), wait))
        self.state = "waiting"
        self.start_at = now + wait
        self._boot_pending = True

    # -- the application watchdog (digidevice.appmonitor) ------------------------------

    def _registrations(self) -> List[tuple]:
        """(path, entry, last refresh) of each appmonitor registration."""
        folder = os.path.join(self.folder, "appmonitor")
        found = []
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".json"):
                continue
            path = os.path.join(folder, name)
            try:
                with open(path) as handle:
                    found.append((path, json.load(handle), os.stat(path).st_mtime))
            except (OSError, ValueError):
                continue
        return found

    def _clear_registrations(self) -> None:
        folder = os.path.join(self.folder, "appmonitor")
        for name in os.listdir(folder):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass

    def _watchdog(self, now: float) -> None:
        for _, entry, refreshed in self._registrations():
            if time.time() - refreshed <= entry.get("timeout_ms", 0) / 1000.0:
                continue
            action = entry.get("action", "KILL")
            self.log("%s: appmonitor: not refreshed within %d ms: %s"
                     % (self.id, entry.get("timeout_ms", 0), action))
            self.kill("appmonitor", then_action=False)
            self._clear_registrations()
            self._monitor_acts(now, action, entry.get("restart_command", ""))
            return

    # -- publishing for digidevice.runt ------------------------------------------------

    def publish(self) -> None:
        """Write runt.json: the RAM the model has left, and the facts `show system` prints."""
        available = (self.model.ram_kb - self.model.baseline_kb - self.rss_now_kb) * 1024
        facts = {"system.ram.available": max(0, available), "system.ram.total": self.model.ram_kb * 1024,
                 "system.model": self.model.model, "system.serial": self.id,
                 "system.hostname": self.id, "system.firmware": "gc-emulator",
                 "system.boot_time": round(self.boot_wall, 3)}
        path = os.path.join(self.folder, "runt.json")
        with open(path + ".tmp", "w") as handle:
            json.dump(facts, handle)
        os.replace(path + ".tmp", path)

    # -- end of run --------------------------------------------------------------------

    def terminate(self, grace: float = 8.0, wait_first: float = 0.0) -> None:
        """End of the run. A script that ends by itself gets `wait_first` seconds to do
        so (its agent is flushing over a slow link); then SIGTERM (the agent sends final
        telemetry and status offline); SIGKILL if it is still there `grace` later.
        `poll()` carries this out, so the other devices stay watched meanwhile."""
        if self.state == "running":
            self.state = "stopping"
            self._term_at = self.now() + wait_first
            self._kill_at = self._term_at + grace
            self._term_sent = False
            self._stopping()
        elif self.state == "stopping":
            self._term_at = min(self._term_at, self.now() + wait_first)
            self._kill_at = min(self._kill_at, self._term_at + grace)
        else:
            self.state = "stopped"

    def _stopping(self) -> None:
        now = self.now()
        if self.proc.poll() is None:
            if now >= self._kill_at:
                self._signal(signal.SIGKILL)
                self.proc.wait()
            else:
                if now >= self._term_at and not self._term_sent:
                    self._signal(signal.SIGTERM)
                    self._term_sent = True
                return
        self._close_output()
        self.state = "stopped"

    def stop(self, grace: float = 8.0) -> None:
        """terminate() and wait until the script is gone."""
        self.terminate(grace)
        while self.state == "stopping":
            self._stopping()
            time.sleep(0.02)

    def _signal(self, signum: int) -> None:
        try:
            os.killpg(self.proc.pid, signum)
        except OSError:
            pass

    def _close_output(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None

    @property
    def survived(self) -> bool:
        """Never killed and never ended with a failure."""
        return not self.kills and not any(self.exits)
