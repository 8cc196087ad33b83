"""A device id with line breaks makes a mail alert like any other: no header of its own, and
no refusal that would hold every later alert in the queue while it is retried."""

import smtplib

from tools.console.web.delivery import Delivery, Mail


def _alert(device):
    return {"device": device, "alert": "offline", "state": "raised", "detail": "will", "ts": 1.0}


def test_line_breaks_in_a_device_id_add_no_header():
    mail = Mail("127.0.0.1", "console@example.com", ["ops@example.com"])
    message = mail.compose(_alert("gw-1\r\nBcc: thief@example.com\u2028x"))
    text = message.as_string()
    assert "Bcc" not in message and message["Subject"].startswith("[gc-agent] gw-1??Bcc: thief")
    assert "\nBcc:" not in text.split("\n\n", 1)[0]


class FakeSMTP(object):
    """Stands for the mail server: keeps what it is given."""
    sent = []

    def __init__(self, host, port, timeout=None):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def starttls(self, context=None):
        pass

    def send_message(self, message):
        FakeSMTP.sent.append(message["Subject"])


def test_an_alert_after_a_hostile_device_id_is_delivered_at_once(monkeypatch):
    monkeypatch.setattr(smtplib, "SMTP", FakeSMTP)
    FakeSMTP.sent = []
    delivery = Delivery([Mail("127.0.0.1", "console@example.com", ["ops@example.com"])])
    delivery.offer(_alert("evil\n01"))
    delivery.offer(_alert("gw-2"))
    delivery._round()
    assert delivery.stats["delivered"] == 2, delivery.stats
    assert FakeSMTP.sent == ["[gc-agent] evil?01 raised: offline", "[gc-agent] gw-2 raised: offline"]
