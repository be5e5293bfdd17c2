# Cython declarations for calendar.py (see docs/decisions.md, "Typed engine objects").

cpdef month_index(day)


cdef class LocalCalendar:
    cdef public object zone
    cdef public list _spans

    cpdef day_of(self, ms)
