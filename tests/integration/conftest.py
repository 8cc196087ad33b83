"""Fixtures shared by the integration tests."""

import pytest

from tools.mosquitto import Mosquitto


@pytest.fixture
def broker(tmp_path):
    """A real mosquitto of this test's own, on a free port."""
    server = Mosquitto(str(tmp_path)).start()
    yield server
    server.stop()
