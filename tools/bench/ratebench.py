"""How many messages a second `gc-console ingest` records from a broker stream.

    python -m tools.bench.ratebench --broker mqtt://127.0.0.1:1883 -n 20000 --devices 100

Starts `gc-console ingest --exit-after N --stats` on a fresh database, then
publishes N schema-v1 messages (telemetry of 2 samples, with an event every
tenth, like an agent with `batch = 2`) from `--devices` made-up devices as
fast as the broker takes them (QoS 1), and prints the recorder's stats line:
`rate_per_s` is messages recorded per second, from the first one received to
the N-th written to SQLite (or the end of `--timeout`: then `recorded` < N
says how many the broker delivered; mosquitto's default `max_queued_messages
1000` drops what a subscriber falls behind by). Without --broker, a mosquitto
of its own on a free port (tools/mosquitto.py), with queues large enough not
to drop. Without mosquitto installed, pass the URL `gc-console watch` prints
(its embedded amqtt broker is then the bottleneck, at about 1,500 messages a
second). The bench's ingest row publishes the same stream.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

import paho.mqtt.client as mqtt

from agent import messages
from agent.transports.mqtt import parse_mqtt_url
from tools.mosquitto import Mosquitto

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def stream(n: int, devices: int) -> List[tuple]:
    """(topic, payload) for n messages spread over `devices` devices, seqs in order."""
    envelopes = [messages.Envelope("bench-%04d" % i) for i in range(devices)]
    out = []
    now = time.time()
    for i in range(n):
        env = envelopes[i % devices]
        if i % 10 == 9:
            m = env.make("event", event="collect", rule="periodic", generation=2, collected=10,
                         duration_ms=1.2, rss_before_kb=30000, rss_after_kb=29000)
        else:
            sample = {"ts": now + i, "mem_free_kb": 150000, "mem_total_kb": 262144,
                      "rss_kb": 30000 + i % 1000, "gc_count": [1, 2, 3], "gc_collections": [4, 5, 6],
                      "gc_collected": 7, "gc_uncollectable": 0, "gc_pause_ms_total": 0.3,
                      "gc_pause_ms_max": 0.2}
            m = env.make("telemetry", samples=[sample, dict(sample, ts=now + i + 0.5)],
                         buffered=0, dropped=0)
        out.append(("gcagent/%s/%s" % (m["device"], m["type"]), messages.encode(m)))
    return out


def measure(broker: str, n: int = 20000, devices: int = 100, db: Optional[str] = None,
            timeout: float = 120.0) -> Dict[str, Any]:
    """Run the recorder against `broker`, publish n messages, return its stats line as a dict."""
    with tempfile.TemporaryDirectory(prefix="gc-ratebench-") as tmp:
        db = db or os.path.join(tmp, "bench.db")
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        recorder = subprocess.Popen([sys.executable, "-m", "tools.console", "ingest", "--broker",
                                     broker, "--db", db, "--exit-after", str(n), "--stats",
                                     "--duration", "%gs" % timeout],
                                    env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        ready = recorder.stderr.readline().decode()
        if "recording from" not in ready:
            raise RuntimeError("the recorder did not start: %s%s"
                               % (ready, recorder.stderr.read().decode()))
        payloads = stream(n, devices)
        _, host, port, _ = parse_mqtt_url(broker)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        client.max_inflight_messages_set(1000)
        client.connect(host, port)
        client.loop_start()
        for topic, payload in payloads:
            client.publish(topic, payload, qos=1)
        _, err = recorder.communicate(timeout=timeout + 30)
        client.loop_stop()
        client.disconnect()
    return json.loads(err.decode().strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", help="mqtt://host:port (default: a mosquitto of our own)")
    parser.add_argument("-n", type=int, default=20000, help="messages to publish (default 20000)")
    parser.add_argument("--devices", type=int, default=100, help="made-up devices (default 100)")
    args = parser.parse_args(argv)
    broker, own = args.broker, None
    if not broker:
        # deep queues: the default 1000 would drop what the recorder falls behind by
        own = Mosquitto(extra="allow_anonymous true\nmax_queued_messages 1000000\n"
                              "max_inflight_messages 1000\n").start()
        broker = own.url
    try:
        stats = measure(broker, args.n, args.devices)
    finally:
        if own is not None:
            own.close()
    print(json.dumps(dict(stats, broker=broker, published=args.n, devices=args.devices)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
