"""permessage-deflate: RFC 7692 byte-exact examples, parameters, negotiation, bombs."""

from __future__ import annotations

import itertools
import os
import zlib

import pytest

from wsdoctor.protocol._connection import Connection
from wsdoctor.protocol._deflate import DeflateConfig, ExtensionParamsError, PerMessageDeflate
from wsdoctor.protocol._errors import ProtocolError
from wsdoctor.protocol._events import BinaryMessage, TextMessage


def pair(**kw: object) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    client = PerMessageDeflate(is_client=True, compress_threshold=0, **kw)  # type: ignore[arg-type]
    server = PerMessageDeflate(is_client=False, compress_threshold=0, **kw)  # type: ignore[arg-type]
    return client, server


# ------------------------------------------------------------ RFC 7692 7.2.3


def test_rfc_hello_compressed() -> None:
    client, server = pair()
    assert server.compress(b"Hello") == bytes.fromhex("f248cdc9c90700")
    assert client.decompress(bytes.fromhex("f248cdc9c90700"), True, 1000) == b"Hello"


def test_rfc_context_takeover_second_message() -> None:
    client, server = pair()
    assert server.compress(b"Hello") == bytes.fromhex("f248cdc9c90700")
    assert server.compress(b"Hello") == bytes.fromhex("f200110000")
    assert client.decompress(bytes.fromhex("f248cdc9c90700"), True, 1000) == b"Hello"
    assert client.decompress(bytes.fromhex("f200110000"), True, 1000) == b"Hello"


def test_rfc_no_context_takeover_repeats() -> None:
    _, server = pair(server_no_context_takeover=True)
    assert server.compress(b"Hello") == server.compress(b"Hello") == bytes.fromhex("f248cdc9c90700")


def test_rfc_uncompressed_block_and_fragments() -> None:
    # 7.2.3.3: a message using a "stored" block, and 7.2.3.2: split across two frames.
    client, _ = pair()
    assert (
        client.decompress(bytes.fromhex("f248cd"), False, 1000)
        + client.decompress(bytes.fromhex("c9c90700"), True, 1000)
        == b"Hello"
    )
    c2, _ = pair()
    assert c2.decompress(bytes.fromhex("000500faff48656c6c6f00"), True, 1000) == b"Hello"


def test_empty_message() -> None:
    client, server = pair()
    data = server.compress(b"")
    assert data is not None
    assert client.decompress(data, True, 10) == b""


# --------------------------------------------------------------- parameters

COMBOS = list(itertools.product([False, True], [False, True], [9, 12, 15], [9, 11, 15]))


@pytest.mark.parametrize(("snct", "cnct", "sbits", "cbits"), COMBOS)
def test_round_trips_with_every_parameter(snct: bool, cnct: bool, sbits: int, cbits: int) -> None:
    client, server = pair(
        server_no_context_takeover=snct,
        client_no_context_takeover=cnct,
        server_max_window_bits=sbits,
        client_max_window_bits=cbits,
    )
    messages = [b"abc" * 500, os.urandom(3000), b"abc" * 500, b"", b"x" * 70_000]
    for m in messages:
        for sender, receiver in ((client, server), (server, client)):
            data = sender.compress(m)
            assert data is not None
            assert receiver.decompress(data, True, 1 << 20) == m


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 100])
def test_inflate_fed_in_pieces(piece: int) -> None:
    client, server = pair()
    payload = (b"the quick brown fox " * 300) + os.urandom(200)
    data = server.compress(payload)
    assert data is not None
    out = b""
    for i in range(0, len(data), piece):
        chunk = data[i : i + piece]
        out += client.decompress(chunk, i + piece >= len(data), 1 << 20)
    assert out == payload


def test_interop_with_raw_zlib_stream() -> None:
    raw = zlib.compressobj(9, zlib.DEFLATED, -10)
    data = raw.compress(b"zlib says hi " * 100) + raw.flush(zlib.Z_SYNC_FLUSH)
    client, _ = pair()
    assert client.decompress(data[:-4], True, 1 << 20) == b"zlib says hi " * 100


