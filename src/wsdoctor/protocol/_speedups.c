/*
 * Optional accelerator for the byte work of the protocol core: XOR-ing a payload with its 4-byte
 * masking key (RFC 6455 section 5.3), the one loop pure Python cannot make fast, and building or
 * taking apart a frame's bytes with one allocation instead of several. wsdoctor.protocol._mask
 * has a pure-Python version of each, used when this module is absent; both are run by the same
 * tests.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#ifndef _WIN32
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#endif

/* Below this size the XOR takes less time than releasing and taking back the GIL. */
#define RELEASE_GIL_ABOVE (64 * 1024)

#if defined(__GNUC__) || defined(__clang__)
/* 32 bytes as one value: the compiler turns the XOR into vector instructions on every target. */
typedef uint64_t xor_block __attribute__((vector_size(32)));
#define XOR_BLOCK 32
#endif

/*
 * On x86-64 Linux with glibc (which resolves the choice once, at load time), the XOR is also
 * compiled for AVX2 and that version runs where the processor has it: 32 bytes per instruction
 * instead of the baseline's 16, which brings unmasking from 2.4 times a copy's time to a copy's.
 */
#if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && \
    ((defined(__clang__) && __clang_major__ >= 14) || (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 6))
#define XOR_VERSIONS __attribute__((target_clones("avx2", "default")))
#else
#define XOR_VERSIONS
#endif

/*
 * XOR n bytes from in to out (which may be the same) with the 4-byte key m: 128 bytes per
 * round in vector blocks where the compiler has them, then eight bytes, then one.
 */
XOR_VERSIONS
static void
xor_mask(const unsigned char *in, unsigned char *out, Py_ssize_t n, const unsigned char *m)
{
    Py_ssize_t i = 0;
    uint64_t m64;
    unsigned char mm[8] = {m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]};
    memcpy(&m64, mm, 8);
#ifdef XOR_BLOCK
    if (n >= 4 * XOR_BLOCK) {
        const xor_block key = {m64, m64, m64, m64};
        for (; i + 4 * XOR_BLOCK <= n; i += 4 * XOR_BLOCK) {
            xor_block w0, w1, w2, w3;
            memcpy(&w0, in + i, XOR_BLOCK);
            memcpy(&w1, in + i + XOR_BLOCK, XOR_BLOCK);
            memcpy(&w2, in + i + 2 * XOR_BLOCK, XOR_BLOCK);
            memcpy(&w3, in + i + 3 * XOR_BLOCK, XOR_BLOCK);
            w0 ^= key;
            w1 ^= key;
            w2 ^= key;
            w3 ^= key;
            memcpy(out + i, &w0, XOR_BLOCK);
            memcpy(out + i + XOR_BLOCK, &w1, XOR_BLOCK);
            memcpy(out + i + 2 * XOR_BLOCK, &w2, XOR_BLOCK);
            memcpy(out + i + 3 * XOR_BLOCK, &w3, XOR_BLOCK);
        }
    }
#endif
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, in + i, 8);
        w ^= m64;
        memcpy(out + i, &w, 8);
    }
    for (; i < n; i++) {
        out[i] = in[i] ^ m[i & 3];
    }
}

/* xor_mask() for a payload of any size: above RELEASE_GIL_ABOVE without the GIL, so that other
 * threads run meanwhile. */
static void
unmask(const unsigned char *in, unsigned char *out, Py_ssize_t n, const unsigned char *m)
{
    if (n > RELEASE_GIL_ABOVE) {
        Py_BEGIN_ALLOW_THREADS
        xor_mask(in, out, n, m);
        Py_END_ALLOW_THREADS
    } else {
        xor_mask(in, out, n, m);
    }
}

/*
 * The (buffer, start, end) arguments in args[0..2]: the buffer, and the range checked to lie in
 * it with at least `before` bytes ahead of start. On failure an exception is set and nothing is
 * held; on success the caller releases data.
 */
