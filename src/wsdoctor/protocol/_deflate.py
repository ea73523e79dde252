"""permessage-deflate (RFC 7692): negotiation for both roles and the per-message codec.

Limits
------
Inflation is bounded *while it happens*: :meth:`PerMessageDeflate.decompress` asks
zlib for at most one byte more than the message may still grow, so a deflate bomb
(a few kilobytes that inflate to gigabytes) ends with 1009 after producing about
``max_size`` bytes, never more.

Window size 8
-------------
RFC 7692 allows LZ77 windows of 8 to 15 bits. zlib cannot *deflate* with an
8-bit raw window (``compressobj(wbits=-8)`` is refused, and older zlib silently used
9, which a strict peer with a 256-byte window may fail to inflate). wsdoctor
therefore handles 8 like this:

- inflating always works: a 9-bit window inflates any stream made with 8 bits, so
  the inflater is created with ``max(bits, 9)``;
- when a window of 8 bits is negotiated for *our* direction (a client offered
  ``server_max_window_bits=8``, or a server answered ``client_max_window_bits=8``),
  the extension is still accepted but our messages in that direction are sent
  uncompressed (RSV1 clear). RFC 7692 lets a sender leave any message
  uncompressed, so this is conformant and interoperates with every peer;
- a server configured with ``server_max_window_bits=8`` answers 9 instead when the
  offer allows it.
"""

from __future__ import annotations

import zlib

from wsdoctor.protocol._errors import ProtocolError, WebSocketError
from wsdoctor.protocol._headers import ExtensionItem

__all__ = ["DeflateConfig", "ExtensionParamsError", "PerMessageDeflate"]

NAME = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"
Params = list[tuple[str, str | None]]


class ExtensionParamsError(WebSocketError):
    """The peer's permessage-deflate parameters cannot be accepted."""


class PerMessageDeflate:
    """The negotiated codec of one connection: one deflater and one inflater."""

    name = NAME

    def __init__(
        self,
        *,
        is_client: bool,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int = 15,
        client_max_window_bits: int = 15,
        compress_threshold: int = 128,
        level: int = 6,
        mem_level: int = 8,
    ) -> None:
        self.is_client = is_client
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.compress_threshold = compress_threshold
        self.level = level
        self.mem_level = mem_level
        if is_client:
            self._local_reset, self._remote_reset = client_no_context_takeover, server_no_context_takeover
            self._local_bits, self._remote_bits = client_max_window_bits, server_max_window_bits
        else:
            self._local_reset, self._remote_reset = server_no_context_takeover, client_no_context_takeover
            self._local_bits, self._remote_bits = server_max_window_bits, client_max_window_bits
        # zlib's contexts are created on the first compressed message, not here: a
        # deflater with a 15-bit window holds about 256 KiB and an inflater 40 KiB, which
        # an idle connection (or one whose messages are all below compress_threshold)
        # should not pay for. Without context takeover they are dropped after each message.
        self._inflater: zlib._Decompress | None = None
        self._deflater: zlib._Compress | None = None

    def _new_inflater(self) -> zlib._Decompress:
        return zlib.decompressobj(wbits=-max(self._remote_bits, 9))

    def _new_deflater(self) -> zlib._Compress:
        return zlib.compressobj(self.level, zlib.DEFLATED, -self._local_bits, self.mem_level)

    def decompress(self, data: bytes | memoryview, fin: bool, max_length: int) -> bytes:
        """Inflate one frame's payload, producing at most ``max_length`` bytes."""
        if fin:
            data = b"".join((data, _TAIL))
        inflater = self._inflater
        if inflater is None:
            inflater = self._inflater = self._new_inflater()
        try:
            out = inflater.decompress(data, max_length + 1)
        except zlib.error as exc:
            raise ProtocolError(1007, "deflate.invalid", f"compressed data could not be inflated: {exc}") from None
        if len(out) > max_length:
            raise ProtocolError(1009, "message.too_big", "a compressed message inflates beyond max_size")
        if fin and self._remote_reset:
            self._inflater = None
        return out

    def compress(self, data: bytes | bytearray | memoryview) -> bytes | None:
        """Deflate a whole message, or None to send it uncompressed (small, or window 8)."""
        if len(data) < self.compress_threshold or self._local_bits < 9:
            # Window 8: zlib cannot honour it, so send uncompressed (see module docs).
            return None
        deflater = self._deflater
        if deflater is None:
            deflater = self._new_deflater()
            if not self._local_reset:
                self._deflater = deflater
        out = deflater.compress(data) + deflater.flush(zlib.Z_SYNC_FLUSH)
        if out.endswith(_TAIL):
            out = out[:-4]
        return out

    @property
    def holds_contexts(self) -> bool:
        """Whether zlib contexts are alive now (they are created on demand, see __init__)."""
        return self._inflater is not None or self._deflater is not None

    @property
    def shared_key(self) -> tuple[int, int, int, int] | None:
        """Equal keys compress a message to equal bytes; None when the output depends on history.

        Without context takeover in our direction every message starts from a fresh
        deflater, so two connections with the same window, level and memory level
        produce the same bytes and one compression can serve both. With context
        takeover (the RFC 7692 default) each connection's output depends on what it
        sent before. A window of 8 bits sends uncompressed (see the module docs).
        """
        if not self._local_reset or self._local_bits < 9:
            return None
        return (self._local_bits, self.level, self.mem_level, self.compress_threshold)

    def response_params(self) -> Params:
        """The parameters a server puts in its response for this codec."""
        params: Params = []
        if self.server_no_context_takeover:
            params.append(("server_no_context_takeover", None))
        if self.client_no_context_takeover:
            params.append(("client_no_context_takeover", None))
        if self.server_max_window_bits != 15:
            params.append(("server_max_window_bits", str(self.server_max_window_bits)))
        if self.client_max_window_bits != 15:
            params.append(("client_max_window_bits", str(self.client_max_window_bits)))
        return params


