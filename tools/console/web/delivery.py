"""Alerts delivered to people: a webhook (JSON POST) and, optionally, mail.

Configured in the console's config file (`serve --config FILE`, INI):

    [webhook]
    url = https://hooks.example/gc-agent
    timeout = 5s          ; per attempt
    retry_for = 1h        ; give an alert up after trying this long
    backoff = 1s          ; the first wait after a failed attempt (doubling to 60 s)
    queue = 1000          ; alerts waiting; beyond that the oldest is dropped and counted
    header = Authorization: Bearer ...   ; optional, one extra header

    [mail]
    host = smtp.example   ; port 587 with starttls = yes (default), or 465 with ssl = yes
    from = gc-console@example
    to = ops@example, oncall@example
    username = gc-console ; password from password_file
    password_file = /etc/gc-console/smtp.password

Each alert change (raised or cleared) is one delivery with an `id`, posted
until a 2xx answer, with exponential back-off (`backoff`, 1 s, doubling to 60 s) for up to
`retry_for`: a receiver that restarts gets it when it is back, once.
Alerts the operator silenced are not delivered. Deliveries run on a thread of
their own; nothing here ever blocks ingest.
"""

import configparser
import json
import logging
import re
import smtplib
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from email.message import EmailMessage
from typing import Any, Callable, Deque, Dict, List, Optional

from agent.units import parse_duration

log = logging.getLogger("gc-console")

FIRST_RETRY_S = 1.0
LAST_RETRY_S = 60.0
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class Sender(object):
    """One destination: `send(alert)` returns normally when delivered, raises otherwise."""

    name = "?"

    def send(self, alert: Dict[str, Any]) -> None:
        raise NotImplementedError


