# Cython declarations for tier_changes.py (see docs/decisions.md, "Typed engine objects").

cimport cython

from engine.book cimport Book
from engine.record_fields cimport Member
from engine.tiers cimport TierLadder, TierRule


@cython.locals(ladder=TierLadder, rule=TierRule)
cpdef enter_tier(Book book, Member member, target, day, cause, ref, note=*, given=*, since=*, judged=*, used=*)
cpdef keep_given(Book book, Member member, target, day, cause, ref, note)
cpdef note_default_tier(Book book, Member member, day, cause, ref)
cpdef given_floor(Member member, day)
cpdef kept_floor(TierLadder ladder, Member member, day)
cpdef member_in_default_tier(Book book, member_id, channel, day)
@cython.locals(ladder=TierLadder, rule=TierRule)
cpdef tier_after_transaction(Book book, Member member, day, ref, lowered=*, cause=*)
cpdef use_up(list single)
