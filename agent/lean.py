# Standard-library stand-ins that keep the agent light inside the application's process.
#
# The agent is a guest in someone else's process on a 256 MB device, so a few
# heavy standard modules are avoided on every path that runs there:
#
# - ``hashlib`` maps OpenSSL: ~4 MB of RSS. SHA-256 comes from the interpreter's
#   own module (``_sha256`` on CPython 3.6-3.11, ``_sha2`` on 3.12+), and
#   ``hmac`` (which imports hashlib) is replaced by ``_operator._compare_digest``
#   (what ``hmac.compare_digest`` is) plus an HMAC built on that SHA-256
#   (`agent.commands`). hashlib is only the fallback of an unusual build.
# - ``zipfile`` costs 49 modules and ~2.8 MB of RSS on Python 3.6. Files inside
#   a gc-bundle .pyz are read through ``zipimport``, which the interpreter has
#   already loaded to import the agent from that archive.
# - ``urllib.parse`` (with ``ipaddress`` on 3.11) costs 0.3-0.5 MB: the report
#   URLs the agent reads are plain, so `split_url`, `query_items` and
#   `encode_query` split and join them
#   by hand and hand anything unusual (escapes, brackets, spaces, non-ASCII) to
#   urllib.parse, so the result is always urllib.parse's.
# - ``typing`` costs 0.5-0.6 MB (docs/footprint.md). Modules import it only under
#   ``if TYPE_CHECKING:`` (always False when running) for the PEP 484 type
#   comments that name it; records are tuples with named fields through `record`.

import os

try:
    from collections import _tuplegetter as _getter  # 3.8+: what namedtuple's fields are
except ImportError:
    from _operator import itemgetter

    def _getter(index, doc):  # type: (int, str) -> property
        return property(itemgetter(index), doc=doc)

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Dict, List, Optional, Tuple  # noqa: F401 (type comments)

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

__all__ = ["Record", "compare_digest", "encode_query", "is_zip", "query_items", "read_from_zip", "record",
           "sha256", "sha256_hex", "split_url", "zip_importer", "zip_names"]

# What a URL may hold for the hand split to equal urllib.parse's: printable ASCII
# without escapes, IPv6 brackets or spaces (urllib.parse strips, checks or decodes those).
_PLAIN_URL = frozenset(chr(c) for c in range(0x21, 0x7F)) - set("%[]\\")
# What urllib.parse.quote_plus leaves as it is.
_QUERY_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


class Record(tuple):
    # What `record` classes share: namedtuple's behaviour (fields by name and by index,
    # defaults, keywords, `_replace`, `_fields`, a repr), with one class object per record.

    __slots__ = ()
    _fields = ()              # type: Tuple[str, ...]
    _field_defaults = {}      # type: Dict[str, Any]

    def __new__(cls, *args, **kwargs):  # type: (*Any, **Any) -> Any
        if kwargs or len(args) != len(cls._fields):
            args = cls._arrange(args, kwargs)
        return tuple.__new__(cls, args)

    @classmethod
    def _arrange(cls, args, kwargs):  # type: (Tuple[Any, ...], Dict[str, Any]) -> List[Any]
        fields = cls._fields
        if len(args) > len(fields):
            raise TypeError("%s() takes %d arguments but %d were given"
                            % (cls.__name__, len(fields), len(args)))
        values = list(args)
        for field in fields[len(args):]:
            if field in kwargs:
                values.append(kwargs.pop(field))
            elif field in cls._field_defaults:
                values.append(cls._field_defaults[field])
            else:
                raise TypeError("%s() missing required argument: %r" % (cls.__name__, field))
        if kwargs:
            name = sorted(kwargs)[0]
            raise TypeError("%s() got %s argument %r" % (
                cls.__name__, "multiple values for" if name in fields else "an unexpected keyword", name))
        return values

    @classmethod
    def _make(cls, iterable):  # type: (Any) -> Any
        values = tuple(iterable)
        if len(values) != len(cls._fields):
            raise TypeError("Expected %d arguments, got %d" % (len(cls._fields), len(values)))
        return tuple.__new__(cls, values)

    def _replace(self, **changes):  # type: (**Any) -> Any
        # A copy with some fields changed (as namedtuple's).
        values = [changes.pop(field, value) for field, value in zip(self._fields, self)]
        if changes:
            raise ValueError("Got unexpected field names: %r" % sorted(changes))
        return tuple.__new__(type(self), values)

    def _asdict(self):  # type: () -> Dict[str, Any]
        return dict(zip(self._fields, self))

    def __getnewargs__(self):  # type: () -> Tuple[Any, ...]
        return tuple(self)

    def __repr__(self):  # type: () -> str
        return "%s(%s)" % (type(self).__name__,
                           ", ".join("%s=%r" % pair for pair in zip(self._fields, self)))


def record(name, *required, **defaults):  # type: (str, *str, **Any) -> type
    # A namedtuple-like class: the `required` fields, then the fields of `defaults`
    # with their default values, in the order written (what typing.NamedTuple gives,
    # without importing typing). Subclass it in place with ``__slots__ = ()`` to add
    # methods: ``class Sample(record("Sample", ...)):`` (see `_Fresh`).
    #
    # Not collections.namedtuple: on 3.6 that compiles a class's worth of source per
    # record, about 15 KB each, 0.3 MB over the agent's records (docs/footprint.md).
    fields = required + tuple(defaults)
    for field in fields:   # as namedtuple: `_fields`, `_replace`, `_fresh` are the class's own
        if field.startswith("_"):
            raise ValueError("record %s: field names cannot start with an underscore: %r" % (name, field))
    namespace = {"__slots__": (), "_fields": fields, "_field_defaults": defaults, "_fresh": True}
    for index, field in enumerate(fields):
        namespace[field] = _GETTERS.get(index) or _field_getter(index)
    return _Fresh(name, (Record,), namespace)


