"""Replay: messages a second delivered from the flash journal after an outage.

A journal is filled with a boot's worth of messages (as an outage leaves it),
then the agent starts against a real mosquitto with the replay rate lifted
(to its highest setting, 10000 a second),
and a subscriber counts the historical messages until all have arrived. The
profile's default `replay_rate` (20 a second) is a deliberate cap on a
cellular link; this row measures what the agent can do when it is lifted.
"""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt

from agent import messages
from agent.assembly import journal_folder
from agent.journal import Journal
from tools.bench.broker import agent_env, bench_broker

DEVICE = "ix20-replay"


def _profile(folder: str, port: int, rate: int) -> str:
    path = os.path.join(folder, "replay.ini")
    with open(path, "w") as handle:
        handle.write("[device]\nid = %s\nmodel = IX20\n[agent]\ntick = 50ms\n"
                     "[rule:periodic]\ntype = periodic\nevery = 1d\n"
                     "[report]\nurls = mqtt://127.0.0.1:%d\ninterval = 1h\nwindow = 100\n"
                     "replay_rate = %d\n[buffer]\nflash = %s/outbox\nflash_max = 64M\n"
                     % (DEVICE, port, rate, folder))
    return path


def _fill(folder: str, url: str, count: int) -> None:
    journal = Journal(journal_folder(os.path.join(folder, "outbox"), url), 64 * 1024 * 1024)
    envelope = messages.Envelope(DEVICE)
    for i in range(count):
        journal.append(messages.encode(envelope.make("event", event="app", name="tick", data={"i": i})))
    journal.sync()
    journal.close()


def measure(quick: bool) -> float:
    """Historical messages a second, from the agent's start to the last one at the broker."""
    count = 2000 if quick else 10000
    with tempfile.TemporaryDirectory() as folder, bench_broker(folder) as broker:
        url = "mqtt://127.0.0.1:%d" % broker.port
        _fill(folder, url, count)
        seen = set()
        done = threading.Event()

        def on_message(client, userdata, message):
            if b'"historical":true' in message.payload:
                seen.add(message.payload)
                if len(seen) >= count:
                    done.set()
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        sub.on_message = on_message
        sub.connect("127.0.0.1", broker.port)
        sub.subscribe("gcagent/#", qos=1)
        sub.loop_start()
        time.sleep(0.3)
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "--profile",
                                 _profile(folder, broker.port, 10000)], env=agent_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            if not done.wait(120):
                raise RuntimeError("only %d of %d replayed messages arrived" % (len(seen), count))
            elapsed = time.monotonic() - started
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
            sub.loop_stop()
            sub.disconnect()
    return count / elapsed
