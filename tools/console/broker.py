"""An embedded MQTT broker (amqtt) on 127.0.0.1, for a bench or a single site.

`gc-console watch` with no `--broker` starts one so nothing else has to be
installed. amqtt is pure Python and speaks MQTT 3.1.1 (no shared
subscriptions); it keeps retained messages and publishes Wills, which is all
the agents need. It inherits leaks for disconnected sessions from hbmqtt, so
production fleets use mosquitto (docs/console.md).
"""

import asyncio
import logging
import threading
from typing import Optional

from tools.mosquitto import free_port


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
            self._broker = Broker(config, loop=loop)
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

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
