"""Byte-level tests of the sans-I/O connection: frames in, events and bytes out."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsdoctor.protocol._connection import Connection, State
from wsdoctor.protocol._errors import InvalidCloseCode, LocalProtocolError
from wsdoctor.protocol._events import BinaryMessage, CloseReceived, Ping, Pong, TextMessage
from wsdoctor.protocol._mask import (
    apply_mask,
    frame,
    header,
    payload_at,
    py_apply_mask,
    py_frame,
    py_header,
    py_payload_at,
)

MASK = b"\x37\xfa\x21\x3d"


def masked(b0: int, payload: bytes, mask: bytes = MASK) -> bytes:
    """A client frame built by hand, independently of the code under test."""
    n = len(payload)
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 65536:
        head = bytes([b0, 0x80 | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, 0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def unmasked(b0: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes([b0, n]) + payload
    if n < 65536:
        return bytes([b0, 126]) + struct.pack("!H", n) + payload
    return bytes([b0, 127]) + struct.pack("!Q", n) + payload


def server(**kw: object) -> Connection:
    return Connection(False, **kw)  # type: ignore[arg-type]


def client(**kw: object) -> Connection:
    return Connection(True, **kw)  # type: ignore[arg-type]


def failure(conn: Connection) -> tuple[int, str]:
    ending = conn.receive_eof()
    return ending.code, ending.cause


# ---------------------------------------------------------------- RFC 6455 5.7 examples


def test_rfc_single_frame_unmasked_text() -> None:
    assert client().receive_data(b"\x81\x05\x48\x65\x6c\x6c\x6f") == [TextMessage("Hello")]


def test_rfc_single_frame_masked_text() -> None:
    frame = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    assert masked(0x81, b"Hello") == frame
    assert server().receive_data(frame) == [TextMessage("Hello")]


def test_rfc_fragmented_unmasked_text() -> None:
    conn = client()
    assert conn.receive_data(b"\x01\x03\x48\x65\x6c") == []
    assert conn.receive_data(b"\x80\x02\x6c\x6f") == [TextMessage("Hello")]


def test_rfc_ping_and_pong_reply() -> None:
    conn = server()
    assert conn.receive_data(b"\x89\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58") == [Ping(b"Hello")]
    assert conn.data_to_send() == b"\x8a\x05Hello"
    assert conn.data_to_send() == b""


def test_rfc_unmasked_pong() -> None:
    assert client().receive_data(b"\x8a\x05\x48\x65\x6c\x6c\x6f") == [Pong(b"Hello")]


@pytest.mark.parametrize("size", [0, 125, 126, 256, 65535, 65536, 70000])
def test_every_length_form(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    assert server().receive_data(masked(0x82, payload)) == [BinaryMessage(payload)]
    assert client().receive_data(unmasked(0x82, payload)) == [BinaryMessage(payload)]


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_server_sends_exact_length_forms(size: int) -> None:
    payload = b"x" * size
    assert server().send_binary(payload) == unmasked(0x82, payload)


def test_client_frames_are_masked_and_round_trip() -> None:
    c, s = client(), server()
    data = c.send_text("héllo")
    assert data[1] & 0x80
    assert s.receive_data(data) == [TextMessage("héllo")]
    assert c.receive_data(s.send_binary(b"\x00\xff")) == [BinaryMessage(b"\x00\xff")]


# ------------------------------------------------------------------ fragmentation


def test_control_frames_interleaved_in_fragmented_message() -> None:
    conn = server()
    stream = (
        masked(0x01, b"fra") + masked(0x89, b"p1") + masked(0x00, b"gmen") + masked(0x8A, b"p2") + masked(0x80, b"ted")
    )
    assert conn.receive_data(stream) == [Ping(b"p1"), Pong(b"p2"), TextMessage("fragmented")]
    assert conn.data_to_send() == b"\x8a\x02p1"


def test_fragmented_binary_with_empty_fragments() -> None:
    conn = server()
    stream = masked(0x02, b"") + masked(0x00, b"ab") + masked(0x00, b"") + masked(0x80, b"c")
    assert conn.receive_data(stream) == [BinaryMessage(b"abc")]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64])
def test_stream_split_in_chunks(chunk: int) -> None:
    messages = ["a", "ü" * 70, "€" * 300, "x" * 70000]
    stream = b"".join(masked(0x81, m.encode()) for m in messages) + masked(0x82, b"\x01\x02")
    conn = server()
    events = []
    for i in range(0, len(stream), chunk):
        events += conn.receive_data(stream[i : i + chunk])
    assert events == [*(TextMessage(m) for m in messages), BinaryMessage(b"\x01\x02")]


def _as(kind: str, data: bytes) -> bytes | bytearray | memoryview:
    return {"bytes": data, "bytearray": bytearray(data), "memoryview": memoryview(bytearray(data))}[kind]


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview"])
@pytest.mark.parametrize("chunk", [1, 3, 4096, 1 << 20])
def test_every_buffer_type_in_any_chunks_gives_the_same_messages(kind: str, chunk: int) -> None:
    # The asyncio layer hands the core its whole read buffer (a bytearray) and the count read;
    # sans-I/O users hand it bytes or views. Headers split anywhere, in every length form.
    payloads = [bytes([i + 1]) * size for i, size in enumerate([0, 125, 126, 300, 65535, 65536])]
    stream = b"".join(masked(0x82, p) for p in payloads) + masked(0x89, b"hi")
    conn = server()
    events = []
    for i in range(0, len(stream), chunk):
        piece = stream[i : i + chunk]
        events += conn._receive(_as(kind, piece + b"\xee" * 5), len(piece))  # stale bytes after the count
    assert events == [*(BinaryMessage(p) for p in payloads), Ping(b"hi")]


@settings(max_examples=60, deadline=None)
@given(
    payloads=st.lists(st.text(max_size=300), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=30),
)
def test_any_chunking_gives_same_messages(payloads: list[str], cuts: list[int]) -> None:
    stream = b"".join(masked(0x81, p.encode()) for p in payloads)
    conn = server()
    events = []
    pos = 0
    for cut in cuts:
        events += conn.receive_data(stream[pos : pos + cut])
        pos += cut
    events += conn.receive_data(stream[pos:])
    assert events == [TextMessage(p) for p in payloads]


# -------------------------------------------------------------------- violations


@pytest.mark.parametrize(
    ("data", "cause"),
    [
        (unmasked(0x81, b"hi"), "protocol.unmasked_frame"),
        (masked(0x83, b""), "protocol.bad_opcode"),
        (masked(0x8B, b""), "protocol.bad_opcode"),
        (masked(0xC1, b"hi"), "protocol.reserved_bits"),
        (masked(0xA1, b"hi"), "protocol.reserved_bits"),
        (masked(0x91, b"hi"), "protocol.reserved_bits"),
        (masked(0x09, b""), "protocol.fragmented_control"),
        (masked(0x89, b"x" * 126), "protocol.control_too_long"),
        (masked(0x80, b"x"), "protocol.unexpected_continuation"),
        (masked(0x01, b"x") + masked(0x81, b"y"), "protocol.expected_continuation"),
        (bytes([0x82, 0xFF]) + b"\x80" + b"\x00" * 7 + MASK, "protocol.bad_length"),
        (masked(0x88, b"\x03"), "protocol.bad_close_payload"),
    ],
)
def test_server_fails_with_1002(data: bytes, cause: str) -> None:
    conn = server()
    assert conn.receive_data(data) == []
    assert conn.failed and not conn.should_close_transport  # the Close frame is not out yet
    assert conn.data_to_send() == b"\x88\x02\x03\xea"
    assert conn.should_close_transport
    assert failure(conn) == (1002, cause)


def test_client_rejects_masked_frame() -> None:
    conn = client()
    conn.receive_data(masked(0x81, b"hi"))
    out = conn.data_to_send()
    assert out[0] == 0x88 and out[1] == 0x82  # a masked Close frame
    assert apply_mask(out[6:8], out[2:6]) == b"\x03\xea"
    assert failure(conn) == (1002, "protocol.masked_frame")


def test_nothing_is_read_after_failure() -> None:
    conn = server()
    conn.receive_data(masked(0x83, b""))
    assert conn.receive_data(masked(0x81, b"late")) == []


def test_messages_before_violation_are_delivered() -> None:
    conn = server()
    assert conn.receive_data(masked(0x81, b"ok") + masked(0x83, b"")) == [TextMessage("ok")]
    assert failure(conn) == (1002, "protocol.bad_opcode")


# ---------------------------------------------------------------- UTF-8 fail-fast

INVALID = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"


def test_invalid_utf8_single_frame_is_1007() -> None:
    conn = server()
    conn.receive_data(masked(0x81, INVALID))
    assert failure(conn) == (1007, "utf8.invalid")


@pytest.mark.parametrize("split", range(1, len(INVALID)))
def test_invalid_utf8_fails_on_first_bad_byte_in_partial_frame(split: int) -> None:
    # Only the bytes up to the split have arrived; the frame is incomplete.
    frame = masked(0x81, INVALID)
    header = 6
    conn = server()
    conn.receive_data(frame[: header + split])
    first_bad = 13  # ED A0 is impossible as soon as A0 arrives
    assert conn.failed is (split >= first_bad)


@pytest.mark.parametrize("split", range(1, len(INVALID)))
def test_invalid_utf8_fails_fast_across_fragments(split: int) -> None:
    conn = server()
    conn.receive_data(masked(0x01, INVALID[:split]))
    assert conn.failed is (split >= 13)


@pytest.mark.parametrize(
    "bad", [b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xed\xbf\xbf", b"\xf8\x88\x80\x80\x80", b"\xfe", b"\x80"]
)
def test_invalid_sequences_fail_on_partial_data(bad: bytes) -> None:
    conn = server()
    conn.receive_data(masked(0x01, b"ok" + bad[:2]))
    assert conn.failed
    assert failure(conn) == (1007, "utf8.invalid")


def test_valid_utf8_split_at_every_byte() -> None:
    text = "κόσμε €𝄞 ok"
    data = text.encode()
    for split in range(len(data) + 1):
        conn = server()
        events = conn.receive_data(masked(0x01, data[:split]) + masked(0x80, data[split:]))
        assert events == [TextMessage(text)], split


def test_truncated_utf8_at_end_of_message_is_1007() -> None:
    conn = server()
    conn.receive_data(masked(0x01, b"ok\xe2\x82") + masked(0x80, b""))
    assert failure(conn) == (1007, "utf8.invalid")


# -------------------------------------------------------------------------- limits


def test_message_too_big_single_frame_detected_from_header() -> None:
    conn = server(max_size=100)
    # Only the header has arrived: the announced length already exceeds the limit.
    conn.receive_data(masked(0x82, b"x" * 101)[:8])
    assert failure(conn) == (1009, "message.too_big")


def test_message_too_big_across_fragments() -> None:
    conn = server(max_size=10)
    conn.receive_data(masked(0x02, b"x" * 6) + masked(0x80, b"x" * 5))
    assert failure(conn) == (1009, "message.too_big")


def test_message_at_limit_is_accepted() -> None:
    conn = server(max_size=10)
    assert conn.receive_data(masked(0x02, b"x" * 6) + masked(0x80, b"x" * 4)) == [BinaryMessage(b"x" * 10)]


def test_frame_too_big() -> None:
    conn = server(max_frame_size=4)
    conn.receive_data(masked(0x82, b"x" * 5))
    assert conn.data_to_send() == b"\x88\x02\x03\xf1"
    assert failure(conn) == (1009, "frame.too_big")
    assert conn.close_sent is not None and conn.close_sent.code == 1009


def test_no_limit() -> None:
    conn = server(max_size=None)
    assert conn.receive_data(masked(0x82, b"x" * 70000)) == [BinaryMessage(b"x" * 70000)]


# ------------------------------------------------------------- close-code table

ACCEPTED = set(range(1000, 1004)) | set(range(1007, 1015)) | set(range(3000, 5000))


@pytest.mark.parametrize(
    "code", [0, 999, 1000, 1003, 1004, 1005, 1006, 1007, 1014, 1015, 1016, 2999, 3000, 4999, 5000, 65535]
)
def test_close_code_table_samples(code: int) -> None:
    conn = server()
    events = conn.receive_data(masked(0x88, struct.pack("!H", code)))
    if code in ACCEPTED:
        assert events == [CloseReceived(code, "")]
        assert conn.data_to_send() == b"\x88\x02" + struct.pack("!H", code)
    else:
        assert events == []
        assert failure(conn) == (1002, "protocol.bad_close_code")


def test_close_code_table_exhaustive() -> None:
    for code in range(0, 5100):
        conn = server()
        events = conn.receive_data(masked(0x88, struct.pack("!H", code) + b"bye"))
        assert (events == [CloseReceived(code, "bye")]) is (code in ACCEPTED), code


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000])
def test_local_only_and_reserved_codes_cannot_be_sent(code: int) -> None:
    conn = server()
    with pytest.raises(InvalidCloseCode, match=str(code)):
        conn.send_close(code)
    assert conn.close_sent is None


def test_close_reason_limits() -> None:
    conn = server()
    with pytest.raises(InvalidCloseCode, match="123"):
        conn.send_close(1000, "é" * 62)
    assert conn.send_close(1000, "x" * 123)[:4] == b"\x88\x7d\x03\xe8"


def test_empty_close_reason_needs_no_code() -> None:
    conn = server()
    with pytest.raises(InvalidCloseCode):
        conn.send_close(None, "why")
    assert conn.send_close(None) == b"\x88\x00"


def test_close_reason_invalid_utf8() -> None:
    conn = server()
    conn.receive_data(masked(0x88, b"\x03\xe8\xff"))
    assert failure(conn) == (1007, "protocol.bad_close_reason")


# ---------------------------------------------------------------- close handshake


def test_remote_initiated_close() -> None:
    conn = server()
    assert conn.receive_data(masked(0x88, b"\x0f\xa1done")) == [CloseReceived(4001, "done")]
    assert conn.data_to_send() == b"\x88\x02\x0f\xa1"
    assert conn.close_handshake_done and conn.should_close_transport
    assert conn.receive_data(masked(0x81, b"ignored")) == []
    ending = conn.receive_eof()
    assert (ending.code, ending.cause, ending.initiator, ending.clean) == (
        4001,
        "closed.by_peer",
        "remote",
        True,
    )
    assert ending.reason == "done" and ending.received_first is True
    assert conn.state is State.CLOSED


def test_local_initiated_close() -> None:
    c = client()
    out = c.send_close(1000, "bye")
    assert c.state is State.CLOSING and not c.should_close_transport
    with pytest.raises(LocalProtocolError):
        c.send_text("late")
    with pytest.raises(LocalProtocolError):
        c.send_close(1000)
    s = server()
    assert s.receive_data(out) == [CloseReceived(1000, "bye")]
    assert c.receive_data(s.data_to_send()) == [CloseReceived(1000, "")]
    ending = c.receive_eof()
    assert (ending.code, ending.cause, ending.initiator, ending.clean, ending.ok) == (
        1000,
        "closed.locally",
        "local",
        True,
        True,
    )
    assert ending.sent is not None and ending.sent.reason == "bye"


def test_messages_still_received_while_closing() -> None:
    conn = server()
    conn.send_close(1001)
    assert conn.receive_data(masked(0x81, b"in flight")) == [TextMessage("in flight")]
    # A ping after our Close frame gets no Pong: nothing may follow a Close frame.
    assert conn.receive_data(masked(0x89, b"p")) == [Ping(b"p")]
    assert conn.data_to_send() == b""


def test_empty_close_is_1005() -> None:
    conn = server()
    assert conn.receive_data(masked(0x88, b"")) == [CloseReceived(None, "")]
    assert conn.data_to_send() == b"\x88\x00"
    ending = conn.receive_eof()
    assert (ending.code, ending.cause) == (1005, "closed.no_status")


def test_peer_1010_is_reported_as_missing_extension() -> None:
    conn = server()
    conn.receive_data(masked(0x88, b"\x03\xf2missing extensions: permessage-deflate"))
    ending = conn.receive_eof()
    assert (ending.code, ending.cause) == (1010, "extension.missing")
    assert "permessage-deflate" in ending.detail


def test_eof_without_close_is_1006() -> None:
    conn = server()
    ending = conn.receive_eof()
    assert (ending.code, ending.cause, ending.clean) == (1006, "tcp.closed", False)
    assert conn.receive_eof("tcp.reset") is ending


def test_eof_after_our_close_without_answer() -> None:
    conn = server()
    conn.send_close(1000)
    ending = conn.receive_eof()
    assert (ending.code, ending.cause, ending.initiator) == (1006, "close.timeout", "local")


def test_eof_with_cause_reset() -> None:
    assert server().receive_eof("tcp.reset").cause == "tcp.reset"


def test_local_failure_sends_close_and_ends() -> None:
    conn = server()
    conn.fail(1011, "keepalive.timeout", "no pong")
    assert conn.data_to_send() == b"\x88\x02\x03\xf3"
    assert conn.should_close_transport
    ending = conn.receive_eof()
    assert (ending.code, ending.cause, ending.detail) == (1011, "keepalive.timeout", "no pong")


def test_send_close_with_cause_override() -> None:
    conn = server()
    conn.send_close(1001, "restarting", cause="server.shutdown")
    conn.receive_data(masked(0x88, b"\x03\xe9"))
    ending = conn.receive_eof()
    assert (ending.code, ending.cause, ending.clean) == (1001, "server.shutdown", True)


def test_control_frame_size_on_send() -> None:
    conn = client()
    with pytest.raises(LocalProtocolError):
        conn.send_ping(b"x" * 126)
    assert len(conn.send_ping(b"x" * 125)) == 2 + 4 + 125
    assert conn.send_pong(b"")[0] == 0x8A


def test_send_frame_raw() -> None:
    s = server()
    assert s.send_frame(0x1, b"ab", fin=False) == b"\x01\x02ab"
    s.send_close(1000)
    with pytest.raises(LocalProtocolError):
        s.send_frame(0x0, b"c")


def test_python_and_c_masking_agree() -> None:
    # Every tail of the C loop's 128-, 8- and 1-byte rounds, from buffers that start at each
    # alignment; the Python twin is one big-integer XOR, independent of those rounds.
    source = bytes(i * 7 % 256 for i in range(70_000))
    for n in [*range(0, 300), 4095, 4096, 4097, 65_537]:
        for offset in range(4):
            data = memoryview(source)[offset : offset + n]
            assert apply_mask(data, MASK) == py_apply_mask(data, MASK)


SIZES = [0, 1, 7, 8, 9, 125, 126, 127, 65535, 65536, 70000]


@pytest.mark.parametrize("n", SIZES)
def test_frame_builders_match_a_frame_built_by_hand(n: int) -> None:
    # The C builder (when compiled) and the Python one against the hand-built frames above.
    payload = bytes(i % 251 for i in range(n))
    for build in (frame, py_frame):
        assert build(0x82, payload, MASK) == masked(0x82, payload)
        assert build(0x81, payload, None) == unmasked(0x81, payload)
        assert build(0x82, bytearray(payload), None) == build(0x82, memoryview(payload), None)


@pytest.mark.parametrize("n", SIZES)
def test_payload_readers_unmask_in_place(n: int) -> None:
    payload = bytes(i % 251 for i in range(n))
    wire = b"junk" + masked(0x82, payload) + b"tail"
    start = wire.index(MASK) + 4
    for read in (payload_at, py_payload_at):
        for buf in (wire, bytearray(wire), memoryview(wire)):
            assert read(buf, start, start + n, True) == payload
            assert read(buf, 2, 2 + n // 2, False) == wire[2 : 2 + n // 2]


@pytest.mark.parametrize("read", [payload_at, py_payload_at])
def test_payload_readers_refuse_ranges_outside_the_buffer(read: Any) -> None:
    for start, end, mask in ((2, 10, True), (0, 11, False), (5, 4, False), (-1, 3, False)):
        with pytest.raises(ValueError, match="outside the buffer"):
            read(b"0123456789", start, end, mask)


@pytest.mark.parametrize("build", [frame, py_frame])
def test_frame_builders_refuse_a_bad_key(build: Any) -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        build(0x82, b"data", b"abc")


def test_deferred_failure_lets_earlier_messages_be_answered() -> None:
    """With defer_failure, replies to messages before a violation precede the Close frame."""
    conn = server()
    conn.defer_failure = True
    events = conn.receive_data(masked(0x81, b"first") + masked(0xC1, b"bad rsv"))
    assert events == [TextMessage("first")]
    assert conn.failure_pending and conn.data_to_send() == b""
    reply = conn.send_text("first")  # the application answers the message it got
    conn.commit_failure()
    assert conn.data_to_send() == b"\x88\x02\x03\xea"
    assert reply == b"\x81\x05first"
    with pytest.raises(LocalProtocolError):
        conn.send_text("too late")
    ending = conn.receive_eof()
    assert (ending.code, ending.cause) == (1002, "protocol.reserved_bits")
    assert ending.sent is not None and ending.sent.code == 1002


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=600),
    cuts=st.lists(st.integers(min_value=1, max_value=64), max_size=20),
    is_client=st.booleans(),
)
def test_hostile_bytes_never_crash(data: bytes, cuts: list[int], is_client: bool) -> None:
    """Arbitrary input either yields events or fails the connection with a valid close code."""
    from wsdoctor.protocol._deflate import PerMessageDeflate

    conn = Connection(is_client, deflate=PerMessageDeflate(is_client=is_client), max_size=300)
    pos = 0
    for cut in [*cuts, len(data)]:
        conn.receive_data(data[pos : pos + cut])
        pos += cut
    conn.data_to_send()
    ending = conn.receive_eof()
    assert ending.code in (1000, 1001, 1002, 1003, 1005, 1006, 1007, 1009) or 1007 <= ending.code <= 4999
    if conn.failed:
        assert ending.sent is not None and ending.sent.code in (1002, 1007, 1009)


frames_strategy = st.lists(
    st.tuples(
        st.sampled_from([0x0, 0x1, 0x2, 0x8, 0x9, 0xA, 0x3]),
        st.booleans(),  # fin
        st.booleans(),  # rsv1
        st.binary(max_size=200),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(frames=frames_strategy, chunk=st.integers(min_value=1, max_value=50))
def test_structured_fuzz_ends_cleanly(frames: list[tuple[int, bool, bool, bytes]], chunk: int) -> None:
    """Plausible frame sequences: the server never raises and fails only with the right codes."""
    from wsdoctor.protocol._deflate import PerMessageDeflate

    stream = b"".join(
        masked((0x80 if fin else 0) | (0x40 if rsv1 else 0) | op, payload) for op, fin, rsv1, payload in frames
    )
    conn = Connection(False, deflate=PerMessageDeflate(is_client=False), max_size=500)
    for i in range(0, len(stream), chunk):
        conn.receive_data(stream[i : i + chunk])
    out = conn.data_to_send()
    ending = conn.receive_eof()
    if conn.failed:
        assert ending.code in (1002, 1007, 1009)
        assert out.endswith(b"\x88\x02" + ending.code.to_bytes(2, "big"))


def test_masking_keys_are_fresh_for_every_frame() -> None:
    """Keys are drawn from os.urandom in batches: every frame still gets its own."""
    conn = client()
    frames = [conn.send_binary(b"x") for _ in range(1000)]  # several batches of keys
    keys = [frame[2:6] for frame in frames]
    assert len(set(keys)) >= 995  # 1000 random 32-bit keys: a repeat is already unlikely
    assert all(server().receive_data(frame) == [BinaryMessage(b"x")] for frame in frames)


def test_receive_plain_gives_message_values_and_control_events() -> None:
    """The asyncio layer's variant: the same parsing, data messages as str/bytes."""
    from wsdoctor.protocol._deflate import PerMessageDeflate

    sender = Connection(True, deflate=PerMessageDeflate(is_client=True, compress_threshold=0))
    receiver = Connection(False, deflate=PerMessageDeflate(is_client=False))
    wire = (
        sender.send_text("héllo")
        + sender.send_binary(b"\x00\xff" * 300)
        + sender.send_frame(1, b"frag", fin=False)
        + sender.send_ping(b"p")
        + sender.send_frame(0, b"ment", fin=True)
    )
    events = receiver.receive_plain(wire)
    assert events == ["héllo", b"\x00\xff" * 300, Ping(b"p"), "fragment"]
    assert [type(e) for e in events[:2]] == [str, bytes]
    # receive_data still speaks in events on the same connection.
    assert receiver.receive_data(sender.send_binary(b"x" * 200)) == [BinaryMessage(b"x" * 200)]
    bad = receiver.receive_plain(sender.send_frame(1, b"\xff", fin=True))
    assert bad == [] and receiver.failed


@pytest.mark.parametrize("n", SIZES)
def test_header_for_is_the_frame_without_its_payload(n: int) -> None:
    payload = bytes(i % 251 for i in range(n))
    head = server().header_for(2, payload)
    assert head is not None and head + payload == unmasked(0x82, payload)
    assert header(0x81, n) == py_header(0x81, n) == unmasked(0x81, payload)[: len(head)]


def test_header_for_declines_masked_and_compressed_frames_and_refuses_after_close() -> None:
    assert Connection(True).header_for(2, b"x" * 100_000) is None  # a client masks
    conn = server()
    conn.send_close(1000)
    with pytest.raises(LocalProtocolError):
        conn.header_for(2, b"x")
    for build in (header, py_header):
        with pytest.raises(ValueError):
            build(256, 1)
        with pytest.raises(ValueError):
            build(0x82, -1)
