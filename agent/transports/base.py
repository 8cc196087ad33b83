# The transport seam: one small interface every report URL implements.
#
# A transport delivers encoded messages upstream and never calls back into the
# agent from its own threads: everything it has to say (acknowledgements, the
# link going down or up, commands received, errors) waits in `poll()`, which
# the agent thread drains once a tick. That keeps library callbacks (paho's
# network thread) free of locks the agent holds, the classic deadlock.
#
#     check_url(url)  (class method) ValueError saying what is wrong with a URL
#     open()      acquire sockets or files; TransportError when that fails
#     ready()     whether send() may be called now (connected, window not full)
#     send(item)  True: delivered; False: accepted, an "ack" event follows
#     poll()      TransportEvents since the last call
#     close()     release everything; safe twice

from ..lean import record

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, List, Optional  # noqa: F401 (type comments)

    from ..outbox import Outgoing  # noqa: F401 (type comments)


class TransportSettings(record(
        "TransportSettings",
        prefix="gcagent",                       # str: MQTT topics and drm streams: PREFIX/DEVICE/...
        keepalive=60.0,                         # float: seconds
        compress=False,                         # bool: zlib payloads
        window=20,                              # int: messages in flight at once
        ca_file="",                             # str
        cert_file="",                           # str
        key_file="",                            # str
        username="",                            # str
        password_file="",                       # str: read at open(), never logged
        password_env="",                        # str
)):
    # The [report] settings a transport may read (docs/adding-a-transport.md).
    #
    # The defaults are the profile's own, so a transport built without a profile
    # (tests, tools) behaves as one built from an empty [report].

    __slots__ = ()


class Context(record(
        "Context",
        device="",                              # str
        will=b"",                               # bytes: encoded status "offline" for this boot
                                                # (MQTT Last Will)
        settings=TransportSettings(),           # TransportSettings
)):
    # What a transport may need besides its URL.

    __slots__ = ()


class TransportEvent(record(
        "TransportEvent",
        "kind",                                 # str
        "value",                                # Any
)):
    # kind: "ack" (value: the Outgoing), "link" (True/False), "command" (bytes), "error" (str),
    # "mode" (str: how delivery works now changed; the agent re-sends its status).

    __slots__ = ()


class Transport(object):
    # Base class: implement `send`; the rest have working defaults.

    scheme = ""
    has_link = False   # True when link_down / link_up can happen

    def __new__(cls, *args, **kwargs):  # type: (*Any, **Any) -> Transport
        # What abc.ABC with an abstract `send` would check, without abc's registries
        # per subclass (RSS on 3.6, docs/footprint.md).
        if cls.send is Transport.send:
            raise TypeError("Can't instantiate abstract class %s with abstract methods send"
                            % cls.__name__)
        return super().__new__(cls)

    def __init__(self, url, context=None):  # type: (str, Optional[Context]) -> None
        self.url = url
        self.context = context or Context()

    @classmethod   # optional hook: stdout: and memory: take any URL
    def check_url(cls, url):  # type: (str) -> None
        # Raise ValueError saying what is wrong with `url`; profiles are checked with this.
        pass

    def open(self):  # type: () -> None
        # Acquire what `send` needs (files, sockets). An optional hook: most transports need nothing.
        pass

    def ready(self):  # type: () -> bool
        # Whether `send` may be called now.
        return True

    def send(self, item):  # type: (Outgoing) -> bool
        # Deliver one message (True), accept it for a later "ack" (False), or raise TransportError.
        raise NotImplementedError   # every transport has its own (checked in __new__)

    def poll(self):  # type: () -> List[TransportEvent]
        # Acknowledgements, link changes, commands and errors since the last call.
        return []

    def close(self):  # type: () -> None
        # Release everything; safe to call twice. An optional hook.
        pass

    def describe(self):  # type: () -> str
        # The URL, with any secret removed, for status and logs.
        return self.url

    def note(self):  # type: () -> str
        # A word on how delivery works now (for status), or ''.
        return ""

    def __enter__(self):  # type: () -> Transport
        self.open()
        return self

    def __exit__(self, *exc_info):  # type: (*Any) -> None
        self.close()
