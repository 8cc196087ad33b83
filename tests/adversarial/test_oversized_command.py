"""A command too long for a device is refused where it is made (page and command line), with
the reason: the device drops a payload over 4 KB on arrival, unanswered, so sending it would
only leave the operator waiting for an answer that cannot come."""

import os
import re

from tests.console.test_web import client
from tools.console.__main__ import main

LONG = "v" * 4000   # under the page's 4 KB for arguments, over the device's 4 KB once signed


def test_the_device_page_refuses_a_command_the_device_would_drop(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "ix20-a.key").write_bytes(b"k" * 32)
    sent = []
    http, _app = client(tmp_path, auth=True, keys=str(keys), sent=sent)
    http.post("/login", data={"name": "alice", "secret": "correct-horse-battery"})
    token = re.search(r'name="csrf-token" content="([^"]+)"', http.get("/").text).group(1)
    answer = http.post("/api/device/ix20-a/command",
                       json={"cmd": "set", "args": {"rule": "periodic", "key": "every",
                                                    "value": LONG}},
                       headers={"X-CSRF-Token": token})
    assert answer.status_code == 403, answer.text
    assert "a device takes at most 4096" in answer.json()["error"]
    assert sent == []


def test_send_refuses_it_before_connecting(tmp_path, capsys):
    key = tmp_path / "gw.key"
    key.write_bytes(b"k" * 32)
    os.chmod(str(key), 0o600)
    code = main(["send", "gw-1", "set", "rule=periodic", "key=every", "value=" + LONG,
                 "--broker", "mqtt://127.0.0.1:1", "--key", str(key), "--db",
                 str(tmp_path / "c.db")])
    assert code == 2
    err = capsys.readouterr().err
    assert "a device takes at most 4096" in err and "cannot reach" not in err
