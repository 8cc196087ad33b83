"""Broker outages at the fault proxy, counted at a real mosquitto.

- An outage (6 s here; the assertion is the same for 30 s, the RAM outbox
  holds far more) loses nothing: every message the agents wrote reaches the
  broker.
- A power loss during an outage loses nothing the journal had fsynced: the
  emulator keeps a copy of the journal as the power cut left it, and every
  record in it reaches the broker after the reboot, flagged historical.
"""

import glob
import os

from agent.journal import Journal
from tests.integration.broker import Mosquitto, Subscriber
from tests.scenarios.conftest import EMULATOR_INI, PROFILES, Emulation, messages


def _broker(tmp_path):
    folder = tmp_path / "broker"
    folder.mkdir()
    broker = Mosquitto(str(folder)).start()
    return broker, Subscriber(broker.port)


def _keys(found):
    return {(m["device"], m["boot"], m["seq"]) for m in found if m.get("seq")}


def test_broker_outage_loses_nothing(tmp_path):
    broker, subscriber = _broker(tmp_path)
    try:
        run = Emulation(tmp_path / "run", "--profile", EMULATOR_INI, "--workload", "cycles",
                        "--devices", "2", "--duration", "12", "--report", broker.url,
                        "--fault", "broker-outage:at=2s,for=6s", "--", "--rate", "2")
        summary = run.result()
        at_broker = _keys(subscriber.messages())
    finally:
        subscriber.close()
        broker.stop()
    assert "broker outage begins" in summary["log"] and "broker outage ends" in summary["log"]
    for device in summary["devices"]:
        sent = messages(run.device_folder(device["device"]))
        events = [m for m in sent if m["type"] == "event"]
        down = [m["ts"] for m in events if m["event"] == "link_down"]
        up = [m["ts"] for m in events if m["event"] == "link_up"]
        assert down and up, "the agent never saw the outage: %s" % [m["event"] for m in events]
        during = [m for m in sent if down[0] <= m["ts"] <= up[-1]]
        assert len(during) >= 5   # telemetry every second kept coming while the broker was away
        missing = _keys(sent) - at_broker
        assert not missing, "lost at the broker: %s" % sorted(missing)[:10]
        assert device["at_broker"] >= len(sent)   # the emulator's own count at the broker agrees
        assert device["dropped"] == 0


def test_flash_full_during_an_outage_loses_nothing_ram_still_holds(tmp_path):
    broker, subscriber = _broker(tmp_path)
    try:
        run = Emulation(tmp_path / "run", "--profile", os.path.join(PROFILES, "journal.ini"),
                        "--workload", "cycles", "--duration", "10", "--report", broker.url,
                        "--fault", "broker-outage:at=2s,for=5s", "--fault", "flash-full:at=1s",
                        "--", "--rate", "2")
        device = run.result()["devices"][0]
        at_broker = _keys(subscriber.messages())
    finally:
        subscriber.close()
        broker.stop()
    folder = run.device_folder(device["device"])
    sent = messages(folder)
    assert not _keys(sent) - at_broker
    assert not [p for p in glob.glob(os.path.join(folder, "flash", "*", "seg-*.log"))
                if os.path.getsize(p)], "the journal was written although the flash was full"
    assert device["dropped"] == 0


def test_power_loss_during_outage_loses_nothing_the_journal_had_fsynced(tmp_path):
    broker, subscriber = _broker(tmp_path)
    try:
        run = Emulation(tmp_path / "run", "--profile", os.path.join(PROFILES, "journal.ini"),
                        "--workload", "cycles", "--duration", "16", "--report", broker.url,
                        "--reboot-delay", "1s",
                        "--fault", "broker-outage:at=2s,for=8s", "--fault", "power-loss:at=6s",
                        "--", "--rate", "2")
        summary = run.result()
        seen = subscriber.messages()
    finally:
        subscriber.close()
        broker.stop()
    device = summary["devices"][0]
    assert [k["reason"] for k in device["kills"]] == ["power-loss"]
    assert device["boots"] == 2

    folder = run.device_folder(device["device"])
    journaled = set()
    for directory in glob.glob(os.path.join(folder, "flash-at-power-loss-1", "*")):
        journal = Journal(directory)
        while True:
            found = journal.oldest()
            if found is None:
                break
            name, records = found
            journaled |= {_decode_key(r) for r in records}
            journal.remove(name)
    assert len(journaled) >= 5, "the journal held too little to prove anything: %d" % len(journaled)
    replayed = {(m["device"], m["boot"], m["seq"]) for m in seen if m.get("historical")}
    missing = journaled - _keys(seen)
    assert not missing, "fsynced before the power cut, never delivered: %s" % sorted(missing)[:10]
    assert journaled <= replayed   # they came back from the journal, flagged historical
    assert len({m["boot"] for m in messages(folder)}) == 2   # the agent ran before and after the cut


def _decode_key(record: bytes):
    import json
    message = json.loads(record.decode("utf-8"))
    return message["device"], message["boot"], message["seq"]
