"""Large binary frames received into their final bytes object (PayloadSink), C and Python.

A frame of at least _SINK_MIN bytes that is not all in one read fills a PayloadSink:
pieces copied from read buffers (``write``) or read by the transport straight into
``sink_view()`` (then ``sink_received``). Whatever the cut points, the message must be
the payload, unmasked with the key's phase carried across pieces.
"""

from __future__ import annotations

import itertools
import os
import struct
from typing import Any

import pytest

from wsdoctor.protocol import _connection
from wsdoctor.protocol._connection import Connection
from wsdoctor.protocol._errors import LocalProtocolError
from wsdoctor.protocol._events import BinaryMessage, TextMessage
from wsdoctor.protocol._mask import SPEEDUPS, PayloadSink, PyPayloadSink

SINKS = [PayloadSink, PyPayloadSink]
KEY = b"\x9b\x11\xe4\x5a"


def mask_by_hand(payload: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def client_frame(b0: int, payload: bytes, key: bytes = KEY) -> bytes:
    n = len(payload)
    if n < 65536:
        head = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", b0, 0x80 | 127, n)
    return head + key + mask_by_hand(payload, key)


def server_frame(b0: int, payload: bytes) -> bytes:
    return struct.pack("!BBQ", b0, 127, len(payload)) + payload


@pytest.mark.parametrize("sink_type", SINKS)
@pytest.mark.parametrize("key", [KEY, None])
@pytest.mark.parametrize("cuts", [[1], [3, 4, 5], [7, 1000, 1001, 4093], [8192]])
def test_pieces_at_any_cut_unmask_with_the_right_phase(sink_type: Any, key: bytes | None, cuts: list[int]) -> None:
    payload = os.urandom(10_000)
    wire = mask_by_hand(payload, key) if key else payload
    points = [0, *cuts, len(wire)]
    for via_view in (False, True):
        sink = sink_type(len(payload), key)
        if via_view and sink.view() is None:
            # The pure-Python sink is never read into: its buffer would be resident at once.
            assert sink_type is PyPayloadSink
            continue
        for start, end in itertools.pairwise(points):
            if via_view:
                view = sink.view()
                assert view is not None and len(view) == len(payload) - start
                view[: end - start] = wire[start:end]
                sink.filled(end - start)
            else:
                sink.write(b"xx" + wire + b"yy", start + 2, end + 2)
            assert sink.remaining == len(payload) - end
        data = sink.take()
        assert type(data) is bytes and data == payload


@pytest.mark.parametrize("sink_type", SINKS)
def test_a_sink_refuses_what_does_not_fit(sink_type: Any) -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        sink_type(10, b"abc")
    with pytest.raises(ValueError, match="negative"):
        sink_type(-1, None)
    sink = sink_type(4, KEY)
    with pytest.raises(ValueError, match="outside the buffer"):
        sink.write(b"abc", 2, 5)
    with pytest.raises(ValueError, match="room"):
        sink.write(b"abcdef", 0, 5)
    with pytest.raises(ValueError, match="room"):
        sink.filled(-1)
    with pytest.raises(ValueError, match="not complete"):
        sink.take()
    sink.write(b"abcd", 0, 4)
    assert sink.take() == mask_by_hand(b"abcd", KEY)
    with pytest.raises(ValueError, match="already taken"):
        sink.take()
    with pytest.raises(ValueError, match="already taken"):
        sink.filled(0)
    with pytest.raises(BufferError):
        sink.view()


@pytest.mark.parametrize("chunk", [100, 4096, 65536, 70_001])
@pytest.mark.parametrize("is_client", [False, True])
def test_a_large_frame_fed_in_chunks_is_one_message(chunk: int, is_client: bool) -> None:
    big, small = os.urandom(300_000), b"after"
    if is_client:
        stream = server_frame(0x82, big) + server_frame(0x82, small)
    else:
        stream = client_frame(0x82, big) + client_frame(0x82, small)
    conn = Connection(is_client)
    events: list[Any] = []
    for i in range(0, len(stream), chunk):
        events += conn.receive_data(stream[i : i + chunk])
        if 20 < i + chunk < 300_000:
            assert conn._sink is not None, "the large frame fills a sink"
    assert events == [BinaryMessage(big), BinaryMessage(small)]
    assert conn._sink is None


@pytest.mark.parametrize(("per_read", "reads", "last_by_sink"), [(46_000, 4, False), (250_000, 1, True)])
def test_reading_straight_into_the_sink(per_read: int, reads: int, last_by_sink: bool) -> None:
    payload = os.urandom(200_000)
    tail = client_frame(0x82, b"next")
    stream = client_frame(0x82, payload) + tail
    end_of_frame = len(stream) - len(tail)
    conn = Connection(False)
    assert conn.sink_view() is None
    with pytest.raises(LocalProtocolError):
        conn.sink_received(1)
    at = 1000
    events = conn.receive_plain(stream[:at])
    # Only the C sink is read into; without it the whole frame takes the ordinary path.
    assert (conn.sink_view() is not None) == SPEEDUPS
    count = 0
    while (view := conn.sink_view()) is not None:
        assert len(view) == end_of_frame - at, "the view stops where the frame ends"
        n = min(len(view), per_read)
        view[:n] = stream[at : at + n]
        events += conn.sink_received(n)
        at += n
        count += 1
    if SPEEDUPS:
        assert count == reads
        if last_by_sink:
            assert at == end_of_frame and events == [payload]
        else:  # the last few KiB come through the ordinary path, with the frame that follows
            assert 0 < end_of_frame - at < _connection._SINK_DIRECT
    else:
        assert count == 0
    events += conn.receive_plain(stream[at:])
    assert events == [payload, b"next"]


def test_only_single_frame_uncompressed_binary_messages_use_a_sink() -> None:
    text = "é" * 100_000  # text keeps the incremental decoder, which fails at the first bad byte
    conn = Connection(False)
    wire = client_frame(0x81, text.encode())
    conn.receive_data(wire[:5000])
    assert conn._sink is None
    assert conn.receive_data(wire[5000:]) == [TextMessage(text)]
    # The first frame of a fragmented message.
    first = client_frame(0x02, b"a" * 100_000)
    conn.receive_data(first[:5000])
    assert conn._sink is None
    # Below _SINK_MIN.
    conn = Connection(False)
    small = client_frame(0x82, b"b" * (_connection._SINK_MIN - 1))
    conn.receive_data(small[:100])
    assert conn._sink is None
    assert conn.receive_data(small[100:]) == [BinaryMessage(b"b" * (_connection._SINK_MIN - 1))]


def test_a_hostile_length_allocates_nothing_up_front() -> None:
    # max_size=None and a length beyond _SINK_MAX: the payload is assembled as it comes.
    conn = Connection(False, max_size=None)
    conn.receive_data(struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 40) + KEY + b"x" * 100)
    assert conn._sink is None
    # With the default max_size, the header alone fails the connection with 1009.
    conn = Connection(False)
    conn.receive_data(struct.pack("!BBQ", 0x82, 0x80 | 127, _connection._SINK_MAX) + KEY)
    assert conn._sink is None
    assert conn.receive_eof().code == 1009


def test_a_connection_lost_inside_a_sink_frame_is_1006() -> None:
    conn = Connection(False)
    conn.receive_data(client_frame(0x82, os.urandom(100_000))[:30_000])
    assert conn._sink is not None
    assert conn.receive_eof().code == 1006


def test_no_sink_view_after_a_failure() -> None:
    conn = Connection(False)
    conn.receive_data(client_frame(0x82, os.urandom(100_000))[:30_000])
    conn.fail(1008, "policy.violation")
    assert conn.sink_view() is None


def test_the_python_sink_reserves_nothing_up_front() -> None:
    sink = PyPayloadSink(1 << 24, KEY)
    assert sink.view() is None and sink.remaining == 1 << 24
    assert len(sink._data) == 0, "nothing is allocated before data arrives"
    with pytest.raises(ValueError, match="no view"):
        sink.filled(1)