def compress_shared(data: bytes | bytearray | memoryview, key: tuple[int, int, int, int]) -> bytes | None:
    """Deflate a whole message as every codec with this :attr:`PerMessageDeflate.shared_key` would.

    Returns None when those codecs would send it uncompressed (below their threshold).
    """
    bits, level, mem_level, threshold = key
    if len(data) < threshold:
        return None
    deflater = zlib.compressobj(level, zlib.DEFLATED, -bits, mem_level)
    out = deflater.compress(data) + deflater.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4] if out.endswith(_TAIL) else out


def _bits(value: str | None, name: str) -> int:
    if value is None or not value.isdigit() or value.startswith("0") or not 8 <= int(value) <= 15:
        raise ExtensionParamsError(f"{name}={value} is not a window size from 8 to 15")
    return int(value)


def _parse(params: Params, *, offer: bool) -> dict[str, int | bool | None]:
    """Check one parameter list; raise ExtensionParamsError on anything RFC 7692 forbids."""
    seen: dict[str, int | bool | None] = {}
    for name, value in params:
        if name in seen:
            raise ExtensionParamsError(f"{name} appears twice")
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                raise ExtensionParamsError(f"{name} takes no value")
            seen[name] = True
        elif name == "server_max_window_bits":
            seen[name] = _bits(value, name)
        elif name == "client_max_window_bits":
            if value is None:
                if not offer:
                    raise ExtensionParamsError("client_max_window_bits needs a value in a response")
                seen[name] = None
            else:
                seen[name] = _bits(value, name)
        else:
            raise ExtensionParamsError(f"unknown parameter {name}")
    return seen


