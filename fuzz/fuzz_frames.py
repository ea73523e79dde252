"""Coverage-guided fuzzing of the frame parser: any bytes, split anywhere, never raise.

The core turns every violation into a failure with a close code; an exception escaping
``receive_data`` or ``receive_eof``, a Close frame with a code that may not be sent, or
an ending with an impossible code is a bug.

    PYTHONPATH=src python3 fuzz/fuzz_frames.py fuzz/corpus/frames -max_total_time=60
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["wsdoctor.protocol"]):
    from wsdoctor.protocol._connection import Connection
    from wsdoctor.protocol._deflate import PerMessageDeflate
    from wsdoctor.protocol._events import CloseReceived

SENDABLE = set(range(1000, 1004)) | set(range(1007, 1015)) | set(range(3000, 5000))


def TestOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    is_client = fdp.ConsumeBool()
    deflate = None
    if fdp.ConsumeBool():
        bits = fdp.ConsumeIntInRange(8, 15)
        deflate = PerMessageDeflate(
            is_client=is_client,
            server_max_window_bits=bits,
            client_max_window_bits=bits,
            server_no_context_takeover=fdp.ConsumeBool(),
            client_no_context_takeover=fdp.ConsumeBool(),
        )
    max_size = fdp.ConsumeIntInRange(0, 1 << 16)
    max_frame = fdp.ConsumeIntInRange(0, 1 << 16) if fdp.ConsumeBool() else None
    conn = Connection(is_client, deflate=deflate, max_size=max_size, max_frame_size=max_frame)
    defer = fdp.ConsumeBool()
    conn.defer_failure = defer
    payload = fdp.ConsumeBytes(fdp.remaining_bytes())
    step = max(1, len(payload) // 7) if payload else 1
    for start in range(0, len(payload), step):
        for event in conn.receive_data(payload[start : start + step]):
            if isinstance(event, CloseReceived) and event.code is not None:
                assert event.code in SENDABLE, event
        if conn.failure_pending:
            conn.commit_failure()
        out = conn.data_to_send()
        if conn.failed:
            assert conn.close_sent is not None
        del out
    ending = conn.receive_eof("tcp.closed", "fuzz")
    assert 1000 <= ending.code <= 4999, ending
    assert ending is conn.receive_eof()


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
