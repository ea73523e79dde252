"""The TLS step of a dial or an accept, and what a failed TLS handshake means.

TLS runs as its own step (``loop.start_tls`` on an open TCP connection) so that it
can be timed, reported, and, when it fails, explained. OpenSSL's verification error
says *that* the certificate was refused; to say *why* in terms a person can act on
(the expiry date, the names the certificate covers, the issuer that is missing) the
client makes one more short dial with verification off and reads the chain the
server actually sends.

Telling an incomplete chain from an untrusted CA
------------------------------------------------
Both fail with "unable to get local issuer certificate" (verify code 20): the client
does not know X, the issuer of the last certificate the server sent. The chain is
called incomplete, without doubt, when that last certificate is not self-issued (so
the server stopped before a root) and the leaf carries an Authority Information
Access "CA Issuers" URL, which every public CA puts in the certificates it issues
and which is how browsers quietly fetch a missing intermediate.

Without that URL (a private CA) the two cannot be told apart from the client: X may
be an intermediate the server should have sent, or a private root the client should
trust. The ending then says both (``details["variant"] = "ambiguous"``), the likelier
first, with the reason, and its cause id is the likelier one:

- an intermediate (``tls.incomplete_chain``) when X's name says so: it contains
  "Intermediate", "Issuing", "Sub"/"Subordinate" or "ICA" as a word;
- otherwise a root (``tls.untrusted``): X's name says "Root", or the server already
  sends a CA certificate (a server that sends its intermediates seldom forgets
  one), or nothing says otherwise (small private CAs usually sign leaves with the
  root itself).

A server that requires a client certificate
-------------------------------------------
With TLS 1.2 the server ends the handshake with a ``handshake_failure`` alert after
its CertificateRequest; with TLS 1.3 the client's handshake has already finished
when the server checks the certificate, so its ``certificate_required`` alert comes
with the first read (the HTTP response). Servers built on asyncio often drop the
connection without sending the alert at all. The CertificateRequest itself is the
reliable sign: when a dial ends that way, the explaining dial watches the handshake
messages and reports ``tls.client_cert_required`` when the server asked for one.
"""

from __future__ import annotations

import _ssl
import asyncio
import contextlib
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from wsdoctor.aio._scheme import answers_http
from wsdoctor.protocol._ending import Ending
from wsdoctor.protocol._errors import TLSHandshakeError

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "CertInfo",
    "TLSInfo",
    "classify_client_tls_error",
    "classify_closed_after_handshake",
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
    # The Extended Key Usage purposes, by name; empty when the extension is absent
    # (then the certificate is good for any purpose).
    purposes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TLSInfo:
    """What a successful TLS handshake negotiated, and the chain the server sent."""

    version: str
    cipher: str
    chain: tuple[CertInfo, ...]


def _cn(name: x509.Name) -> str:
    from cryptography.x509.oid import NameOID

    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if attrs:
        value = attrs[0].value
        return value if isinstance(value, str) else value.decode()
    return name.rfc4514_string()


# Extended key usages by OID (RFC 5280 4.2.1.12), so that naming them needs no import.
_PURPOSES = {
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
    "1.3.6.1.5.5.7.3.3": "codeSigning",
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
    "1.3.6.1.5.5.7.3.9": "OCSPSigning",
    "2.5.29.37.0": "anyExtendedKeyUsage",
}


