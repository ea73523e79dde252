"""Coverage-guided fuzzing of the WebSocket URI parser and its redaction.

Any text either parses into a URI whose parts are consistent (a host, a port in range,
a resource starting with "/", and a rendering that parses back to the same parts) or
raises ``InvalidURI``; and once redacted, a URI with a password parses to the same
host with the password masked.

    PYTHONPATH=src python3 fuzz/fuzz_uri.py fuzz/corpus/uri -max_total_time=60
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["wsdoctor.protocol", "urllib.parse"]):
    from wsdoctor.protocol._redact import MASK, redact_url
    from wsdoctor.protocol._uri import InvalidURI, parse_uri


def TestOneInput(data: bytes) -> None:
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))
    try:
        uri = parse_uri(text)
    except InvalidURI:
        return
    assert uri.host, text
    assert 0 <= uri.port <= 65535, (text, uri.port)
    assert uri.resource.startswith("/"), (text, uri.resource)
    again = parse_uri(str(uri))
    assert (again.secure, again.host, again.port, again.resource) == (uri.secure, uri.host, uri.port, uri.resource)
    if uri.user_info is not None and uri.user_info[1]:
        masked = parse_uri(redact_url(text))
        assert masked.host == uri.host and masked.user_info is not None, text
        assert masked.user_info[1] == MASK, (text, masked.user_info)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
