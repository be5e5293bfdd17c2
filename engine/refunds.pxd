# Cython declarations for refunds.py (see docs/decisions.md, "Typed engine objects"): scoring calls
# a refund's functions as C functions, and they call the award, bounds and earning modules' as theirs.

cimport cython

from engine.award cimport count_spend, lapsed_part, take_back
from engine.book cimport Book
from engine.bounds cimport refund_amount, room_to_earn
from engine.earning cimport PurchaseValue, purchase_growth, value_purchase
from engine.programme cimport Programme
from engine.record_fields cimport Member, Transaction, TxnRecord, txn_record
from engine.tier_changes cimport tier_after_transaction


cpdef str refund_problem(Transaction txn, TxnRecord original)
@cython.locals(original=TxnRecord)
cpdef score_refund(Book book, Member member, Transaction txn, day)
@cython.locals(programme=Programme)
cpdef _uncarry(Book book, Member member, TxnRecord original, eligible, before, after)
@cython.locals(programme=Programme, value=PurchaseValue)
cpdef _refund_unknown(Book book, Member member, Transaction txn, day)