def describe_certificate(der: bytes) -> CertInfo:
    # cryptography costs tens of milliseconds to import: pay it only when a certificate
    # must be read (a failed handshake to explain, or check's TLS step), not at import.
    from cryptography import x509
    from cryptography.x509.oid import AuthorityInformationAccessOID

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
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        purposes = tuple(_PURPOSES.get(oid.dotted_string, oid.dotted_string) for oid in eku)
    except x509.ExtensionNotFound:
        purposes = ()
    return CertInfo(
        subject=_cn(cert.subject),
        issuer=_cn(cert.issuer),
        names=tuple(names),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        self_signed=cert.subject == cert.issuer,
        is_ca=is_ca,
        has_aia_issuer=has_aia,
        purposes=purposes,
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
        if code == 26 or "unsupported certificate purpose" in message.lower():
            return _wrong_purpose(leaf, names)
        if code == 18:
            return _tls(
                "tls.self_signed",
                f"the certificate for {names} is self-signed ({leaf.subject if leaf else ''})",
            )
        if code in (20, 21) and chain:
            last = chain[-1]
            count = len(chain)
            sent = f"the server sent {count} certificate{'s' if count != 1 else ''}"
            if not last.self_signed and chain[0].has_aia_issuer:
                return _tls("tls.incomplete_chain", f"{sent}; the issuer {last.issuer!r} was not included")
            if not last.self_signed:
                return _unknown_issuer(chain, sent)
            return _tls("tls.untrusted", f"the issuer {last.issuer!r} is not trusted by this client")
        if code in (19, 2, 20, 21, 27):
            issuer = chain[-1].issuer if chain else "unknown"
            return _tls("tls.untrusted", f"the issuer {issuer!r} is not trusted by this client")
        return _tls("tls.other", f"certificate verification failed: {message}")
    reason = _reason(exc)
    upper = reason.upper()
    if "CERTIFICATE_REQUIRED" in upper:
        return _tls(
            "tls.client_cert_required",
            f"the server requires a client certificate and this client sent none ({reason})",
        )
    if _marked(upper, _NOT_TLS_MARKS):
        return _tls("tls.not_tls", f"the server did not answer with TLS ({reason})")
    if _marked(upper, _VERSION_MARKS):
        return _tls("tls.version", f"no TLS version in common ({reason})")
    if isinstance(exc, ConnectionResetError | BrokenPipeError) or "EOF" in upper:
        return _tls("tls.other", f"the server closed the connection during the TLS handshake ({reason})")
    return _tls("tls.other", reason)


# An issuer name that says "I am an intermediate" (see the module's docstring).
_INTERMEDIATE_NAME = re.compile(r"\b(intermediate|issuing|sub|subordinate|ica)\b", re.IGNORECASE)
_ROOT_NAME = re.compile(r"\broot\b", re.IGNORECASE)


def _unknown_issuer(chain: Sequence[CertInfo], sent: str) -> Ending:
    """The chain stops at an issuer this client does not know, and nothing says which kind it is."""
    issuer = chain[-1].issuer
    word = _INTERMEDIATE_NAME.search(issuer)
    if word and not _ROOT_NAME.search(issuer):
        cause, why = "tls.incomplete_chain", f"likelier a missing intermediate: its name says {word.group(0)!r}"
    elif _ROOT_NAME.search(issuer):
        cause, why = "tls.untrusted", "likelier an untrusted root: its name says 'Root'"
    elif chain[-1].is_ca:
        cause, why = "tls.untrusted", "likelier an untrusted root: the server already sends its intermediate"
    else:
        cause, why = "tls.untrusted", "likelier an untrusted root: private CAs often sign server certificates directly"
    both = (
        f"if {issuer!r} is an intermediate, the server must send it (full chain); "
        f"if it is a root, trust it on the client"
    )
    if cause == "tls.untrusted":
        both = (
            f"if {issuer!r} is a root, trust it on the client; "
            f"if it is an intermediate, the server must send it (full chain)"
        )
    detail = f"{sent}, issued by {issuer!r}, which this client does not know ({why}); {both}"
    return _tls(cause, detail, variant="ambiguous", issuer=issuer)


def _wrong_purpose(leaf: CertInfo | None, names: str) -> Ending:
    if leaf is not None and leaf.purposes:
        listed = ", ".join(leaf.purposes)
        return _tls(
            "tls.wrong_purpose",
            f"the certificate for {names} is not meant for a TLS server: its Extended Key Usage lists "
            f"{listed}, not serverAuth",
        )
    return _tls("tls.wrong_purpose", f"the certificate for {names} is not meant for a TLS server (no serverAuth)")


def _client_cert_required(reason: str, *, after_handshake: bool) -> Ending:
    how = f" ({reason})" if reason else ""
    during = "after the handshake" if after_handshake else "during the handshake"
    return _tls(
        "tls.client_cert_required",
        f"the server asks for a client certificate (CertificateRequest) and ended the connection {during}"
        f"{how}: this client sent none, or one the server does not accept",
    )


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
    if "PEER_DID_NOT_RETURN_A_CERTIFICATE" in upper or "CERTIFICATE_REQUIRED" in upper:
        return _tls("tls.client_cert_required", f"the client presented no certificate ({reason})")
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = exc.verify_message or reason
        return _tls("tls.client_cert_required", f"the client's certificate was refused: {message}")
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


@dataclass(frozen=True)
class _Peek:
    """What an unverified handshake showed: the chain, and whether the server asked for our certificate."""

    info: TLSInfo | None
    cert_requested: bool


# TLS content type and handshake message type of a CertificateRequest (RFC 8446 4.3.2, RFC 5246 7.4.4).
_HANDSHAKE = 22
_CERTIFICATE_REQUEST = 13


async def _peek(host: str, port: int, server_hostname: str, timeout: float) -> _Peek:
    """Handshake once more without verifying, only to read what the server offers and asks."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    requested: list[bool] = []

    def watch(conn: object, direction: str, version: object, content_type: int, msg_type: int, data: bytes) -> None:
        if direction == "read" and content_type == _HANDSHAKE and msg_type == _CERTIFICATE_REQUEST:
            requested.append(True)

    # The message callback is CPython's debugging hook (a private attribute, stable since 3.8):
    # the only way to see a CertificateRequest, which TLS 1.3 sends encrypted.
    with contextlib.suppress(AttributeError, TypeError):
        context._msg_callback = watch  # type: ignore[attr-defined]
    writer = None
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=server_hostname)
            return _Peek(tls_info(writer.get_extra_info("ssl_object")), bool(requested))
    except (OSError, TimeoutError, ssl.SSLError, ValueError):
        return _Peek(None, bool(requested))
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
    probe: bool = True,
) -> asyncio.Transport:
    """Upgrade an open TCP connection to TLS; raise TLSHandshakeError (1015) with its cause.

    ``host`` is the address the TCP connection reached; it is dialed once more, only
    to read the certificates when verification fails.
    """
    loop = asyncio.get_running_loop()
    peer = transport.get_extra_info("peername")
    # Through a proxy the server cannot be dialled directly: no second look then (probe=False).
    address = (host or (peer[0] if peer else None)) if probe else None
    try:
        async with asyncio.timeout(timeout):
            new = await loop.start_tls(transport, protocol, ssl_context, server_hostname=server_hostname)
    except (ssl.SSLError, OSError, TimeoutError, ConnectionError) as exc:
        transport.abort()
        ending = classify_client_tls_error(exc, server_hostname=server_hostname, chain=None)
        spoke_tls = "ALERT" in _reason(exc).upper()  # a TLS alert came back: the port speaks TLS
        if (
            address is not None
            and ending.cause == "tls.other"
            and not spoke_tls
            and not isinstance(exc, ssl.SSLCertVerificationError)
        ):
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
            "tls.wrong_purpose",
        ):
            peek = await _peek(address, port, server_hostname, max(timeout, 1.0))
            if peek.info is not None:
                ending = _with_peek(exc, ending, peek.info, ssl_context, server_hostname)
            elif peek.cert_requested and ending.cause == "tls.other":
                # The server asked for a certificate and refused the handshake without one.
                ending = _client_cert_required(_reason(exc), after_handshake=False)
        raise TLSHandshakeError(ending) from exc
    assert new is not None
    return new


async def classify_closed_after_handshake(
    exc: BaseException | None,
    *,
    host: str,
    port: int,
    server_hostname: str,
    timeout: float,
) -> Ending | None:
    """Explain a TLS connection the server ended before answering the upgrade request.

    ``exc`` is what ended the connection (``None`` for a plain EOF). A TLS 1.3 server
    that requires a client certificate checks it only after the client's handshake
    has finished, so its refusal (a ``certificate_required`` alert, or just a closed
    connection) shows here rather than in the TLS step. Returns the 1015 ending when
    that is what happened, ``None`` when the close has nothing to do with TLS.

    Without an alert the sign is a CertificateRequest seen by a second, unverified
    handshake; a server that asks for an *optional* certificate and then hangs up
    for another reason would be misread, which is why the detail says what was seen.
    """
    reason = _reason(exc) if exc is not None else ""
    if "CERTIFICATE_REQUIRED" in reason.upper():
        return _tls(
            "tls.client_cert_required",
            f"the server requires a client certificate and this client sent none ({reason})",
        )
    upper = reason.upper()
    refused = ("BAD_CERTIFICATE", "UNKNOWN_CA", "CERTIFICATE_EXPIRED", "CERTIFICATE_UNKNOWN")
    if isinstance(exc, ssl.SSLError) and "ALERT" in upper and any(k in upper for k in refused):
        return _tls("tls.client_cert_required", f"the server refused this client's certificate ({reason})")
    peek = await _peek(host, port, server_hostname, max(timeout, 1.0))
    if peek.cert_requested:
        return _client_cert_required(reason, after_handshake=peek.info is not None)
    return None
