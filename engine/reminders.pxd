# Cython declarations for reminders.py (see docs/decisions.md, "Typed engine objects" and "Midnight
# compiled"): every midnight visit asks for a member's next reminder; the member and its lots typed,
# and midnight calls these as C functions.

cimport cython

from engine.book cimport Book
from engine.record_fields cimport Lot, Member


cpdef _points_key(expires)
cpdef _coupon_key(code)
cpdef _birthday_key(birthday)
@cython.locals(lot=Lot)
cpdef _live(Member member, key, run)
@cython.locals(lot=Lot)
cpdef remind(Book book, Member member, run)
@cython.locals(lot=Lot)
cpdef next_reminder(Book book, Member member, after)
