"""Write the .pyz: a zip application with MANIFEST.json, built the same way every time.

Members are sorted and dated 1980-01-01, so the same inputs give the same
bytes (and the same sha256) on any machine. The manifest lists the SHA-256 of
every other member; agent.bundle checks them at start.
"""

import json
import os
import stat
import zipfile
from typing import Any, Dict

from agent.bundle import FORMAT, MANIFEST
from agent.profile import sha256_hex

SHEBANG = b"#!/usr/bin/env python3\n"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def manifest_bytes(files: Dict[str, bytes], fields: Dict[str, Any]) -> bytes:
    """MANIFEST.json: `fields` plus the sha256 of every file, as stable, readable JSON."""
    body = dict(fields, format=FORMAT,
                files={name: sha256_hex(data) for name, data in sorted(files.items())})
    return (json.dumps(body, indent=1, sort_keys=True) + "\n").encode("utf-8")


def write_pyz(path: str, files: Dict[str, bytes], manifest: bytes) -> None:
    """The zip application at `path`: a shebang line, then the members, then the manifest."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as raw:
        raw.write(SHEBANG)
        with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(files):
                archive.writestr(_info(name), files[name], compresslevel=9)
            archive.writestr(_info(MANIFEST), manifest, compresslevel=9)
    os.chmod(tmp, os.stat(tmp).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.replace(tmp, path)


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info
