# Cython declarations for words.py: C helpers for str, for the compiled modules that cimport them
# (filters.pxd, scoring.pxd); each such module gets this C code of its own.

cdef extern from *:
    """
    #ifndef PATRON_WORDS
    #define PATRON_WORDS
    /* Every str is ready from Python 3.12, where the macro is deprecated (3.14 warns). */
    #if PY_VERSION_HEX < 0x030C0000
    #define PATRON_READY(s) PyUnicode_IS_READY(s)
    #else
    #define PATRON_READY(s) 1
    #endif
    /* Whether `value` is one of `values` (a tuple of a set's members): 1 or 0, by comparing it
       with each, without hashing it; -1 when `value` or a member is not a ready exact str, or
       there are more than 16 members (the transaction kinds are 9), and the caller asks the set.
       For two exact str, the set's equality is the same code points, and equal str have the same length and kind (CPython
       keeps each str in its narrowest kind). */
    static inline int patron_str_among(PyObject *value, PyObject *values) {
        Py_ssize_t count, length, i;
        int kind;
        if (values == Py_None || !PyUnicode_CheckExact(value) || !PATRON_READY(value))
            return -1;
        count = PyTuple_GET_SIZE(values);
        if (count > 16)
            return -1;
        length = PyUnicode_GET_LENGTH(value);
        kind = PyUnicode_KIND(value);
        for (i = 0; i < count; i++) {
            PyObject *key = PyTuple_GET_ITEM(values, i);
            if (key == value)
                return 1;
            if (!PyUnicode_CheckExact(key) || !PATRON_READY(key))
                return -1;
            if (PyUnicode_GET_LENGTH(key) != length || PyUnicode_KIND(key) != kind)
                continue;
            if (length == 0 || (*(const char *)PyUnicode_DATA(key) == *(const char *)PyUnicode_DATA(value)
                    && memcmp(PyUnicode_DATA(key), PyUnicode_DATA(value), (size_t)(length * kind)) == 0))
                return 1;
        }
        return 0;
    }
    #endif
    """
    int str_among "patron_str_among" (object value, tuple values)
