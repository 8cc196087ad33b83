"""The agent on every CPython 3.6+ this machine has, and the 3.10 bundle on a real 3.10.

DAL firmware ships 3.6.x (older releases) and 3.10.x (newer); vermin checks the
syntax, these run it. Interpreters are found in `$GCAGENT_PYTHONS` (paths
separated by `:`), under pyenv (`~/.pyenv/versions/*/bin/python`, or
`$PYENV_ROOT`), as `python3.N` on PATH, and this test's own Python. Without a
3.6, a 3.10 and the desktop's Python the suite fails and says how to get them
(never skipped). Every interpreter runs at the same time, a few seconds each.
"""

import glob
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List

import pytest

from agent import messages
from tests.conftest import EMULATOR_PROFILE, REPO, WORKLOADS, read_jsonl

REQUIRED = ((3, 6), (3, 10), tuple(sys.version_info[:2]))
HOW = ("install them with pyenv (pyenv install 3.6.15 3.10.13), put python3.N on PATH, or "
       "list interpreters in GCAGENT_PYTHONS=/path/to/python3.6:/path/to/python3.10")


def _candidates() -> List[str]:
    found = [p for p in os.environ.get("GCAGENT_PYTHONS", "").split(os.pathsep) if p]
    for root in (os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv")):
        if root:
            found += sorted(glob.glob(os.path.join(root, "versions", "3.*", "bin", "python3")))
    for minor in range(6, 30):
        on_path = shutil.which("python3.%d" % minor) or ""
        if on_path and "/shims/" not in on_path:   # a shim without that version selected only errs
            found.append(on_path)
    return found + [sys.executable]


def find_pythons() -> Dict[str, str]:
    """'3.N' -> an interpreter of that CPython version, 3.6 and newer (the first found)."""
    versions: Dict[str, str] = {}
    for path in _candidates():
        if not os.access(path, os.X_OK):
            continue
        try:
            said = subprocess.run([path, "-I", "-c", "import sys; print(sys.implementation.name, "
                                   "*sys.version_info[:2])"], capture_output=True, text=True,
                                  timeout=20).stdout.split()
        except (OSError, subprocess.TimeoutExpired):
            continue
        if len(said) == 3 and said[0] == "cpython" and (int(said[1]), int(said[2])) >= (3, 6):
            versions.setdefault("%s.%s" % (said[1], said[2]), path)
    return versions


PYTHONS = find_pythons()


def test_the_pythons_the_devices_ship_are_here():
    missing = ["%d.%d" % v for v in REQUIRED if "%d.%d" % v not in PYTHONS]
    assert not missing, "no CPython %s found (found: %s): %s" % (
        ", ".join(missing), ", ".join(sorted(PYTHONS)) or "none", HOW)


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """Every interpreter at once: `check` of the shipped profiles, then the agent around
    a workload that fills 64M with reference cycles in 3 s."""
    folder = tmp_path_factory.mktemp("pythons")
    env = {"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    profiles = sorted(glob.glob(os.path.join(REPO, "device_profiles", "*.ini")))
    started = {}
    for version, python in sorted(PYTHONS.items()):
        out = folder / ("%s.jsonl" % version)
        command = ("%s -m agent check %s && exec %s -m agent run --profile %s --report file://%s "
                   "-- %s --rate 25 --seconds 3 --gc-off --quiet"
                   % (python, " ".join(profiles), python, EMULATOR_PROFILE, out,
                      os.path.join(WORKLOADS, "cycles.py")))
        started[version] = (subprocess.Popen(["/bin/sh", "-c", command], env=env, cwd=str(folder),
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE), out)
    results = {}
    deadline = time.monotonic() + 120
    for version, (proc, out) in started.items():
        try:
            stdout, stderr = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        results[version] = (proc.returncode, stdout.decode(), stderr.decode(), out)
    return results


@pytest.mark.parametrize("version", sorted(PYTHONS))
def test_the_agent_runs_on_every_python_found(smoke_runs, version):
    status, stdout, stderr, out = smoke_runs[version]
    assert status == 0, "Python %s (%s): %s" % (version, PYTHONS[version], stderr)
    assert stdout.startswith("cycles: made")
    got = read_jsonl(out)
    assert got[0]["python"].startswith(version + ".")
    assert all(messages.validate(m) == [] for m in got)
    assert (got[0]["state"], got[-1]["state"]) == ("online", "offline")
    assert any(m.get("event") == "collect" and m["rule"] == "low-memory" for m in got), \
        "Python %s: no low-memory collection while 75 MB of cycles went through 64M" % version
    assert any(m["type"] == "telemetry" for m in got)


def test_the_310_bundle_runs_on_a_real_310(tmp_path):
    """gc-bundle's 3.10 target (paho-mqtt 2.x vendored) as newer firmware runs it:
    `python3.10 -I BUNDLE run -- APP`, isolated from anything installed."""
    assert "3.10" in PYTHONS, "no CPython 3.10: " + HOW
    from tests.integration.test_bundle import build
    pyz = build(tmp_path, 1883, "dev-310", "3.10")
    app = tmp_path / "app.py"
    app.write_text("import sys, time\ntime.sleep(1.5)\nprint('app', sys.argv[1:])\nsys.exit(3)\n")
    out = tmp_path / "messages.jsonl"
    done = subprocess.run([PYTHONS["3.10"], "-I", pyz, "run", "--report", "file://%s" % out,
                           "--", str(app), "a"], cwd=str(tmp_path), capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, timeout=60)
    assert (done.returncode, done.stdout) == (3, "app ['a']\n"), done.stderr
    got = read_jsonl(out)
    assert got[0]["python"].startswith("3.10.") and got[0]["bundle"]
    assert [m["state"] for m in got if m["type"] == "status"] == ["online", "offline"]
    assert all(messages.validate(m) == [] for m in got)