class DeflateConfig:
    """What one side is willing to negotiate; the defaults are compression="deflate"."""

    def __init__(
        self,
        *,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | None = None,
        compress_threshold: int = 128,
        level: int = 6,
        mem_level: int = 8,
    ) -> None:
        for name, bits in (
            ("server_max_window_bits", server_max_window_bits),
            ("client_max_window_bits", client_max_window_bits),
        ):
            if bits is not None and not 8 <= bits <= 15:
                raise ValueError(f"{name} must be from 8 to 15, not {bits}")
        if compress_threshold < 0:
            raise ValueError("compress_threshold cannot be negative")
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.compress_threshold = compress_threshold
        self.level = level
        self.mem_level = mem_level

    def _codec(self, is_client: bool, snct: bool, cnct: bool, smwb: int, cmwb: int) -> PerMessageDeflate:
        return PerMessageDeflate(
            is_client=is_client,
            server_no_context_takeover=snct,
            client_no_context_takeover=cnct,
            server_max_window_bits=smwb,
            client_max_window_bits=cmwb,
            compress_threshold=self.compress_threshold,
            level=self.level,
            mem_level=self.mem_level,
        )

    # ---------------------------------------------------------------- client

    def client_offers(self) -> list[ExtensionItem]:
        """The offers to send, preferred first, with a plain fallback after restrictions."""
        params: Params = []
        if self.server_no_context_takeover:
            params.append(("server_no_context_takeover", None))
        if self.client_no_context_takeover:
            params.append(("client_no_context_takeover", None))
        if self.server_max_window_bits is not None:
            params.append(("server_max_window_bits", str(self.server_max_window_bits)))
        if self.client_max_window_bits is not None:
            params.append(("client_max_window_bits", str(self.client_max_window_bits)))
        else:
            params.append(("client_max_window_bits", None))
        offers: list[ExtensionItem] = [(NAME, params)]
        if self.server_no_context_takeover or self.server_max_window_bits is not None:
            offers.append((NAME, [("client_max_window_bits", None)]))
        return offers

    def client_accept(self, params: Params) -> PerMessageDeflate:
        """Check the server's response parameters and build the client's codec."""
        got = _parse(params, offer=False)
        smwb = got.get("server_max_window_bits")
        cmwb = got.get("client_max_window_bits")
        if self.client_max_window_bits is not None and isinstance(cmwb, int) and cmwb > self.client_max_window_bits:
            raise ExtensionParamsError(
                f"client_max_window_bits={cmwb} is larger than the {self.client_max_window_bits} offered"
            )
        return self._codec(
            True,
            bool(got.get("server_no_context_takeover", False)),
            bool(got.get("client_no_context_takeover", False)) or self.client_no_context_takeover,
            smwb if isinstance(smwb, int) else 15,
            cmwb if isinstance(cmwb, int) else (self.client_max_window_bits or 15),
        )

    # ---------------------------------------------------------------- server

    def server_negotiate(self, offers: list[ExtensionItem]) -> tuple[Params, PerMessageDeflate] | None:
        """Accept the first acceptable permessage-deflate offer, or None to decline them all."""
        for name, params in offers:
            if name != NAME:
                continue
            try:
                got = _parse(params, offer=True)
            except ExtensionParamsError:
                continue  # RFC 7692 5.1: decline an offer we cannot accept, try the next
            snct = bool(got.get("server_no_context_takeover", False)) or self.server_no_context_takeover
            cnct = bool(got.get("client_no_context_takeover", False)) or self.client_no_context_takeover
            offered_smwb = got.get("server_max_window_bits")
            smwb = 15
            if isinstance(offered_smwb, int):
                smwb = offered_smwb
            if self.server_max_window_bits is not None:
                own = max(self.server_max_window_bits, 9)
                if isinstance(offered_smwb, int) and own > offered_smwb:
                    own = offered_smwb
                smwb = min(smwb, own)
            client_offered_cmwb = "client_max_window_bits" in got
            offered_cmwb = got.get("client_max_window_bits")
            cmwb = 15
            if self.client_max_window_bits is not None:
                if not client_offered_cmwb:
                    continue  # we need to limit the client's window but it cannot be told
                cmwb = self.client_max_window_bits
                if isinstance(offered_cmwb, int):
                    cmwb = min(cmwb, offered_cmwb)
            elif isinstance(offered_cmwb, int):
                cmwb = offered_cmwb
            codec = self._codec(False, snct, cnct, smwb, cmwb)
            response: Params = []
            if snct:
                response.append(("server_no_context_takeover", None))
            if cnct:
                response.append(("client_no_context_takeover", None))
            if isinstance(offered_smwb, int) or smwb != 15:
                response.append(("server_max_window_bits", str(smwb)))
            if client_offered_cmwb and cmwb != 15:
                response.append(("client_max_window_bits", str(cmwb)))
            return response, codec
        return None


def server_response(
    config: DeflateConfig | None, offers: list[ExtensionItem]
) -> tuple[list[ExtensionItem], PerMessageDeflate | None]:
    """The extensions a server answers to a client's offers, and the codec it then uses.

    One place for the server side of the negotiation, so the asyncio server and the ASGI
    protocol cannot answer the same offers differently.
    """
    negotiated = config.server_negotiate(offers) if config is not None and offers else None
    if negotiated is None:
        return [], None
    params, codec = negotiated
    return [(NAME, params)], codec
