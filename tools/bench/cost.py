"""The agent's own cost in an application's process: memory (RSS) and CPU time.

Every figure is against a typical gateway application, run side by side
without the agent: `python -S` (no site-packages, as on a device) importing
logging, json, threading, socket and re, holding some data of its own, and for
the MQTT row also connected to the broker with paho-mqtt itself. Each
application prints its own RSS at the end (/proc/self/statm), after the agent
has been running; CPU comes from wait4's rusage, so nothing relies on the
agent's own account, which the CPU row then holds against it.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Tuple

from tools.bench.broker import PAHO_2, REPO, bench_broker

PROFILE = os.path.join(REPO, "device_profiles", "emulator.ini")
PAHO_1 = os.path.join(REPO, ".venv", "paho-1.6")
# Each Python with the paho-mqtt it would run on a device (1.6 on 3.6, 2.x on 3.11).
PYTHONS = (("3.6", os.path.expanduser("~/.pyenv/versions/3.6.15/bin/python"), PAHO_1),
           ("3.11", os.path.expanduser("~/.pyenv/versions/3.11.7/bin/python"), PAHO_2))
# pyserial (the wheel gc-bundle vendors), unpacked and compiled for each Python, as installed;
# the serial row reports to a device path, which leaves it unloaded (agent/transports/ttyport.py).
PYSERIAL = os.path.join(REPO, ".venv", "wheels", "pyserial-3.5-py2.py3-none-any.whl")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
REPEAT = 3   # best of 3: allocator and scheduling noise only ever adds
CPU_PAIRS = 5   # the CPU row's runs of each kind, side by side (3 let one slow start move the row 20%)

# argv: seconds, mode (alone | start | paho | paho+start), report URL, profile, broker port
TYPICAL_APP = """
import sys, time
import logging, json, threading, socket, re
seconds, mode, url, profile, port = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
data = [bytes(100) for _ in range(10000)]
logging.getLogger("app").info("started")
if mode.startswith("paho"):
    import paho.mqtt.client as mqtt
    client = mqtt.Client(*([mqtt.CallbackAPIVersion.VERSION2] if hasattr(mqtt, "CallbackAPIVersion") else []))
    client.connect("127.0.0.1", int(port))
    client.loop_start()
if mode.endswith("start"):
    import agent
    assert agent.start(profile, report=url)
time.sleep(seconds)
with open("/proc/self/statm") as handle:
    print(" ".join(handle.read().split()[1:3]))
