# The agent's errors, all in one place.
#
#     Exception
#      +-- AgentError               root: anything the agent raises on purpose
#           +-- ProfileError        one or more problems in a profile (`problems`: every Problem)
#           +-- TransportError      a report URL that cannot be opened or written
#           +-- MessageError        a payload that is not a valid schema-v1 message (`reason`)
#           +-- JournalError        the flash journal cannot be created, written or read
#           +-- CommandRefused      a remote command that is not run (`reason`)
#
# A library's error (paho-mqtt, pyserial, OSError, json, zlib) never leaves the
# agent as it is: the seam where it is caught raises one of these `from` it,
# so the original stays in `__cause__` for a traceback. `reason` is a short
# code from a fixed tuple below, for counting and matching; `str()` is a
# sentence for people, and may change.
#
# Only the CLI and `agent.start()` see these; the agent thread catches them and
# reports them as `error` events instead of raising into the application.
# Writing a transport: docs/adding-a-transport.md.

from .lean import record

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import List  # noqa: F401 (type comments)

# MessageError.reason: why a payload was refused by agent.messages.decode.
MESSAGE_REASONS = ("too_large", "zlib", "not_json", "schema", "range")   # range: agent/bounds.py

# CommandRefused.reason: why a command was not run (also counted in `status`).
COMMAND_REASONS = ("too_large", "not_json", "not_object", "bad_field", "unsigned",
                   "bad_signature", "stale", "replayed", "unknown_command", "not_allowed",
                   "wrong_device", "bad_args", "failed", "busy")


class AgentError(Exception):
    # Root of every error the agent raises on purpose.
    pass


class Problem(record(
        "Problem",
        "path",                                 # str
        "line",                                 # int
        "section",                              # str
        "key",                                  # str
        "message",                              # str
)):
    # One thing wrong in a profile, located as precisely as we can.

    __slots__ = ()

    def __str__(self):  # type: () -> str
        where = "[%s]" % self.section if self.section else ""
        if self.key:
            where = "%s %s" % (where, self.key) if where else self.key
        if where:
            return "%s:%d: %s: %s" % (self.path, self.line, where, self.message)
        return "%s:%d: %s" % (self.path, self.line, self.message)


class ProfileError(AgentError):
    # A profile that cannot be used; `problems` lists every problem found.

    def __init__(self, problems):  # type: (List[Problem]) -> None
        self.problems = list(problems)
        super(ProfileError, self).__init__("\n".join(str(p) for p in self.problems))


class TransportError(AgentError):
    # A report URL that is malformed, cannot be opened, or failed to send.
    pass


class _Coded(AgentError):
    # An error with a short `reason` code from the subclass's REASONS.

    REASONS = ()   # type: tuple

    def __init__(self, reason, message):  # type: (str, str) -> None
        if reason not in self.REASONS:
            raise ValueError("unknown %s reason %r" % (type(self).__name__, reason))
        self.reason = reason
        super(_Coded, self).__init__(message)


class MessageError(_Coded):
    # A payload that does not decode to a valid schema-v1 message; `reason` from MESSAGE_REASONS.

    REASONS = MESSAGE_REASONS


class JournalError(AgentError):
    # The journal's directory or files cannot be created, written or read.
    pass


class CommandRefused(_Coded):
    # A command that is not run; `reason` is a short code from COMMAND_REASONS, str() a sentence.

    REASONS = COMMAND_REASONS