class _Fresh(type):
    # The class statement that subclasses a new `record` class in place, under its
    # name and with ``__slots__ = ()``, takes that class over rather than making a
    # second one: its module, methods and properties go onto it, and it is the class
    # the statement defines (bases Record, tuple). Two classes per record cost about
    # 40 KB on 3.6 and 3.11 over the agent's records (docs/footprint.md). Anything else
    # (another name, a second subclass, slots, several bases, a `__new__`, keywords)
    # subclasses as usual. A body with `__eq__` and no `__hash__` leaves the class
    # unhashable, as type() would. The one thing a metaclass rules out: mixing a
    # record with a base that has a metaclass of its own (an ABC) raises TypeError
    # ("metaclass conflict"); the agent's records never are.

    def __new__(mcs, name, bases, namespace, **keywords):  # type: (str, Any, Dict[str, Any], **Any) -> Any
        fresh = bases[0] if len(bases) == 1 else None
        if fresh is None or not fresh.__dict__.get("_fresh") or fresh.__name__ != name or keywords \
                or namespace.get("__slots__") != () or _SPECIAL.intersection(namespace):
            return type.__new__(mcs, name, bases, namespace, **keywords)
        del fresh._fresh
        for key, value in namespace.items():
            if key not in ("__slots__", "__qualname__"):
                setattr(fresh, key, value)
        fresh.__qualname__ = namespace.get("__qualname__", name)
        if "__eq__" in namespace and "__hash__" not in namespace:
            fresh.__hash__ = None   # what type() does: equal objects must hash alike
        for key, value in namespace.items():   # as type() does (a property has it on 3.10+)
            set_name = getattr(type(value), "__set_name__", None)
            if set_name is not None:
                set_name(value, fresh, key)
        return fresh


# What type() treats specially in a class body: such a subclass is made as usual.
_SPECIAL = frozenset(("__new__", "__init_subclass__", "__class_getitem__", "__classcell__"))


# A field's descriptor holds only its index, so every record shares one per index
# rather than making one (and its doc string) per field: 30 KB on 3.6 (docs/footprint.md).
_GETTERS = {}  # type: Dict[int, Any]


def _field_getter(index):  # type: (int) -> Any
    getter = _GETTERS[index] = _getter(index, "Alias for field number %d" % index)
    return getter


def split_url(url):  # type: (str) -> Tuple[str, str, str, str]
    # (scheme, netloc, path, query) as urllib.parse.urlsplit gives them (scheme lower-cased;
    # the fragment is dropped).
    scheme, colon, rest = url.partition(":")
    if not (set(url) <= _PLAIN_URL and colon and scheme.isalpha() and not rest.isdigit()):
        from urllib.parse import urlsplit
        parts = urlsplit(url)
        return parts.scheme, parts.netloc, parts.path, parts.query
    netloc = ""
    if rest.startswith("//"):
        end = min([i for i in (rest.find(c, 2) for c in "/?#") if i >= 0] + [len(rest)])
        netloc, rest = rest[2:end], rest[end:]
    rest = rest.partition("#")[0]
    path, _, query = rest.partition("?")
    return scheme.lower(), netloc, path, query


def query_items(query):  # type: (str) -> List[Tuple[str, str]]
    # urllib.parse.parse_qsl(query, keep_blank_values=True): (name, value) pairs in order.
    if not set(query) <= _PLAIN_URL:
        from urllib.parse import parse_qsl
        return parse_qsl(query, keep_blank_values=True)
    items = []
    for piece in query.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            items.append((name.replace("+", " "), value.replace("+", " ")))
    return items


def encode_query(pairs):  # type: (List[Tuple[str, str]]) -> str
    # urllib.parse.urlencode(pairs): plain names and values joined by hand, the rest by urllib.
    if all(set(name + value) <= _QUERY_SAFE for name, value in pairs):
        return "&".join("%s=%s" % pair for pair in pairs)
    from urllib.parse import urlencode
    return urlencode(pairs)


def sha256_hex(data):  # type: (bytes) -> str
    # Hex SHA-256 of `data`, without hashlib.
    return sha256(data).hexdigest()


def zip_importer(archive):  # type: (str) -> Any
    # A zipimporter over `archive`: `get_data(member)` reads one file of it.
    import zipimport
    return zipimport.zipimporter(archive)


def is_zip(path):  # type: (str) -> bool
    # A zip archive (a zipapp, shebang line or not)?
    import zipimport
    try:
        zipimport.zipimporter(path)
    except (zipimport.ZipImportError, OSError):
        return False
    return True


def read_from_zip(path):  # type: (str) -> Optional[bytes]
    # The bytes at `path` when it runs through a zip archive (ARCHIVE.pyz/member);
    # None when no archive is on the path; FileNotFoundError when the member is missing.
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


def zip_names(archive):  # type: (str) -> List[str]
    # Every member of the archive, from zipimport's own table of contents.
    try:
        table = zip_importer(archive)._files   # present on CPython 3.6 to 3.14
        return [name.replace(os.sep, "/") for name in table]
    except AttributeError:
        import zipfile  # a Python without zipimport's table: pay for zipfile once
        with zipfile.ZipFile(archive) as handle:
            return handle.namelist()
    except Exception:
        return []