class Webhook(Sender):
    name = "webhook"

    def __init__(self, url: str, timeout: float = 5.0, header: Optional[str] = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("[webhook] url must be http:// or https://, not %r" % url)
        self.url = url
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", "User-Agent": "gc-console"}
        if header:
            key, _, value = header.partition(":")
            self.headers[key.strip()] = value.strip()

    def send(self, alert: Dict[str, Any]) -> None:
        body = json.dumps(alert, separators=(",", ":")).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as answer:
            if not 200 <= answer.status < 300:
                raise OSError("answered %d" % answer.status)


class Mail(Sender):
    name = "mail"

    def __init__(self, host: str, sender: str, to: List[str], port: int = 587,
                 starttls: bool = True, use_ssl: bool = False, username: Optional[str] = None,
                 password: Optional[str] = None, timeout: float = 20.0) -> None:
        self.host, self.port, self.sender, self.to = host, port, sender, to
        self.starttls, self.use_ssl = starttls, use_ssl
        self.username, self.password, self.timeout = username, password, timeout

    def compose(self, alert: Dict[str, Any]) -> EmailMessage:
        message = EmailMessage()
        message["From"], message["To"] = self.sender, ", ".join(self.to)
        # A device chooses its own id: a line break in it must neither add headers nor
        # make EmailMessage refuse the subject (retried for an hour, holding every later alert).
        subject = "[gc-agent] %s %s: %s" % (alert["device"], alert["state"], alert["alert"])
        message["Subject"] = CONTROL.sub("?", subject)
        message.set_content("%s\n\n%s" % (alert["detail"], json.dumps(alert, indent=2)))
        return message

    def send(self, alert: Dict[str, Any]) -> None:
        message = self.compose(alert)
        context = ssl.create_default_context()
        if self.use_ssl:
            server = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            server = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with server:
            if self.starttls and not self.use_ssl:
                server.starttls(context=context)
            if self.username:
                server.login(self.username, self.password or "")
            server.send_message(message)


class Delivery(object):
    """A bounded queue per destination, drained by one thread with retries."""

    def __init__(self, senders: List[Sender], queue: int = 1000, retry_for: float = 3600.0,
                 backoff: float = FIRST_RETRY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.senders = senders
        self.backoff = backoff
        self.retry_for = retry_for
        self.clock = clock
        self.queues: Dict[str, Deque[list]] = {s.name: deque(maxlen=queue) for s in senders}
        self.stats = {"delivered": 0, "dropped": 0, "gave_up": 0, "silenced": 0, "attempts": 0}
        self.silenced: Callable[[str, str], bool] = lambda device, kind: False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="gc-console-alerts", daemon=True)

    def start(self) -> "Delivery":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(5.0)

    def offer(self, alert: Dict[str, Any]) -> None:
        """Queue one alert change (called by the ingestor; never blocks)."""
        try:
            if self.silenced(alert["device"], alert["alert"]):
                self.stats["silenced"] += 1
                return
        except Exception as exc:   # the notes database is busy: deliver rather than lose it
            log.debug("could not read silences: %s", exc)
        item = dict(alert, id="a-" + uuid.uuid4().hex[:16], source="gc-console")
        with self._lock:
            for queue in self.queues.values():
                if len(queue) == queue.maxlen:
                    self.stats["dropped"] += 1
                # [alert, first try, next try, delay]
                queue.append([item, self.clock(), 0.0, self.backoff])
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self._round()
            self._wake.wait(wait)
            self._wake.clear()

    def _round(self) -> float:
        """Try what is due at each destination, in order; returns how long to sleep."""
        soonest = 5.0
        for sender in self.senders:
            queue = self.queues[sender.name]
            while queue and not self._stop.is_set():
                with self._lock:
                    entry = queue[0]
                now = self.clock()
                if entry[2] > now:
                    soonest = min(soonest, entry[2] - now)
                    break   # in order: a later alert never overtakes an earlier one
                self.stats["attempts"] += 1
                try:
                    sender.send(entry[0])
                except (OSError, urllib.error.URLError, smtplib.SMTPException, ValueError) as exc:
                    if now - entry[1] >= self.retry_for:
                        log.warning("%s: gave up alert %s after %.0fs: %s", sender.name,
                                    entry[0]["id"], now - entry[1], exc)
                        self.stats["gave_up"] += 1
                        self._pop(queue, entry)
                        continue
                    entry[2], entry[3] = now + entry[3], min(entry[3] * 2, LAST_RETRY_S)
                    log.info("%s: alert %s not delivered (%s); again in %.0fs", sender.name,
                             entry[0]["id"], exc, entry[3])
                    continue
                self.stats["delivered"] += 1
                self._pop(queue, entry)
        return soonest

    def _pop(self, queue: Deque[list], entry: list) -> None:
        with self._lock:
            if queue and queue[0] is entry:
                queue.popleft()


def load_delivery(path: str) -> Delivery:
    """A Delivery from the console config file; ValueError naming what is wrong."""
    config = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            config.read_file(handle)
    except (OSError, configparser.Error) as exc:
        raise ValueError("console config %s: %s" % (path, exc))
    senders: List[Sender] = []
    queue, retry_for, backoff = 1000, 3600.0, FIRST_RETRY_S
    if config.has_section("webhook"):
        hook = config["webhook"]
        if not hook.get("url"):
            raise ValueError("%s: [webhook] needs url" % path)
        senders.append(Webhook(hook["url"], parse_duration(hook.get("timeout", "5s")),
                               hook.get("header")))
        queue = int(hook.get("queue", "1000"))
        retry_for = parse_duration(hook.get("retry_for", "1h"))
        backoff = parse_duration(hook.get("backoff", "1s"))
    if config.has_section("mail"):
        mail = config["mail"]
        for key in ("host", "from", "to"):
            if not mail.get(key):
                raise ValueError("%s: [mail] needs %s" % (path, key))
        password = None
        if mail.get("password_file"):
            with open(mail["password_file"], encoding="utf-8") as handle:
                password = handle.read().strip()
        use_ssl = mail.getboolean("ssl", False)
        senders.append(Mail(mail["host"], mail["from"],
                            [a.strip() for a in mail["to"].split(",") if a.strip()],
                            int(mail.get("port", "465" if use_ssl else "587")),
                            mail.getboolean("starttls", True), use_ssl, mail.get("username"),
                            password))
    if not senders:
        raise ValueError("%s: no [webhook] or [mail] section: nothing to deliver alerts to" % path)
    return Delivery(senders, queue=queue, retry_for=retry_for, backoff=backoff)
