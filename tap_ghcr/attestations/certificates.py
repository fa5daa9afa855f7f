"""The signer a Fulcio (or other X.509) certificate claims, read with `cryptography`.

Nothing is verified: these are the certificate's claims. Fulcio extensions
(sigstore/fulcio docs/oid-info.md) under 1.3.6.1.4.1.57264.1: 1.1-1.6 hold
raw UTF-8 strings, 1.8 and later a DER UTF8String.

`cryptography` is imported on the first certificate, not with the tap: it is
8-9 MB of resident memory that a sync without signatures never needs.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from cryptography import x509

FULCIO_ARC = "1.3.6.1.4.1.57264.1"
SIGNER_FIELDS = (
    "signer_identity",
    "signer_issuer",
    "signer_workflow",
    "signer_repository",
    "signer_revision",
    "signer_ref",
    "signer_trigger",
    "signer_run",
)
# Contract field -> Fulcio extension numbers, first present wins.
_EXTENSIONS = {
    "signer_issuer": (8, 1),  # Issuer (V2), else the deprecated raw-string Issuer
    "signer_workflow": (9,),  # Build Signer URI
    "signer_repository": (12,),  # Source Repository URI
    "signer_revision": (13,),  # Source Repository Digest
    "signer_ref": (14,),  # Source Repository Ref
    "signer_trigger": (20,),  # Build Trigger
    "signer_run": (21,),  # Run Invocation URI
}
_UTF8STRING = 0x0C


class CertificateError(ValueError):
    """A certificate that cannot be loaded."""


def load_certificate(data: bytes | str) -> x509.Certificate:
    """A certificate from PEM (text or bytes; the first one of a chain) or DER bytes."""
    from cryptography import x509

    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    try:
        if b"-----BEGIN CERTIFICATE-----" in raw:
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except ValueError as exc:
        raise CertificateError(f"certificate cannot be loaded: {exc}") from exc


def der_utf8string(raw: bytes) -> str:
    """The text of a DER UTF8String (tag 0x0C); other bytes are read as a raw UTF-8 string."""
    if len(raw) >= 2 and raw[0] == _UTF8STRING:
        length, offset = raw[1], 2
        if length & 0x80:
            count = length & 0x7F
            length, offset = int.from_bytes(raw[2 : 2 + count], "big"), 2 + count
        if offset + length == len(raw):
            return raw[offset:].decode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


def fulcio_extension(cert: x509.Certificate, number: int) -> str | None:
    """The value of Fulcio extension 1.3.6.1.4.1.57264.1.<number>, or None."""
    from cryptography import x509
    from cryptography.x509.oid import ObjectIdentifier

    try:
        ext = cert.extensions.get_extension_for_oid(ObjectIdentifier(f"{FULCIO_ARC}.{number}"))
    except x509.ExtensionNotFound:
        return None
    raw = getattr(ext.value, "value", None)
    if not isinstance(raw, bytes):
        return None
    value = raw.decode("utf-8", "replace") if number <= 6 else der_utf8string(raw)
    return value or None


def identity(cert: x509.Certificate, *, subject_fallback: bool = False) -> str | None:
    """The subject alternative name (URI first, else e-mail); optionally the subject DN without one."""
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        for kind in (x509.UniformResourceIdentifier, x509.RFC822Name):
            values = san.get_values_for_type(kind)
            if values:
                return values[0]
    if subject_fallback:
        return cert.subject.rfc4514_string() or None
    return None


def signer_fields(cert: x509.Certificate, *, subject_fallback: bool = False) -> dict[str, t.Any]:
    """The contract's signer fields that a certificate claims (every key present; None where absent).

    `cryptography` parses extensions when first read: a malformed one is a CertificateError here.
    """
    from cryptography import x509

    try:
        fields: dict[str, t.Any] = {"signer_identity": identity(cert, subject_fallback=subject_fallback)}
        for field, numbers in _EXTENSIONS.items():
            fields[field] = next((v for n in numbers if (v := fulcio_extension(cert, n))), None)
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise CertificateError(f"certificate extensions cannot be read: {exc}") from exc
    return fields


def signer_from(data: bytes | str, *, subject_fallback: bool = False) -> dict[str, t.Any]:
    """Load a certificate (PEM or DER) and read its signer fields; CertificateError if it cannot be loaded."""
    return signer_fields(load_certificate(data), subject_fallback=subject_fallback)
