"""The TLS step of a dial or an accept, and what a failed TLS handshake means.

TLS runs as its own step (``loop.start_tls`` on an open TCP connection) so that it
can be timed, reported, and, when it fails, explained. OpenSSL's verification error
says *that* the certificate was refused; to say *why* in terms a person can act on
(the expiry date, the names the certificate covers, the issuer that is missing) the
client makes one more short dial with verification off and reads the chain the
server actually sends.

Telling an incomplete chain from an untrusted CA
------------------------------------------------
Both fail with "unable to get local issuer certificate" (verify code 20). The chain
is called incomplete when the last certificate the server sent is not self-issued
(so the server stopped before a root) and the leaf carries an Authority Information
Access "CA Issuers" URL, which every public CA puts in the certificates it issues
and which is how browsers quietly fetch a missing intermediate. Without that hint
the issuer is reported as untrusted, with its name, which is the actionable fact in
both cases.
"""

from __future__ import annotations

import _ssl
import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from wsdoctor.aio._scheme import answers_http
from wsdoctor.protocol._ending import Ending
from wsdoctor.protocol._errors import TLSHandshakeError

__all__ = [
    "CertInfo",
    "TLSInfo",
    "classify_client_tls_error",
    "classify_server_tls_error",
    "describe_certificate",
    "start_client_tls",
    "tls_info",
]


@dataclass(frozen=True)
class CertInfo:
    """The facts of one certificate that explain a TLS failure."""

    subject: str
    issuer: str
    names: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    self_signed: bool
    is_ca: bool
    has_aia_issuer: bool


@dataclass(frozen=True)
class TLSInfo:
    """What a successful TLS handshake negotiated, and the chain the server sent."""

    version: str
    cipher: str
    chain: tuple[CertInfo, ...]


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if attrs:
        value = attrs[0].value
        return value if isinstance(value, str) else value.decode()
    return name.rfc4514_string()


