# Cython declarations for coupons.py (see docs/decisions.md, "Typed engine objects"): issuing an
# instance (an enrollment's welcome coupon, an upgrade's, a recharge's) is C calls on a typed book
# and member, not Python calls through the module's globals.

from engine.book cimport Book
from engine.record_fields cimport Member
from engine.spending.coupon_stock cimport take_from

cimport cython

cdef dict _ISSUED_ON
cdef str _CODE_OPEN
cdef object _printable


cpdef tuple _validity(coupon, issued)
@cython.locals(known=tuple)
cpdef tuple _dates(coupon, day)
@cython.locals(after=str)
cpdef str _issued_detail(str code, coupon, tuple dates)
cpdef _given(Member member, coupon)
cpdef str _refusal(Book book, Member member, coupon, given)
@cython.locals(dates=tuple)
cpdef str _give(Book book, Member member, coupon, day, cause, ref, given)
cpdef str issue(Book book, Member member, coupon, day, cause, ref)
cpdef issue_on_enroll(Book book, Member member, day, cause, ref)
cpdef issue_on_upgrade(Book book, Member member, tier, day, cause, ref)
