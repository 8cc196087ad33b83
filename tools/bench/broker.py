"""A throwaway mosquitto on a free loopback port, for the benchmarks."""

import os
import shutil
import socket
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAHO_2 = os.path.join(REPO, ".venv", "paho-2")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def agent_env() -> dict:
    """The environment a benchmarked agent runs in: this checkout and paho-mqtt 2, nothing else."""
    return {"PYTHONPATH": "%s:%s" % (REPO, PAHO_2), "PATH": "/usr/bin:/bin"}


class Broker(object):
    """mosquitto on 127.0.0.1; a context manager."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc = None

    def __enter__(self) -> "Broker":
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.access(binary, os.X_OK):
            raise SystemExit("the benchmarks need mosquitto: make broker (or apt-get install mosquitto)")
        conf = os.path.join(self.folder, "bench-mosquitto.conf")
        with open(conf, "w") as handle:
            handle.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                         "max_queued_messages 100000\n%s"
                         % (self.port, "user root\n" if os.getuid() == 0 else ""))
        self.proc = subprocess.Popen([binary, "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("mosquitto did not start on port %d" % self.port)
                time.sleep(0.05)

    def __exit__(self, *exc_info) -> None:
        self.proc.terminate()
        self.proc.wait(10)