def describe_certificate(der: bytes) -> CertInfo:
    cert = x509.load_der_x509_certificate(der)
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += [str(n.value) for n in san if isinstance(n, x509.DNSName | x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    if not names:
        names.append(_cn(cert.subject))
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        has_aia = any(d.access_method == AuthorityInformationAccessOID.CA_ISSUERS for d in aia)
    except x509.ExtensionNotFound:
        has_aia = False
    return CertInfo(
        subject=_cn(cert.subject),
        issuer=_cn(cert.issuer),
        names=tuple(names),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        self_signed=cert.subject == cert.issuer,
        is_ca=is_ca,
        has_aia_issuer=has_aia,
    )


# The format argument of Certificate.public_bytes (_ssl.ENCODING_DER; not exported by ssl).
_ENCODING_DER: int = getattr(_ssl, "ENCODING_DER", 2)


def _unverified_chain(ssl_object: Any) -> list[bytes]:
    """The DER certificates the peer sent, leaf first (public API on 3.13, private before)."""
    getter = getattr(ssl_object, "get_unverified_chain", None)
    if getter is None:
        inner = getattr(ssl_object, "_sslobj", None)
        getter = getattr(inner, "get_unverified_chain", None)
    if getter is None:  # pragma: no cover - every supported Python has one of the two
        der = ssl_object.getpeercert(binary_form=True)
        return [der] if der else []
    chain = getter() or []
    out = []
    for cert in chain:
        if isinstance(cert, bytes):
            out.append(cert)
        else:
            out.append(cert.public_bytes(_ENCODING_DER))
    return out


def tls_info(ssl_object: Any) -> TLSInfo:
    cipher = ssl_object.cipher()
    chain = tuple(describe_certificate(der) for der in _unverified_chain(ssl_object))
    return TLSInfo(version=ssl_object.version() or "", cipher=cipher[0] if cipher else "", chain=chain)


def _date(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _tls(cause: str, detail: str, initiator: str = "local", **details: str) -> Ending:
    return Ending(code=1015, cause=cause, initiator=initiator, detail=detail, details=details)  # type: ignore[arg-type]


# OpenSSL reason codes, by what they tell about the other side.
_NOT_TLS_MARKS = (
    "WRONG_VERSION_NUMBER",
    "RECORD_LAYER_FAILURE",
    "HTTP_REQUEST",
    "PACKET_LENGTH_TOO_LONG",
    "UNKNOWN_PROTOCOL",
)
_VERSION_MARKS = (
    "PROTOCOL_VERSION",
    "UNSUPPORTED_PROTOCOL",
    "NO_PROTOCOLS_AVAILABLE",
    "VERSION_TOO_LOW",
    "VERSION_TOO_HIGH",
)


def _marked(reason: str, marks: tuple[str, ...]) -> bool:
    return any(mark in reason for mark in marks)


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc)


def classify_client_tls_error(
    exc: BaseException,
    *,
    server_hostname: str,
    chain: Sequence[CertInfo] | None,
    now: datetime | None = None,
) -> Ending:
    """Turn a failed client TLS handshake into an ending with a precise ``tls.*`` cause."""
    now = now or datetime.now(UTC)
    leaf = chain[0] if chain else None
    names = ", ".join(leaf.names) if leaf else "unknown"
    if isinstance(exc, TimeoutError):
        return Ending(
            code=1006,
            cause="handshake.timeout",
            initiator="local",
            detail="the TLS handshake did not finish in time",
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        message = exc.verify_message or _reason(exc)
        if code == 10 or "expired" in message:
            when = f" on {_date(leaf.not_after)}" if leaf else ""
            return _tls("tls.expired", f"the certificate for {names} expired{when}")
        if code == 9 or "not yet valid" in message:
            when = f" from {_date(leaf.not_before)}" if leaf else ""
            return _tls("tls.not_yet_valid", f"the certificate for {names} is valid only{when}")
        if code == 62 or "hostname mismatch" in message.lower() or "ip address mismatch" in message.lower():
            return _tls("tls.hostname", f"dialed {server_hostname!r}, the certificate is for: {names}")
        if code == 18:
            return _tls(
                "tls.self_signed",
                f"the certificate for {names} is self-signed ({leaf.subject if leaf else ''})",
            )
        if code in (20, 21) and chain:
            last = chain[-1]
            if not last.self_signed and chain[0].has_aia_issuer:
                count = len(chain)
                return _tls(
                    "tls.incomplete_chain",
                    f"the server sent {count} certificate{'s' if count != 1 else ''}; "
                    f"the issuer {last.issuer!r} was not included",
                )
            return _tls("tls.untrusted", f"the issuer {last.issuer!r} is not trusted by this client")
        if code in (19, 2, 20, 21, 27):
            issuer = chain[-1].issuer if chain else "unknown"
            return _tls("tls.untrusted", f"the issuer {issuer!r} is not trusted by this client")
        return _tls("tls.other", f"certificate verification failed: {message}")
    reason = _reason(exc)
    upper = reason.upper()
    if _marked(upper, _NOT_TLS_MARKS):
        return _tls("tls.not_tls", f"the server did not answer with TLS ({reason})")
    if _marked(upper, _VERSION_MARKS):
        return _tls("tls.version", f"no TLS version in common ({reason})")
    if isinstance(exc, ConnectionResetError | BrokenPipeError) or "EOF" in upper:
        return _tls("tls.other", f"the server closed the connection during the TLS handshake ({reason})")
    return _tls("tls.other", reason)


def classify_server_tls_error(exc: BaseException) -> Ending:
    """Turn a client's failed TLS handshake, seen by our server, into an ending."""
    if isinstance(exc, TimeoutError):
        return Ending(
            code=1006,
            cause="handshake.timeout",
            initiator="remote",
            detail="the client did not finish the TLS handshake in time",
        )
    reason = _reason(exc)
    upper = reason.upper()
    if "ALERT" in upper and any(
        k in upper
        for k in (
            "UNKNOWN_CA",
            "BAD_CERTIFICATE",
            "CERTIFICATE_EXPIRED",
            "CERTIFICATE_UNKNOWN",
            "UNSUPPORTED_CERTIFICATE",
            "CERTIFICATE_REVOKED",
            "DECRYPT_ERROR",
        )
    ):
        return _tls("tls.client_rejected", f"the client rejected our certificate: {reason}", "remote")
    if _marked(upper, _NOT_TLS_MARKS):
        return _tls("tls.not_tls", f"the client did not speak TLS ({reason})", "remote")
    if _marked(upper, _VERSION_MARKS):
        return _tls("tls.version", f"no TLS version in common with the client ({reason})", "remote")
    if isinstance(exc, ConnectionResetError | BrokenPipeError) or "EOF" in upper:
        return _tls(
            "tls.client_rejected",
            "the client dropped the connection during the TLS handshake, as a client that rejects the "
            "certificate does (with TLS 1.3 its alert often arrives as a reset)" + (f": {reason}" if reason else ""),
            "remote",
        )
    return _tls("tls.other", reason, "remote")


async def _peek(host: str, port: int, server_hostname: str, timeout: float) -> TLSInfo | None:
    """Handshake once more without verifying, only to read what the server offers."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    writer = None
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=server_hostname)
            return tls_info(writer.get_extra_info("ssl_object"))
    except (OSError, TimeoutError, ssl.SSLError, ValueError):
        return None
    finally:
        if writer is not None:
            # Close politely: an abort right after the handshake looks, to the server,
            # like a client that rejected its certificate.
            writer.close()
            with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)


_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


def _allows(context: ssl.SSLContext, version: str) -> bool:
    wanted = _VERSIONS.get(version)
    if wanted is None:
        return True
    low, high = context.minimum_version, context.maximum_version
    if low != ssl.TLSVersion.MINIMUM_SUPPORTED and wanted < low:
        return False
    return not (high != ssl.TLSVersion.MAXIMUM_SUPPORTED and wanted > high)


def _with_peek(
    exc: BaseException, ending: Ending, seen: TLSInfo, context: ssl.SSLContext, server_hostname: str
) -> Ending:
    """Refine a classification with what an unverified handshake showed."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return classify_client_tls_error(exc, server_hostname=server_hostname, chain=seen.chain)
    if not _allows(context, seen.version):
        low, high = context.minimum_version.name, context.maximum_version.name
        return _tls(
            "tls.version",
            f"the server speaks {seen.version}; this client allows {low} to {high}".replace("_", "."),
        )
    return ending


async def start_client_tls(
    transport: asyncio.Transport,
    protocol: asyncio.BaseProtocol,
    ssl_context: ssl.SSLContext,
    *,
    server_hostname: str,
    port: int,
    timeout: float,
    host: str | None = None,
) -> asyncio.Transport:
    """Upgrade an open TCP connection to TLS; raise TLSHandshakeError (1015) with its cause.

    ``host`` is the address the TCP connection reached; it is dialed once more, only
    to read the certificates when verification fails.
    """
    loop = asyncio.get_running_loop()
    peer = transport.get_extra_info("peername")
    address = host or (peer[0] if peer else None)
    try:
        async with asyncio.timeout(timeout):
            new = await loop.start_tls(transport, protocol, ssl_context, server_hostname=server_hostname)
    except (ssl.SSLError, OSError, TimeoutError, ConnectionError) as exc:
        transport.abort()
        ending = classify_client_tls_error(exc, server_hostname=server_hostname, chain=None)
        if address is not None and ending.cause == "tls.other" and not isinstance(exc, ssl.SSLCertVerificationError):
            # A plain server hangs up on a ClientHello; ask it in plain HTTP whether that is what it is.
            status_line = await answers_http(address, port, server_hostname, min(max(timeout, 0.2), 2.0))
            if status_line is not None:
                raise TLSHandshakeError(
                    _tls("tls.not_tls", f"the port answers plain HTTP ({status_line}), not TLS")
                ) from exc
        if address is not None and ending.cause in (
            "tls.other",
            "tls.expired",
            "tls.not_yet_valid",
            "tls.untrusted",
            "tls.self_signed",
            "tls.hostname",
        ):
            seen = await _peek(address, port, server_hostname, max(timeout, 1.0))
            if seen is not None:
                ending = _with_peek(exc, ending, seen, ssl_context, server_hostname)
        raise TLSHandshakeError(ending) from exc
    assert new is not None
    return new
