# The msgspec Structs scoring reads on every transaction, declared to Cython as the C structs they
# are, so that a reference typed with one of these classes reads a field as a struct member instead
# of through Python's attribute protocol (docs/decisions.md, "Struct fields read as C fields").
#
# A Struct instance is PyObject_HEAD and then one PyObject* per field, in alphabetical order of the
# field names (CPython lays out a class's slots sorted). Each list below is that order; a field added,
# removed or renamed in engine/members.py or engine/transactions.py changes it, and then
# engine/__init__.py runs the whole engine from its .py files and says why (record_fields.py checks
# each field's offset here against its member descriptor, and each class's size, at import).
#
# Every field is `object`: msgspec does not check types when a Struct is built in Python, so no
# narrower C type is certain. Only gc=False, non-frozen Structs are declared: writing a field
# directly is then what msgspec's own setattr does (no GC tracking to keep up). A typed argument
# accepts None; the engine is compiled with `nonecheck`, so reading a field of a typed None raises
# AttributeError as the .py does. A field deleted with `del` (a NULL slot) would crash the process.

cdef extern from *:
    """
    #include <string.h>
    #include "structmember.h"
    #define PATRON_SLOT(T, f) PyObject *f;
    #define PATRON_OFFSET(T, f) {#f, offsetof(T, f)},
    typedef struct {const char *name; Py_ssize_t offset;} patron_field;

    #define PATRON_HELD(F, T) F(T, amount) F(T, expires) F(T, release) F(T, txn_id)
    #define PATRON_LINEITEM(F, T) F(T, category) F(T, member_discounted) F(T, name) \
        F(T, paid_minor) F(T, product_id) F(T, promotional) F(T, quantity) F(T, sku)
    #define PATRON_LOT(F, T) F(T, amount) F(T, expires)
    #define PATRON_MEMBER(F, T) F(T, abnormal) F(T, bonus_value) F(T, bonuses_used) \
        F(T, carry_minor) F(T, cleared_days) F(T, coupons) F(T, day_points) F(T, debt) F(T, enrolled) F(T, events) \
        F(T, flag_days) F(T, frozen_when_lost) F(T, given_tier) F(T, given_until) F(T, growth) F(T, held) F(T, last_purchase) F(T, ledger_seq) F(T, lots) \
        F(T, manual_tags) F(T, member_id) F(T, midnight_done) F(T, next_tier) F(T, pending) \
        F(T, points) F(T, profile) F(T, purchases) F(T, reminded) F(T, since_began) F(T, since_growth) \
        F(T, since_points) F(T, since_recharge) F(T, since_single) F(T, since_spend) F(T, singles) \
        F(T, status) F(T, stored_value) F(T, tag_check) F(T, tags) F(T, tier) F(T, tier_since) \
        F(T, tier_until) F(T, total_points) F(T, total_recharge) F(T, total_spend) F(T, touched) \
        F(T, unrecovered) F(T, windows)
    #define PATRON_PROFILE(F, T) F(T, attributes) F(T, birthday) F(T, campaign) F(T, channel) \
        F(T, content) F(T, dates) F(T, source)
    #define PATRON_TRANSACTION(F, T) F(T, amount_minor) F(T, channel) F(T, coupon_code) \
        F(T, coupon_id) F(T, event_type) F(T, kind) F(T, lines) F(T, member_id) F(T, note) \
        F(T, occurred_at_ms) F(T, points) F(T, refund_of) F(T, status) F(T, store_id) F(T, txn_id)
    #define PATRON_TXNRECORD(F, T) F(T, carry_moved) F(T, day) F(T, eligible_minor) F(T, growth) F(T, kind) F(T, lapsed_points) \
        F(T, member_id) F(T, paid_minor) F(T, points) F(T, reason) F(T, refunded_minor) \
        F(T, reversed_eligible) F(T, reversed_growth) F(T, reversed_points) F(T, rule_version) \
        F(T, since_began) F(T, spent)
    #define PATRON_TXNRESULT(F, T) F(T, coupon_code) F(T, growth) F(T, outcome) F(T, points) F(T, reason) \
        F(T, txn_id) F(T, value_minor)

    #if defined(__GNUC__)
    #define PATRON_UNUSED __attribute__((unused))
    #else
    #define PATRON_UNUSED
    #endif
    #define PATRON_RECORD(NAME, LIST) \
        typedef struct {PyObject_HEAD LIST(PATRON_SLOT, patron_##NAME)} patron_##NAME; \
        static const patron_field patron_##NAME##_fields[] = {LIST(PATRON_OFFSET, patron_##NAME)};
    PATRON_RECORD(Held, PATRON_HELD)
    PATRON_RECORD(LineItem, PATRON_LINEITEM)
    PATRON_RECORD(Lot, PATRON_LOT)
    PATRON_RECORD(Member, PATRON_MEMBER)
    PATRON_RECORD(Profile, PATRON_PROFILE)
    PATRON_RECORD(Transaction, PATRON_TRANSACTION)
    PATRON_RECORD(TxnRecord, PATRON_TXNRECORD)
    PATRON_RECORD(TxnResult, PATRON_TXNRESULT)

    typedef struct {const char *name; Py_ssize_t size; const patron_field *fields; Py_ssize_t count;} patron_record;
    #define PATRON_ENTRY(NAME) {#NAME, sizeof(patron_##NAME), patron_##NAME##_fields, \
                                sizeof(patron_##NAME##_fields) / sizeof(patron_field)}
    static const patron_record patron_records[] PATRON_UNUSED = {
        PATRON_ENTRY(Held), PATRON_ENTRY(LineItem), PATRON_ENTRY(Lot), PATRON_ENTRY(Member),
        PATRON_ENTRY(Profile), PATRON_ENTRY(Transaction), PATRON_ENTRY(TxnRecord),
        PATRON_ENTRY(TxnResult)};

    /* Why the class `type` is not laid out as the struct compiled here for `name`, or "". */
    static PyObject *patron_layout_problem(const char *name, PyObject *type) PATRON_UNUSED;
    static PyObject *patron_layout_problem(const char *name, PyObject *type) {
        PyTypeObject *t = (PyTypeObject *)type;
        const patron_record *record = NULL;
        for (size_t i = 0; i < sizeof(patron_records) / sizeof(patron_record); i++)
            if (strcmp(patron_records[i].name, name) == 0)
                record = &patron_records[i];
        if (record == NULL)
            return PyUnicode_FromString("no layout compiled");
        if (!PyType_Check(type))
            return PyUnicode_FromString("not a class");
        if (t->tp_basicsize != record->size || t->tp_itemsize != 0)
            return PyUnicode_FromFormat("%zd bytes an instance, compiled for %zd", t->tp_basicsize, record->size);
        if (PyType_HasFeature(t, Py_TPFLAGS_HAVE_GC))
            return PyUnicode_FromString("tracked by the cyclic collector (gc=True)");
        for (Py_ssize_t i = 0; i < record->count; i++) {  /* names first: a rename says which */
            PyObject *found = PyDict_GetItemString(t->tp_dict, record->fields[i].name);  /* borrowed */
            if (found == NULL || !Py_IS_TYPE(found, &PyMemberDescr_Type))
                return PyUnicode_FromFormat("no field %s", record->fields[i].name);
        }
        for (Py_ssize_t i = 0; i < record->count; i++) {
            const patron_field *field = &record->fields[i];
            PyObject *found = PyDict_GetItemString(t->tp_dict, field->name);
            PyMemberDef *member = ((PyMemberDescrObject *)found)->d_member;
            if (member->offset != field->offset || member->type != T_OBJECT_EX)
                return PyUnicode_FromFormat("field %s at byte %zd, compiled for %zd", field->name,
                                            member->offset, field->offset);
        }
        return PyUnicode_FromString("");
    }

    /* A TxnResult of these fields, made as msgspec's own constructor makes one (its memory, the
       class's reference, every field set) without parsing arguments or filling in defaults: a
       transaction's result, about 300 instructions less. `type` is engine.transactions.TxnResult,
       laid out as patron_TxnResult (checked at import); msgspec frees it as any of its own. */
    static PyObject *patron_new_result(PyObject *type, PyObject *txn_id, PyObject *outcome, PyObject *points,
                                       PyObject *growth, PyObject *reason, PyObject *value_minor,
                                       PyObject *coupon_code) PATRON_UNUSED;
    static PyObject *patron_new_result(PyObject *type, PyObject *txn_id, PyObject *outcome, PyObject *points,
                                       PyObject *growth, PyObject *reason, PyObject *value_minor,
                                       PyObject *coupon_code) {
        patron_TxnResult *result = (patron_TxnResult *)PyObject_Malloc(sizeof(patron_TxnResult));
        if (result == NULL)
            return PyErr_NoMemory();
        PyObject_Init((PyObject *)result, (PyTypeObject *)type);
        Py_INCREF(txn_id); result->txn_id = txn_id;
        Py_INCREF(outcome); result->outcome = outcome;
        Py_INCREF(points); result->points = points;
        Py_INCREF(growth); result->growth = growth;
        Py_INCREF(reason); result->reason = reason;
        Py_INCREF(value_minor); result->value_minor = value_minor;
        Py_INCREF(coupon_code); result->coupon_code = coupon_code;
        return (PyObject *)result;
    }

    /* A TxnRecord made as patron_new_result makes a TxnResult: the fields given, and the others
       TxnRecord's defaults (engine/transactions.py; the test of txn_record compares every field
       with msgspec's own constructor's): the index record of nearly every accepted transaction,
       whose constructor parsed 9 arguments and filled in 8 defaults. */
    static PyObject *patron_new_record(PyObject *type, PyObject *member_id, PyObject *kind, PyObject *day,
                                       PyObject *points, PyObject *growth, PyObject *reason,
                                       PyObject *rule_version, PyObject *paid_minor,
                                       PyObject *eligible_minor) PATRON_UNUSED;
    static PyObject *patron_new_record(PyObject *type, PyObject *member_id, PyObject *kind, PyObject *day,
                                       PyObject *points, PyObject *growth, PyObject *reason,
                                       PyObject *rule_version, PyObject *paid_minor,
                                       PyObject *eligible_minor) {
        static PyObject *zero = NULL, *minus_one = NULL;  /* CPython's own small ints, a reference kept */
        patron_TxnRecord *record;
        if (minus_one == NULL) {
            if ((zero = PyLong_FromLong(0)) == NULL || (minus_one = PyLong_FromLong(-1)) == NULL)
                return NULL;
        }
        record = (patron_TxnRecord *)PyObject_Malloc(sizeof(patron_TxnRecord));
        if (record == NULL)
            return PyErr_NoMemory();
        PyObject_Init((PyObject *)record, (PyTypeObject *)type);
        Py_INCREF(member_id); record->member_id = member_id;
        Py_INCREF(kind); record->kind = kind;
        Py_INCREF(day); record->day = day;
        Py_INCREF(points); record->points = points;
        Py_INCREF(growth); record->growth = growth;
        Py_INCREF(reason); record->reason = reason;
        Py_INCREF(rule_version); record->rule_version = rule_version;
        Py_INCREF(paid_minor); record->paid_minor = paid_minor;
        Py_INCREF(eligible_minor); record->eligible_minor = eligible_minor;
        Py_INCREF(zero); record->refunded_minor = zero;
        Py_INCREF(zero); record->reversed_points = zero;
        Py_INCREF(zero); record->reversed_growth = zero;
        Py_INCREF(zero); record->reversed_eligible = zero;
        Py_INCREF(Py_None); record->spent = Py_None;
        Py_INCREF(minus_one); record->since_began = minus_one;
        Py_INCREF(zero); record->lapsed_points = zero;
        Py_INCREF(Py_None); record->carry_moved = Py_None;
        return (PyObject *)record;
    }
    """
    object layout_problem "patron_layout_problem" (const char *name, object record)
    object new_result "patron_new_result" (object type, object txn_id, object outcome, object points, object growth,
                                           object reason, object value_minor, object coupon_code)
    object new_record "patron_new_record" (object type, object member_id, object kind, object day, object points,
                                           object growth, object reason, object rule_version, object paid_minor,
                                           object eligible_minor)

    ctypedef class engine.members.Held [object patron_Held, check_size error]:
        cdef object amount, expires, release, txn_id

    ctypedef class engine.transactions.LineItem [object patron_LineItem, check_size error]:
        cdef object category, member_discounted, name, paid_minor, product_id
        cdef object promotional, quantity, sku

    ctypedef class engine.members.Lot [object patron_Lot, check_size error]:
        cdef object amount, expires

    ctypedef class engine.members.Member [object patron_Member, check_size error]:
        cdef object abnormal, bonus_value, bonuses_used, carry_minor, cleared_days, coupons
        cdef object day_points, debt, enrolled, events, flag_days, frozen_when_lost
        cdef object given_tier, given_until, growth, held
        cdef object last_purchase, ledger_seq, lots, manual_tags, member_id
        cdef object midnight_done, next_tier, pending, points, profile, purchases
        cdef object reminded, since_began, since_growth, since_points, since_recharge
        cdef object since_single, since_spend, singles, status, stored_value
        cdef object tag_check, tags, tier, tier_since, tier_until, total_points
        cdef object total_recharge, total_spend, touched, unrecovered, windows

    ctypedef class engine.members.Profile [object patron_Profile, check_size error]:
        cdef object attributes, birthday, campaign, channel, content, dates, source

    ctypedef class engine.transactions.Transaction [object patron_Transaction, check_size error]:
        cdef object amount_minor, channel, coupon_code, coupon_id, event_type, kind
        cdef object lines, member_id, note, occurred_at_ms, points, refund_of, status
        cdef object store_id, txn_id

    ctypedef class engine.transactions.TxnRecord [object patron_TxnRecord, check_size error]:
        cdef object carry_moved, day, eligible_minor, growth, kind, lapsed_points, member_id, paid_minor
        cdef object points, reason, refunded_minor, reversed_eligible, reversed_growth
        cdef object reversed_points, rule_version, since_began, spent

    ctypedef class engine.transactions.TxnResult [object patron_TxnResult, check_size error]:
        cdef object coupon_code, growth, outcome, points, reason, txn_id, value_minor


cdef bint COMPILED
cpdef TxnRecord txn_record(member_id, kind, day, points, growth, reason, rule_version, paid_minor=*, eligible_minor=*)