def test_window_8_inflates_and_never_deflates() -> None:
    # A peer limited to 8 bits: we accept it, inflate with 9, and send uncompressed.
    codec = PerMessageDeflate(is_client=False, server_max_window_bits=8, client_max_window_bits=8, compress_threshold=0)
    assert codec.compress(b"x" * 1000) is None
    raw = zlib.compressobj(6, zlib.DEFLATED, -9)
    data = raw.compress(b"y" * 2000) + raw.flush(zlib.Z_SYNC_FLUSH)
    assert codec.decompress(data[:-4], True, 1 << 20) == b"y" * 2000


def test_threshold() -> None:
    codec = PerMessageDeflate(is_client=True, compress_threshold=100)
    assert codec.compress(b"x" * 99) is None
    assert codec.compress(b"x" * 100) is not None


# -------------------------------------------------------------------- limits


def test_deflate_bomb_is_bounded() -> None:
    _, server = pair()
    bomb = server.compress(bytes(10_000_000))
    assert bomb is not None and len(bomb) < 20_000
    client, _ = pair()
    limit = 1 << 20
    produced = 0
    with pytest.raises(ProtocolError) as info:
        for i in range(0, len(bomb), 1024):
            out = client.decompress(bomb[i : i + 1024], i + 1024 >= len(bomb), limit - produced)
            produced += len(out)
            assert produced <= limit
    assert (info.value.code, info.value.cause) == (1009, "message.too_big")


def test_corrupt_data_is_1007() -> None:
    client, _ = pair()
    with pytest.raises(ProtocolError) as info:
        client.decompress(b"\xff\xff\xff\xff", True, 100)
    assert (info.value.code, info.value.cause) == (1007, "deflate.invalid")


def test_bomb_through_connection_ends_with_1009() -> None:
    _, server_codec = pair()
    sender = Connection(True, deflate=PerMessageDeflate(is_client=True, compress_threshold=0))
    receiver = Connection(False, deflate=server_codec, max_size=1000)
    receiver.receive_data(sender.send_binary(bytes(100_000)))
    ending = receiver.receive_eof()
    assert (ending.code, ending.cause) == (1009, "message.too_big")


def test_connection_with_deflate_round_trip_and_rsv1() -> None:
    c = Connection(True, deflate=PerMessageDeflate(is_client=True, compress_threshold=0))
    s = Connection(False, deflate=PerMessageDeflate(is_client=False, compress_threshold=0))
    frame = c.send_text("héllo " * 50)
    assert frame[0] == 0xC1  # FIN + RSV1 + text
    assert s.receive_data(frame) == [TextMessage("héllo " * 50)]
    assert c.receive_data(s.send_binary(b"\x00" * 300)) == [BinaryMessage(b"\x00" * 300)]


def test_rsv1_on_continuation_is_protocol_error() -> None:
    c = Connection(True)
    s = Connection(False, deflate=PerMessageDeflate(is_client=False))
    s.receive_data(c.send_frame(0x1, b"a", fin=False) + c.send_frame(0x0, b"b", rsv1=True))
    ending = s.receive_eof()
    assert (ending.code, ending.cause) == (1002, "protocol.reserved_bits")


def test_rsv1_on_control_frame_is_protocol_error() -> None:
    c = Connection(True)
    s = Connection(False, deflate=PerMessageDeflate(is_client=False))
    s.receive_data(c.send_frame(0x9, b"", rsv1=True))
    assert s.receive_eof().cause == "protocol.reserved_bits"


# --------------------------------------------------------------- negotiation


def test_default_client_offer() -> None:
    assert DeflateConfig().client_offers() == [("permessage-deflate", [("client_max_window_bits", None)])]


def test_client_offer_with_fallback() -> None:
    offers = DeflateConfig(
        server_no_context_takeover=True, server_max_window_bits=10, client_max_window_bits=12
    ).client_offers()
    assert offers == [
        (
            "permessage-deflate",
            [
                ("server_no_context_takeover", None),
                ("server_max_window_bits", "10"),
                ("client_max_window_bits", "12"),
            ],
        ),
        ("permessage-deflate", [("client_max_window_bits", None)]),
    ]


def test_server_accepts_first_valid_offer() -> None:
    offers = [
        ("x-other", []),
        ("permessage-deflate", [("bogus", None)]),
        ("permessage-deflate", [("server_max_window_bits", "16")]),
        ("permessage-deflate", [("client_max_window_bits", None), ("server_no_context_takeover", None)]),
    ]
    result = DeflateConfig().server_negotiate(offers)
    assert result is not None
    params, codec = result
    assert params == [("server_no_context_takeover", None)]
    assert codec.server_no_context_takeover


