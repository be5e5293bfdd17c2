# Cython declarations for scoring.py (see docs/decisions.md, "Typed engine objects"): the book and
# programme typed, so their attributes are read directly; calls within the module are C calls.

cimport cython

from engine.anomaly cimport counted_in_day
from engine.award cimport count_spend, credit_lot, give, judge_points, write_lapsed
from engine.book cimport Book, found
from engine.bounds cimport input_problem, refund_amount, room_to_earn
from engine.earning cimport PurchaseValue, purchase_fits, purchase_growth, value_purchase
from engine.events cimport count_event, is_capped
from engine.history cimport remember_in
from engine.ids cimport id_problem
from engine.programme cimport Programme
from engine.record_fields cimport Member, Transaction, TxnRecord, new_result, txn_record
from engine.refunds cimport refund_problem, score_refund
from engine.spending.coupons cimport issue_on_enroll
from engine.tagging cimport note_purchase
from engine.tier_changes cimport (enter_tier, keep_given, member_in_default_tier, note_default_tier,
                                  tier_after_transaction)
from engine.words cimport str_among

cdef extern from *:
    """
    /* a == b for the kinds' tests: 1 or 0, -1 on an error. Two exact str are equal when they are
       the same object, or of the same length and kind (CPython keeps each str in its narrowest
       kind) and the same bytes; anything else is compared as Python does. */
    static inline int patron_str_equal(PyObject *a, PyObject *b) {
        Py_ssize_t length;
        if (a == b)
            return 1;
    #if PY_VERSION_HEX < 0x030C0000
        if (!PyUnicode_CheckExact(a) || !PyUnicode_CheckExact(b) || !PyUnicode_IS_READY(a) || !PyUnicode_IS_READY(b))
    #else
        if (!PyUnicode_CheckExact(a) || !PyUnicode_CheckExact(b))
    #endif
            return PyObject_RichCompareBool(a, b, Py_EQ);
        length = PyUnicode_GET_LENGTH(a);
        if (length != PyUnicode_GET_LENGTH(b) || PyUnicode_KIND(a) != PyUnicode_KIND(b))
            return 0;
        return memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)(length * PyUnicode_KIND(a))) == 0;
    }
    """
    int str_equal "patron_str_equal" (object a, object b) except -1


cdef extern from *:
    """
    /* (a, b), untracked by the cyclic collector when neither can hold a reference (two str):
       what a collection does to such a tuple it finds, done at once. */
    static inline PyObject *patron_index_key(PyObject *a, PyObject *b) {
        PyObject *key = PyTuple_New(2);
        if (key == NULL)
            return NULL;
        Py_INCREF(a);
        PyTuple_SET_ITEM(key, 0, a);
        Py_INCREF(b);
        PyTuple_SET_ITEM(key, 1, b);
        if (!PyObject_IS_GC(a) && !PyObject_IS_GC(b))
            PyObject_GC_UnTrack(key);
        return key;
    }
    """
    tuple index_key "patron_index_key" (object a, object b)


cdef bint COMPILED
cdef Py_ssize_t _LONGEST_TEXT
cdef dict _ID_REASONS
cdef frozenset _KINDS, _STATUSES, _MONEY
cdef tuple _KINDS_LISTED, _MONEY_LISTED


cdef inline bint _same(kind, word) except -1
@cython.locals(found=int)
cdef inline bint _among(word, frozenset words, tuple listed) except -1
cdef inline tuple _index_key(member_id, txn_id)
cdef inline _result(txn_id, outcome, points, growth, reason)
@cython.locals(txn=Transaction, index=Py_ssize_t)
cpdef Py_ssize_t score_until(Book book, txns, list results, starts_ms, ends_ms, set skip, bint release=*) except -1
cpdef score_transaction(Book book, Transaction txn)
cpdef score_well_formed(Book book, Transaction txn)
cpdef score_dated(Book book, Transaction txn, day)
@cython.locals(original=TxnRecord, written=Py_ssize_t)
cpdef score_refund_transaction(Book book, Transaction txn, day, tuple key)
cpdef _name_refunded(Book book, Py_ssize_t written, str original)
@cython.locals(programme=Programme, member=Member, record=TxnRecord, written=Py_ssize_t)
cpdef _score_earning(Book book, Transaction txn, day, str reason, tuple key)
@cython.locals(today=cython.longlong, lateness=cython.longlong, member=Member)
cpdef date_problem(Book book, long long day, member_id=*)
@cython.locals(txn_id=str, member_id=str, status=str, channel=str, problem=cython.int)
cpdef malformed_reason(Book book, Transaction txn)
cdef str _id_reason(int problem, str missing)
cpdef _kind_problem(Book book, Transaction txn)
cdef bint _seen(Book book, Transaction txn) except -1
cpdef _recharge(Book book, Transaction txn, day)
@cython.locals(member=Member)
cpdef _member_for(Book book, Transaction txn, day)
cpdef _score_kind(Book book, Member member, Transaction txn, day)
@cython.locals(programme=Programme, value=PurchaseValue, record=TxnRecord)
cpdef score_purchase(Book book, Member member, Transaction txn, day)
cpdef _paid_upgrade(Book book, Member member, Transaction txn, day)
@cython.locals(programme=Programme)
cpdef score_event(Book book, Member member, Transaction txn, day)
@cython.locals(programme=Programme)
cpdef score_adjustment(Book book, Member member, Transaction txn, day)
