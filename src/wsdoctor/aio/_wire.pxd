# Types for Cython, which compiles _wire.py (the one source) into the optional extension
# wsdoctor.aio._wire_c; see setup.py. Nothing here changes what the code does: it makes
# WireProtocol an extension type whose fields are C members and whose core is the
# compiled Connection, called directly. A field added to WireProtocol.__init__ must be
# declared here too.

import cython

cdef Py_ssize_t LARGE
cdef Py_ssize_t WHOLE_BELOW
from wsdoctor.protocol._connection_c cimport Connection


cdef class WireProtocol


@cython.locals(conn=WireProtocol, core=Connection, sent=Py_ssize_t, skipped=Py_ssize_t)
cpdef tuple write_plain(object connections, bytes frame, list rest)


cdef class WireProtocol:
    cdef public bint is_client
    cdef public Connection core
    cdef object _transport
    cdef object _tr_write
    cdef object _tr_is_closing
    cdef object _tr_buffered
    cdef readonly Py_ssize_t _fd
    cdef public object max_queue
    cdef public Py_ssize_t messages_in
    cdef public Py_ssize_t messages_out
    cdef public object _messages
    cdef public object _recv_waiter
    cdef public bint _paused_reading
    cdef public bint _paused_writing
    cdef list _pending
    cdef public bint _fragmenting
    cdef public bint _into_sink
    cdef public object _listener
    cdef public object _loop
    cdef public object _closed
    cdef public object _rview
    cdef public object _rbuf

    @cython.locals(core=Connection)
    cpdef send_now(self, message)

    @cython.locals(data=bytes, head=bytes, pending=list, opcode=int, n=Py_ssize_t)
    cdef _send(self, Connection core, object message, str name)

    @cython.locals(fd=Py_ssize_t, sent=Py_ssize_t)
    cdef _write_parts(self, bytes head, bytes payload)

    @cython.locals(core=Connection)
    cpdef object _message_waiter(self)

    @cython.locals(core=Connection)
    cpdef get_buffer(self, Py_ssize_t sizehint)

    @cython.locals(core=Connection, events=list, corked=bint)
    cpdef buffer_updated(self, Py_ssize_t nbytes)

    @cython.locals(core=Connection, pending=list)
    cpdef bint send_prepared(self, frame, message=*) except -1

    @cython.locals(pending=list)
    cpdef _flush_pending(self)

    @cython.locals(fd=Py_ssize_t, sent=Py_ssize_t)
    cdef _write_now(self, bytes data)

    @cython.locals(fd=Py_ssize_t)
    cdef Py_ssize_t _direct_socket(self) except? -3

