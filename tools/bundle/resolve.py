"""The profile as it goes into a bundle: `extends` flattened, the device id written in.

A device must not need the desktop's profile folder, so the bundle carries
`Profile.text` (the flattened INI) with `[device] id` replaced by the id given
to gc-bundle, validated again by agent.profile exactly as the device will.
"""

import os
import re
from typing import List, NamedTuple, Tuple

from agent.errors import Problem, ProfileError
from agent.profile import Profile, load, loads, resolve_device_id

ID_CHARS = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# (section, field, what it is) for every file a profile may name that holds a secret
# or a certificate: these stay out of a bundle unless --include-secrets.
SECRET_FIELDS = (("report", "ca_file", "CA certificate"),
                 ("report", "cert_file", "client certificate"),
                 ("report", "key_file", "client key"),
                 ("report", "password_file", "MQTT password"),
                 ("commands", "key_file", "command signing key"))


class Secret(NamedTuple):
    """A file the profile names: where the device reads it, and what it is."""

    section: str
    key: str
    what: str
    device_path: str


def bundled_profile(path: str, device_id: str) -> Profile:
    """Load `path`, write `device_id` into it, and validate the result as the device will."""
    if not ID_CHARS.match(device_id):
        raise ValueError("--device-id %r: use 1 to 64 of A-Z a-z 0-9 . _ - (it is also the "
                         "MQTT topic level and the certificate CN)" % device_id)
    profile = load(path)
    text, replaced = _with_id(profile.text, device_id)
    if not replaced:   # cannot happen for a valid profile ([device] id is required)
        raise ProfileError([Problem(path, 1, "device", "id", "no id to replace")])
    resolved = loads(text, path=os.path.abspath(path))
    assert resolve_device_id(resolved, environ={}) == device_id
    return resolved


def _with_id(text: str, device_id: str) -> Tuple[str, bool]:
    """`Profile.text` with [device] id replaced; it is written by agent.profile.reading.flatten,
    one `key = value` per line, continuation lines indented."""
    out, section, replaced, skipping = [], "", False, False
    for line in text.split("\n"):
        if skipping and line.startswith((" ", "\t")):
            continue   # a multi-line id: drop its continuation lines
        skipping = False
        if line.startswith("[") and line.rstrip().endswith("]"):
            section = line.strip()[1:-1]
        elif section == "device" and line.split("=", 1)[0].strip() == "id":
            line, replaced, skipping = "id = %s" % device_id, True, True
        out.append(line)
    return "\n".join(out), replaced


def secrets(profile: Profile) -> List[Secret]:
    """Every key, certificate and password file the profile names."""
    found = []
    for section, key, what in SECRET_FIELDS:
        value = getattr(getattr(profile, section), key, "")
        if value:
            found.append(Secret(section, key, what, value))
    return found


def find_local(secret: Secret, profile_path: str, secrets_dir: str) -> str:
    """This machine's copy of a secret: the path as written, else by name in `secrets_dir`."""
    candidates = [secret.device_path,
                  os.path.join(os.path.dirname(os.path.abspath(profile_path)), secret.device_path),
                  os.path.join(secrets_dir, os.path.basename(secret.device_path))]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(
        "[%s] %s = %s (%s): not found here as written nor as %s; pass --secrets-dir with the "
        "folder that holds it" % (secret.section, secret.key, secret.device_path, secret.what,
                                  os.path.join(secrets_dir, os.path.basename(secret.device_path))))
