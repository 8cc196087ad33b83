"""mqtts:// with a client certificate against a real mosquitto that requires one."""

import json
import subprocess
import textwrap
import time

from tests.conftest import read_jsonl
from tests.integration.broker import Subscriber
from tests.integration.test_mqtt import paho, start_agent, stop_agent  # noqa: F401
from tests.profiles import write_profile
from tools.mosquitto import Mosquitto


def openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=str(cwd), check=True, capture_output=True)


def make_ca(folder, name: str) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=%s" % name,
            "-keyout", "%s.key" % name, "-out", "%s.crt" % name, cwd=folder)


def make_cert(folder, ca: str, name: str, san: str = "") -> None:
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=%s" % name,
            "-keyout", "%s.key" % name, "-out", "%s.csr" % name, cwd=folder)
    extra = []
    if san:
        (folder / ("%s.ext" % name)).write_text("subjectAltName=%s\n" % san)
        extra = ["-extfile", "%s.ext" % name]
    openssl("x509", "-req", "-in", "%s.csr" % name, "-CA", "%s.crt" % ca, "-CAkey", "%s.key" % ca,
            "-CAcreateserial", "-days", "2", "-out", "%s.crt" % name, *extra, cwd=folder)


def tls_profile(tmp_path, port: int, ca: str) -> str:
    return write_profile(tmp_path, {"report": {
        "urls": "mqtts://127.0.0.1:%d file://%s/local.jsonl" % (port, tmp_path),
        "ca_file": "%s/%s.crt" % (tmp_path, ca), "cert_file": "%s/dev-1.crt" % tmp_path,
        "key_file": "%s/dev-1.key" % tmp_path}}, name="tls.ini")


def test_mqtts_with_client_certificate_and_a_wrong_ca(tmp_path, paho):  # noqa: F811
    make_ca(tmp_path, "ca")
    make_ca(tmp_path, "other-ca")
    make_cert(tmp_path, "ca", "server", san="IP:127.0.0.1")
    make_cert(tmp_path, "ca", "dev-1")
    make_cert(tmp_path, "ca", "console")
    server = Mosquitto(str(tmp_path), extra=textwrap.dedent("""\
        cafile {tmp}/ca.crt
        certfile {tmp}/server.crt
        keyfile {tmp}/server.key
        require_certificate true
        use_identity_as_username true
        allow_anonymous false
        """).format(tmp=tmp_path)).start()
    try:
        watcher = Subscriber(server.port, ca_certs=str(tmp_path / "ca.crt"),
                             certfile=str(tmp_path / "console.crt"),
                             keyfile=str(tmp_path / "console.key"))
        proc = start_agent(tls_profile(tmp_path, server.port, "ca"), paho)
        try:
            watcher.wait_for(lambda s: s.topic == "gcagent/dev-1/telemetry", what="telemetry over TLS")
        finally:
            stop_agent(proc)
        watcher.close()

        wrong = start_agent(tls_profile(tmp_path, server.port, "other-ca"), paho)
        try:
            deadline = time.monotonic() + 20
            errors = []
            while time.monotonic() < deadline and not errors:
                time.sleep(0.3)
                errors = [m for m in read_jsonl(tmp_path / "local.jsonl")
                          if m.get("event") == "error" and "CERTIFICATE_VERIFY_FAILED" in m["error"]]
            time.sleep(2)
            assert wrong.poll() is None          # still running, still retrying
        finally:
            err = stop_agent(wrong)
        assert errors, err
        assert "cannot connect to mqtts://127.0.0.1" in errors[0]["error"]
        assert json.dumps(errors[0]).count("BEGIN") == 0   # no key material in messages
    finally:
        server.stop()
