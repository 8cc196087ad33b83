"""The agent's errors, all in one place.

    AgentError                  root: anything the agent raises on purpose
     +-- ProfileError           one or more problems in a profile (carries them all)
     +-- TransportError         a report URL that cannot be opened or written
     +-- MessageError           a payload that is not a valid schema-v1 message

Only the CLI and `agent.start()` see these; the agent thread catches them and
reports them as `error` events instead of raising into the application.
"""

from typing import List, NamedTuple


class AgentError(Exception):
    """Root of every error the agent raises on purpose."""


class Problem(NamedTuple):
    """One thing wrong in a profile, located as precisely as we can."""

    path: str
    line: int
    section: str
    key: str
    message: str

    def __str__(self) -> str:
        where = "[%s]" % self.section if self.section else ""
        if self.key:
            where = "%s %s" % (where, self.key) if where else self.key
        if where:
            return "%s:%d: %s: %s" % (self.path, self.line, where, self.message)
        return "%s:%d: %s" % (self.path, self.line, self.message)


class ProfileError(AgentError):
    """A profile that cannot be used; `problems` lists every problem found."""

    def __init__(self, problems: List[Problem]) -> None:
        self.problems = list(problems)
        super(ProfileError, self).__init__("\n".join(str(p) for p in self.problems))


class TransportError(AgentError):
    """A report URL that is malformed, cannot be opened, or failed to send."""


class MessageError(AgentError):
    """A payload that does not decode to a valid schema-v1 message."""
