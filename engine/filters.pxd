# Cython declarations for filters.py (see docs/decisions.md, "Struct fields read as C fields"):
# a line test is a C call that reads the line as a C struct.

cimport cython

from engine.record_fields cimport LineItem
from engine.words cimport str_among


cdef extern from *:
    """
    /* Whether one of `pieces` (a tuple of casefolded str) is in `name` casefolded: 1 or 0; -1
       when `name` is not a compact ASCII str, and the caller folds it as Python does. An ASCII
       name's casefold maps A-Z to a-z and nothing else, so each character is folded as it is
       compared, and a piece's first character is looked for as itself or its capital; no folded
       text holds a capital, a piece that is not ASCII cannot be in ASCII text, and an empty piece
       is in every text. */
    #define PATRON_FOLD(c) (((c) >= 'A' && (c) <= 'Z') ? (char)((c) + ('a' - 'A')) : (c))

    /* Whether folded `wanted` (of `length` >= 1) starts in `text` where `text` holds `c` (its
       first character, as itself or its capital): memchr finds each such place, several bytes
       a step, where a loop over every character cost about 8 instructions each (a purchase's
       every line's name is searched, and most hold the first character nowhere). */
    static inline int patron_folded_from(const char *text, Py_ssize_t size, const char *wanted,
                                         Py_ssize_t length, char c) {
        const char *at = text, *end = text + size - length + 1;  /* the last start, plus one */
        Py_ssize_t j;
        while (at < end && (at = (const char *)memchr(at, c, (size_t)(end - at))) != NULL) {
            for (j = 1; j < length && PATRON_FOLD(at[j]) == wanted[j]; j++)
                ;
            if (j == length)
                return 1;
            at++;
        }
        return 0;
    }

    static inline int patron_ascii_folded_in(PyObject *name, PyObject *pieces) {
        Py_ssize_t size, count, k;
        const char *text;
        if (!PyUnicode_CheckExact(name) || !PyUnicode_IS_COMPACT_ASCII(name))
            return -1;
        size = PyUnicode_GET_LENGTH(name);
        text = (const char *)PyUnicode_DATA(name);
        count = PyTuple_GET_SIZE(pieces);
        for (k = 0; k < count; k++) {
            PyObject *piece = PyTuple_GET_ITEM(pieces, k);
            Py_ssize_t length;
            const char *wanted;
            char first, capital;
            if (!PyUnicode_CheckExact(piece))
                return -1;
            if (!PyUnicode_IS_COMPACT_ASCII(piece))
                continue;
            length = PyUnicode_GET_LENGTH(piece);
            if (length == 0)
                return 1;
            wanted = (const char *)PyUnicode_DATA(piece);
            first = wanted[0];
            if (first >= 'A' && first <= 'Z')
                continue;
            capital = (first >= 'a' && first <= 'z') ? (char)(first - ('a' - 'A')) : first;
            if (length > size)
                continue;
            if (patron_folded_from(text, size, wanted, length, first)
                    || (capital != first && patron_folded_from(text, size, wanted, length, capital)))
                return 1;
        }
        return 0;
    }
    """
    int ascii_folded_in "patron_ascii_folded_in" (object name, tuple pieces)


cdef extern from *:
    """
    /* str_among (words.pxd) of `value` among `listed`: 0 at once when no member is of its length,
       `lengths` having a bit for each member's length (63 for any longer), and every bit when a
       member is not exactly a str (filters.lengths_of), which only str_among compares. Else each
       member is an exact str, and ready (Python 3.11's len(), which lengths_of took of each, readies
       a str), and only its length, kind and bytes are compared. */
    static inline int patron_str_among_sized(PyObject *value, PyObject *listed, unsigned long long lengths) {
        Py_ssize_t length, count, i;
        int kind;
        const char *data;
        if (!PyUnicode_CheckExact(value) || !PATRON_READY(value))
            return -1;
        length = PyUnicode_GET_LENGTH(value);
        if (!((lengths >> (length < 63 ? length : 63)) & 1))
            return 0;
        if (lengths == ~0ULL)
            return patron_str_among(value, listed);
        kind = PyUnicode_KIND(value);
        data = (const char *)PyUnicode_DATA(value);
        count = PyTuple_GET_SIZE(listed);
        for (i = 0; i < count; i++) {
            PyObject *key = PyTuple_GET_ITEM(listed, i);
            if (PyUnicode_GET_LENGTH(key) == length && PyUnicode_KIND(key) == kind
                    && (length == 0 || (*(const char *)PyUnicode_DATA(key) == *data
                                        && memcmp(PyUnicode_DATA(key), data, (size_t)(length * kind)) == 0)))
                return 1;
        }
        return 0;
    }
    """
    int str_among_sized "patron_str_among_sized" (object value, tuple listed, unsigned long long lengths)


cdef bint COMPILED
cdef unsigned long long _ONE, _EVERY_LENGTH


@cython.locals(found=int)
cdef inline bint among(value, frozenset values, tuple listed, unsigned long long lengths)
@cython.locals(bits=cython.ulonglong)
cpdef unsigned long long lengths_of(tuple listed) except? 0


@cython.final
cdef class Matcher:
    cdef readonly frozenset sku, product_id, category  # readonly: the tuples below list them
    cdef readonly tuple skus, product_ids, categories
    cdef readonly unsigned long long sku_lengths, product_id_lengths, category_lengths
    cdef public tuple names
    cdef public object empty
    @cython.locals(name=str, found=int)
    cpdef bint matches(self, LineItem line)


@cython.final
cdef class LineFilter:
    cdef public bint promotional, discounted, no_barcode, black, white, asks, flagged
    cdef public Matcher blacklist, whitelist
    cpdef bint test(self, LineItem line)
    cpdef bint flags_pass(self, LineItem line)
