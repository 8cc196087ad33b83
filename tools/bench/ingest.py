"""Console ingest: messages a second `gc-console ingest` records, against `mosquitto_sub`.

The same stream (schema-v1 telemetry and events from 100 made-up devices,
tools/bench/ratebench.py) is published at QoS 1 to a local mosquitto
twice: once to `gc-console ingest --exit-after N` (decoding, validating,
deduplicating and writing SQLite), once to `mosquitto_sub -C N` (receiving
only). Each is timed the same way, from the first publish to the
subscriber's exit after the N-th message, so the ratio is what recording
costs over merely receiving.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import List, Tuple

import paho.mqtt.client as mqtt

from tools.bench.broker import REPO, bench_broker
from tools.bench.ratebench import stream


def _publish(port: int, payloads: List[Tuple[str, bytes]]) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload in payloads:
            client.publish(topic, payload, qos=1)
    finally:
        client.loop_stop()
        client.disconnect()


def _timed(argv: List[str], port: int, payloads, ready: str) -> float:
    """Start a subscriber, wait until it is subscribed, publish, and time to its exit."""
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=REPO))
    if ready:
        line = proc.stderr.readline().decode()
        if ready not in line:
            raise RuntimeError("%s did not start: %s" % (argv[0], line))
    time.sleep(0.5)   # its SUBSCRIBE reaches the broker
    started = time.monotonic()
    _publish(port, payloads)
    _, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(argv), err.decode()[-500:]))
    return time.monotonic() - started


def measure(quick: bool) -> Tuple[float, float]:
    """(console messages a second, mosquitto_sub messages a second)."""
    count = 5000 if quick else 20000
    payloads = stream(count, 100)
    sub = shutil.which("mosquitto_sub")
    if sub is None:
        raise SystemExit("the ingest row needs mosquitto_sub: apt-get install mosquitto-clients")
    with tempfile.TemporaryDirectory() as folder, bench_broker(folder) as broker:
        url = "mqtt://127.0.0.1:%d" % broker.port
        console = _timed([sys.executable, "-m", "tools.console", "ingest", "--broker", url, "--db",
                          os.path.join(folder, "bench.db"), "--exit-after", str(count)],
                         broker.port, payloads, "recording from")
        plain = _timed([sub, "-h", "127.0.0.1", "-p", str(broker.port), "-t", "gcagent/#", "-q", "1",
                        "-C", str(count)], broker.port, payloads, "")
    return count / console, count / plain