static int
buffer_range(PyObject *const *args, Py_ssize_t before, const char *name, Py_buffer *data, Py_ssize_t *start,
             Py_ssize_t *end)
{
    *start = PyLong_AsSsize_t(args[1]);
    if (*start == -1 && PyErr_Occurred()) {
        return -1;
    }
    *end = PyLong_AsSsize_t(args[2]);
    if (*end == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (PyObject_GetBuffer(args[0], data, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (*start < before || *end < *start || *end > data->len) {
        PyBuffer_Release(data);
        PyErr_Format(PyExc_ValueError, "%s(): start and end are outside the buffer", name);
        return -1;
    }
    return 0;
}

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
        unmask(in, (unsigned char *)PyBytes_AS_STRING(result), n, m);
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&mask);
    return result;
}

/*
 * payload_at(buffer, start, end, masked): the payload buffer[start:end] as bytes, unmasked with
 * the key in the four bytes before it when masked is true. One allocation, where slicing the
 * payload and the key out of a read buffer and unmasking took five.
 */
static PyObject *
payload_at(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "payload_at() takes exactly 4 arguments (buffer, start, end, masked)");
        return NULL;
    }
    int masked = PyObject_IsTrue(args[3]);
    if (masked < 0) {
        return NULL;
    }
    Py_buffer data;
    Py_ssize_t start, end;
    if (buffer_range(args, masked ? 4 : 0, "payload_at", &data, &start, &end) < 0) {
        return NULL;
    }
    Py_ssize_t n = end - start;
    const unsigned char *in = (const unsigned char *)data.buf + start;
    PyObject *result = PyBytes_FromStringAndSize(masked ? NULL : (const char *)in, n);
    if (result != NULL && masked) {
        unsigned char key[4];
        memcpy(key, in - 4, 4);
        unmask(in, (unsigned char *)PyBytes_AS_STRING(result), n, key);
    }
    PyBuffer_Release(&data);
    return result;
}

/* The header's length forms (RFC 6455 5.2): n in 7, 16 or 64 bits. Returns the header's size. */
static Py_ssize_t
write_header(unsigned char *out, unsigned char b0, unsigned char mask_bit, Py_ssize_t n)
{
    out[0] = b0;
    if (n < 126) {
        out[1] = mask_bit | (unsigned char)n;
        return 2;
    }
    if (n < 65536) {
        out[1] = mask_bit | 126;
        out[2] = (unsigned char)(n >> 8);
        out[3] = (unsigned char)n;
        return 4;
    }
    uint64_t len = (uint64_t)n;
    out[1] = mask_bit | 127;
    for (int i = 0; i < 8; i++) {
        out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
    }
    return 10;
}

/*
 * frame(first_byte, payload, key): one whole frame as bytes, header and payload in one
 * allocation; masked with the 4-byte key (a client's frame) unless key is None.
 */
