# Types for Cython, which compiles _connection.py (the one source) into the optional
# extension wsdoctor.protocol._connection_c; see setup.py. Nothing here changes what the
# code does: it declares the attribute and local types so that the compiled module
# keeps frame parsing in C integers. An attribute added to Connection.__init__ must be
# declared here too (the build fails otherwise, and scripts/test checks the extension
# was built).

import cython

cdef int _OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG
cdef bytes _keys
cdef Py_ssize_t _key_at
cdef Py_ssize_t _SINK_MIN, _SINK_MAX, _SINK_DIRECT
cdef object _CLOSED

@cython.locals(at=Py_ssize_t)
cdef bytes _masking_key()

@cython.locals(ba=bytearray, b1=cython.long, word=cython.long)
cdef long _header(object src, Py_ssize_t pos, Py_ssize_t n) except? -1



cdef class Connection:
    cdef public bint is_client
    cdef public object deflate
    cdef public object max_size
    cdef public object max_frame_size
    cdef public object state
    cdef public object close_sent
    cdef public object close_received
    cdef public object received_first
    cdef public object ending
    cdef public bint defer_failure
    cdef int _mask_bit
    cdef bint _expect_masked
    cdef public bytearray _buf
    # Public, with _failure and _plain, for the per-message path (aio/_wire.py) when it runs as
    # Python over the compiled core.
    cdef public bytearray _out
    cdef public object _failure
    cdef object _pending_close
    cdef object _local_cause
    cdef object _local_detail
    cdef int _msg_opcode
    cdef bint _msg_compressed
    cdef long long _msg_size
    cdef long long _msg_wire_size
    cdef list _parts
    cdef list _text_parts
    cdef object _decoder
    cdef unsigned long long _frame_remaining
    cdef bint _frame_fin
    cdef object _frame_mask
    cdef int _frame_offset
    cdef public object _sink
    cdef public bint _plain

    cpdef list _receive(self, object data, Py_ssize_t n)

    cpdef object sink_view(self)

    @cython.locals(remaining=cython.ulonglong)
    cpdef list sink_received(self, Py_ssize_t n)

    cpdef bytes _send_message(self, int opcode, object payload)

    cdef int _check_sendable(self, str what) except -1

    cpdef bytes header_for(self, int opcode, bytes payload)

    @cython.locals(
        pos=Py_ssize_t,
        take=Py_ssize_t,
        start=Py_ssize_t,
        end=Py_ssize_t,
        hlen=Py_ssize_t,
        remaining=cython.ulonglong,
        length=cython.ulonglong,
        b0=cython.int,
        b1=cython.int,
        word=cython.long,
        opcode=cython.int,
        fin=cython.int,
        masked=cython.int,
        off=cython.int,
    )
    cdef Py_ssize_t _parse(self, object src, Py_ssize_t n, list events) except -1

    cdef _start_data_frame(self, int opcode, int b0, unsigned long long length)

    cdef _data(self, object payload, bint fin, list events)

    cdef _control(self, int opcode, bytes payload, list events)

    @cython.locals(b0=cython.int)
    cpdef bytes _frame(self, int opcode, object payload, bint fin, bint rsv1)
