"""Assemble one device's bundle: agent/, the resolved profile, vendored libraries, manifest.

`build()` returns what it wrote; nothing here prints. The CLI in __main__.py
turns the result into a report for the technician.
"""

import os
from typing import Dict, List, NamedTuple, Optional, Tuple

import agent
from agent.profile import Profile, sha256_hex

from . import archive, autostart, resolve, vendor

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AGENT_DIR = os.path.join(REPO, "agent")
BOOTSTRAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bootstrap.py")
SIZE_LIMIT = 500 * 1024
PROFILE_NAME = "profile.ini"
SECRETS_DIR = "secrets/"


class Built(NamedTuple):
    """What one build wrote, and what the technician must still do by hand."""

    pyz: str
    dal: str
    unit: str
    size: int
    bundle_sha256: str        # sha256 of MANIFEST.json: what `status` reports as `bundle`
    profile_sha256: str
    python: str
    libraries: Dict[str, str]  # name -> version
    secrets_inside: List[Tuple[str, str]]   # (archive member, device path)
    secrets_outside: List[resolve.Secret]   # to copy to the device separately


def parse_python(text: str) -> Tuple[int, int]:
    """'3.6' -> (3, 6); the device's Python decides which paho-mqtt goes in."""
    try:
        major, minor = (int(p) for p in text.split(".")[:2])
    except ValueError:
        raise ValueError("--python %r: give MAJOR.MINOR, e.g. 3.6 or 3.10" % text)
    if (major, minor) < (3, 6):
        raise ValueError("--python %s: the agent needs Python 3.6 or newer" % text)
    return major, minor


def agent_files() -> Dict[str, bytes]:
    """agent/ as shipped: the .py files only (no caches)."""
    files = {}
    for folder, dirs, names in os.walk(AGENT_DIR):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                member = os.path.relpath(path, REPO).replace(os.sep, "/")
                with open(path, "rb") as handle:
                    files[member] = handle.read()
    return files


def build(profile_path: str, device_id: str, out: str, python: str = "3.6",
          vendor_dir: str = vendor.DEFAULT_VENDOR, include_secrets: bool = False,
          secrets_dir: Optional[str] = None, app: str = "",
          device_dir: str = autostart.DAL_SCRIPTS) -> Built:
    """Write DIR/gc-agent-ID.pyz, .dal.txt and .service; ValueError/ProfileError/VendorError
    say what is wrong with the inputs."""
    target = parse_python(python)
    profile = resolve.bundled_profile(profile_path, device_id)
    libraries = vendor.libraries(target, vendor_dir)
    files = agent_files()
    files["__main__.py"] = _read(BOOTSTRAP)
    files[PROFILE_NAME] = profile.text.encode("utf-8")
    for library in libraries:
        files.update(library.files)
    secrets = resolve.secrets(profile)
    inside, outside = _secrets(profile, profile_path, secrets, include_secrets,
                               secrets_dir or os.path.dirname(os.path.abspath(profile_path)))
    for member, local, _ in inside:
        files[member] = _read(local)
    fields = {"agent": agent.__version__, "device": device_id, "python": "%d.%d" % target,
              "profile": PROFILE_NAME, "profile_source": os.path.basename(profile_path),
              "profile_sha256": sha256_hex(files[PROFILE_NAME]),
              "vendored": {lib.name: lib.version for lib in libraries}}
    if inside:
        fields["secrets"] = {member: device_path for member, _, device_path in inside}
    manifest = archive.manifest_bytes(files, fields)
    os.makedirs(out, exist_ok=True)
    name = "gc-agent-%s" % device_id
    pyz = os.path.join(out, name + ".pyz")
    archive.write_pyz(pyz, files, manifest)
    size = os.path.getsize(pyz)
    dal = os.path.join(out, name + ".dal.txt")
    _write(dal, autostart.dal_text(profile, device_id, name + ".pyz", app, device_dir,
                                   source=os.path.basename(profile_path)))
    unit = os.path.join(out, name + ".service")
    _write(unit, autostart.systemd_unit(profile, device_id, "%h/gcagent/" + name + ".pyz", app))
    return Built(pyz, dal, unit, size, sha256_hex(manifest), profile.sha256, "%d.%d" % target,
                 {lib.name: lib.version for lib in libraries},
                 [(m, d) for m, _, d in inside], outside)


def _secrets(profile: Profile, profile_path: str, found: List[resolve.Secret],
             include: bool, secrets_dir: str):
    if not include:
        return [], found
    inside = []
    for secret in found:
        if not secret.device_path.startswith("/"):
            raise ValueError("[%s] %s = %s: --include-secrets writes it to this path on the "
                             "device at first start, so it must be absolute (for example "
                             "/etc/config/gcagent/%s)" % (secret.section, secret.key,
                                                          secret.device_path,
                                                          os.path.basename(secret.device_path)))
        local = resolve.find_local(secret, profile_path, secrets_dir)
        member = "%s%s.%s" % (SECRETS_DIR, secret.section, secret.key)
        inside.append((member, local, secret.device_path))
    return inside, []


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)
