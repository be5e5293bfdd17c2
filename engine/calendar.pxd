# Cython declarations for calendar.py (see docs/decisions.md, "Typed engine objects").

cimport cython

cpdef month_index(day)


@cython.final
cdef class LocalCalendar:
    cdef public object zone
    cdef public list _spans

    cpdef day_of(self, ms)
