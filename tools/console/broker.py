"""An embedded MQTT broker (amqtt) on 127.0.0.1, for a bench or a single site.

`gc-console watch` with no `--broker` starts one so nothing else has to be
installed. amqtt is pure Python and speaks MQTT 3.1.1 (no shared
subscriptions); it keeps retained messages and publishes Wills, which is all
the agents need. It inherits leaks for disconnected sessions from hbmqtt, so
production fleets use mosquitto (docs/console.md).

amqtt 0.12 hands a connecting client the retained messages matching *every*
client's subscriptions, not its own (`mosquitto_sub -t foo/bar` got every
device's retained status). `_own_retained_only` fixes that in our subclass:
retained messages go out only for filters the session itself holds. The same
retained / Will / QoS-1 tests run against it and against mosquitto
(tests/integration/test_embedded_broker.py); see docs/field.md.
"""

import asyncio
import logging
import threading
from typing import Optional

from tools.mosquitto import free_port


def _shutdown_noise(record: logging.LogRecord) -> bool:
    """False for amqtt's "N messages not broadcasted", said twice at every shutdown with agents
    connected: their Wills, fired as the broker closes their connections, have nobody left to
    go to; the console is stopping and has nothing to do about it."""
    return "messages not broadcasted" not in record.getMessage()


class EmbeddedBroker(object):
    """amqtt in a thread of its own with its own event loop; `start()` returns once it listens."""

    def __init__(self, port: Optional[int] = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port(host)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._broker = None
        self._thread: Optional[threading.Thread] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None

    @property
    def url(self) -> str:
        """The report URL agents use to reach this broker."""
        return "mqtt://%s:%d" % (self.host, self.port)

    def start(self, timeout: float = 10.0) -> "EmbeddedBroker":
        """Start listening; raises RuntimeError saying why when it cannot."""
        # amqtt logs every connection at INFO; an operator's screen is not the place.
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("amqtt.broker").addFilter(_shutdown_noise)
        self._thread = threading.Thread(target=self._run, name="gc-console-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the embedded broker did not start within %gs" % timeout)
        if self._error is not None:
            raise RuntimeError("the embedded broker could not listen on %s:%d: %s"
                               % (self.host, self.port, self._error))
        return self

    def _run(self) -> None:
        from amqtt.broker import Broker  # imported here: only `watch` without --broker needs it

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": "%s:%d" % (self.host, self.port)}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                        {"allow_anonymous": True}},
        }

        async def boot() -> None:
            self._broker = _own_retained_only(Broker)(config, loop=loop)
            await self._broker.start()

        try:
            loop.run_until_complete(boot())
        except BaseException as exc:   # reported by start(), in the caller's thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Shut the broker down (connected clients see their connections close)."""
        loop, broker = self._loop, self._broker
        if loop is None or broker is None or not loop.is_running():
            return
        done = asyncio.run_coroutine_threadsafe(broker.shutdown(), loop)
        try:
            done.result(timeout)
        except Exception:
            pass   # shutting down anyway
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)

    def restart(self, timeout: float = 10.0) -> "EmbeddedBroker":
        """Stop, then listen again on the same port (for outage tests); retained messages
        are lost, as with a broker without persistence."""
        self.stop()
        self._loop = self._broker = self._thread = self._error = None
        self._ready = threading.Event()
        return self.start(timeout)

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _own_retained_only(broker_class):
    """amqtt's Broker, sending a session retained messages only for its own filters."""

    class OwnRetainedOnly(broker_class):
        async def _publish_retained_messages_for_subscription(self, subscription, session):
            holders = self._subscriptions.get(subscription[0], ())
            held = [qos for s, qos in holders if s.client_id == session.client_id]
            if not held:   # another client's filter, replayed to this one at its connect
                return
            await super()._publish_retained_messages_for_subscription(
                (subscription[0], max(held)), session)

    return OwnRetainedOnly
