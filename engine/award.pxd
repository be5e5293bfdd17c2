# Cython declarations for award.py (see docs/decisions.md, "Typed engine objects").

cimport cython

from engine.balance cimport add_points, cancel_held, hold_points, take_points
from engine.book cimport Book
from engine.programme cimport Programme
from engine.record_fields cimport Member, TxnRecord
from engine.tiers cimport TierLadder


cpdef judge_points(Book book, Member member, day, points, ref)
cpdef verdict_points(verdict, points)
@cython.locals(programme=Programme)
cpdef give(Book book, Member member, day, ref, kind, points, growth, held=*, why=*)
@cython.locals(programme=Programme)
cpdef take_back(Book book, Member member, day, ref, kind, points, growth, original=*, original_day=*, since=*,
                lapsed=*)
cpdef credit_lot(Member member, points, expires, today)
cpdef write_lapsed(Book book, Member member, cause, ref, points)
cpdef lapsed_part(TxnRecord original, points)
@cython.locals(ladder=TierLadder)
cpdef count_earned(Book book, Member member, day, points, growth, since=*)
cpdef _best_since_again(Member member)
@cython.locals(ladder=TierLadder)
cpdef count_spend(Book book, Member member, day, eligible, txn_id, since=*)
