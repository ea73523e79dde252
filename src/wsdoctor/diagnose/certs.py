"""Real certificates for demonstrations and tests: a small private PKI built on demand.

It makes a trusted root, an intermediate, an unrelated (untrusted) root, and leaf
certificates with chosen names, validity windows and chains, so that every TLS
failure wsdoctor explains can be reproduced on loopback with genuine certificates.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

__all__ = ["Authority", "IssuedCert", "Pki"]

Key = ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wsdoctor demo"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class Authority:
    """A CA: its key and certificate."""

    key: Key
    cert: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class IssuedCert:
    """A leaf certificate with its key and the intermediates the server should send."""

    key: Key
    cert: x509.Certificate
    chain: list[x509.Certificate]

    def write(self, directory: Path, stem: str, *, include_chain: bool = True) -> tuple[Path, Path]:
        """Write ``stem.pem`` (leaf, then chain when included) and ``stem.key``."""
        cert_path = directory / f"{stem}.pem"
        key_path = directory / f"{stem}.key"
        certs = [self.cert, *(self.chain if include_chain else [])]
        cert_path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return cert_path, key_path

    def server_context(self, directory: Path, stem: str, *, include_chain: bool = True) -> ssl.SSLContext:
        cert_path, key_path = self.write(directory, stem, include_chain=include_chain)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_path, key_path)
        return context


def make_authority(common_name: str, issuer: Authority | None = None) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.cert.subject if issuer else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Authority(key, cert)


def issue(
    authority: Authority,
    names: list[str],
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    aia_url: str | None = None,
    chain: list[x509.Certificate] | None = None,
    purposes: list[x509.ObjectIdentifier] | None = None,
) -> IssuedCert:
    """A certificate for ``names`` (host names or IP addresses) from ``authority``.

    ``purposes`` is its Extended Key Usage, serverAuth by default; a client
    certificate has clientAuth, and a server certificate without serverAuth is one
    of the failures wsdoctor explains.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(days=1))
        .not_valid_after(not_after or now + dt.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(purposes or [ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()), critical=False)
    )
    if aia_url is not None:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(aia_url)
                    )
                ]
            ),
            critical=False,
        )
    cert = builder.sign(authority.key, hashes.SHA256())
    return IssuedCert(key, cert, list(chain or []))


class Pki:
    """A trusted root with an intermediate, and an untrusted root, written under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.root = make_authority("wsdoctor demo root CA")
        self.intermediate = make_authority("wsdoctor demo intermediate CA", self.root)
        self.rogue = make_authority("untrusted rogue CA")
        self.ca_file = directory / "ca.pem"
        self.ca_file.write_bytes(self.root.pem)

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only the demo root."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def leaf(self, names: list[str], **kwargs: object) -> IssuedCert:
        """A leaf from the intermediate, with the intermediate as its chain."""
        return issue(self.intermediate, names, chain=[self.intermediate.cert], **kwargs)  # type: ignore[arg-type]

    def healthy(self, names: list[str]) -> ssl.SSLContext:
        return self.leaf(names).server_context(self.directory, "healthy")

    def expired(self, names: list[str]) -> ssl.SSLContext:
        now = _now()
        cert = self.leaf(names, not_before=now - dt.timedelta(days=120), not_after=now - dt.timedelta(days=30))
        return cert.server_context(self.directory, "expired")

    def not_yet_valid(self, names: list[str]) -> ssl.SSLContext:
        now = _now()
        cert = self.leaf(names, not_before=now + dt.timedelta(days=30), not_after=now + dt.timedelta(days=120))
        return cert.server_context(self.directory, "not-yet-valid")

    def untrusted(self, names: list[str]) -> ssl.SSLContext:
        return issue(self.rogue, names).server_context(self.directory, "untrusted")

    def self_signed(self, names: list[str]) -> ssl.SSLContext:
        """A leaf that signs itself: the key that issues it is its own."""
        own = make_authority(names[0])
        return IssuedCert(own.key, own.cert, []).server_context(self.directory, "self-signed")

    def incomplete_chain(self, names: list[str]) -> ssl.SSLContext:
        cert = self.leaf(names, aia_url="http://127.0.0.1:9/intermediate.crt")
        return cert.server_context(self.directory, "incomplete", include_chain=False)

    def unsent_intermediate(self, names: list[str]) -> ssl.SSLContext:
        """A private CA's leaf without its intermediate and without an AIA URL to find it."""
        return self.leaf(names).server_context(self.directory, "unsent-intermediate", include_chain=False)

    def wrong_purpose(self, names: list[str]) -> ssl.SSLContext:
        """A valid, trusted leaf whose Extended Key Usage allows client authentication only."""
        cert = self.leaf(names, purposes=[ExtendedKeyUsageOID.CLIENT_AUTH])
        return cert.server_context(self.directory, "wrong-purpose")

    def client_cert(self, name: str = "client.wsdoctor.test") -> tuple[Path, Path]:
        """A client certificate (clientAuth) from the intermediate: the certificate file, with chain, and key."""
        cert = self.leaf([name], purposes=[ExtendedKeyUsageOID.CLIENT_AUTH])
        return cert.write(self.directory, "client")

    def requiring_client_cert(self, names: list[str]) -> ssl.SSLContext:
        """A healthy server context that demands a client certificate issued under the demo root."""
        context = self.healthy(names)
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(self.ca_file))
        return context