static PyObject *
frame(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "frame() takes exactly 3 arguments (first_byte, payload, key)");
        return NULL;
    }
    long b0 = PyLong_AsLong(args[0]);
    if (b0 == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (b0 < 0 || b0 > 255) {
        PyErr_SetString(PyExc_ValueError, "frame(): the first byte must be 0-255");
        return NULL;
    }
    Py_buffer data, key;
    int masked = args[2] != Py_None;
    if (PyObject_GetBuffer(args[1], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (masked) {
        if (PyObject_GetBuffer(args[2], &key, PyBUF_SIMPLE) < 0) {
            PyBuffer_Release(&data);
            return NULL;
        }
        if (key.len != 4) {
            PyBuffer_Release(&data);
            PyBuffer_Release(&key);
            PyErr_SetString(PyExc_ValueError, "mask must contain 4 bytes");
            return NULL;
        }
    }
    Py_ssize_t n = data.len;
    unsigned char head[10];
    Py_ssize_t hlen = write_header(head, (unsigned char)b0, masked ? 0x80 : 0, n);
    PyObject *result = PyBytes_FromStringAndSize(NULL, hlen + (masked ? 4 : 0) + n);
    if (result != NULL) {
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
        memcpy(out, head, hlen);
        out += hlen;
        if (masked) {
            memcpy(out, key.buf, 4);
            unmask((const unsigned char *)data.buf, out + 4, n, (const unsigned char *)key.buf);
        } else {
            memcpy(out, data.buf, n);
        }
    }
    PyBuffer_Release(&data);
    if (masked) {
        PyBuffer_Release(&key);
    }
    return result;
}

/* header(first_byte, length): the 2, 4 or 10 bytes of an unmasked frame's header. */
static PyObject *
header(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "header() takes exactly 2 arguments (first_byte, length)");
        return NULL;
    }
    long b0 = PyLong_AsLong(args[0]);
    if (b0 == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(args[1]);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (b0 < 0 || b0 > 255 || n < 0) {
        PyErr_SetString(PyExc_ValueError, "header(): the first byte must be 0-255 and the length not negative");
        return NULL;
    }
    unsigned char out[10];
    Py_ssize_t hlen = write_header(out, (unsigned char)b0, 0, n);
    return PyBytes_FromStringAndSize((const char *)out, hlen);
}

/*
 * PayloadSink(length, key): a large frame's payload received straight into the bytes object that
 * will be delivered. The bytes is allocated uninitialised (so its untouched pages cost nothing
 * until data arrives) and filled either by copying from a read buffer (write) or by the transport
 * reading into view() and then calling filled(n); either way each piece is unmasked in place as it
 * lands, while it is still in the cache. take() hands the bytes out once every byte is there. This
 * saves a copy of the payload and an allocation per read against assembling it from pieces.
 *
 * The bytes is mutated only before take() returns it, while nothing else refers to it; a buffer
 * exported by view() holds a reference to the sink, and so to the bytes, until it is released.
 */
typedef struct {
    PyObject_HEAD
    PyObject *payload;
    Py_ssize_t length;
    Py_ssize_t filled;
    int masked;
    int taken;
    unsigned char key[4];
} PayloadSink;

/*
 * n bytes from `in` become the payload's next bytes, unmasked with the key turned to where they
 * land: copied and unmasked in one pass, or unmasked in place when `in` is where they land (read
 * there through view()).
 */
static void
sink_land(PayloadSink *sink, const unsigned char *in, Py_ssize_t n)
{
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(sink->payload) + sink->filled;
    if (sink->masked) {
        unsigned char key[4];
        for (int i = 0; i < 4; i++) {
            key[i] = sink->key[(sink->filled + i) & 3];
        }
        unmask(in, out, n, key);
    } else if (in != out) {
        memcpy(out, in, n);
    }
    sink->filled += n;
}

static int
sink_check_room(PayloadSink *sink, Py_ssize_t n)
{
    if (sink->taken) {
        PyErr_SetString(PyExc_ValueError, "PayloadSink: the payload was already taken");
        return -1;
    }
    if (n < 0 || n > sink->length - sink->filled) {
        PyErr_SetString(PyExc_ValueError, "PayloadSink: more bytes than the payload has room for");
        return -1;
    }
    return 0;
}

static PyObject *
sink_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Py_ssize_t length;
    PyObject *key;
    static char *names[] = {"length", "key", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nO:PayloadSink", names, &length, &key)) {
        return NULL;
    }
    if (length < 0) {
        PyErr_SetString(PyExc_ValueError, "PayloadSink: the length cannot be negative");
        return NULL;
    }
    PayloadSink *sink = (PayloadSink *)type->tp_alloc(type, 0);
    if (sink == NULL) {
        return NULL;
    }
    sink->length = length;
    if (key != Py_None) {
        Py_buffer k;
        if (PyObject_GetBuffer(key, &k, PyBUF_SIMPLE) < 0) {
            Py_DECREF(sink);
            return NULL;
        }
        if (k.len != 4) {
            PyBuffer_Release(&k);
            Py_DECREF(sink);
            PyErr_SetString(PyExc_ValueError, "mask must contain 4 bytes");
            return NULL;
        }
        memcpy(sink->key, k.buf, 4);
        PyBuffer_Release(&k);
        sink->masked = 1;
    }
    sink->payload = PyBytes_FromStringAndSize(NULL, length);
    if (sink->payload == NULL) {
        Py_DECREF(sink);
        return NULL;
    }
    return (PyObject *)sink;
}

