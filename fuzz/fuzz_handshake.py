"""Coverage-guided fuzzing of the opening handshake, as server and as client.

Whatever bytes arrive, the server's parser either returns a request, waits for more, or
raises ``HandshakeFailed`` with a status to answer; validation and negotiation raise only
wsdoctor's own errors. The same holds for the client reading a response. Anything else
escaping is a bug.

    PYTHONPATH=src python3 fuzz/fuzz_handshake.py fuzz/corpus/handshake -max_total_time=60
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["wsdoctor.protocol", "h11"]):
    from wsdoctor.protocol._deflate import DeflateConfig
    from wsdoctor.protocol._errors import WebSocketError
    from wsdoctor.protocol._handshake import ClientHandshake, HandshakeFailed, ServerHandshake
    from wsdoctor.protocol._uri import parse_uri

URI = parse_uri("ws://127.0.0.1:8765/chat")


def server_side(payload: bytes, cut: int) -> None:
    handshake = ServerHandshake()
    try:
        request = handshake.receive_data(payload[:cut]) or handshake.receive_data(payload[cut:])
        if request is None:
            request = handshake.receive_eof()
        if request is None:
            return
        offer = handshake.validate(request)
        negotiated = DeflateConfig().server_negotiate(offer.extensions)
        params = [] if negotiated is None else [("permessage-deflate", negotiated[0])]
        assert handshake.accept(offer, subprotocol=None, extensions=params).startswith(b"HTTP/1.1 101 ")
    except HandshakeFailed as exc:
        assert 400 <= exc.status <= 599, exc.status
        assert exc.ending is not None
        assert handshake.reject(exc.status, exc.body, exc.headers).startswith(b"HTTP/1.1 ")


def client_side(payload: bytes, cut: int) -> None:
    handshake = ClientHandshake(URI, extensions=DeflateConfig().client_offers(), subprotocols=["a", "b"])
    handshake.request_bytes()
    try:
        response = handshake.receive_data(payload[:cut]) or handshake.receive_data(payload[cut:])
        if response is None:
            response = handshake.receive_eof()
        if response is None:
            return
        accepted = handshake.validate(response)
        for name, params in accepted.extensions:
            if name == "permessage-deflate":
                DeflateConfig().client_accept(params)
    except WebSocketError as exc:
        assert exc.ending is not None


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    as_server = data[0] & 1
    payload = data[1:]
    cut = data[0] % (len(payload) + 1) if payload else 0
    if as_server:
        server_side(payload, cut)
    else:
        client_side(payload, cut)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
