"""gc-emulator says how the devices are doing while it runs, and Ctrl-C still gives the table."""

import signal
import subprocess
import sys
import time

from tests.conftest import EMULATOR_PROFILE, REPO


def test_ctrl_c_stops_the_devices_and_prints_the_table_so_far(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "tools.emulator", "run", "--profile",
                             EMULATOR_PROFILE, "--workload", "cycles", "--duration", "60",
                             "--workdir", str(tmp_path / "run")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    seen = b""
    while b"script started" not in seen and time.monotonic() < deadline:
        seen += proc.stderr.readline()
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    out, err = out.decode(), seen.decode() + err.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted at" in err
    assert "emulator-01" in out and "1 of 1 device(s) survived" in out
    assert "interrupted: the table covers the run until Ctrl-C" in out
