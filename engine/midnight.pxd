# Cython declarations for midnight.py (see docs/decisions.md, "Typed engine objects" and "Midnight
# compiled"): the book, the member and its lots and held points typed, so a midnight visit reads
# their fields as C struct members; calls within the module and to balance, tier_changes and reminders are C calls.

cimport cython

from engine.balance cimport add_points
from engine.book cimport Book
from engine.record_fields cimport Held, Lot, Member
from engine.reminders cimport next_reminder, remind
from engine.tier_changes cimport enter_tier, given_floor, kept_floor, use_up
from engine.tiers cimport TierLadder, TierRule


@cython.final
cdef class Night:
    cdef public object run, ref, periodic, new_year


cpdef night_of(Book book, run)
cpdef periodic_due(Book book, run)
cpdef is_due(Book book, Member member, run, everyone=*)
@cython.locals(held=Held)
cpdef _held_due(Member member, run)
cpdef run_midnight(Book book, run)
cpdef visitors(Book book, run)
@cython.locals(night=Night, member=Member, rows=list)
cpdef visit(Book book, member_ids, run, planned=*)
@cython.locals(held=Held)
cpdef next_due(Member member)
cpdef schedule(Book book, Member member)
cpdef wake_day(Book book, Member member)
cpdef run_member_midnight(Book book, Member member, Night night)
@cython.locals(held=Held)
cpdef _release_pending(Book book, Member member, run, ref)
@cython.locals(lot=Lot, held=Held)
cpdef _expire(Book book, Member member, Night night)
@cython.locals(ladder=TierLadder)
cpdef _upgrades_due(Book book, Member member, run, ref)
@cython.locals(ladder=TierLadder, rule=TierRule)
cpdef _validity_end(Book book, Member member, run, ref)
@cython.locals(rule=TierRule)
cpdef _reevaluate(TierLadder ladder, Member member, run)
@cython.locals(ladder=TierLadder)
cpdef _periodic(Book book, Member member, run, ref)
cpdef _anomaly_rows(Book book, Member member, run)
