"""agent.lean.record: namedtuple's behaviour, one class per record (docs/footprint.md)."""

import abc
import pickle

import pytest

from agent.actions import ActionResult
from agent.lean import Record, record
from agent.probes import Sample
from agent.profile.settings import Profile


class Point(record("Point", "x", "y", z=0)):
    __slots__ = ()

    @property
    def norm1(self):
        return abs(self.x) + abs(self.y) + abs(self.z)

    def __str__(self):
        return "(%s, %s, %s)" % self


def test_a_record_subclassed_in_place_is_one_class_with_namedtuples_behaviour():
    assert Point.__mro__ == (Point, Record, tuple, object)
    assert (Point.__name__, Point.__qualname__, Point.__module__) == ("Point", "Point", __name__)
    p = Point(1, y=-2)
    assert p == (1, -2, 0) and (p.x, p.y, p.z, p.norm1) == (1, -2, 0, 3)
    assert p._fields == ("x", "y", "z") and p._asdict() == {"x": 1, "y": -2, "z": 0}
    assert p._replace(z=5) == Point(1, -2, 5) and type(p._replace(z=5)) is Point
    assert repr(p) == "Point(x=1, y=-2, z=0)" and str(p) == "(1, -2, 0)"
    assert pickle.loads(pickle.dumps(p)) == p and Point._make([4, 5, 6]).z == 6
    with pytest.raises(AttributeError):
        p.w = 1                                  # still no __dict__
    with pytest.raises(TypeError, match="missing required argument: 'y'"):
        Point(1)


def test_other_subclasses_are_made_as_usual():
    class Point3(Point):                         # a subclass of a record: a class of its own
        __slots__ = ()

    assert Point3.__mro__[:2] == (Point3, Point) and Point3(1, 2).norm1 == 3
    plain = record("Plain", "a")
    assert plain(1).a == 1 and plain.__mro__ == (plain, Record, tuple, object)

    class Other(plain):                          # another name: the record class stays itself
        __slots__ = ()

    assert Other.__mro__[:2] == (Other, plain) and plain(2).a == 2

    class WithDict(record("WithDict", "a")):     # no __slots__: instances get a __dict__
        pass

    item = WithDict(1)
    item.note = "kept"
    assert WithDict.__mro__[1].__name__ == "WithDict" and item.note == "kept"


def test_the_agents_records_are_one_class_each():
    for cls in (Sample, Profile, ActionResult):
        assert cls.__mro__ == (cls, Record, tuple, object), cls
    assert ActionResult.reclaimed_kb.__get__ is not None


def test_a_descriptor_in_a_records_body_is_told_its_name_as_type_would_tell_it():
    class Named(object):
        def __set_name__(self, owner, name):
            self.seen = (owner, name)

    class Holder(record("Holder", "a")):
        __slots__ = ()
        tag = Named()

    assert Holder.__mro__[1] is Record and Holder.__dict__["tag"].seen == (Holder, "tag")


def test_a_record_defining_eq_without_hash_is_unhashable_as_a_class_statement_makes_it():
    class Key(record("Key", "a")):
        __slots__ = ()

        def __eq__(self, other):
            return isinstance(other, Key) and self.a == other.a

    with pytest.raises(TypeError):
        hash(Key(1))

    class Both(record("Both", "a")):
        __slots__ = ()

        def __eq__(self, other):
            return self.a == other.a

        def __hash__(self):
            return hash(self.a)

    assert hash(Both(3)) == hash(3)


def test_field_names_cannot_start_with_an_underscore_as_in_namedtuple():
    with pytest.raises(ValueError, match=r"underscore.*'_fresh'"):
        record("R", "a", "_fresh")


def test_mixing_a_record_with_a_metaclass_base_is_refused_at_once_not_silently():
    # the one limit of one class per record (agent/lean.py, _Fresh); no agent record does it
    class Shape(abc.ABC):
        @abc.abstractmethod
        def area(self):
            pass

    with pytest.raises(TypeError, match="metaclass conflict"):
        class Square(record("Square", "side"), Shape):
            __slots__ = ()
