# Running from a gc-bundle .pyz: check every file against MANIFEST.json first.
#
# `gc-bundle` writes one zip application per device with a MANIFEST.json that
# lists the SHA-256 of every other file in it. When the agent was imported from
# such an archive, `verify()` re-hashes each file and returns a message naming
# the first file that differs, is missing, or was added; the CLI then refuses to
# start (exit status 2, like a bad profile). This catches a corrupted upload or
# a hand-edited bundle; it is not a signature (whoever can edit the zip can
# edit the manifest too), which is why `status` carries the manifest's hash
# (`bundle`) for the console to compare with what provisioning built.
#
# The archive is read through zipimport, not zipfile (why: `agent.lean`).
#
# Secrets put in with `gc-bundle --include-secrets` are written to the paths the
# manifest names (mode 0600) at the first start, never over an existing file.

import json
import os
import sys

from .lean import sha256_hex, zip_importer, zip_names

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Dict, List, Optional  # noqa: F401 (type comments)

MANIFEST = "MANIFEST.json"
FORMAT = 1

_verified = None  # type: Optional[str]  # the manifest hash, once verify() passed
_built_for = None  # type: Optional[str]  # the manifest's "python" (MAJOR.MINOR the bundle targets)


def archive_of(loader=None):  # type: (object) -> Optional[str]
    # The .pyz this package was imported from, or None when it came from plain files.
    loader = globals().get("__loader__") if loader is None else loader
    archive = getattr(loader, "archive", None)
    return archive if isinstance(archive, str) and archive else None


def verified_hash():  # type: () -> Optional[str]
    # SHA-256 of the verified bundle's MANIFEST.json; None when not running from a bundle.
    return _verified


def bundle_field():  # type: () -> Dict[str, str]
    # `{"bundle": HASH}` for status messages when running from a verified bundle, else {}.
    return {} if _verified is None else {"bundle": _verified}


def verify(archive=None):  # type: (Optional[str]) -> Optional[str]
    # None when not in a bundle or every file matches; otherwise what is wrong, for people.
    global _verified
    archive = archive or archive_of()
    if archive is None:
        return None
    try:
        importer = zip_importer(archive)
        raw = importer.get_data(MANIFEST)
    except Exception:   # OSError, ZipImportError: a zip without a manifest is not a bundle
        return None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except ValueError as exc:   # UnicodeDecodeError included
        return "bundle %s: %s is damaged (%s); rebuild the bundle" % (archive, MANIFEST, exc)
    if not isinstance(manifest, dict) or "format" not in manifest:
        return None   # some other tool's MANIFEST.json: not a gc-bundle
    files = manifest.get("files")
    if not isinstance(files, dict):
        return "bundle %s: %s has no files table; rebuild the bundle" % (archive, MANIFEST)
    problem = _check_files(archive, importer, files)
    if problem is not None:
        return "bundle %s refused: %s; the bundle was changed after gc-bundle built it " \
               "(rebuild it and upload it again)" % (archive, problem)
    _verified = sha256_hex(raw)
    global _built_for
    _built_for = manifest.get("python") if isinstance(manifest.get("python"), str) else None
    return None


def python_mismatch(version=None):  # type: (Any) -> Optional[str]
    # What to do when this bundle was built for a newer Python than the one running it
    # (its vendored libraries, paho-mqtt 2.x for 3.10, do not import on 3.6); else None.
    if _built_for is None:
        return None
    try:
        target = tuple(int(part) for part in _built_for.split(".")[:2])
    except ValueError:
        return None
    running = tuple((version or sys.version_info)[:2])
    if running >= target:
        return None
    return ("this bundle was built for Python %s and this is Python %d.%d: its paho-mqtt and "
            "code may not load here; build one for this device with gc-bundle --python %d.%d"
            % (_built_for, running[0], running[1], running[0], running[1]))


def _check_files(archive, importer, files):  # type: (str, object, Dict[str, str]) -> Optional[str]
    for name in sorted(files):
        try:
            data = importer.get_data(name)
        except OSError:
            return "%s is listed in %s but missing" % (name, MANIFEST)
        digest = sha256_hex(data)
        if digest != files[name]:
            return "%s does not match %s (sha256 %s, expected %s)" % (
                name, MANIFEST, digest[:16], str(files[name])[:16])
    for name in zip_names(archive):
        if name != MANIFEST and not name.endswith("/") and name not in files:
            return "%s is not listed in %s" % (name, MANIFEST)
    return None


def install_secrets(archive=None):  # type: (Optional[str]) -> List[str]
    # Write bundled secrets to their device paths (0600) where absent; the paths written.
    archive = archive or archive_of()
    if archive is None or _verified is None:
        return []
    importer = zip_importer(archive)
    manifest = json.loads(importer.get_data(MANIFEST).decode("utf-8"))
    written = []
    for name, target in sorted((manifest.get("secrets") or {}).items()):
        if os.path.exists(target):
            continue
        os.makedirs(os.path.dirname(target) or ".", mode=0o700, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(importer.get_data(name))
        written.append(target)
    return written


def refuse_if_tampered():  # type: () -> Optional[str]
    # The CLI's hook: verify, then install secrets; a message means do not start.
    problem = verify()
    if problem is not None:
        return problem
    mismatch = python_mismatch()
    if mismatch is not None:   # said, not refused: a file: or stdout: report may still work
        sys.stderr.write("gc-agent: %s\n" % mismatch)
    try:
        for path in install_secrets():
            sys.stderr.write("gc-agent: installed %s from the bundle\n" % path)
    except (OSError, ValueError) as exc:
        return "bundle %s: cannot install its secrets: %s" % (archive_of(), exc)
    return None
