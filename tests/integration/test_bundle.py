"""A gc-bundle .pyz, run as a technician would: `python3 -I BUNDLE run` from an empty
folder, in a fresh virtual environment with nothing installed, against a real mosquitto.

Both targets: a 3.10 bundle (paho-mqtt 2.x) under this Python, and a 3.6 bundle
(paho-mqtt 1.6) under a real Python 3.6, the oldest one DAL firmware ships.
"""

import json
import os
import signal
import subprocess
import sys
import zipfile

import pytest

from agent.profile import sha256_hex
from tests.conftest import REPO
from tests.integration.broker import Subscriber
from tests.integration.test_python36 import find_python36
from tests.profiles import BASE, write_profile
from tools.bundle.__main__ import main as gc_bundle

LIMIT = 500 * 1024
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def profile_for(tmp_path, port: int) -> str:
    # a site profile that `extends` a base one: the bundle flattens the two
    write_profile(tmp_path, {"device": {"id": "${hostname}", "memory_limit": None}, "report": None},
                  name="base.ini")
    return write_profile(tmp_path, {"profile": {"extends": "base.ini"},
                                    "report": dict(BASE["report"], urls="mqtt://127.0.0.1:%d" % port)},
                         name="site.ini", base={})


def build(tmp_path, port: int, device: str, python: str) -> str:
    out = tmp_path / "dist"
    assert gc_bundle(["--profile", profile_for(tmp_path, port), "--device-id", device,
                      "--out", str(out), "--python", python]) == 0
    return str(out / ("gc-agent-%s.pyz" % device))


def empty_venv(tmp_path, python: str) -> str:
    """A virtual environment with nothing in it; returns its interpreter."""
    folder = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", "--without-pip", str(folder)], check=True, env=ENV,
                   capture_output=True, timeout=120)
    interpreter = str(folder / "bin" / "python")
    for module in ("paho", "serial"):
        found = subprocess.run([interpreter, "-I", "-c", "import " + module], env=ENV,
                               capture_output=True)
        assert found.returncode != 0, "%s is importable in the fresh venv" % module
    return interpreter


@pytest.mark.parametrize("target", ["3.10", "3.6"])
def test_bundle_runs_from_an_empty_folder_in_an_empty_venv(tmp_path, broker, target):
    python = find_python36() if target == "3.6" else sys.executable   # 3.10 bundle: this 3.11
    device = "dev-%s" % target.replace(".", "")
    pyz = build(tmp_path, broker.port, device, target)
    assert os.path.getsize(pyz) < LIMIT
    interpreter = empty_venv(tmp_path, python)
    empty = tmp_path / "empty"
    empty.mkdir()
    watcher = Subscriber(broker.port)
    proc = subprocess.Popen([interpreter, "-I", pyz, "run"], cwd=str(empty), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        watcher.wait_for(lambda s: s.topic == "gcagent/%s/telemetry" % device,
                         what="telemetry from the bundle")
        status = watcher.messages("status")[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=30)[1]
        watcher.close()
    assert proc.returncode == 0, err.decode()
    with zipfile.ZipFile(pyz) as archive:
        manifest_raw = archive.read("MANIFEST.json")
    manifest = json.loads(manifest_raw)
    assert status["device"] == device and status["state"] == "online"
    assert status["bundle"] == sha256_hex(manifest_raw)
    assert status["profile_sha256"] == manifest["profile_sha256"]
    assert status["python"].startswith("3.6." if target == "3.6" else "%d.%d." % sys.version_info[:2])
    assert os.listdir(str(empty)) == []


def test_a_changed_byte_is_refused_at_start_naming_the_file(tmp_path):
    pyz = build(tmp_path, 1883, "dev-x", "3.10")
    assert subprocess.run([sys.executable, "-I", pyz, "check"], env=ENV,
                          capture_output=True).returncode == 0
    for member in ("agent/rules/policy.py", "paho/mqtt/client.py", "profile.ini"):
        bad = str(tmp_path / ("bad-%s.pyz" % member.replace("/", "-")))
        with zipfile.ZipFile(pyz) as src, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                data = src.read(info.filename)
                if info.filename == member:   # one byte, in a comment or a value
                    at = data.index(b"#") + 1 if member != "profile.ini" else data.index(b"= ") + 2
                    data = data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]
                dst.writestr(info, data)
        for command in (["check"], ["run", "--report", "stdout:"]):
            done = subprocess.run([sys.executable, "-I", bad, *command], env=ENV,
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 2, done.stderr
            assert "refused: %s does not match MANIFEST.json" % member in done.stderr
            assert done.stdout == ""   # nothing ran: not even a status message


def test_the_36_bundle_passes_vermin_and_checks_under_python_36(tmp_path):
    pyz = build(tmp_path, 1883, "dev-36", "3.6")
    code = tmp_path / "code"
    with zipfile.ZipFile(pyz) as archive:
        archive.extractall(str(code))
        assert "paho/mqtt/client.py" in archive.namelist()
    vermin = os.path.join(REPO, ".venv", "bin", "vermin")
    done = subprocess.run([vermin, "--target=3.6-", "--no-tips", "--violations", str(code)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Target versions not met" not in done.stdout
    check = subprocess.run([find_python36(), "-I", pyz, "check", "-v"], env=ENV,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert "ok: device dev-36" in check.stdout


def test_the_bundle_wraps_an_application_like_python_does(tmp_path):
    pyz = build(tmp_path, 1883, "dev-app", "3.10")
    app = tmp_path / "app.py"
    app.write_text("import sys\nprint('app', sys.argv[1:], __name__)\nsys.exit(3)\n")
    out = tmp_path / "messages.jsonl"
    done = subprocess.run([sys.executable, "-I", pyz, "run", "--report", "file://%s" % out,
                           "--", str(app), "a", "b"], cwd=str(tmp_path), env=ENV,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and done.stdout == "app ['a', 'b'] __main__\n", done.stderr
    messages = [json.loads(line) for line in out.read_text().splitlines()]
    assert [m["state"] for m in messages if m["type"] == "status"] == ["online", "offline"]
    assert all(m["bundle"] for m in messages if m["type"] == "status")
