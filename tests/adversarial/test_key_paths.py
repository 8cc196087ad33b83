"""A device id is chosen by the device: one like "../x" (possible on a serial line or in an
imported file, where no topic level stops it) never makes the console read or write a key
file outside the keys folder."""

import os

from tools.console.__main__ import main


def test_send_reads_no_key_outside_the_keys_folder(tmp_path, capsys):
    keys = tmp_path / "keys"
    keys.mkdir()
    outside = tmp_path / "secret.key"            # keys/../secret.key
    outside.write_bytes(b"s" * 32)
    os.chmod(str(outside), 0o600)
    code = main(["send", "../secret", "status", "--broker", "mqtt://127.0.0.1:1",
                 "--keys", str(keys), "--db", str(tmp_path / "c.db")])
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot name a key file" in err and "cannot reach" not in err


def test_keygen_writes_no_key_outside_the_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert main(["keygen", "../planted"]) == 2
    assert "give --out FILE" in capsys.readouterr().err
    assert not (tmp_path / "planted.key").exists()
