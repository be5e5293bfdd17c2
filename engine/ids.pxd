# Cython declarations for ids.py: every transaction's ids are checked, so the loop over their
# characters is a C loop (a character read as a C integer, its space test Py_UNICODE_ISSPACE), and
# an ASCII id's a loop over its bytes.

cimport cython

cdef extern from *:
    """
    /* ids.py's id_problem for an ASCII text, -1 for any other: in ASCII the only space that is not
       a control character is ' ' (0x20), and the control characters are below 0x20 and 0x7f.
       0 fine, 1 missing (empty or only spaces), 2 too long, 3 a control character. */
    static inline int patron_ascii_id_problem(PyObject *text, Py_ssize_t most) {
        if (!PyUnicode_IS_ASCII(text))
            return -1;
        Py_ssize_t length = PyUnicode_GET_LENGTH(text), i;
        if (length == 0)
            return 1;
        if (length > most)
            return 2;
        const unsigned char *at = PyUnicode_1BYTE_DATA(text);
        for (i = 0; i < length; i++)
            if (at[i] < 0x20 || at[i] == 0x7f)
                return 3;
        if (at[0] != 0x20)  /* nearly every id: it is not blank */
            return 0;
        for (i = 1; i < length; i++)
            if (at[i] != 0x20)
                return 0;
        return 1;
    }
    """
    int ascii_id_problem "patron_ascii_id_problem" (str text, Py_ssize_t most)

cdef bint COMPILED
cdef Py_ssize_t _LONGEST


@cython.locals(character=cython.Py_UCS4, code=cython.int, blank=cython.bint, answer=cython.int)
cpdef int id_problem(str text) except -1
