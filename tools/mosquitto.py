"""A real mosquitto on a free loopback port: for the tests, the bench and the rate bench.

    with Mosquitto() as broker:                 # a folder of its own, removed at stop()
        run_agent("--report", broker.url)

    Mosquitto(folder, extra="cafile ...\\nrequire_certificate true\\n")   # TLS, ACL, ...
    Mosquitto(folder, port=port, config=whole_text)                     # a config as shipped

The config is written by us (listener on 127.0.0.1 only, anonymous access unless
`extra` says otherwise, no persistence, a log file in the folder); `start()`
returns once the port accepts connections, and says why when mosquitto exits
instead. `stop()` then `start()` again reuses the same port and config, which
is how a broker outage is made. The desktop side only: see docs/development.md.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Optional


class MosquittoError(RuntimeError):
    """mosquitto is missing, exited at start, or did not listen in time."""


def mosquitto_binary() -> str:
    """The mosquitto program (Debian installs it in /usr/sbin, often off a user's PATH)."""
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto"
                                          if os.access("/usr/sbin/mosquitto", os.X_OK) else "")
    if not found:
        raise MosquittoError("mosquitto is not installed: make broker "
                             "(or apt-get install mosquitto mosquitto-clients)")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class Mosquitto(object):
    """mosquitto with a config file we write; a context manager; stop() and start() again."""

    def __init__(self, folder: Optional[str] = None, extra: str = "", port: Optional[int] = None,
                 config: Optional[str] = None, timeout: float = 10.0) -> None:
        """`extra`: config lines in place of `allow_anonymous true` (TLS, ACL, queue sizes).
        `config`: the whole config instead (it must listen on `port`)."""
        self._own_folder = folder is None
        self.folder = folder or tempfile.mkdtemp(prefix="gc-mosquitto-")
        self.port = port or free_port()
        self.timeout = timeout
        self.config = os.path.join(self.folder, "mosquitto.conf")
        self.log = os.path.join(self.folder, "mosquitto.log")
        with open(self.config, "w") as handle:
            handle.write(config if config is not None else self._config(extra))
        self.proc = None

    def _config(self, extra: str) -> str:
        lines = ["listener %d 127.0.0.1" % self.port,
                 (extra or "allow_anonymous true").rstrip("\n"),
                 "persistence false",
                 "log_dest file %s" % self.log]
        if os.getuid() == 0:   # as root mosquitto drops to its own user and cannot read our folder
            lines.append("user root")
        return "\n".join(lines) + "\n"

    def start(self) -> "Mosquitto":
        # stderr to a file, not a pipe: a pipe nobody reads would stall a chatty broker
        with open(os.path.join(self.folder, "mosquitto.stderr"), "wb") as err:
            self.proc = subprocess.Popen([mosquitto_binary(), "-c", self.config],
                                         stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise MosquittoError("mosquitto exited at start (status %s): %s"
                                         % (self.proc.returncode, self._why()))
                time.sleep(0.05)
        self.stop()
        raise MosquittoError("mosquitto did not listen on port %d within %gs: %s"
                             % (self.port, self.timeout, self._why()))

    def _why(self) -> str:
        text = ""
        for path in (os.path.join(self.folder, "mosquitto.stderr"), self.log):
            try:
                with open(path, errors="replace") as handle:
                    text += handle.read()[-2000:]
            except OSError:
                pass
        return text.strip() or "(nothing in its output or log)"

    def stop(self) -> None:
        """Ends mosquitto (the folder stays, for a start() on the same port)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self) -> None:
        """stop(), and remove the folder when it was ours."""
        self.stop()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "Mosquitto":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def url(self) -> str:
        return "mqtt://127.0.0.1:%d" % self.port
