"""Scenario helpers: run gc-emulator as a user would (a real subprocess), read its JSON summary.

Each scenario asserts from measurements: RSS and kills come from the
emulator's readings of /proc/PID from outside the device's process, and
message counts from a real mosquitto (tools/mosquitto.py) or the
files the devices wrote, never from the agent's own claims alone.
"""

import json
import os
import subprocess
import sys
from typing import Any, Callable, Dict, List, Optional

import pytest

from tests.conftest import REPO

PROFILES = os.path.join(REPO, "device_profiles", "examples")
EMULATOR_INI = os.path.join(REPO, "device_profiles", "emulator.ini")
IX20_INI = os.path.join(REPO, "device_profiles", "ix20.ini")


class Emulation(object):
    """One `gc-emulator run ... --json` in the background; `result()` waits for its summary."""

    def __init__(self, workdir: str, *args: str) -> None:
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.argv = [sys.executable, "-m", "tools.emulator", "run", "--json", "--workdir", self.workdir,
                     *args]
        self._err = open(os.path.join(self.workdir, "emulator.log"), "w+")  # noqa: SIM115
        self._summary: Optional[Dict[str, Any]] = None
        self.cleanups: List[Callable[[], None]] = []   # what the run brought with it (a broker)
        self.proc = subprocess.Popen(self.argv, cwd=REPO, stdout=subprocess.PIPE, stderr=self._err,
                                     env=dict(os.environ, PYTHONPATH=REPO))

    def result(self, timeout: float = 120.0) -> Dict[str, Any]:
        if self._summary is not None:
            return self._summary
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise AssertionError("gc-emulator still running after %ss: %s" % (timeout, self.argv))
        self._err.seek(0)
        log = self._err.read()
        self._err.close()
        assert out.strip(), "gc-emulator printed no summary (exit %d):\n%s" % (self.proc.returncode, log)
        summary = json.loads(out)
        summary["exit_status"] = self.proc.returncode
        summary["log"] = log
        self._summary = summary
        return summary

    def device_folder(self, device: str) -> str:
        return os.path.join(self.workdir, device)


def killed_at_limit(kill: Dict[str, Any], limit_kb: int) -> bool:
    """An OOM kill at the limit: the kernel's (the cgroup was charged up to its limit) or
    the emulator's (it read RSS over the limit from outside)."""
    if kill.get("by") == "kernel":
        return kill["charged_kb"] >= 0.95 * limit_kb
    return kill["rss_kb"] > limit_kb


def messages(folder: str) -> List[Dict[str, Any]]:
    """Every message a device's agent wrote to its file report (the emulator's own copy)."""
    from tools.emulator.summary import read_messages
    return read_messages(folder)


# Runs that take 10-25 s each start together, once per session, the first time
# a test asks for one; each test then waits only for its own. They are light
# (one busy server at most), so running side by side changes no outcome.
#
# Runs registered `early` start before them, with the first scenario test, and
# run while the folder's first modules run theirs: they are light too, and their
# outcomes (nothing lost, frames counted) do not rest on timing. The other runs
# start only once they are over: the server runs' busy and idle phases are timed,
# and a crowd of starting emulators moved the agent's idle collection into a busy
# phase.
_STARTERS: Dict[str, Callable[[str], "Emulation"]] = {}
_EARLY: Dict[str, Callable[[str], "Emulation"]] = {}


def background(name: str, early: bool = False):
    """Register a run to start with the others: `@background("leak") def _(folder): ...`."""
    def register(start: Callable[[str], "Emulation"]):
        (_EARLY if early else _STARTERS)[name] = start
        return start
    return register


def _start_all(folder, starters: Dict[str, Callable[[str], "Emulation"]]):
    runs: Dict[str, Emulation] = {}
    try:
        for name, start in starters.items():
            runs[name] = start(str(folder / name))
        yield runs
    finally:
        for run in runs.values():
            if run.proc.poll() is None:
                run.proc.kill()
                run.proc.wait()
            for cleanup in run.cleanups:
                cleanup()


@pytest.fixture(scope="session", autouse=True)
def launched_early(tmp_path_factory) -> Dict[str, "Emulation"]:
    """Autouse, for the tests in this folder only: the early runs start with the first of them."""
    yield from _start_all(tmp_path_factory.mktemp("scenarios-early"), _EARLY)


@pytest.fixture(scope="session")
def launched(tmp_path_factory, launched_early) -> Dict[str, "Emulation"]:
    for run in launched_early.values():
        run.result()
    yield from _start_all(tmp_path_factory.mktemp("scenarios"), _STARTERS)
