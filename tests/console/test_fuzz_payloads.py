"""Property-based: any payload through the console's real decode paths into a real SQLite file.

MQTT payload bytes (plain or zlib) go to `Ingestor.accept`; serial lines go
through `SerialLink.handle` (agent.framing's reader, as from a port). Whatever
arrives, ingest never raises, every refusal is counted, a healthy device's
next message is still recorded, and the fleet table still renders.
"""

import io
import json
import tempfile
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from agent import framing, messages
from tests.console.fleetdata import Device
from tools.console import view
from tools.console.ingest import Ingestor
from tools.console.serial_link import SerialLink
from tools.console.store import Store

ABSURD_NUMBERS = st.one_of(
    st.integers(min_value=-(2 ** 80), max_value=2 ** 80),
    st.sampled_from([2 ** 63, 2 ** 63 - 1, -(2 ** 63) - 1, 10 ** 40]),
    st.floats(allow_nan=True, allow_infinity=True),
)
STRINGS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["[/]", "[bold]", "\x1b]0;x\x07", "\ud800", "=1+1", "\u202e", "",
                     "x" * 3000]),
)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), ABSURD_NUMBERS, STRINGS),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(STRINGS, inner, max_size=4)),
    max_leaves=12)
FIELDS = ["v", "type", "device", "boot", "seq", "ts", "samples", "buffered", "dropped", "event",
          "rule", "model", "state", "ceiling_kb", "rss_before_kb", "rss_after_kb", "historical",
          "will", "generation", "id", "ok", "result", "error", "uptime_s"]
SAMPLE_FIELDS = list(messages.SAMPLE_FIELDS)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@st.composite
def payloads(draw) -> bytes:
    """A real message of any type with some fields replaced by absurd values, as bytes."""
    dev = Device(draw(st.sampled_from(["fz-1", "fz-2", "[/]", "\x1b[2J"])))
    kind = draw(st.sampled_from(["status", "telemetry", "event", "resp"]))
    base = {"status": dev.status, "telemetry": lambda: dev.telemetry(1000),
            "event": lambda: dev.collect(2000, 1000),
            "resp": lambda: dev.env.make("resp", id="c1", ok=True, result={})}[kind]()
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        base[field] = draw(JSON_VALUES)
    samples = base.get("samples")
    if (kind == "telemetry" and draw(st.booleans()) and isinstance(samples, list) and samples
            and isinstance(samples[0], dict)):
        base["samples"][0][draw(st.sampled_from(SAMPLE_FIELDS))] = draw(JSON_VALUES)
    text = json.dumps(base, allow_nan=True)   # ensure_ascii: lone surrogates travel as \ud800
    if draw(st.booleans()):
        text = text.replace('"seq": ', '"seq": %s' % draw(st.sampled_from(
            ["1e999", "9223372036854775808", "-", nested(200)])), 1)
    return text.encode("utf-8")


DELIVERY = st.sampled_from(["mqtt", "zlib", "serial", "truncated", "bytes"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(payloads(), DELIVERY, st.binary(max_size=64)), min_size=1, max_size=6))
def test_no_payload_stops_the_console_recording(items):
    with tempfile.TemporaryDirectory() as folder:
        store = Store(folder + "/fuzz.db")
        ingest = Ingestor(store)
        serial = SerialLink("loop://", ingest.accept)     # not opened: handle() is the reader
        for payload, how, noise in items:
            if how == "mqtt":
                ingest.accept(payload)
            elif how == "zlib":
                ingest.accept(zlib.compress(payload))
            elif how == "truncated":
                ingest.accept(payload[:len(payload) // 2])
            elif how == "bytes":
                ingest.accept(noise)
            else:
                serial.handle(noise + b"\n" + framing.frame(payload))
        good = Device("healthy")
        assert ingest.accept(messages.encode(good.status())).status == "new"
        serial.handle(framing.frame(messages.encode(good.telemetry(1000))))
        ingest.flush()
        stats = ingest.stats
        assert stats["received"] == stats["recorded"] + stats["duplicates"] + stats["bad"]
        assert stats["bad"] == sum(ingest.bad.values())
        assert stats["unwritten"] == 0 and stats["store_refused"] == 0
        assert sorted(m["seq"] for m in store.messages("healthy")) == [1, 2]
        recorded = len(store.messages())
        assert recorded == stats["recorded"]
        console = Console(file=io.StringIO(), width=100, force_terminal=True)
        devices = store.devices()
        console.print(view.fleet_table(devices, title="fuzz"))
        for device in devices:
            console.print(view.device_detail(device, store.samples(device["device"]),
                                             store.events(device["device"]),
                                             store.alerts(device["device"])))
        assert "\x1b]0;x" not in console.file.getvalue()
        store.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(payloads(), st.sampled_from(["line", "frame", "junk"]),
                          st.binary(max_size=40)), min_size=1, max_size=8))
def test_no_line_stops_an_import_and_every_line_is_accounted_for(items):
    from tools.console.importer import import_files
    with tempfile.TemporaryDirectory() as folder:
        good = messages.encode(Device("healthy").status())
        with open(folder + "/in.jsonl", "wb") as out:
            for payload, how, noise in items:
                if how == "line":
                    out.write(payload + b"\n")
                elif how == "frame":
                    out.write(framing.frame(payload))
                else:
                    out.write(noise.replace(b"\n", b" ") + b"\n")
            out.write(good + b"\n")
        store = Store(folder + "/fuzz.db")
        counts = import_files([folder + "/in.jsonl"], store)
        assert counts["lines"] == (counts["new"] + counts["duplicates"] + counts["refused"]
                                   + counts["skipped"])
        assert counts["refused"] == sum(counts["by_reason"].values())
        assert counts["store_refused"] == 0
        assert [m["device"] for m in store.messages("healthy")] == ["healthy"]
        assert len(store.messages()) == counts["new"]
        store.close()