static void
sink_dealloc(PayloadSink *sink)
{
    Py_XDECREF(sink->payload);
    Py_TYPE(sink)->tp_free((PyObject *)sink);
}

/* write(buffer, start, end): buffer[start:end] in after what is already filled, unmasked. */
static PyObject *
sink_write(PayloadSink *sink, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "write() takes exactly 3 arguments (buffer, start, end)");
        return NULL;
    }
    Py_buffer data;
    Py_ssize_t start, end;
    if (buffer_range(args, 0, "write", &data, &start, &end) < 0) {
        return NULL;
    }
    if (sink_check_room(sink, end - start) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    sink_land(sink, (const unsigned char *)data.buf + start, end - start);
    PyBuffer_Release(&data);
    Py_RETURN_NONE;
}

/* filled(n): n more bytes were written into the last view(); unmask them. */
static PyObject *
sink_filled(PayloadSink *sink, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (sink_check_room(sink, n) < 0) {
        return NULL;
    }
    sink_land(sink, (const unsigned char *)PyBytes_AS_STRING(sink->payload) + sink->filled, n);
    Py_RETURN_NONE;
}

static PyObject *
sink_view(PayloadSink *sink, PyObject *Py_UNUSED(ignored))
{
    return PyMemoryView_FromObject((PyObject *)sink);
}

static PyObject *
sink_take(PayloadSink *sink, PyObject *Py_UNUSED(ignored))
{
    if (sink->taken || sink->filled != sink->length) {
        PyErr_SetString(PyExc_ValueError, "take(): the payload is not complete, or was already taken");
        return NULL;
    }
    sink->taken = 1;
    return Py_NewRef(sink->payload);
}

static PyObject *
sink_remaining(PayloadSink *sink, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(sink->length - sink->filled);
}

/* The buffer protocol: the part not yet filled, writable. */
static int
sink_getbuffer(PayloadSink *sink, Py_buffer *view, int flags)
{
    if (sink->taken) {
        PyErr_SetString(PyExc_BufferError, "PayloadSink: the payload was already taken");
        view->obj = NULL;
        return -1;
    }
    return PyBuffer_FillInfo(view, (PyObject *)sink, PyBytes_AS_STRING(sink->payload) + sink->filled,
                             sink->length - sink->filled, 0, flags);
}

static PyBufferProcs sink_as_buffer = {(getbufferproc)sink_getbuffer, NULL};

