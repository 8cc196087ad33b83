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

Each alert change (raised or cleared) is one delivery with an `id`. A new
alert is tried at once, whatever older alerts wait for a retry: one alert a
destination keeps refusing never holds the others (docs/web-console.md,
"Alert delivery"). What a failure means:

- an answer 4xx other than 408 and 429 (or an alert that cannot be composed):
  this alert will never be taken; it is dropped for that destination, counted
  in `refused` and logged once with the status;
- 5xx, 408, 429, no connection, a timeout: tried again with exponential
  back-off (`backoff`, doubling to 60 s) for up to `retry_for`, then counted in
  `gave_up`. A receiver that restarts gets it when it is back, once.

While a destination does not answer at all, the alerts that arrive wait with
the ones already waiting (no attempt each), so order is kept as far as it
blocks nothing. Alerts the operator silenced are not delivered. Deliveries run
on a thread of their own; nothing here ever blocks ingest.
"""

import configparser
import http.client
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


def permanent(exc: BaseException) -> Optional[str]:
    """Why this failure will repeat for this alert however often it is tried, or None.

    4xx other than 408 (timeout) and 429 (too many requests) is the receiver
    refusing this request; an alert that cannot be composed (ValueError) cannot
    become sendable either. Everything else may pass later.
    """
    if isinstance(exc, urllib.error.HTTPError):
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            return "answered %d" % exc.code
        return None
    if isinstance(exc, ValueError):
        return "cannot be sent: %s" % exc
    return None


def answered(exc: BaseException) -> bool:
    """Whether the destination answered at all (as opposed to being unreachable)."""
    return isinstance(exc, (urllib.error.HTTPError, smtplib.SMTPResponseException,
                            smtplib.SMTPRecipientsRefused, ValueError))


class Delivery(object):
    """Per destination a queue of fresh alerts and one of alerts waiting for a retry,
    bounded together; drained by one thread."""

    def __init__(self, senders: List[Sender], queue: int = 1000, retry_for: float = 3600.0,
                 backoff: float = FIRST_RETRY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.senders = senders
        self.backoff = backoff
        self.retry_for = retry_for
        self.clock = clock
        self.limit = max(1, queue)
        self.queues: Dict[str, Deque[list]] = {s.name: deque() for s in senders}    # fresh
        self.retries: Dict[str, Deque[list]] = {s.name: deque() for s in senders}
        self.stats = {"delivered": 0, "dropped": 0, "gave_up": 0, "refused": 0, "silenced": 0,
                      "attempts": 0}
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

    def waiting(self, name: str) -> int:
        """Alerts not yet delivered to destination `name` (fresh and retries)."""
        with self._lock:
            return len(self.queues[name]) + len(self.retries[name])

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
            for sender in self.senders:
                fresh, retry = self.queues[sender.name], self.retries[sender.name]
                if len(fresh) + len(retry) >= self.limit:
                    (retry or fresh).popleft()   # the oldest goes: retries are older
                    self.stats["dropped"] += 1
                # [alert, first try, next try, delay]
                fresh.append([item, self.clock(), 0.0, self.backoff])
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self._round()
            except Exception:   # a bug must not end delivery for the console's life
                log.exception("alert delivery: a round failed; trying again in 5 s")
                wait = 5.0
            self._wake.wait(wait)
            self._wake.clear()

    def _round(self) -> float:
        """Try what is due at each destination; returns how long to sleep."""
        soonest = 5.0
        for sender in self.senders:
            fresh, retry = self.queues[sender.name], self.retries[sender.name]
            down = False   # the destination did not answer this round: the rest wait with it
            with self._lock:
                due = [e for e in retry if e[2] <= self.clock()]
            for entry in due:
                if self._stop.is_set() or down:
                    break
                down = self._attempt(sender, entry, retry) == "down"
            while not self._stop.is_set():
                with self._lock:
                    if not fresh:
                        break
                    entry = fresh.popleft()
                    if down:   # queued behind the ones waiting, in order, without an attempt
                        entry[2] = self.clock() + entry[3]
                        retry.append(entry)
                        continue
                    retry.append(entry)   # counted in the bound while it is tried
                down = self._attempt(sender, entry, retry) == "down"
            with self._lock:
                if retry:
                    soonest = min(soonest, max(0.0, min(e[2] for e in retry) - self.clock()))
        return soonest

    def _attempt(self, sender: Sender, entry: list, retry: Deque[list]) -> str:
        """One try of one alert held in `retry`: "done", "later" or "down"."""
        now = self.clock()
        self.stats["attempts"] += 1
        try:
            sender.send(entry[0])
        except (OSError, urllib.error.URLError, http.client.HTTPException, smtplib.SMTPException,
                ValueError) as exc:
            why = permanent(exc)
            if why:
                log.warning("%s: alert %s (%s %s) %s: dropped, not retried", sender.name,
                            entry[0]["id"], entry[0].get("device"), entry[0].get("alert"), why)
                self.stats["refused"] += 1
                self._remove(retry, entry)
                return "done"
            if now - entry[1] >= self.retry_for:
                log.warning("%s: gave up alert %s after %.0fs: %s", sender.name,
                            entry[0]["id"], now - entry[1], exc)
                self.stats["gave_up"] += 1
                self._remove(retry, entry)
                return "done"
            entry[2], entry[3] = now + entry[3], min(entry[3] * 2, LAST_RETRY_S)
            log.info("%s: alert %s not delivered (%s); again in %.0fs", sender.name,
                     entry[0]["id"], exc, entry[2] - now)
            return "later" if answered(exc) else "down"
        self.stats["delivered"] += 1
        self._remove(retry, entry)
        return "done"

    def _remove(self, queue: Deque[list], entry: list) -> None:
        with self._lock:
            for i, held in enumerate(queue):
                if held is entry:
                    del queue[i]
                    return


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
