"""Who may see the web console and who may change anything through it.

The model (docs/web-console.md, "Security"):

- Without `--auth` the console listens on loopback only and everyone who can
  reach it is the local operator (`local`), as with the command line. It is
  read-only towards devices: no command can be sent. Requests must name a
  loopback host (`Host:`), so a web page elsewhere cannot reach it by DNS
  rebinding.
- Binding to any other address needs `--auth FILE`: lines `NAME:SECRET` (or
  a single secret, for the name `operator`), the file readable by its owner
  only. A browser signs in once and gets a session cookie (HttpOnly,
  SameSite=Strict); scripts send `Authorization: Bearer SECRET`.
- Every POST (acknowledge, silence, command) must carry the page's CSRF
  token in `X-CSRF-Token` and, when the browser sends one, an `Origin` of
  this very host. A form on another site can set neither.
- Commands to devices need `--auth` and `--keys DIR` (the devices' command
  keys on the server); every one sent is recorded with who sent it.
"""

import hmac
import ipaddress
import os
import secrets
import stat
import time
from collections import OrderedDict
from typing import Dict, Optional

COOKIE = "gcconsole"
SESSION_TTL_S = 12 * 3600.0
MAX_SESSIONS = 1000
MAX_SECRET_LINE = 512


class AuthError(Exception):
    """The auth file cannot be used; the message says why."""


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_users(path: str) -> Dict[str, str]:
    """NAME -> SECRET from an auth file; refuses one others can read."""
    try:
        info = os.stat(path)
        with open(path, encoding="utf-8") as handle:
            lines = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    except (OSError, UnicodeDecodeError) as exc:
        raise AuthError("cannot read the auth file %s: %s" % (path, exc))
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuthError("%s is readable by others (mode %o): chmod 600 %s"
                        % (path, stat.S_IMODE(info.st_mode), path))
    users = {}
    for line in lines:
        if len(line) > MAX_SECRET_LINE:
            raise AuthError("%s: a line longer than %d characters" % (path, MAX_SECRET_LINE))
        name, colon, secret = line.partition(":")
        if not colon:
            name, secret = "operator", line
        if len(secret) < 12:
            raise AuthError("%s: the secret of %r is shorter than 12 characters" % (path, name))
        users[name.strip()] = secret
    if not users:
        raise AuthError("%s holds no NAME:SECRET line" % path)
    return users


class Guard(object):
    """Sessions, sign-in and CSRF tokens for one running console."""

    def __init__(self, users: Optional[Dict[str, str]], clock=time.time) -> None:
        self.users = users
        self.clock = clock
        self.sessions: OrderedDict[str, tuple] = OrderedDict()   # cookie -> (name, csrf, expiry)
        self.local_csrf = secrets.token_urlsafe(24)

    @property
    def required(self) -> bool:
        return self.users is not None

    def check_secret(self, name: str, secret: str) -> Optional[str]:
        """The user's name when `secret` is theirs (any name when `name` is empty)."""
        if not self.users:
            return None
        for user, known in self.users.items():
            if (not name or name == user) and hmac.compare_digest(known.encode(), secret.encode()):
                return user
        return None

    def sign_in(self, name: str) -> str:
        cookie = secrets.token_urlsafe(32)
        self.sessions[cookie] = (name, secrets.token_urlsafe(24), self.clock() + SESSION_TTL_S)
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.popitem(last=False)
        return cookie

    def sign_out(self, cookie: Optional[str]) -> None:
        self.sessions.pop(cookie or "", None)

    def who(self, cookie: Optional[str], authorization: Optional[str]) -> Optional[tuple]:
        """(name, csrf token) of the request's user, or None when it is not signed in."""
        if not self.required:
            return ("local", self.local_csrf)
        if authorization and authorization.startswith("Bearer "):
            name = self.check_secret("", authorization[7:].strip())
            return (name, None) if name else None   # a bearer token is not a browser: no CSRF
        found = self.sessions.get(cookie or "")
        if found is None or found[2] < self.clock():
            return None
        return found[0], found[1]

    @staticmethod
    def csrf_ok(expected: Optional[str], given: Optional[str]) -> bool:
        if expected is None:
            return True
        return bool(given) and hmac.compare_digest(expected.encode(), given.encode())