static PyMethodDef sink_methods[] = {
    {"write", (PyCFunction)(void (*)(void))sink_write, METH_FASTCALL, "Copy buffer[start:end] in, unmasked."},
    {"filled", (PyCFunction)sink_filled, METH_O, "n more bytes were read into the last view(); unmask them."},
    {"view", (PyCFunction)sink_view, METH_NOARGS, "A writable memoryview of the part not yet filled."},
    {"take", (PyCFunction)sink_take, METH_NOARGS, "The complete payload, once."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef sink_getset[] = {
    {"remaining", (getter)sink_remaining, NULL, "Bytes still to come.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject PayloadSinkType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wsdoctor.protocol._speedups.PayloadSink",
    .tp_basicsize = sizeof(PayloadSink),
    .tp_dealloc = (destructor)sink_dealloc,
    .tp_as_buffer = &sink_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A large frame's payload, received straight into the bytes object that is delivered.",
    .tp_methods = sink_methods,
    .tp_getset = sink_getset,
    .tp_new = sink_new,
};

#ifndef _WIN32
/* The buffers sent on the non-blocking socket fd in one call, without waiting and without
 * SIGPIPE: the bytes the kernel took, or -1 when it took none. */
static Py_ssize_t
send_now(long fd, const Py_buffer *bufs, int count)
{
    int flags = MSG_DONTWAIT;
#ifdef MSG_NOSIGNAL
    flags |= MSG_NOSIGNAL;
#endif
    struct iovec iov[2];
    size_t total = 0;
    for (int i = 0; i < count; i++) {
        iov[i].iov_base = bufs[i].buf;
        iov[i].iov_len = (size_t)bufs[i].len;
        total += iov[i].iov_len;
    }
    if (fd < 0 || total == 0) {
        return -1;
    }
    Py_ssize_t sent;
    if (count == 1) {
        do {
            sent = send((int)fd, iov[0].iov_base, iov[0].iov_len, flags);
        } while (sent < 0 && errno == EINTR);
    } else {
        struct msghdr msg;
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = iov;
        msg.msg_iovlen = (size_t)count;
        do {
            sent = sendmsg((int)fd, &msg, flags);
        } while (sent < 0 && errno == EINTR);
    }
    return sent > 0 ? sent : -1;
}
#endif

/*
 * What try_send() and try_sendv() share: args are (fd, buffer...) with `count` buffers, sent at
 * once (send_now); the number of bytes the kernel took, or -1 when it took none (a full socket
 * buffer, an error: the caller hands everything to its transport, which reports errors). The
 * GIL is kept: a non-blocking send does not wait, and releasing the GIL costs more than it.
 */
static PyObject *
send_args(PyObject *const *args, Py_ssize_t nargs, int count, const char *usage)
{
    if (nargs != count + 1) {
        PyErr_SetString(PyExc_TypeError, usage);
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    if (fd == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer bufs[2];
    int held = 0;
    while (held < count && PyObject_GetBuffer(args[held + 1], &bufs[held], PyBUF_SIMPLE) == 0) {
        held++;
    }
    Py_ssize_t sent = -1;
#ifndef _WIN32
    if (held == count) {
        sent = send_now(fd, bufs, count);
    }
#endif
    for (int i = 0; i < held; i++) {
        PyBuffer_Release(&bufs[i]);
    }
    return held == count ? PyLong_FromSsize_t(sent) : NULL;
}

/* try_send(fd, data): data sent on the non-blocking socket fd now; see send_args(). */
static PyObject *
try_send(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return send_args(args, nargs, 1, "try_send() takes exactly 2 arguments (fd, data)");
}

/*
 * try_sendv(fd, head, payload): try_send() of head followed by payload, in one sendmsg(2): a
 * frame sent as its header and the caller's payload, without copying them into one buffer.
 */
static PyObject *
try_sendv(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return send_args(args, nargs, 2, "try_sendv() takes exactly 3 arguments (fd, head, payload)");
}

static PyMethodDef methods[] = {
    {"try_sendv", (PyCFunction)(void (*)(void))try_sendv, METH_FASTCALL, "try_send() of two buffers in one sendmsg."},
    {"try_send", (PyCFunction)(void (*)(void))try_send, METH_FASTCALL, "Send on a non-blocking socket now; bytes taken or -1."},
    {"header", (PyCFunction)(void (*)(void))header, METH_FASTCALL, "An unmasked frame's header for a payload of the given length."},
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL, "XOR data with a repeating 4-byte mask; returns bytes."},
    {"payload_at", (PyCFunction)(void (*)(void))payload_at, METH_FASTCALL, "A payload out of a read buffer as bytes, unmasked."},
    {"frame", (PyCFunction)(void (*)(void))frame, METH_FASTCALL, "A whole frame as bytes, masked when a key is given."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "wsdoctor.protocol._speedups", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&PayloadSinkType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "PayloadSink", (PyObject *)&PayloadSinkType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
