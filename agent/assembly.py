# Building an agent's parts, and taking them apart again when a step fails.
#
# The parts, in the order they are made: the device id and the message
# envelope, the probe (which hooks `gc.callbacks` to time collections), the
# actor, the policy, and one reporter per report URL (its transport and, with
# `[buffer] flash`, its journal). Each step that acquires something (a gc hook,
# a file, a thread) leaves a way to undo it; when a later step raises, what was
# already made is closed, newest first, and the error goes on to the caller. So
# a failed `agent.start()` leaves the application's process as it found it
# (see docs/architecture.md, "Life cycle").

import logging
import sys
import time

from .actions import Actor
from .errors import AgentError
from .lean import record
from .messages import Envelope, encode
from .outbox import Outbox
from .probes import Probe, gc_flavour
from .profile import resolve_device_id
from .reporter import Reporter
from .rules import Policy
from .transports import open_transport
from .transports.base import Context, TransportSettings
from .tuning import can_freeze

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Callable, Dict, List, Optional, Sequence  # noqa: F401 (type comments)

    from .profile import Profile  # noqa: F401 (type comments)

log = logging.getLogger("gcagent")


def journal_folder(flash, destination):  # type: (str, str) -> str
    # Each report destination keeps its own journal under [buffer] flash.
    return "%s/%s" % (flash, "".join(c if c.isalnum() else "_" for c in destination))


def transport_settings(profile):  # type: (Profile) -> TransportSettings
    # The [report] settings a transport may read, typed and complete.
    report = profile.report
    return TransportSettings(prefix=report.prefix, keepalive=report.keepalive,
                             compress=report.compress, window=report.window,
                             ca_file=report.ca_file, cert_file=report.cert_file,
                             key_file=report.key_file, username=report.username,
                             password_file=report.password_file,
                             password_env=report.password_env)


def status_fields(profile, probe, uptime_s, state, version, device_id="", problems=()):
    # type: (Profile, Any, float, str, str, str, Sequence[str]) -> Dict[str, Any]
    # The fields of a `status` message (docs/messages.md); `version` is the agent's.
    # A `DEVICE@APP` id adds `host` and `app`; start-up `problems` are listed (docs/field.md).
    from .identity import app_fields
    ceiling = probe.ceiling
    fields = dict(state=state, agent=version, python="%d.%d.%d" % sys.version_info[:3],
                  gc_flavour=gc_flavour(), model=profile.device.model,
                  profile=profile.path, profile_sha256=profile.sha256,
                  ceiling_kb=ceiling.kb, uptime_s=round(uptime_s, 3),
                  ceiling_source=ceiling.source, probe=probe.backend,
                  freeze="available" if can_freeze() else "unavailable (Python 3.7+)",
                  **_bundle_field())
    fields.update(app_fields(device_id))
    if problems:
        fields["problems"] = list(problems[:8])
    return fields


def _bundle_field():  # type: () -> Dict[str, str]
    # Only a bundle's own start (agent.__main__) verifies a bundle, importing
    # agent.bundle to do it: an application starting the agent from plain files
    # does not load that module at all (docs/footprint.md).
    bundle = sys.modules.get(__package__ + ".bundle")
    return bundle.bundle_field() if bundle is not None else {}


def report_name(transport):  # type: (Any) -> str
    # A destination as `status` names it: its URL without secrets, and how it delivers now.
    note = transport.note()
    return "%s (%s)" % (transport.describe(), note) if note else transport.describe()


class Parts(record(
        "Parts",
        "device_id",                            # str
        "envelope",                             # Envelope
        "probe",                                # Any: agent.probes.Probe, or a stand-in with the same methods
        "actor",                                # Actor
        "policy",                               # Policy
        "reporters",                            # List[Reporter]
        "started_at",                           # float: monotonic seconds
)):
    # What a running agent is made of; `close_parts` takes it apart.

    __slots__ = ()


