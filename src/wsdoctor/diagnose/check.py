"""The step-by-step connection check behind ``wsdoctor check`` and ``wsdoctor demo``.

A check is an ordinary dial with ``trace`` switched on, followed by one Ping and a
clean close: DNS, TCP, TLS, HTTP upgrade, negotiation, ping, close. Each step is
reported as it finishes (so the command line can show progress live; a proxy and
each redirect followed are steps too), and the check
stops at the first failing step with that failure's ending. The result is one value
that renders as text or as the stable JSON object documented in the README.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wsdoctor.aio._proxy import ProxySetting
from wsdoctor.aio.client import Step, connect
from wsdoctor.protocol._ending import Ending
from wsdoctor.protocol._errors import ConnectionClosed, WebSocketError
from wsdoctor.protocol._redact import redact_url

__all__ = ["EXIT_CODES", "CheckResult", "exit_code", "run_check"]

# The exit status of `wsdoctor check`, by the step that failed.
EXIT_CODES: dict[str, int] = {
    "ok": 0,
    "usage": 2,
    "dns": 3,
    "tcp": 4,
    "tls": 5,
    "http": 6,
    "negotiate": 7,
    "ping": 8,
    "close": 9,
    "proxy": 10,
    "redirect": 11,
}


@dataclass
class CheckResult:
    """What a check found: every step that ran and how the connection ended."""

    url: str
    ok: bool = False
    steps: list[Step] = field(default_factory=list)
    ending: Ending | None = None

    @property
    def failed_step(self) -> str | None:
        return next((s.name for s in self.steps if not s.ok), None)

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        ending = None
        if self.ending is not None:
            full = self.ending.to_dict(lang)
            ending = {
                "code": full["code"],
                "name": full["name"],
                "cause": full["cause"],
                "reason": full["reason"],
                "detail": full["detail"],
                "explanation": full["explanation"],
                "fix": full["fix"],
            }
        return {
            "url": self.url,
            "ok": self.ok,
            "steps": [
                {"name": s.name, "ok": s.ok, "ms": round(s.ms, 3), "details": _jsonable(s.details)} for s in self.steps
            ],
            "ending": ending,
        }


def exit_code(result: CheckResult) -> int:
    """0 when healthy, otherwise the code of the step that failed (see EXIT_CODES)."""
    if result.ok:
        return 0
    if result.ending is not None and result.ending.code == 1015:
        # A TLS 1.3 server refuses a missing client certificate only after the TLS
        # step has passed; the failure is still a TLS one.
        return EXIT_CODES["tls"]
    if result.ending is not None and result.ending.cause.startswith("proxy."):
        return EXIT_CODES["proxy"]  # even when it was the TCP step to the proxy that failed
    return EXIT_CODES.get(result.failed_step or "close", 1)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if hasattr(value, "__dataclass_fields__"):
        return {name: _jsonable(getattr(value, name)) for name in value.__dataclass_fields__}
    return str(value)


def client_ssl_context(ca: str | None = None, insecure: bool = False) -> ssl.SSLContext:
    """The TLS context a check dials with: the system's trust store, or ``ca``, or none."""
    context = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def run_check(
    url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    require_extensions: Sequence[str] = (),
    subprotocols: Sequence[str] = (),
    headers: Sequence[tuple[str, str]] = (),
    timeout: float = 10.0,
    proxy: ProxySetting = True,
    max_redirects: int = 10,
    max_size: int | None = 1 << 20,
    origin: str | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> CheckResult:
    """Dial ``url`` step by step, ping once, close; stop at the first failure.

    ``max_size`` and ``origin`` are the client's, so that a check sees what the client
    under diagnosis would: a server with an Origin allow-list, or one that sends a large
    message as soon as the connection opens.

    Bad arguments raise before any step runs, as :func:`connect` raises them.
    """
    result = CheckResult(redact_url(url))  # printed and written as JSON: no password

    def record(step: Step) -> None:
        result.steps.append(step)
        if on_step is not None:
            on_step(step)

    # Built outside the try: a bad argument is the caller's error to see (InvalidURI,
    # InvalidHeader...), not a failed step of the check.
    dial = connect(
        url,
        ssl=ssl_context if url.startswith("wss:") else None,
        require_extensions=require_extensions,
        subprotocols=subprotocols,
        extra_headers=headers,
        open_timeout=timeout,
        close_timeout=timeout,
        ping_interval=None,
        proxy=proxy,
        max_redirects=max_redirects,
        max_size=max_size,
        origin=origin,
        trace=record,
    )
    try:
        ws = await dial
    except WebSocketError as exc:
        result.ending = exc.ending
        return result

    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        rtt = await asyncio.wait_for(ws.ping(), timeout)
    except TimeoutError:
        record(Step("ping", False, (loop.time() - started) * 1000, {"error": f"no Pong within {timeout:g} s"}))
        result.ending = await ws.fail(1011, "keepalive.timeout", f"no Pong within {timeout:g} s of a Ping")
        return result
    except ConnectionClosed:
        ending = await ws.wait_closed()
        record(
            Step(
                "ping",
                False,
                (loop.time() - started) * 1000,
                {"error": "connection closed", "code": ending.code},
            )
        )
        result.ending = ending
        return result
    record(Step("ping", True, rtt * 1000, {"rtt_ms": round(rtt * 1000, 3)}))

    started = loop.time()
    ending = await ws.close(1000, "wsdoctor check")
    result.ending = ending
    details = {
        "sent": str(ending.sent) if ending.sent else None,
        "received": str(ending.received) if ending.received else None,
        "clean": ending.clean,
    }
    ok = ending.clean and ending.code == 1000
    record(Step("close", ok, (loop.time() - started) * 1000, details))
    result.ok = ok
    return result
