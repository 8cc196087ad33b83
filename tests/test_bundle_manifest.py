"""gc-bundle's output, read back: manifest, resolved profile, secrets, auto-start files.

These read the .pyz with zipfile and call agent.bundle directly; the bundle
running in a fresh interpreter is in tests/integration/test_bundle.py.
"""

import hashlib
import itertools
import json
import os
import stat
import textwrap
import zipfile

import pytest

from agent import bundle
from agent.errors import ProfileError
from agent.profile import load, loads, sha256_hex
from tools.bundle.__main__ import main as gc_bundle
from tools.bundle.vendor import DEFAULT_VENDOR

ID = "ix20-0042"
_REWRITES = itertools.count()


def write_profiles(tmp_path, extra: str = "") -> str:
    """A device profile that extends a base, as the shipped model profiles do."""
    (tmp_path / "base.ini").write_text(textwrap.dedent("""\
        [device]
        id = ${hostname}
        model = base
        [rule:periodic]
        type = periodic
        every = 15m
        [report]
        urls = mqtts://broker.example:8883
        """))
    path = tmp_path / "site.ini"
    path.write_text(textwrap.dedent("""\
        [profile]
        extends = base.ini
        [device]
        model = IX20
        memory_limit = 40M
        """) + extra)
    return str(path)


def build(tmp_path, *extra: str, profile: str = "") -> str:
    out = tmp_path / "out"
    status = gc_bundle(["--profile", profile or write_profiles(tmp_path), "--device-id", ID,
                        "--out", str(out), *extra])
    assert status == 0
    return str(out / ("gc-agent-%s.pyz" % ID))


def members(pyz: str):
    with zipfile.ZipFile(pyz) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rewrite(pyz: str, target: str, change) -> str:
    """A copy of the bundle with member `target` passed through `change` (None: added)."""
    # A new name each time: zipimport caches an archive's table of contents by path.
    bad = pyz.replace(".pyz", "-%d.pyz" % next(_REWRITES))
    with zipfile.ZipFile(pyz) as src, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            dst.writestr(info, change(data) if info.filename == target else data)
        if target not in src.namelist():
            dst.writestr(target, change(b""))
    return bad


def test_manifest_lists_every_file_with_its_sha256(tmp_path):
    files = members(build(tmp_path))
    manifest = json.loads(files.pop("MANIFEST.json"))
    assert set(manifest["files"]) == set(files)
    for name, data in files.items():
        assert manifest["files"][name] == hashlib.sha256(data).hexdigest(), name
    assert manifest["agent"] and manifest["python"] == "3.6" and manifest["device"] == ID
    assert manifest["vendored"] == {"paho-mqtt": "1.6.1", "pyserial": "3.5"}
    assert manifest["profile_sha256"] == hashlib.sha256(files["profile.ini"]).hexdigest()


def test_bundled_profile_is_flattened_with_the_device_id_written_in(tmp_path):
    files = members(build(tmp_path))
    text = files["profile.ini"].decode()
    assert "extends" not in text and "${hostname}" not in text
    profile = loads(text, path="bundle/profile.ini")
    assert profile.device.id == ID and profile.device.model == "IX20"
    assert profile.report.urls == ("mqtts://broker.example:8883",)
    assert profile.sha256 == json.loads(files["MANIFEST.json"])["profile_sha256"]


def test_only_device_code_goes_in_and_the_python_decides_the_paho(tmp_path):
    for python, paho in (("3.6", "1.6.1"), ("3.10", "2.")):
        files = members(build(tmp_path, "--python", python))
        assert json.loads(files["MANIFEST.json"])["vendored"]["paho-mqtt"].startswith(paho)
        names = sorted(files)
        assert not [n for n in names if n.endswith((".pyc", ".pyi")) or "/tests/" in n
                    or "__pycache__" in n or "dist-info" in n]
        assert not [n for n in names if n.startswith(("tools/", "tests/"))]
        assert "serial/serialwin32.py" not in files and "serial/serialposix.py" in files
        assert "agent/bundle.py" in files and "__main__.py" in files
        assert [n for n in names if n.startswith("licenses/paho-mqtt/")]


def test_same_inputs_give_the_same_bytes(tmp_path):
    with open(build(tmp_path), "rb") as one:
        first = one.read()
    with open(build(tmp_path), "rb") as two:
        second = two.read()
    assert first == second and first.startswith(b"#!/usr/bin/env python3\n")


def test_verify_names_the_changed_the_added_and_the_missing_file(tmp_path):
    pyz = build(tmp_path)
    assert bundle.verify(pyz) is None
    assert bundle.bundle_field() == {"bundle": sha256_hex(members(pyz)["MANIFEST.json"])}
    changed = bundle.verify(rewrite(pyz, "paho/mqtt/client.py", lambda d: d[:100] + b"#" + d[101:]))
    assert "paho/mqtt/client.py does not match MANIFEST.json" in changed
    added = bundle.verify(rewrite(pyz, "agent/extra.py", lambda d: b"x = 1\n"))
    assert "agent/extra.py is not listed in MANIFEST.json" in added
    manifest = json.loads(members(pyz)["MANIFEST.json"])
    manifest["files"]["agent/gone.py"] = "0" * 64
    missing = bundle.verify(rewrite(pyz, "MANIFEST.json", lambda d: json.dumps(manifest).encode()))
    assert "agent/gone.py is listed in MANIFEST.json but missing" in missing
    damaged = bundle.verify(rewrite(pyz, "MANIFEST.json", lambda d: d[:-20]))
    assert "MANIFEST.json is damaged" in damaged