"""


def _env(paho: str, pyserial: str = "") -> Dict[str, str]:
    return {"PYTHONPATH": ":".join(p for p in (REPO, paho, pyserial) if p), "PATH": "/usr/bin:/bin"}


def _pyserial(folder: str, pythons) -> str:
    """pyserial unpacked into `folder`, compiled by each of `pythons`: from the wheel (a zip,
    no bytecode) every start would compile it, which is a cost of its own (docs/footprint.md)."""
    import zipfile
    target = os.path.join(folder, "pyserial")
    with zipfile.ZipFile(PYSERIAL) as wheel:
        wheel.extractall(target)
    for python in pythons:
        subprocess.run([python, "-m", "compileall", "-q", target], check=True, capture_output=True)
    return target


class _SerialPeer(object):
    """A pty whose far end reads (and drops) what the agent writes, as a console would."""

    def __enter__(self) -> str:
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        os.close(slave)
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        return self.path

    def _drain(self) -> None:
        self.open = True
        while self.open:
            try:
                os.read(self.master, 4096)
            except OSError:   # EIO while no process has the port open
                time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        self.open = False
        self._reader.join(1.0)
        os.close(self.master)


def _app(folder: str) -> str:
    path = os.path.join(folder, "typical_app.py")
    with open(path, "w") as handle:
        handle.write(TYPICAL_APP)
    return path


def _run_all(argvs: List[List[str]], env: Dict[str, str]) -> List[Tuple[int, float, int]]:
    """Run argvs side by side; per process (RSS KB it printed, CPU seconds from rusage,
    the file-backed part of that RSS in KB)."""
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for argv in argvs]
    results = {}
    while len(results) < len(procs):
        pid, status, usage = os.wait4(-1, 0)
        results[pid] = (status, usage.ru_utime + usage.ru_stime)
    out = []
    for proc in procs:
        status, cpu = results[proc.pid]
        printed, err = proc.stdout.read(), proc.stderr.read()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0 or not printed.split():
            raise RuntimeError("%s failed: %s" % (" ".join(proc.args), err.decode()[-500:]))
        resident, shared = printed.split()[-2:]
        out.append((int(resident) * PAGE_KB, cpu, int(shared) * PAGE_KB))
    return out


def _footprint_one(version: str, python: str, paho: str, seconds: float, folder: str,
                   port: int, tty: str) -> List[dict]:
    app = _app(folder)
    report = "file://%s/%s.jsonl" % (folder, version)
    mqtt = "mqtt://127.0.0.1:%d" % port
    serial = "%s?baud=115200&ack=off" % tty

    def typical(mode: str, url: str = report) -> List[str]:
        return [python, "-S", app, str(seconds), mode, url, PROFILE, str(port)]

    wrapped = [python, "-S", "-m", "agent", "run", "--profile", PROFILE, "--report", report, "--"]
    runs = [_run_all([typical("alone"), typical("start"), wrapped + typical("alone")[2:],
                      typical("paho"), typical("paho+start", mqtt), typical("start", serial)],
                     _env(paho, os.path.join(folder, "pyserial")))
            for _ in range(REPEAT)]
    alone, start, run, paho_alone, paho_start, on_serial = (min(r[i][0] for r in runs) for i in range(6))
    rows = []
    for what, base, kb, limit in (("agent.start(), file report", alone, start, 1.5),
                                  ("agent.start(), serial report", alone, on_serial, 1.5),
                                  ("python -m agent run, file report", alone, run, 2.5),
                                  ("agent.start(), MQTT connected, app already on paho-mqtt",
                                   paho_alone, paho_start, 1.5)):
        added = (kb - base) / 1024.0
        rows.append({"row": "footprint %s: RSS added by %s" % (version, what),
                     "value": "%.2f MB (%d K -> %d K, best of %d)" % (added, base, kb, REPEAT),
                     "ratio": kb / float(base), "goal": "<= %.1f MB added" % limit,
                     "met": added <= limit})
    return rows


def footprint(quick: bool) -> List[dict]:
    """RSS added to a typical application, on Python 3.6 and 3.11."""
    seconds = 1.5 if quick else 4.0
    rows = []
    with tempfile.TemporaryDirectory() as folder, bench_broker(folder) as broker, _SerialPeer() as tty:
        for version, python, _ in PYTHONS:
            if not os.access(python, os.X_OK):
                raise RuntimeError("no Python %s at %s (pyenv install)" % (version, python))
        _pyserial(folder, [python for _, python, _ in PYTHONS])
        for version, python, paho in PYTHONS:
            rows += _footprint_one(version, python, paho, seconds, folder, broker.port, tty)
    return rows


def _one_hz_profile(folder: str, url: str, n: int = 0) -> str:
    """The emulator profile at 1 Hz sampling, reporting a telemetry sample every 10 s."""
    path = os.path.join(folder, "one-hz-%d.ini" % n)
    with open(path, "w") as handle:
        handle.write("[profile]\nextends = %s\n[agent]\ntick = 1s\n[report]\nurls = %s\n"
                     "interval = 10s\nbatch = 3\n" % (PROFILE, url))
    return path


def _last_cpu_ms(path: str) -> Tuple[float, int, int]:
    """The agent's own account: agent_cpu_ms of the last telemetry message, how many
    telemetry messages there were, and how many said 0."""
    said = []
    with open(path) as handle:
        for line in handle:
            message = json.loads(line)
            if message.get("type") == "telemetry":
                said.append(message["agent_cpu_ms"])
    if not said:
        raise RuntimeError("no telemetry in %s" % path)
    return said[-1], len(said), sum(1 for ms in said if not ms)


def cpu(quick: bool) -> List[dict]:
    """CPU time over a minute at 1 Hz sampling, with and without the agent, and the
    agent's own account of it (agent_cpu_ms) held against the outside figure."""
    seconds = 15.0 if quick else 60.0
    python = sys.executable
    with tempfile.TemporaryDirectory() as folder:
        app = _app(folder)
        typical = [app, str(seconds), "alone", "-", PROFILE, "0"]
        reports = [os.path.join(folder, "m%d.jsonl" % i) for i in range(CPU_PAIRS)]
        wrapped = [[python, "-S", "-m", "agent", "run", "--profile",
                    _one_hz_profile(folder, "file://" + report, i), "--"] + typical
                   for i, report in enumerate(reports)]
        # Side by side, CPU_PAIRS of each (they mostly sleep: 2 cores are plenty), and
        # the median of each kind: one process's start-up moves by several ms from run
        # to run, which is a tenth of the whole goal.
        started = time.monotonic()
        runs = _run_all([[python, "-S"] + typical] * CPU_PAIRS + wrapped, _env(PAHO_2))
        wall = time.monotonic() - started
        alone = statistics.median(c for _, c, _ in runs[:CPU_PAIRS])
        with_agent = statistics.median(c for _, c, _ in runs[CPU_PAIRS:])
        accounts = sorted(_last_cpu_ms(report) for report in reports)
        own_ms, messages, zeros = accounts[len(accounts) // 2]
        zeros = max(z for _, _, z in accounts)
    # Interpreter start-up and imports are a one-time cost, counted in full here.
    added_ms = (with_agent - alone) * 1000
    share = added_ms / 1000 / wall * 100.0
    off = abs(own_ms - added_ms) / added_ms if added_ms > 0 else float("inf")
    return [{"row": "cpu: share of a core added at 1 Hz (%ds, typical application)" % seconds,
             "value": "%.3f%% (%.0f ms -> %.0f ms CPU, median of %d side by side)"
                      % (share, alone * 1000, with_agent * 1000, CPU_PAIRS),
             "ratio": with_agent / alone if alone else float("inf"),
             "goal": "<= 0.1% of a core", "met": share <= 0.1},
            {"row": "cpu: agent_cpu_ms against the outside figure",
             "value": "%.1f ms said vs %.1f ms added (%d telemetry messages, %d said 0)"
                      % (own_ms, added_ms, messages, zeros),
             "ratio": own_ms / added_ms if added_ms > 0 else float("inf"),
             "goal": "within 20%, none 0", "met": off <= 0.2 and zeros == 0}]
