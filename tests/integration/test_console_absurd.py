"""Issue 14 through a real mosquitto: a flood of absurd messages never stops `ingest` recording."""

import json

from agent import messages
from tests.console.fleetdata import Device
from tests.console.test_robustness import HOSTILE, absurd_payloads
from tests.integration.broker import Subscriber
from tests.integration.test_console import db_messages, run, start_ingest, stop


def test_an_absurd_and_hostile_flood_through_the_broker_leaves_good_messages_recorded(tmp_path,
                                                                                      broker):
    db = str(tmp_path / "flood.db")
    healthy = [Device("healthy-%d" % i) for i in range(3)]
    good = [m for dev in healthy for m in (dev.status(), dev.telemetry(1000), dev.telemetry(2000))]
    ingest = start_ingest(broker.url, db, "--exit-after", str(len(good) + len(HOSTILE)))
    sender = Subscriber(broker.port, topic="nothing/here")
    try:
        absurd = absurd_payloads()
        for i in range(600):   # the message among others no reader can hold
            payload = absurd[i % len(absurd)]
            sender.client.publish("gcagent/absurd/telemetry", payload, qos=1)
        for i, name in enumerate(HOSTILE):   # valid, but every string an attack on the terminal
            status = Device("hostile-%d" % i, model=name).status()
            sender.client.publish("gcagent/hostile-%d/status" % i, messages.encode(status), qos=1)
        for m in good:
            sender.publish("gcagent/%s/%s" % (m["device"], m["type"]), messages.encode(m))
        _, err = ingest.communicate(timeout=60)   # --exit-after: every good one recorded
    finally:
        if ingest.poll() is None:
            stop(ingest)
        sender.close()
    stats = json.loads(err.decode().strip().splitlines()[-1])
    assert stats["recorded"] == len(good) + len(HOSTILE), stats
    assert stats["unwritten"] == 0 and stats["store_refused"] == 0, stats
    assert stats["bad"] == 600 and stats["bad_by_reason"]["range"] + stats["bad_by_reason"][
        "topic"] == 600, stats
    recorded = {(m["device"], m["seq"]) for m in db_messages(db)}
    assert {(m["device"], m["seq"]) for m in good} <= recorded
    listing = run("devices", "--db", db)
    assert listing.returncode == 0, listing.stderr
    assert "[/]" in listing.stdout and "\x1b" not in listing.stdout
    assert listing.stdout.startswith("%d devices" % (len(healthy) + len(HOSTILE)))
