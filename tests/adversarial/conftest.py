"""Fixtures for the adversarial suite: a real mosquitto of each test's own, and a recorder."""

import pytest

from tests.adversarial.agents import until_subscribed
from tests.integration.broker import Subscriber
from tools.mosquitto import Mosquitto


@pytest.fixture
def broker(tmp_path):
    """A real mosquitto on a free loopback port (tests/integration/broker.py)."""
    server = Mosquitto(str(tmp_path)).start()
    yield server
    server.stop()


@pytest.fixture
def subscriber(broker):
    """Everything under gcagent/#, recorded with arrival times."""
    sub = Subscriber(broker.port)
    until_subscribed(sub)   # an agent started next must not beat the subscription
    yield sub
    sub.close()
