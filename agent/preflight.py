# Say once, at start, what will keep a report from working, and what to do about it.
#
# A broker that cannot be reached looks like any outage to the transport, which
# keeps retrying quietly: an address typed wrong would then never be noticed.
# So at start a thread of its own (the application never waits for it) resolves
# each broker's host and opens one TCP connection to it; what fails is said once
# on stderr (the `gcagent` logger) and kept in `problems`, which status messages
# carry. The agent keeps running and retrying either way. See docs/field.md,
# "Start-up problems".

import logging
import socket
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Callable, List, Optional  # noqa: F401 (type comments)

log = logging.getLogger("gcagent")
TIMEOUT = 5.0   # seconds for one resolution and one connection


def reach(url, timeout=TIMEOUT):  # type: (str, float) -> Optional[str]
    # What stops `url`'s server from being reached, for people; None when it answers
    # (or when `url` has no server to reach).
    from .transports import scheme_of
    if scheme_of(url) not in ("mqtt", "mqtts"):
        return None
    from .transports.mqtt import parse_mqtt_url
    try:
        _, host, port, _ = parse_mqtt_url(url)
    except ValueError:
        return None   # said already, by the URL check
    try:
        socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return ("cannot resolve the host name %r (%s): check its spelling, or the device's DNS; "
                "the agent keeps retrying" % (host, exc.strerror or exc))
    except (OSError, UnicodeError) as exc:
        return "cannot resolve %r: %s; the agent keeps retrying" % (host, exc)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except ConnectionRefusedError:
        return ("nothing accepts connections on %s:%d (connection refused): is the broker "
                "running, and is the port right? the agent keeps retrying" % (host, port))
    except socket.timeout:
        return ("no answer from %s:%d within %gs (a firewall, a wrong address, or no network "
                "yet); the agent keeps retrying" % (host, port, timeout))
    except OSError as exc:
        return "cannot connect to %s:%d: %s; the agent keeps retrying" % (
            host, port, exc.strerror or exc)
    return None


def check_reporters(reporters, problems):  # type: (List[Any], List[str]) -> Optional[threading.Thread]
    # `check_reports` for the agent's reporters whose transports opened.
    opened = [r.transport for r in reporters if getattr(r, "opened", False)]
    names = {t.url: t.describe() for t in opened}
    return check_reports([t.url for t in opened], problems, lambda url: names.get(url, url))


def check_reports(urls, problems, describe=lambda url: url):
    # type: (List[str], List[str], Callable[[str], str]) -> Optional[threading.Thread]
    # Check each URL on a daemon thread; each problem is logged once and appended to
    # `problems` (a list the agent's status reads).
    from .transports import scheme_of
    # Only a broker has a server to reach: for other reports no thread is started at all,
    # since even a thread that ends at once leaves its stack's pages in the application's
    # RSS (0.4 MB on 3.6; docs/footprint.md).
    urls = [u for u in urls if u and scheme_of(u) in ("mqtt", "mqtts")]
    if not urls:
        return None

    def run():  # type: () -> None
        for url in urls:
            try:
                problem = reach(url)
            except Exception as exc:   # a check of ours must never take the agent down
                problem = None
                log.info("gc-agent: checking %s: %s: %s", describe(url), type(exc).__name__, exc)
            if problem:
                text = "report %s: %s" % (describe(url), problem)
                problems.append(text)
                log.warning("gc-agent: %s", text)

    thread = threading.Thread(target=run, name="gc-agent-preflight", daemon=True)
    thread.start()
    return thread
