"""What an unauthenticated publisher costs the agent's host application (docs/hardening.md).

The same small application runs twice side by side under `python -m agent
run` against one local mosquitto, with commands on: a quiet twin, and one
whose `cmd` topic gets 2,000 unsigned 70 KB payloads and then 5,000 small
unsigned commands. Peak RSS is the application's own VmHWM (printed at its
end), CPU comes from wait4's rusage, and answers are counted by a subscriber:
nothing relies on the agent's own account.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import List

from tools.bench.broker import agent_env, bench_broker

APP = ("import sys, time\nx = [bytes(1000) for _ in range(5000)]\ntime.sleep(float(sys.argv[1]))\n"
       "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n")
PROFILE = """[device]
id = {device}
memory_limit = 64M
[agent]
tick = 1s
[rule:periodic]
type = periodic
every = 10s
generation = 0
[report]
urls = mqtt://127.0.0.1:{port}
interval = 1s
batch = 1
[commands]
key_file = {folder}/key
"""


def _publish(port: int, topic: str, lines: List[bytes]) -> None:
    binary = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
    subprocess.run([binary, "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-q", "1", "-l"],
                   input=b"\n".join(lines) + b"\n", stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=300, check=True)


def _count_answers(port: int, device: str, counted: dict, stop: threading.Event) -> None:
    binary = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
    proc = subprocess.Popen([binary, "-h", "127.0.0.1", "-p", str(port), "-t",
                             "gcagent/%s/resp" % device], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    threading.Thread(target=lambda: [counted.__setitem__("n", counted["n"] + 1)
                                     for _ in proc.stdout], daemon=True).start()
    stop.wait()
    proc.terminate()
    proc.wait(10)


def measure(quick: bool) -> List[dict]:
    seconds = 12.0 if quick else 20.0
    with tempfile.TemporaryDirectory() as folder, bench_broker(folder) as broker:
        with open(os.path.join(folder, "key"), "wb") as handle:
            handle.write(b"b" * 32)
        os.chmod(os.path.join(folder, "key"), 0o600)
        app = os.path.join(folder, "app.py")
        with open(app, "w") as handle:
            handle.write(APP)
        procs = {}
        for device in ("quiet", "flooded"):
            profile = os.path.join(folder, device + ".ini")
            with open(profile, "w") as handle:
                handle.write(PROFILE.format(device=device, port=broker.port, folder=folder))
            procs[device] = subprocess.Popen(
                [sys.executable, "-S", "-m", "agent", "run", "--profile", profile, "--", app,
                 str(seconds)], env=agent_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        counted, stop = {"n": 0}, threading.Event()
        counter = threading.Thread(target=_count_answers, args=(broker.port, "flooded", counted, stop))
        counter.start()
        time.sleep(2.0)   # both connected and subscribed
        topic = "gcagent/flooded/cmd"
        pad = "x" * (70 * 1024 - 100)
        began = time.monotonic()
        _publish(broker.port, topic, [json.dumps({"id": "big%d" % n, "cmd": "collect", "ts": 1,
                                                  "pad": pad}).encode() for n in range(2000)])
        _publish(broker.port, topic, [json.dumps({"id": "u%d" % n, "cmd": "collect", "args": {},
                                                  "ts": time.time()}).encode() for n in range(5000)])
        flood_seconds = time.monotonic() - began
        results = {}
        for device, proc in procs.items():
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            out, err = proc.communicate()
            if proc.returncode != 0 or not out.split() or b"gc-agent" in err:
                raise RuntimeError("%s failed: %s" % (device, err.decode()[-500:]))
            results[device] = (int(out.split()[-1]), usage.ru_utime + usage.ru_stime)
        stop.set()
        counter.join(15)
    (quiet_kb, quiet_cpu), (flooded_kb, flooded_cpu) = results["quiet"], results["flooded"]
    added_mb = (flooded_kb - quiet_kb) / 1024.0
    answers = counted["n"]
    allowed = 20 + flood_seconds + seconds
    return [
        {"row": "flood: peak RSS, 2,000 unsigned 70 KB + 5,000 small commands", "value":
         "%+.1f MB (quiet %d K, flooded %d K)" % (added_mb, quiet_kb, flooded_kb),
         "ratio": flooded_kb / float(quiet_kb), "goal": "<= +16 MB", "met": added_mb <= 16.0},
        {"row": "flood: CPU of the flooded process against its quiet twin", "value":
         "%.0f ms -> %.0f ms over %.1f s of flood" % (quiet_cpu * 1000, flooded_cpu * 1000,
                                                      flood_seconds),
         "ratio": flooded_cpu / quiet_cpu if quiet_cpu else float("inf"), "goal": "none (measured)",
         "met": True},
        {"row": "flood: refusals answered of 7,000 unsigned", "value": "%d (limit 20 + 1 a second)"
         % answers, "ratio": answers / 7000.0, "goal": "<= 20 + 1/s", "met": answers <= allowed},
    ]
