"""MQTT URLs, as the agent's --report and the console's --broker read them: a wrong one is said plainly."""

import pytest

from agent.transports.mqtt import parse_mqtt_url
from tools.console.__main__ import main


def test_good_urls_and_default_ports():
    assert parse_mqtt_url("mqtt://broker") == (False, "broker", 1883, "")
    assert parse_mqtt_url("mqtts://gw@broker:8884") == (True, "broker", 8884, "gw")


@pytest.mark.parametrize("url, said", [
    ("http://broker", "is not an MQTT URL"),
    ("mqtt://broker:0", "the port is not a number from 1 to 65535"),
    ("mqtt://broker:99999", "the port is not a number from 1 to 65535"),
    ("mqtt://:1883", "names no broker host"),
])
def test_wrong_urls_say_what_is_wrong(url, said):
    with pytest.raises(ValueError, match=said):
        parse_mqtt_url(url)


def test_the_console_says_a_wrong_broker_url_instead_of_a_traceback(tmp_path, capsys):
    code = main(["ingest", "--broker", "http://broker", "--db", str(tmp_path / "c.db"),
                 "--duration", "1s"])
    assert code == 2
    assert "'http://broker' is not an MQTT URL" in capsys.readouterr().err
