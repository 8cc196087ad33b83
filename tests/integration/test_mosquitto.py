"""The one mosquitto launcher (tools/mosquitto.py) and the one test profile (tests/profiles.py)."""

import os
import socket
import subprocess

import pytest

from tests.conftest import REPO, agent_cmd
from tests.integration.broker import Subscriber
from tests.profiles import profile_text, write_profile
from tools.mosquitto import Mosquitto, MosquittoError


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_a_broker_of_its_own_delivers_restarts_on_its_port_and_cleans_up():
    with Mosquitto() as broker:
        folder, port = broker.folder, broker.port
        sub = Subscriber(port, topic="t/#")
        try:
            # retained: it arrives whether our SUBSCRIBE went out before the publish or after
            sub.client.publish("t/1", b'{"v": 1}', qos=1, retain=True).wait_for_publish(5)
            sub.wait_for(lambda s: s.topic == "t/1", timeout=5, what="the message back")
            broker.stop()   # an outage: the port goes quiet, and comes back on the same number
            assert not _accepts(port)
            broker.start()
            assert _accepts(port) and broker.port == port
        finally:
            sub.close()
    assert not _accepts(port)
    assert not os.path.exists(folder)   # its own temporary folder, removed


def test_a_config_mosquitto_refuses_is_an_error_that_quotes_mosquitto(tmp_path):
    broker = Mosquitto(str(tmp_path), extra="no_such_option true\n")
    with pytest.raises(MosquittoError) as caught:
        broker.start()
    assert "exited at start" in str(caught.value) and "no_such_option" in str(caught.value)
    assert os.path.exists(str(tmp_path / "mosquitto.conf"))   # a folder given is left for a look


def test_the_shared_test_profile_is_valid_and_takes_overrides(tmp_path):
    path = write_profile(tmp_path, {"device": {"id": "dev-9", "memory_limit": None},
                                    "rule:periodic": None,
                                    "rule:low": {"type": "low_memory", "below": "10M",
                                                 "rearm_above": "20M"}})
    with open(path) as handle:
        text = handle.read()
    assert "id = dev-9" in text and "memory_limit" not in text and "[rule:periodic]" not in text
    assert text == profile_text({"device": {"id": "dev-9", "memory_limit": None},
                                 "rule:periodic": None,
                                 "rule:low": {"type": "low_memory", "below": "10M",
                                              "rearm_above": "20M"}})
    done = subprocess.run(agent_cmd("check", path, write_profile(tmp_path, name="base.ini")),
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
