"""Standard-library stand-ins that keep the agent light inside the application's process.

The agent is a guest in someone else's process on a 256 MB device, so a few
heavy standard modules are avoided on every path that runs there:

- ``hashlib`` maps OpenSSL: ~4 MB of RSS. SHA-256 comes from the interpreter's
  own module (``_sha256`` on CPython 3.6-3.11, ``_sha2`` on 3.12+), and
  ``hmac`` (which imports hashlib) is replaced by ``_operator._compare_digest``
  (what ``hmac.compare_digest`` is) plus an HMAC built on that SHA-256
  (`agent.commands`). hashlib is only the fallback of an unusual build.
- ``zipfile`` costs 49 modules and ~2.8 MB of RSS on Python 3.6. Files inside
  a gc-bundle .pyz are read through ``zipimport``, which the interpreter has
  already loaded to import the agent from that archive.
"""

import os
from typing import List, Optional

try:
    from _sha256 import sha256  # CPython 3.6-3.11
except ImportError:
    try:
        from _sha2 import sha256  # CPython 3.12+
    except ImportError:
        from hashlib import sha256
try:
    from _operator import _compare_digest as compare_digest
except ImportError:
    from hmac import compare_digest

__all__ = ["compare_digest", "is_zip", "read_from_zip", "sha256", "sha256_hex", "zip_importer", "zip_names"]


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of `data`, without hashlib."""
    return sha256(data).hexdigest()


def zip_importer(archive: str):
    """A zipimporter over `archive`: `get_data(member)` reads one file of it."""
    import zipimport
    return zipimport.zipimporter(archive)


def is_zip(path: str) -> bool:
    """A zip archive (a zipapp, shebang line or not)?"""
    import zipimport
    try:
        zipimport.zipimporter(path)
    except (zipimport.ZipImportError, OSError):
        return False
    return True


def read_from_zip(path: str) -> Optional[bytes]:
    """The bytes at `path` when it runs through a zip archive (ARCHIVE.pyz/member);
    None when no archive is on the path; FileNotFoundError when the member is missing."""
    archive = os.path.dirname(path)
    while archive and not os.path.isfile(archive) and os.path.dirname(archive) != archive:
        archive = os.path.dirname(archive)
    if not os.path.isfile(archive):
        return None
    import zipimport
    try:
        importer = zipimport.zipimporter(archive)
    except zipimport.ZipImportError:
        return None
    member = path[len(archive) + 1:]
    try:
        return importer.get_data(member)
    except OSError as exc:
        raise FileNotFoundError(2, "%s is not inside %s" % (member, archive)) from exc


def zip_names(archive: str) -> List[str]:
    """Every member of the archive, from zipimport's own table of contents."""
    try:
        table = zip_importer(archive)._files   # present on CPython 3.6 to 3.14
        return [name.replace(os.sep, "/") for name in table]
    except AttributeError:
        import zipfile  # a Python without zipimport's table: pay for zipfile once
        with zipfile.ZipFile(archive) as handle:
            return handle.namelist()
    except Exception:
        return []
