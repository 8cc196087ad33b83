"""A run: N emulated devices, staggered, each watched; faults applied on schedule.

Timeline: device i powers on at `i * stagger` seconds and runs for
`duration` seconds; faults are timed from each device's power-on (the
broker outage and slow link act at the shared proxy, timed from the first
device). At the end each running script gets SIGTERM, so the agent sends
its final telemetry and status offline, and the summary is read.
"""

import os
import re
import shlex
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from agent.profile import load
from agent.transports import check_url, scheme_of

from .console import ConsolePort
from .device import ONBOARD, REPO, Device, Timing
from .flashfull import set_full
from .model import DeviceModel
from .summary import device_report

ENDS_BY_ITSELF = 5.0  # seconds a workload given --seconds has to end (and its agent to flush)
POLL = 0.1            # seconds between RSS readings: ~10 MB/s of growth overshoots by 1 MB at most
PUBLISH_EVERY = 0.25  # runt.json refresh
PROGRESS_EVERY = 10.0  # seconds between progress lines on stderr
WORKLOADS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workloads")

# Defaults each workload runs with (the user's own arguments after `--` come later and win).
WORKLOAD_DEFAULTS: Dict[str, List[str]] = {
    "cycles": ["--rate", "8", "--gc-off", "--quiet"],
    "bigfree": ["--quiet"],
    "leak": ["--rate", "1", "--quiet"],
    "server": ["--quiet"],
    "gcoff": ["--quiet"],
    "webheap": ["--quiet"],
    "relay": ["--quiet"],
}


class RunOptions(NamedTuple):
    """Everything `gc-emulator run` was asked to do."""

    model: DeviceModel
    workload: str
    workload_args: Tuple[str, ...] = ()
    devices: int = 1
    duration: float = 30.0
    reports: Tuple[str, ...] = ()
    faults: Tuple[Any, ...] = ()
    no_agent: bool = False
    stagger: float = 0.5
    python: str = sys.executable
    workdir: str = ""
    timing: Timing = Timing()
    baud: int = 115200
    env: Tuple[Tuple[str, str], ...] = ()   # extra environment (compare: GC_EMULATOR_POLICY)
    enforce: str = "auto"   # the memory limit: cgroup (the kernel), poll (RSS from /proc), auto


def workload_path(name: str) -> str:
    """A workload by name (tools/emulator/workloads/NAME.py) or a path to any script."""
    if os.path.sep in name or name.endswith(".py"):
        if not os.path.exists(name):
            raise ValueError("--workload %s: no such file" % name)
        return os.path.abspath(name)
    path = os.path.join(WORKLOADS_DIR, name + ".py")
    if not os.path.exists(path):
        raise ValueError("--workload %s: unknown (known: %s; or give a path to a script)"
                         % (name, ", ".join(known_workloads())))
    return path


def known_workloads() -> List[str]:
    """Names of the workloads shipped in tools/emulator/workloads/."""
    return sorted(n[:-3] for n in os.listdir(WORKLOADS_DIR) if n.endswith(".py") and not n.startswith("_"))


def device_id(model: DeviceModel, index: int) -> str:
    """`ix20-01`, `ix20-02`, ...: distinct per device, from the model's name."""
    slug = re.sub(r"[^a-z0-9]+", "-", model.model.lower()).strip("-") or "device"
    return "%s-%02d" % (slug, index)


