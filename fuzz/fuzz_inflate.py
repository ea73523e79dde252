"""Coverage-guided fuzzing of the permessage-deflate inflater.

Arbitrary compressed bytes, in frames, against a small ``max_size``: the inflater returns
at most ``max_length`` bytes or raises ``ProtocolError`` with 1007 (not deflate) or 1009
(too big); it never raises anything else and never returns more than allowed, so a
deflate bomb costs at most the limit. What the deflater produces, the inflater restores.

    PYTHONPATH=src python3 fuzz/fuzz_inflate.py fuzz/corpus/inflate -max_total_time=60
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["wsdoctor.protocol"]):
    from wsdoctor.protocol._deflate import PerMessageDeflate
    from wsdoctor.protocol._errors import ProtocolError


def TestOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    bits = fdp.ConsumeIntInRange(8, 15)
    reset = fdp.ConsumeBool()
    limit = fdp.ConsumeIntInRange(0, 1 << 17)
    frames = fdp.ConsumeIntInRange(1, 4)
    receiver = PerMessageDeflate(is_client=False, client_max_window_bits=bits, client_no_context_takeover=reset)
    for i in range(frames):
        chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4096) if i < frames - 1 else fdp.remaining_bytes())
        try:
            out = receiver.decompress(chunk, i == frames - 1, limit)
        except ProtocolError as exc:
            assert exc.code in (1007, 1009), exc.code
            break
        assert len(out) <= limit

    # What a peer's deflater sends, ours inflates back (the same window both ways).
    message = fdp.ConsumeBytes(fdp.remaining_bytes()) or data
    sender = PerMessageDeflate(is_client=True, client_max_window_bits=bits, client_no_context_takeover=reset)
    fresh = PerMessageDeflate(is_client=False, client_max_window_bits=bits, client_no_context_takeover=reset)
    compressed = sender.compress(message)
    if compressed is not None:
        assert fresh.decompress(compressed, True, len(message)) == message


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
