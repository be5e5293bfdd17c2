# cython: language_level=3
"""msgspec Struct fields as the slots they are, at fixed offsets in each record, shared by the
compiled wire and counting code and the record encoder (inline: nothing of this module exists at
run time). In storage/, the lowest package that cimports it, so the flow stays one way."""

from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_INCREF


cdef extern from "structmember.h":
    ctypedef struct PyMemberDef:
        const char* name
        int type
        Py_ssize_t offset
    enum:
        T_OBJECT_EX

cdef extern from "Python.h":
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member
    PyTypeObject PyMemberDescr_Type


cdef inline Py_ssize_t slot_offset(object cls, str name, str module) except -1:
    """Where a msgspec Struct keeps field `name` in its records. A field renamed, removed or
    inherited raises ImportError at import (naming `module`): its caller then says so and runs
    its pure code, instead of every shard and gateway failing to start."""
    descriptor = cls.__dict__.get(name)
    if type(descriptor) is not <object>&PyMemberDescr_Type or descriptor.__objclass__ is not cls:
        raise ImportError(f"{module}: {cls.__name__}.{name} is not a slot of its own; "
                          f"the Struct changed, rebuild after updating the code")
    cdef PyMemberDef* member = (<PyMemberDescrObject*>descriptor).d_member
    if member.type != T_OBJECT_EX:
        raise ImportError(f"{module}: {cls.__name__}.{name} is not an object slot")
    return member.offset


cdef inline void put_slot(object record, Py_ssize_t offset, object value) noexcept:
    """A field of a record just made (its slot empty) set, as msgspec's constructor sets it."""
    Py_INCREF(value)
    (<PyObject**>(<char*><PyObject*>record + offset))[0] = <PyObject*>value


cdef inline PyObject* slot_at(PyObject* record, Py_ssize_t offset) noexcept:
    """A field of a record read from its slot as it is: borrowed, NULL when unset."""
    return (<PyObject**>(<char*>record + offset))[0]


cdef inline PyObject* borrowed_slot(object record, Py_ssize_t offset) except NULL:
    """A field of a record read from its slot, borrowed (alive as long as the record is);
    AttributeError when unset."""
    cdef PyObject* value = slot_at(<PyObject*>record, offset)
    if value == NULL:
        raise AttributeError("a field left unset")
    return value


cdef inline object slot_value(object record, Py_ssize_t offset):
    """A field of a record read from its slot (a new reference); AttributeError when unset."""
    return <object>borrowed_slot(record, offset)