class Run(object):
    """Sets up the devices, the proxy and the console ports; `execute()` runs them."""

    def __init__(self, options: RunOptions, log: Callable[[str], None] = lambda text: None) -> None:
        self.options = options
        self.log = log
        self.profile = load(options.model.profile_path)
        self.folder = options.workdir or tempfile.mkdtemp(prefix="gc-emulator-")
        os.makedirs(self.folder, exist_ok=True)
        self.devices: List[Device] = []
        self.consoles: Dict[str, ConsolePort] = {}
        self.proxy = None
        self.watch = None
        self._timeline: List[Tuple[float, str, Callable[[], None]]] = []
        self.proxy_stats: Optional[Dict[str, int]] = None   # the uplink's byte counts, after a run
        self.workload = workload_path(options.workload)
        self._ends_itself = self._takes_seconds()
        self.enforced_by = "poll"   # or cgroup-v1 / cgroup-v2, once setup() made the cgroups
        self.interrupted = False    # Ctrl-C: the devices stop and the summary covers what ran
        self.enforced_why = ""

    # -- set-up -------------------------------------------------------------------------

    def _upstream(self) -> List[str]:
        """The user's report URLs, MQTT ones through the fault proxy."""
        urls = []
        for url in self.options.reports:
            if scheme_of(url) in ("mqtt", "mqtts"):
                urls.append(self._through_proxy(url))
            else:
                urls.append(url)
        return urls

    def _through_proxy(self, url: str) -> str:
        from agent.transports.mqtt import parse_mqtt_url

        from .proxy import Proxy
        try:   # the agent's own reading of the URL: what the emulator proxies is what it would use
            tls, host, port, username = parse_mqtt_url(url)
        except ValueError as exc:
            raise ValueError("--report: %s" % exc) from exc
        if self.proxy is None:
            self.proxy = Proxy((host, port)).start()
            try:
                from .brokerwatch import BrokerWatch
                self.watch = BrokerWatch(url, self.profile.report.prefix)
            except Exception as exc:   # counting at the broker is extra; the run goes on
                self.log("cannot count messages at the broker: %s" % exc)
        user = (username + "@") if username else ""
        return "%s://%s127.0.0.1:%d" % ("mqtts" if tls else "mqtt", user, self.proxy.port)

    def _env(self, folder: str) -> Dict[str, str]:
        env = dict(os.environ)
        paths = [ONBOARD, REPO] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["GCEMU_DEVICE_DIR"] = folder
        env.update(dict(self.options.env))
        if any(f.kind == "flash-full" for f in self.options.faults):
            # the device's Python refuses journal writes while this flag file exists
            env["GC_EMULATOR_JOURNAL_DIR"] = os.path.join(folder, "flash")
            env["GC_EMULATOR_FLASH_FULL"] = os.path.join(folder, "flash_full")
        return env

    def _command(self, profile: str, urls: Sequence[str], folder: str) -> List[str]:
        args = list(WORKLOAD_DEFAULTS.get(self.options.workload, []))
        # The workload ends just before the run does, so it prints its own summary
        # (the last JSON line of its output) before the emulator stops the device.
        if self._takes_seconds():
            args += ["--seconds", "%g" % max(1.0, self.options.duration - 1.0)]
        args += list(self.options.workload_args)
        if self.options.no_agent:
            return [self.options.python, self.workload] + args
        command = [self.options.python, "-m", "agent", "run", "--profile", profile,
                   "--log", os.path.join(folder, "agent.log")]
        for url in urls:
            command += ["--report", url]
        return command + ["--", self.workload] + args

    def _takes_seconds(self) -> bool:
        # Shipped workloads all take --seconds; a user's script gets it only if it
        # declares the option (its argparse would refuse an unknown one).
        try:
            with open(self.workload, "rb") as handle:
                return b'"--seconds"' in handle.read()
        except OSError:
            return False

    def setup(self) -> None:
        """Folders, profiles, console ports and the proxy; raises ValueError on bad options."""
        options = self.options
        upstream = self._upstream()
        for i in range(1, options.devices + 1):
            ident = device_id(options.model, i)
            folder = os.path.join(self.folder, ident)
            os.makedirs(folder, exist_ok=True)
            seed = next((f.seed for f in options.faults
                         if f.kind == "serial-noise" and f.seed is not None), 0)
            console = self.consoles[ident] = ConsolePort(seed=seed * 1000 + i)   # repeatable, per device
            urls = ["file://%s" % os.path.join(folder, "messages.jsonl")]
            for url in upstream:
                urls.append(console.url(options.baud) if url == "console" else url)
            for url in urls:
                try:
                    check_url(url)
                except ValueError as exc:
                    raise ValueError("--report: %s (this checkout's agent cannot use it)" % exc)
            profile = os.path.join(folder, "profile.ini")
            cgroup = self._cgroup(ident)
            from .model import overlay_profile
            with open(profile, "w") as handle:
                handle.write(overlay_profile(options.model, ident, os.path.join(folder, "flash"),
                                             self.profile.buffer.flash, in_cgroup=cgroup is not None))
            load(profile)   # the overlay must be as valid as the profile it extends
            device = Device(i, ident, folder, options.model, self._command(profile, urls, folder),
                            self._env(folder), options.timing, log=self.log, cgroup=cgroup)
            device.console_path = console.device_path
            self.devices.append(device)
        kinds = {f.kind for f in options.faults}
        if "slow-link" in kinds and self.proxy is None:
            raise ValueError("--fault slow-link acts at the proxy in front of the broker: "
                             "give --report mqtt://HOST:PORT")
        if "broker-outage" in kinds and self.proxy is None and \
                not any(scheme_of(u) == "drm" for u in options.reports):
            raise ValueError("--fault broker-outage needs an uplink to cut: --report mqtt://HOST:PORT "
                             "or --report drm:")
        if "drm-stall" in kinds and not any(scheme_of(u) == "drm" for u in options.reports):
            raise ValueError("--fault drm-stall stalls Remote Manager uploads: give --report drm:")
        self._schedule_faults()

    def _cgroup(self, ident: str):
        """A memory cgroup for one device (the kernel enforces its limit), or None (the poll does)."""
        if self.options.enforce == "poll":
            self.enforced_why = "--enforce poll"
            return None
        from .cgroup import make
        name = "gc-emulator-%d-%s" % (os.getpid(), ident)
        cgroup, why = make(name, self.options.model.kill_at_kb * 1024)
        if cgroup is None:
            if self.options.enforce == "cgroup":
                raise ValueError("--enforce cgroup: %s" % why)
            self.enforced_why = why
            return None
        self.enforced_by = cgroup.source
        return cgroup

    def enforcement(self) -> str:
        """How the memory limit is enforced, in words, for the summary and the log."""
        if self.enforced_by.startswith("cgroup"):
            return "memory limit enforced by the kernel: %s" % \
                next(d.cgroup for d in self.devices if d.cgroup is not None).describe()
        return "memory limit enforced by polling RSS every %gs and SIGKILL (no cgroup: %s)" % (
            POLL, self.enforced_why or "not tried")

    def _schedule_faults(self) -> None:
        stagger = self.options.stagger
        for fault in self.options.faults:
            kind = fault.kind
            end = None if getattr(fault, "duration", None) is None else fault.at + fault.duration
            if kind == "broker-outage":
                self._at(fault.at, "broker outage begins", self._outage(True))
                if end is not None:
                    self._at(end, "broker outage ends", self._outage(False))
            elif kind == "slow-link":
                self._at(fault.at, "slow link: +%gs, %s B/s" % (fault.delay, fault.rate or "no cap"),
                         self._slow(fault.delay, fault.rate))
                if end is not None:
                    self._at(end, "slow link ends", self._slow(0.0, None))
            elif kind == "power-loss":
                for d in self.devices:
                    self._at((d.index - 1) * stagger + fault.at, "%s: power loss" % d.id,
                             lambda d=d, off=fault.off: d.power_loss(off))
            elif kind == "flash-full":
                for d in self.devices:
                    flag = os.path.join(d.folder, "flash_full")
                    self._at((d.index - 1) * stagger + fault.at, "%s: flash full" % d.id,
                             lambda flag=flag: set_full(flag, True))
                    if end is not None:
                        self._at((d.index - 1) * stagger + end, "%s: flash has room again" % d.id,
                                 lambda flag=flag: set_full(flag, False))
            elif kind == "drm-stall":
                self._at(fault.at, "Remote Manager stops answering", self._flag("drm_stall", True))
                if end is not None:
                    self._at(end, "Remote Manager answers again", self._flag("drm_stall", False))
            elif kind == "serial-noise":
                self._at(fault.at, "serial noise %.2f%%" % (100 * fault.share), self._noise(fault))
                if end is not None:
                    self._at(end, "serial noise ends", self._noise(None))
        self._timeline.sort(key=lambda entry: entry[0])

    def _at(self, when: float, what: str, action: Callable[[], None]) -> None:
        self._timeline.append((when, what, action))

    def _outage(self, down: bool) -> Callable[[], None]:
        def apply() -> None:
            if self.proxy is not None:
                self.proxy.cut() if down else self.proxy.restore()
            for d in self.devices:   # drm: loses Remote Manager the same way
                flag = os.path.join(d.folder, "drm_down")
                if down:
                    open(flag, "w").close()
                elif os.path.exists(flag):
                    os.unlink(flag)
        return apply

    def _flag(self, name: str, on: bool) -> Callable[[], None]:
        """A flag file in every device's folder, which the emulated digidevice watches."""
        def apply() -> None:
            for d in self.devices:
                flag = os.path.join(d.folder, name)
                if on:
                    open(flag, "w").close()
                elif os.path.exists(flag):
                    os.unlink(flag)
        return apply

    def _slow(self, delay: float, rate: Optional[int]) -> Callable[[], None]:
        def apply() -> None:
            self.proxy.delay = delay
            self.proxy.rate = rate
        return apply

    def _noise(self, fault) -> Callable[[], None]:
        def apply() -> None:
            for console in self.consoles.values():
                console.noise = fault.share if fault is not None else 0.0
        return apply

    # -- the run ------------------------------------------------------------------------------

    def execute(self) -> List[Dict[str, Any]]:
        """Run every device to the end of its duration; the per-device reports."""
        options = self.options
        t0 = time.monotonic()
        for d in self.devices:
            d.t0 = t0
            d.power_on((d.index - 1) * options.stagger)
            self.log("%s: console port %s" % (d.id, d.console_path))
        end = (len(self.devices) - 1) * options.stagger + options.duration
        timeline = list(self._timeline)
        next_publish = 0.0
        next_progress = PROGRESS_EVERY
        try:
            while True:
                now = time.monotonic() - t0
                if now >= next_progress:
                    next_progress = now + PROGRESS_EVERY
                    self.log(self._progress(now))
                while timeline and timeline[0][0] <= now:
                    _, what, action = timeline.pop(0)
                    self.log("%.1fs: %s" % (now, what))
                    action()
                for d in self.devices:
                    if now >= (d.index - 1) * options.stagger + options.duration:
                        # without blocking: the others are still watched meanwhile
                        d.terminate(wait_first=ENDS_BY_ITSELF if self._ends_itself else 0.0)
                    d.poll()
                if now >= next_publish:
                    next_publish = now + PUBLISH_EVERY
                    for d in self.devices:
                        d.publish()
                for console in self.consoles.values():
                    console.pump()
                if now >= end and all(d.state == "stopped" for d in self.devices):
                    break
                time.sleep(POLL)
        except KeyboardInterrupt:
            self.interrupted = True
            self.log("interrupted at %.1fs: stopping the devices" % (time.monotonic() - t0))
        finally:
            for d in self.devices:
                d.terminate()
            for d in self.devices:
                d.stop()
            for console in self.consoles.values():
                console.pump()
        time.sleep(0.5 if self.watch is not None else 0.0)   # the last messages reach the broker
        counts = self.watch.seen() if self.watch is not None else None
        self.proxy_stats = self.proxy.stats()._asdict() if self.proxy is not None else None
        reports = []
        for d in self.devices:
            report = device_report(d, counts)
            console = self.consoles.get(d.id)
            if console is not None and console.messages:
                report["console_messages"] = len(console.messages)
                report["console_damaged"] = console.reader.dropped
            reports.append(report)
        return reports

    def _progress(self, now: float) -> str:
        """One line on how the devices are doing, for the log while a run goes on."""
        from agent.units import format_kb
        parts = ["%s %s RSS %s (peak %s)%s" % (d.id, d.state, format_kb(d.rss_now_kb),
                                                format_kb(d.peak_rss_kb),
                                                ", %d kill(s)" % len(d.kills) if d.kills else "")
                 for d in self.devices[:4]]
        if len(self.devices) > 4:
            killed = sum(1 for d in self.devices if d.kills)
            parts.append("... %d device(s), %d killed so far" % (len(self.devices), killed))
        return "%.0fs: %s" % (now, "; ".join(parts))

    def close(self) -> None:
        """Stop the proxy, the broker watch and the console ports."""
        for d in self.devices:
            d.stop()
            if d.cgroup is not None and not d.cgroup.remove():
                self.log("%s: could not remove %s" % (d.id, d.cgroup.path))
        if self.watch is not None:
            self.watch.close()
        if self.proxy is not None:
            self.proxy.stop()
        for console in self.consoles.values():
            console.close()


def split_args(text: str) -> Tuple[str, ...]:
    """Shell-style words (for workload arguments given as one string)."""
    return tuple(shlex.split(text))