def test_secrets_stay_out_unless_asked_and_are_installed_once(tmp_path, capsys):
    device_dir = tmp_path / "device" / "gcagent"
    (tmp_path / "dev.key").write_text("PRIVATE-KEY-7f3a")
    (tmp_path / "ca.crt").write_text("CA")
    profile = write_profiles(tmp_path, textwrap.dedent("""\
        [report]
        ca_file = {d}/ca.crt
        key_file = {d}/dev.key
        cert_file = {d}/dev.crt
        """).format(d=device_dir))
    (tmp_path / "dev.crt").write_text("CERT")
    files = members(build(tmp_path, profile=profile))
    assert not [n for n in files if n.startswith("secrets/")]
    assert b"PRIVATE-KEY-7f3a" not in b"".join(files.values())
    assert "copy to the device yourself" in capsys.readouterr().out

    pyz = build(tmp_path, "--include-secrets", "--secrets-dir", str(tmp_path), profile=profile)
    manifest = json.loads(members(pyz)["MANIFEST.json"])
    assert manifest["secrets"]["secrets/report.key_file"] == str(device_dir / "dev.key")
    assert bundle.verify(pyz) is None
    (device_dir).mkdir(parents=True)
    (device_dir / "ca.crt").write_text("already here")
    written = bundle.install_secrets(pyz)
    assert sorted(written) == [str(device_dir / "dev.crt"), str(device_dir / "dev.key")]
    assert (device_dir / "dev.key").read_text() == "PRIVATE-KEY-7f3a"
    assert stat.S_IMODE(os.stat(str(device_dir / "dev.key")).st_mode) == 0o600
    assert (device_dir / "ca.crt").read_text() == "already here"   # never overwritten
    assert bundle.install_secrets(pyz) == []


def test_auto_start_files_carry_the_profile_limit_and_the_command(tmp_path):
    build(tmp_path, "--app", "/etc/config/scripts/app.py")
    dal = (tmp_path / "out" / ("gc-agent-%s.dal.txt" % ID)).read_text()
    lines = [line for line in dal.splitlines() if line and not line.startswith("#")]
    assert lines[:3] == ["config", "add system schedule script end", "label gc-agent-%s" % ID]
    assert "max_memory 40M" in lines and "exit_action restart" in lines
    assert "syslog_stdout true" in lines and "syslog_stderr true" in lines
    assert 'commands "python3 /etc/config/scripts/gc-agent-%s.pyz run -- ' \
           '/etc/config/scripts/app.py"' % ID in lines
    assert lines[-2:] == ["save", "exit"] and "UNCONFIRMED" in dal
    unit = (tmp_path / "out" / ("gc-agent-%s.service" % ID)).read_text()
    assert "MemoryMax=40960K" in unit and "Restart=on-failure" in unit and "@" not in \
        unit.replace("%h/", "").split("[Unit]")[1]
    assert "ExecStart=/usr/bin/python3 %%h/gcagent/gc-agent-%s.pyz run -- " \
           "/etc/config/scripts/app.py" % ID in unit


def test_bad_inputs_fail_with_what_to_do(tmp_path, capsys):
    profile = write_profiles(tmp_path)
    assert gc_bundle(["--profile", profile, "--device-id", "a/b", "--out", str(tmp_path)]) == 2
    assert "--device-id" in capsys.readouterr().err
    assert gc_bundle(["--profile", profile, "--device-id", ID, "--out", str(tmp_path),
                      "--vendor", str(tmp_path / "nowhere")]) == 2
    assert "run `make setup`" in capsys.readouterr().err
    (tmp_path / "broken.ini").write_text("[device]\nid = x\nbogus = 1\n")
    assert gc_bundle(["--profile", str(tmp_path / "broken.ini"), "--device-id", ID,
                      "--out", str(tmp_path)]) == 2
    assert "broken.ini:3: [device] bogus" in capsys.readouterr().err


def test_sha256_without_hashlib_matches_hashlib():
    for data in (b"", b"abc", os.urandom(100000)):
        assert sha256_hex(data) == hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def wheels_present(monkeypatch):
    assert os.path.isdir(DEFAULT_VENDOR), "no %s: run make setup" % DEFAULT_VENDOR
    # verify() records the bundle hash for status messages: keep it out of other tests
    monkeypatch.setattr(bundle, "_verified", None)


def test_a_profile_inside_the_bundle_loads_by_its_path(tmp_path):
    pyz = build(tmp_path)
    profile = load(pyz + "/profile.ini")
    assert profile.device.id == ID and profile.path == pyz + "/profile.ini"
    with pytest.raises(ProfileError) as raised:
        load(pyz + "/other.ini")
    assert "other.ini is not inside %s" % pyz in str(raised.value)
