"""gc-console over mqtts with its client certificate, against a mosquitto that requires one."""

import os
import subprocess
import sys
import textwrap

from agent import messages
from tests.conftest import REPO
from tests.console.fleetdata import Device
from tests.integration.broker import Subscriber
from tests.integration.test_mqtt_tls import make_ca, make_cert
from tools.mosquitto import Mosquitto


def test_watch_over_tls_with_a_client_certificate_and_a_clear_error_for_a_wrong_ca(tmp_path):
    make_ca(tmp_path, "ca")
    make_ca(tmp_path, "other-ca")
    make_cert(tmp_path, "ca", "server", san="IP:127.0.0.1")
    make_cert(tmp_path, "ca", "ix20-tls")
    make_cert(tmp_path, "ca", "console")
    (tmp_path / "acl").write_text("user console\ntopic read gcagent/#\ntopic write gcagent/+/cmd\n"
                                  "pattern write gcagent/%u/status\n")
    server = Mosquitto(str(tmp_path), extra=textwrap.dedent("""\
        cafile {tmp}/ca.crt
        certfile {tmp}/server.crt
        keyfile {tmp}/server.key
        require_certificate true
        use_identity_as_username true
        allow_anonymous false
        acl_file {tmp}/acl
        """).format(tmp=tmp_path)).start()
    device = Subscriber(server.port, topic="gcagent/ix20-tls/cmd", ca_certs=str(tmp_path / "ca.crt"),
                        certfile=str(tmp_path / "ix20-tls.crt"), keyfile=str(tmp_path / "ix20-tls.key"))
    try:
        device.client.publish("gcagent/ix20-tls/status", messages.encode(Device("ix20-tls").status()),
                              qos=1, retain=True).wait_for_publish(5)
        base = [sys.executable, "-m", "tools.console", "watch", "--once", "--settle", "1s",
                "--broker", "mqtts://127.0.0.1:%d" % server.port, "--db", str(tmp_path / "c.db"),
                "--cert", str(tmp_path / "console.crt"), "--cert-key", str(tmp_path / "console.key")]
        env = dict(os.environ, PYTHONPATH=REPO)
        good = subprocess.run(base + ["--ca", str(tmp_path / "ca.crt")], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=60)
        assert good.returncode == 0, good.stderr
        assert "1 devices: 1 online" in good.stdout
        assert any(line.startswith("ix20-tls") for line in good.stdout.splitlines())
        wrong = subprocess.run(base + ["--ca", str(tmp_path / "other-ca.crt")], cwd=REPO, env=env,
                               capture_output=True, text=True, timeout=60)
        assert wrong.returncode == 2 and "CERTIFICATE_VERIFY_FAILED" in wrong.stderr, wrong.stderr
        assert "check --ca" in wrong.stderr
        assert "Traceback" not in wrong.stderr
    finally:
        device.close()
        server.stop()