def test_server_declines_everything_invalid() -> None:
    bad = [
        ("permessage-deflate", [("server_no_context_takeover", "1")]),
        ("permessage-deflate", [("client_max_window_bits", "7")]),
        ("permessage-deflate", [("server_max_window_bits", None)]),
        ("permessage-deflate", [("server_max_window_bits", "010")]),
        ("permessage-deflate", [("client_no_context_takeover", None), ("client_no_context_takeover", None)]),
    ]
    assert DeflateConfig().server_negotiate(bad) is None
    assert DeflateConfig().server_negotiate([]) is None


def test_server_limits_windows() -> None:
    config = DeflateConfig(server_max_window_bits=10, client_max_window_bits=11, client_no_context_takeover=True)
    result = config.server_negotiate([("permessage-deflate", [("client_max_window_bits", "13")])])
    assert result is not None
    params, codec = result
    assert params == [
        ("client_no_context_takeover", None),
        ("server_max_window_bits", "10"),
        ("client_max_window_bits", "11"),
    ]
    assert (codec.server_max_window_bits, codec.client_max_window_bits) == (10, 11)
    # Limiting the client's window needs client_max_window_bits in the offer.
    assert config.server_negotiate([("permessage-deflate", [])]) is None


def test_server_honours_offered_server_window() -> None:
    result = DeflateConfig(server_max_window_bits=12).server_negotiate(
        [("permessage-deflate", [("server_max_window_bits", "10")])]
    )
    assert result is not None and result[0] == [("server_max_window_bits", "10")]
    eight = DeflateConfig().server_negotiate([("permessage-deflate", [("server_max_window_bits", "8")])])
    assert eight is not None and eight[0] == [("server_max_window_bits", "8")]
    assert eight[1].compress(b"x" * 1000) is None  # accepted, sent uncompressed


def test_server_configured_8_answers_9() -> None:
    result = DeflateConfig(server_max_window_bits=8).server_negotiate([("permessage-deflate", [])])
    assert result is not None and result[0] == [("server_max_window_bits", "9")]


def test_client_accepts_and_validates_response() -> None:
    codec = DeflateConfig().client_accept([("server_max_window_bits", "10"), ("client_no_context_takeover", None)])
    assert (codec.server_max_window_bits, codec.client_no_context_takeover) == (10, True)
    for params, message in [
        ([("client_max_window_bits", None)], "needs a value"),
        ([("server_max_window_bits", "16")], "8 to 15"),
        ([("mystery", None)], "unknown"),
        ([("server_no_context_takeover", None), ("server_no_context_takeover", None)], "twice"),
    ]:
        with pytest.raises(ExtensionParamsError, match=message):
            DeflateConfig().client_accept(params)
    with pytest.raises(ExtensionParamsError, match="larger"):
        DeflateConfig(client_max_window_bits=10).client_accept([("client_max_window_bits", "12")])


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        DeflateConfig(server_max_window_bits=16)
    with pytest.raises(ValueError):
        DeflateConfig(client_max_window_bits=7)
    with pytest.raises(ValueError):
        DeflateConfig(compress_threshold=-1)


def test_response_params() -> None:
    codec = PerMessageDeflate(
        is_client=False,
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=10,
        client_max_window_bits=9,
    )
    assert codec.response_params() == [
        ("server_no_context_takeover", None),
        ("client_no_context_takeover", None),
        ("server_max_window_bits", "10"),
        ("client_max_window_bits", "9"),
    ]


def test_shared_key_and_shared_compression() -> None:
    """Codecs without context takeover compress alike: one compression serves them all."""
    from wsdoctor.protocol._deflate import compress_shared

    assert PerMessageDeflate(is_client=False).shared_key is None  # context takeover: its own history
    assert (
        PerMessageDeflate(is_client=False, server_no_context_takeover=True, server_max_window_bits=8).shared_key is None
    )
    codec = PerMessageDeflate(is_client=False, server_no_context_takeover=True)
    key = codec.shared_key
    assert key == (15, 6, 8, 128)
    message = b"the same message for every connection " * 10
    shared = compress_shared(message, key)
    assert shared == codec.compress(message) and not codec.holds_contexts
    assert compress_shared(b"short", key) is None
    reader = PerMessageDeflate(is_client=True)
    assert reader.decompress(shared, True, 1 << 20) == message
