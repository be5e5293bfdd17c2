# Cython declarations for filters.py (see docs/decisions.md, "Struct fields read as C fields"):
# a line test is a C call that reads the line as a C struct.

cimport cython

from engine.record_fields cimport LineItem


cdef extern from *:
    """
    /* Whether one of `pieces` (a tuple of casefolded str) is in `name` casefolded: 1 or 0; -1
       when `name` is not a compact ASCII str or is longer than the buffer, and the caller folds
       it as Python does. An ASCII name's casefold maps A-Z to a-z and nothing else; a piece that
       is not ASCII cannot be in ASCII text; an empty piece is in every text. */
    static int patron_ascii_folded_in(PyObject *name, PyObject *pieces) {
        char folded[256];
        Py_ssize_t size, count, i, j, k;
        const char *text;
        if (!PyUnicode_CheckExact(name) || !PyUnicode_IS_COMPACT_ASCII(name))
            return -1;
        size = PyUnicode_GET_LENGTH(name);
        if (size > (Py_ssize_t)sizeof(folded))
            return -1;
        text = (const char *)PyUnicode_DATA(name);
        for (i = 0; i < size; i++)
            folded[i] = (text[i] >= 'A' && text[i] <= 'Z') ? (char)(text[i] + ('a' - 'A')) : text[i];
        count = PyTuple_GET_SIZE(pieces);
        for (k = 0; k < count; k++) {
            PyObject *piece = PyTuple_GET_ITEM(pieces, k);
            Py_ssize_t length;
            const char *wanted;
            if (!PyUnicode_CheckExact(piece))
                return -1;
            if (!PyUnicode_IS_COMPACT_ASCII(piece))
                continue;
            length = PyUnicode_GET_LENGTH(piece);
            if (length == 0)
                return 1;
            wanted = (const char *)PyUnicode_DATA(piece);
            for (i = 0; i + length <= size; i++) {
                if (folded[i] != wanted[0])
                    continue;
                for (j = 1; j < length && folded[i + j] == wanted[j]; j++)
                    ;
                if (j == length)
                    return 1;
            }
        }
        return 0;
    }
    """
    int ascii_folded_in "patron_ascii_folded_in" (object name, tuple pieces)


cdef class Matcher:
    cdef public frozenset sku, product_id, category
    cdef public tuple names
    cdef public object empty
    @cython.locals(name=str, found=int)
    cpdef matches(self, LineItem line)


cdef class LineFilter:
    cdef public object promotional, discounted, no_barcode, black, white, asks
    cdef public Matcher blacklist, whitelist
    cpdef test(self, LineItem line)
