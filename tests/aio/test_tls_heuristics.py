"""The unknown-issuer heuristic and the alert readings, on the facts a failed dial collects.

The dials themselves are tested against real servers in test_tls.py; these cases pin
down which of the two possible fixes comes first for issuer names no test PKI uses.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta

import pytest

from wsdoctor.aio._tls import CertInfo, classify_client_tls_error, classify_server_tls_error

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def cert(subject: str, issuer: str, *, is_ca: bool = False, aia: bool = False) -> CertInfo:
    return CertInfo(
        subject=subject,
        issuer=issuer,
        names=(subject,),
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=90),
        self_signed=subject == issuer,
        is_ca=is_ca,
        has_aia_issuer=aia,
    )


def unknown_issuer() -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed: unable to get local issuer certificate")
    exc.verify_code = 20
    exc.verify_message = "unable to get local issuer certificate"
    return exc


@pytest.mark.parametrize(
    ("chain", "cause", "why"),
    [
        ([cert("ws.example", "Example Issuing CA 2")], "tls.incomplete_chain", "its name says 'Issuing'"),
        ([cert("ws.example", "Corp Sub CA")], "tls.incomplete_chain", "its name says 'Sub'"),
        ([cert("ws.example", "ACME ICA G2")], "tls.incomplete_chain", "its name says 'ICA'"),
        ([cert("ws.example", "Corp Root CA")], "tls.untrusted", "its name says 'Root'"),
        ([cert("ws.example", "Corp Intermediate Root")], "tls.untrusted", "its name says 'Root'"),
        (
            [cert("ws.example", "Corp CA 1"), cert("Corp CA 1", "Corp Trust", is_ca=True)],
            "tls.untrusted",
            "already sends its intermediate",
        ),
        ([cert("ws.example", "Corp CA")], "tls.untrusted", "sign server certificates directly"),
        ([cert("ws.example", "Substation CA")], "tls.untrusted", "sign server certificates directly"),
    ],
)
def test_unknown_issuer_likelier_first(chain: list[CertInfo], cause: str, why: str) -> None:
    ending = classify_client_tls_error(unknown_issuer(), server_hostname="ws.example", chain=chain, now=NOW)
    assert ending.cause == cause and why in ending.detail, ending.detail
    assert ending.details == {"variant": "ambiguous", "issuer": chain[-1].issuer}
    root_first = ending.detail.index("is a root") < ending.detail.index("is an intermediate")
    assert root_first is (cause == "tls.untrusted")
    intermediate_first = ending.fix.index("intermediate CA") < ending.fix.index("root CA")
    assert intermediate_first is (cause == "tls.incomplete_chain")
    assert chain[-1].issuer in ending.fix and chain[-1].issuer in ending.cause_text("es").fix


def test_aia_url_makes_it_certain() -> None:
    chain = [cert("ws.example", "Corp CA", aia=True)]
    ending = classify_client_tls_error(unknown_issuer(), server_hostname="ws.example", chain=chain, now=NOW)
    assert ending.cause == "tls.incomplete_chain" and "variant" not in ending.details
    assert ending.fix.startswith("Configure the server with the full chain")


def test_self_issued_last_certificate_is_an_untrusted_root() -> None:
    chain = [cert("ws.example", "Corp Root"), cert("Corp Root", "Corp Root", is_ca=True)]
    ending = classify_client_tls_error(unknown_issuer(), server_hostname="ws.example", chain=chain, now=NOW)
    assert ending.cause == "tls.untrusted" and "variant" not in ending.details


def test_wrong_purpose_without_the_chain() -> None:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed: unsupported certificate purpose")
    exc.verify_code = 26
    exc.verify_message = "unsupported certificate purpose"
    ending = classify_client_tls_error(exc, server_hostname="ws.example", chain=None, now=NOW)
    assert ending.cause == "tls.wrong_purpose" and "no serverAuth" in ending.detail


@pytest.mark.parametrize(
    ("reason", "cause"),
    [
        ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "tls.client_cert_required"),
        ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "tls.client_cert_required"),
        ("TLSV1_ALERT_UNKNOWN_CA", "tls.client_rejected"),
        ("WRONG_VERSION_NUMBER", "tls.not_tls"),
    ],
)
def test_server_side_readings(reason: str, cause: str) -> None:
    exc = ssl.SSLError(1, f"[SSL: {reason}] ...")
    exc.reason = reason
    ending = classify_server_tls_error(exc)
    assert ending.cause == cause
    assert ending.with_role("server").role == "server"


def test_client_reads_the_certificate_required_alert() -> None:
    exc = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required")
    exc.reason = "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    ending = classify_client_tls_error(exc, server_hostname="ws.example", chain=None)
    assert (ending.code, ending.cause) == (1015, "tls.client_cert_required")