class _Undo(object):
    # Closers of what was acquired so far, run newest first if a step fails.

    def __init__(self):  # type: () -> None
        self._closers = []  # type: List[Callable[[], None]]

    def push(self, closer):  # type: (Callable[[], None]) -> None
        self._closers.append(closer)

    def run(self):  # type: () -> None
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except Exception as exc:   # undoing must not hide the error that caused it
                log.info("gc-agent: undoing a failed start: %s: %s", type(exc).__name__, exc)


def build_parts(profile, version, reports=None, probe=None, clock=time.time, monotonic=time.monotonic):
    # type: (Profile, str, Optional[Sequence[str]], Optional[Any], Callable[[], float], Callable[[], float]) -> Parts
    # Make every part; if a step raises, close what was made and re-raise.
    undo = _Undo()
    try:
        from .identity import with_app  # DEVICE@APP with `[agent] app` (docs/field.md)
        device_id = with_app(resolve_device_id(profile), profile.agent.app)[0]
        envelope = Envelope(device_id, clock=clock)
        if probe is None:
            probe = Probe(profile.device.memory_limit_kb, profile.agent.probe)
            undo.push(probe.close)   # a probe we made: its gc hook is ours to remove
        actor = Actor(probe.rss_kb)
        started_at = monotonic()
        # [gc] tune = auto: the tuner owns thresholds and freeze (docs/tuner.md). Without
        # gc.freeze (Python 3.6) freeze_after_start is skipped, said in status, not an error.
        freeze_after = profile.gc.freeze_after \
            if profile.gc.tune != "auto" and can_freeze() else None
        policy = Policy(profile.rules, started_at, profile.agent.budget,
                        profile.agent.budget_window, freeze_after)
        will = _will(profile, probe, envelope, clock, version)
        context = Context(device_id, will, transport_settings(profile))
        # The same URL twice would mean two writers on one file: keep one.
        urls = list(dict.fromkeys(reports if reports else profile.report.urls))
        reporters = []  # type: List[Reporter]
        for url in urls:
            # Transports' modules are imported now, before a launched script changes sys.path.
            reporter = _reporter(profile, open_transport(url, context))
            undo.push(reporter.close)
            reporters.append(reporter)
    except BaseException:
        undo.run()
        raise
    return Parts(device_id, envelope, probe, actor, policy, reporters, started_at)


def close_parts(reporters, probe):  # type: (Sequence[Reporter], Any) -> None
    # Close every reporter (spilling what is unacknowledged), then the probe.
    for reporter in reporters:
        try:
            reporter.close()
        except Exception as exc:
            log.info("gc-agent: closing %s: %s", reporter.transport.describe(), exc)
    probe.close()


def _will(profile, probe, envelope, clock, version):
    # type: (Profile, Any, Envelope, Callable[[], float], str) -> bytes
    # The retained status "offline" the broker publishes if we vanish (seq 0).
    will = status_fields(profile, probe, 0.0, "offline", version, envelope.device)
    will.update(v=1, type="status", device=envelope.device, boot=envelope.boot, seq=0,
                ts=round(clock(), 3), will=True)
    return encode(will, profile.report.compress)


def _reporter(profile, transport):  # type: (Profile, Any) -> Reporter
    journal = None
    buffer = profile.buffer
    if buffer.flash and transport.has_link:
        from .journal import Journal
        try:
            from .identity import app_fields  # each application on the device: its own journal
            app = app_fields(transport.context.device).get("app")
            journal = Journal(journal_folder(buffer.flash, transport.describe())
                              + ("/" + app if app else ""),
                              buffer.flash_max_bytes, sync_every=buffer.sync_every)
        except AgentError as exc:
            log.warning("gc-agent: flash buffer off for %s: %s", transport.describe(), exc)
    return Reporter(transport, Outbox(buffer.ram_bytes), journal, buffer.spill_after,
                    profile.report.replay_rate)
