/*
 * Optional accelerator for the one loop in the protocol core that pure Python cannot make fast:
 * XOR-ing a payload with its 4-byte masking key (RFC 6455 section 5.3). Everything else in the core
 * is Python; wsdoctor.protocol._mask falls back to a big-integer XOR when this module is absent, and
 * both are run by the same tests.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Below this size the XOR takes less time than releasing and taking back the GIL. */
#define RELEASE_GIL_ABOVE (64 * 1024)

static PyObject *
apply_mask(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, mask;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply_mask() takes exactly 2 arguments (data, mask)");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &mask, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (mask.len != 4) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&mask);
        PyErr_SetString(PyExc_ValueError, "mask must contain 4 bytes");
        return NULL;
    }
    Py_ssize_t n = data.len;
    PyObject *result = PyBytes_FromStringAndSize(NULL, n);
    if (result != NULL) {
        const unsigned char *in = (const unsigned char *)data.buf;
        const unsigned char *m = (const unsigned char *)mask.buf;
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
        Py_ssize_t i = 0;
        PyThreadState *state = n > RELEASE_GIL_ABOVE ? PyEval_SaveThread() : NULL;
        if (n >= 8) {
            uint64_t m64;
            unsigned char mm[8] = {m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]};
            memcpy(&m64, mm, 8);
            for (; i + 8 <= n; i += 8) {
                uint64_t w;
                memcpy(&w, in + i, 8);
                w ^= m64;
                memcpy(out + i, &w, 8);
            }
        }
        for (; i < n; i++) {
            out[i] = in[i] ^ m[i & 3];
        }
        if (state != NULL) {
            PyEval_RestoreThread(state);
        }
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&mask);
    return result;
}

static PyMethodDef methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL, "XOR data with a repeating 4-byte mask; returns bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "wsdoctor.protocol._speedups", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
