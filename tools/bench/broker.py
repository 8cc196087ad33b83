"""The benchmarks' broker (tools/mosquitto.py, with deep queues) and the agent's environment."""

import os

from tools.mosquitto import Mosquitto

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAHO_2 = os.path.join(REPO, ".venv", "paho-2")

# mosquitto's default max_queued_messages (1000) would drop what a subscriber
# falls behind by in a burst, and the ingest and replay rows measure bursts.
BENCH_BROKER = "allow_anonymous true\nmax_queued_messages 100000\n"


def agent_env() -> dict:
    """The environment a benchmarked agent runs in: this checkout and paho-mqtt 2, nothing else."""
    return {"PYTHONPATH": "%s:%s" % (REPO, PAHO_2), "PATH": "/usr/bin:/bin"}


def bench_broker(folder: str) -> Mosquitto:
    """mosquitto on a free loopback port in `folder`; a context manager that starts and stops it."""
    return Mosquitto(folder, extra=BENCH_BROKER)
