"""Shared helpers of the attestations tests: sample paths, generated certificates and documents.

Generated material (certificates, DSSE envelopes, bundles, large SBOMs) is
made at test time and never committed.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import typing as t
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DATA = Path(__file__).resolve().parent / "data"
SUPPLY_CHAIN = DATA / "supply-chain"
OCI = DATA / "oci" / "samples"
FULCIO = "1.3.6.1.4.1.57264.1"


def load(path: Path) -> dict:
    return json.loads(path.read_bytes())


def utf8string(text: str) -> bytes:
    """DER UTF8String, short or long length form (the test's own encoder)."""
    body = text.encode()
    if len(body) < 0x80:
        return bytes([0x0C, len(body)]) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([0x0C, 0x80 | len(size)]) + size + body


def make_certificate(
    *,
    uri: str | None = None,
    email: str | None = None,
    raw: dict[int, str] | None = None,
    der: dict[int, str] | None = None,
    common_name: str | None = None,
    extra: t.Sequence[x509.ExtensionType] = (),
) -> tuple[x509.Certificate, x509.Certificate]:
    """A Fulcio-like (leaf, CA) pair: SAN URI or e-mail, raw-string extensions 1.1-1.6, DER ones 1.8+,
    and any `extra` extensions (non-critical)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sigstore-intermediate")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(2)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(minutes=10))
    )
    names: list[x509.GeneralName] = []
    if uri:
        names.append(x509.UniformResourceIdentifier(uri))
    if email:
        names.append(x509.RFC822Name(email))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=True)
    for number, value in (raw or {}).items():
        oid = x509.ObjectIdentifier(f"{FULCIO}.{number}")
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, value.encode()), critical=False)
    for number, value in (der or {}).items():
        oid = x509.ObjectIdentifier(f"{FULCIO}.{number}")
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, utf8string(value)), critical=False)
    for extension in extra:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(ca_key, hashes.SHA256()), ca


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def der_b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def dsse(statement: dict | bytes, payload_type: str = "application/vnd.in-toto+json") -> bytes:
    body = statement if isinstance(statement, bytes) else json.dumps(statement).encode()
    return json.dumps(
        {
            "payloadType": payload_type,
            "payload": base64.b64encode(body).decode(),
            "signatures": [{"keyid": "", "sig": "MEUCIQ=="}],
        }
    ).encode()


def statement(predicate_type: str, predicate: dict, subject_hex: str, statement_type: str = "v1") -> dict:
    return {
        "_type": f"https://in-toto.io/Statement/{statement_type}",
        "subject": [{"name": "pkg:docker/ghcr.io/o/p@latest", "digest": {"sha256": subject_hex}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def spdx_package(i: int, category: str = "PACKAGE-MANAGER") -> dict:
    return {
        "name": f"pkg-{i}",
        "SPDXID": f"SPDXRef-Package-npm-pkg-{i}",
        "versionInfo": f"1.{i}.0",
        "supplier": "Organization: Example Corp",
        "downloadLocation": "NOASSERTION",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "MIT",
        "copyrightText": "NOASSERTION",
        "comment": "layerID: sha256:" + "ab" * 32,
        "externalRefs": [
            {
                "referenceCategory": "SECURITY",
                "referenceType": "cpe23Type",
                "referenceLocator": f"cpe:2.3:a:example:pkg-{i}:1.{i}.0:*:*:*:*:*:*:*",
            },
            {"referenceCategory": category, "referenceType": "purl", "referenceLocator": f"pkg:npm/pkg-{i}@1.{i}.0"},
        ],
    }


def write_spdx_statement(out: io.RawIOBase | io.BufferedIOBase, target_bytes: int, subject_hex: str = "0" * 64) -> int:
    """Write a buildx-like SPDX statement of about `target_bytes`, package by package; return the count."""
    head = {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://spdx.dev/Document",
        "subject": [{"name": "pkg:docker/ghcr.io/o/p@latest", "digest": {"sha256": subject_hex}}],
    }
    out.write(json.dumps(head)[:-1].encode())
    out.write(b', "predicate": {"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "sbom",')
    out.write(b' "creationInfo": {"created": "2026-01-01T00:00:00Z", "creators": ["Tool: test"]}, "packages": [')
    written, count = 0, 0
    while written < target_bytes:
        chunk = (b"," if count else b"") + json.dumps(spdx_package(count)).encode()
        out.write(chunk)
        written += len(chunk)
        count += 1
    out.write(b"]}}")
    return count


def ref_for(
    envelope: str = "none",
    *,
    media_type: str = "application/vnd.in-toto+json",
    subject: str | None = "sha256:" + "0" * 64,
    kind: str | None = None,
    predicate_type: str | None = None,
    source: str = "buildx",
    digest: str = "sha256:" + "d" * 64,
    size: int | None = 100,
    **extra: object,
):
    """A DocumentRef as describe_documents would make it (for reader tests)."""
    from tap_ghcr.attestations import DocumentRef

    return DocumentRef(
        owner_login="octo",
        package_name="app",
        digest=digest,
        media_type=media_type,
        size=size,
        manifest_digest="sha256:" + "m" * 64,
        layer_index=0,
        subject_digest=subject,
        source=source,
        kind=kind,
        predicate_type=predicate_type,
        envelope=envelope,
        signed=envelope != "none",
        **extra,
    )


def wrap_base64(source: Path, target: Path, *, bundle: bool = False) -> None:
    """Write `source` as the base64 payload of a DSSE envelope (or of a sigstore bundle's), chunk by chunk."""
    with source.open("rb") as src, target.open("wb") as out:
        if bundle:
            out.write(b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": ')
            out.write(b'{"tlogEntries": [{"logIndex": "1", "integratedTime": "1700000000"}]}, "dsseEnvelope": ')
        out.write(b'{"payloadType": "application/vnd.in-toto+json", "payload": "')
        while chunk := src.read(3 * 65536):
            out.write(base64.b64encode(chunk))
        out.write(b'", "signatures": [{"sig": "MEUCIQ=="}]}')
        if bundle:
            out.write(b"}")


def write_cyclonedx_statement(out: io.RawIOBase | io.BufferedIOBase, target_bytes: int) -> int:
    """Write a CycloneDX 1.6 statement of about `target_bytes`: components with nested ones; return the count."""
    out.write(
        b'{"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://cyclonedx.org/bom", "subject": [],'
    )
    out.write(b' "predicate": {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [')
    written, count, i = 0, 0, 0
    while written < target_bytes:
        children = [
            {"type": "library", "bom-ref": f"c{i}.{j}", "name": f"child-{i}-{j}", "purl": f"pkg:npm/child-{i}-{j}@1"}
            for j in range(2)
        ]
        node = {"type": "application", "bom-ref": f"c{i}", "name": f"app-{i}", "version": "1", "components": children}
        chunk = (b"," if i else b"") + json.dumps(node).encode()
        out.write(chunk)
        written += len(chunk)
        count += 3
        i += 1
    out.write(b"]}}")
    return count
