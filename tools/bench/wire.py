"""Bytes on the wire for a day of 1-minute telemetry, measured at a TCP proxy.

The agent runs against a real mosquitto through a proxy that counts every byte
both ways (TCP payload: MQTT packets with their headers; IP and TCP headers,
about 64 bytes a packet, are not in it). Time is compressed: samples are
taken every 20 ms instead of every minute, which changes nothing on the wire
but the keepalives, and those are added from the MQTT spec (PINGREQ and
PINGRESP are 2 bytes each).

Two runs of different lengths give the cost per sample without the session's
fixed cost (connect, status, subscribe), which is then added once for the day.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, Tuple

from tools.bench.broker import agent_env, bench_broker
from tools.emulator.proxy import Proxy

SAMPLES_PER_DAY = 24 * 60
KEEPALIVE_S = 240.0


def _profile(folder: str, port: int, batch: int, compress: str) -> str:
    path = os.path.join(folder, "wire-%d-%s.ini" % (batch, compress))
    with open(path, "w") as handle:
        handle.write("[device]\nid = ix20-0042\nmodel = IX20\n"
                     "[agent]\ntick = 20ms\n"
                     "[rule:periodic]\ntype = periodic\nevery = 1d\n"
                     "[report]\nurls = mqtt://127.0.0.1:%d\ninterval = 20ms\nbatch = %d\n"
                     "compress = %s\nkeepalive = 240s\n" % (port, batch, compress))
    return path


def _run(profile: str, seconds: float) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "--profile", profile], env=agent_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(seconds)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    if proc.returncode != 0:
        raise RuntimeError("agent failed: %s" % err.decode()[-500:])


def measure(quick: bool) -> Dict[str, Tuple[float, float]]:
    """{"plain"|"batched": (bytes per sample, bytes per day)}."""
    short, long_ = (1.0, 3.0) if quick else (2.0, 8.0)
    results = {}
    with tempfile.TemporaryDirectory() as folder, bench_broker(folder) as broker:
        for name, batch, compress in (("plain", 1, "none"), ("batched", 10, "zlib")):
            counts = []
            for seconds in (short, long_):
                proxy = Proxy(target=("127.0.0.1", broker.port)).start()
                _run(_profile(folder, proxy.port, batch, compress), seconds)
                counts.append((proxy.bytes, seconds / 0.02))
                proxy.stop()
            (b1, n1), (b2, n2) = counts
            per_sample = (b2 - b1) / (n2 - n1)
            fixed = b1 - per_sample * n1
            pings = SAMPLES_PER_DAY * 60 / KEEPALIVE_S * 4
            results[name] = (per_sample, fixed + per_sample * SAMPLES_PER_DAY + pings)
    return results
