"""--fault SPEC: every documented form parses to its typed fault; bad ones name the bad part."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tools.emulator.faults import (
    HELP,
    BrokerOutage,
    DrmStall,
    FaultSpecError,
    FlashFull,
    PowerLoss,
    SerialNoise,
    SlowLink,
    ends_at,
    parse_fault,
    parse_faults,
)


@pytest.mark.parametrize("spec, expected", [
    ("broker-outage:at=10s,for=30s", BrokerOutage(at=10.0, duration=30.0)),
    ("broker-outage:for=2m,at=500ms", BrokerOutage(at=0.5, duration=120.0)),
    ("power-loss:at=20s", PowerLoss(at=20.0)),
    ("power-loss:at=20s,off=5s", PowerLoss(at=20.0, off=5.0)),
    ("serial-noise:share=1%", SerialNoise(share=0.01)),
    ("serial-noise:share=0.01", SerialNoise(share=0.01)),
    ("serial-noise:share=0.5%,seed=7", SerialNoise(share=0.005, seed=7)),
    ("flash-full:at=5s", FlashFull(at=5.0)),
    ("flash-full:at=5s,for=20s", FlashFull(at=5.0, duration=20.0)),
    ("drm-stall:at=5s,for=10s", DrmStall(at=5.0, duration=10.0)),
    ("slow-link:delay=300ms,rate=2KB/s", SlowLink(delay=0.3, rate=2048)),
    ("slow-link:rate=512/s", SlowLink(rate=512)),
    ("slow-link:rate=1M", SlowLink(rate=1 << 20)),
    ("slow-link:delay=1s,at=10s,for=30s", SlowLink(delay=1.0, at=10.0, duration=30.0)),
    (" Broker-Outage : at = 1s , for = 2s ", BrokerOutage(at=1.0, duration=2.0)),
])
def test_documented_forms_parse(spec, expected):
    assert parse_fault(spec) == expected
    assert parse_fault(spec).kind == spec.split(":")[0].strip().lower()


def test_every_example_in_the_help_text_parses():
    examples = [line.split()[0].replace("[", "").replace("]", "")
                for line in HELP.splitlines()[1:] if ":" in line.split()[0]]
    assert len(examples) == 6
    assert [f.kind for f in parse_faults(examples)] == [
        "broker-outage", "power-loss", "serial-noise", "flash-full", "drm-stall", "slow-link"]


@pytest.mark.parametrize("spec, says", [
    ("", "empty"),
    ("earthquake:at=1s", "unknown kind 'earthquake'; one of broker-outage"),
    ("broker-outage:at=10x,for=30s", "at: '10x' is not a duration"),
    ("broker-outage:at=10s", "needs for"),
    ("broker-outage", "needs at and for"),
    ("broker-outage:at=1s,for=0s", "for: '0s': must be longer than 0"),
    ("power-loss:at=1s,for=2s", "power-loss takes no 'for'; its keys are at, off"),
    ("power-loss:at", "'at' is not key=value"),
    ("power-loss:at=1s,at=2s", "'at' given twice"),
    ("serial-noise:share=150%", "share: '150%' is not a percentage between"),
    ("serial-noise:share=2", "share: '2' is not a share between 0 and 1"),
    ("serial-noise:share=lots", "share: 'lots' is not a share"),
    ("serial-noise:share=1%,seed=x", "seed: 'x' is not an integer seed"),
    ("serial-noise:seed=1", "needs share"),
    ("slow-link", "slow-link needs delay or rate"),
    ("slow-link:rate=fast", "rate: 'fast' is not a rate"),
    ("slow-link:rate=0", "a rate must be more than 0"),
])
def test_bad_specs_name_the_bad_part(spec, says):
    with pytest.raises(FaultSpecError) as caught:
        parse_fault(spec)
    assert says in str(caught.value)
    assert str(caught.value).startswith("--fault %r" % spec)


def test_a_fault_error_is_a_value_error_so_argparse_types_can_use_it():
    assert issubclass(FaultSpecError, ValueError)


def test_ends_at():
    assert ends_at(parse_fault("broker-outage:at=10s,for=30s")) == 40.0
    assert ends_at(parse_fault("flash-full:at=5s")) is None
    assert ends_at(parse_fault("power-loss:at=5s")) is None


@pytest.mark.parametrize("spec, says", [
    ("drm-stall:at=1s", "--fault drm-stall stalls Remote Manager uploads: give --report drm:"),
    ("slow-link:delay=1s", "--fault slow-link acts at the proxy in front of the broker"),
])
def test_a_fault_with_nothing_to_act_on_is_refused_before_anything_starts(spec, says):
    done = subprocess.run([sys.executable, "-m", "tools.emulator", "run", "--profile",
                           os.path.join(REPO, "device_profiles", "emulator.ini"), "--workload", "cycles",
                           "--duration", "2", "--fault", spec],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert says in done.stderr
    assert "survived" not in done.stdout
