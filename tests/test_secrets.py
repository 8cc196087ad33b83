"""Secrets stay out of URLs, status, describe() and check output."""

import subprocess
import sys

import pytest

from agent.transports import check_url
from agent.transports.mqtt import MqttTransport
from tests.conftest import REPO


def test_a_password_in_the_url_is_refused_with_where_to_put_it():
    with pytest.raises(ValueError, match="password_file or password_env"):
        check_url("mqtt://gw:hunter2@broker.example")


def test_describe_shows_the_user_not_the_password(tmp_path, monkeypatch):
    monkeypatch.setenv("GW_PASSWORD", "hunter2")
    from agent.profile import loads
    profile = loads("[device]\nid = gw\n[rule:p]\ntype = periodic\nevery = 1m\n"
                    "[report]\nurls = mqtts://gw@broker.example\npassword_env = GW_PASSWORD\n")
    from agent.assembly import transport_settings
    from agent.transports.base import Context
    transport = MqttTransport(profile.report.urls[0], Context("gw", b"", transport_settings(profile)))
    assert transport.describe() == "mqtts://gw@broker.example:8883"
    assert transport._password() == "hunter2"
    assert "hunter2" not in repr(profile)


def test_check_never_prints_the_password_file_contents(tmp_path):
    (tmp_path / "pw").write_text("hunter2\n")
    path = tmp_path / "p.ini"
    path.write_text("[device]\nid = gw\n[rule:p]\ntype = periodic\nevery = 1m\n[report]\n"
                    "urls = mqtt://gw@broker\npassword_file = %s/pw\nbogus = 1\n" % tmp_path)
    done = subprocess.run([sys.executable, "-m", "agent", "check", "-v", str(path)], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "bogus" in done.stderr
    assert "hunter2" not in done.stdout + done.stderr
