"""Fulcio certificate extensions -> signer fields (real certificate and generated ones)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from tap_ghcr.attestations import certificates
from tests.attestations_support import SUPPLY_CHAIN, make_certificate, pem

REPO = "https://github.com/salrashid123/go-bazel-github-workflow"
WORKFLOW = f"{REPO}/.github/workflows/release.yaml@refs/tags/v0.0.30"


def test_real_fulcio_certificate() -> None:
    # Expected values copied from fulcio_cert_decoded_extensions_go-bazel-github-workflow.DERIVED.json.
    text = (SUPPLY_CHAIN / "fulcio_cert_pem_go-bazel-github-workflow.txt").read_text()
    assert certificates.signer_from(text) == {
        "signer_identity": WORKFLOW,
        "signer_issuer": "https://token.actions.githubusercontent.com",
        "signer_workflow": WORKFLOW,
        "signer_repository": REPO,
        "signer_revision": "7624bd5f279fb5d4700ea72c1b2373ee33960700",
        "signer_ref": "refs/tags/v0.0.30",
        "signer_trigger": "push",
        "signer_run": f"{REPO}/actions/runs/22498294485/attempts/1",
    }


def test_real_certificate_raw_extensions() -> None:
    cert = certificates.load_certificate((SUPPLY_CHAIN / "fulcio_cert_pem_go-bazel-github-workflow.txt").read_text())
    assert certificates.fulcio_extension(cert, 1) == "https://token.actions.githubusercontent.com"
    assert certificates.fulcio_extension(cert, 5) == "salrashid123/go-bazel-github-workflow"
    assert certificates.fulcio_extension(cert, 22) == "public"
    assert certificates.fulcio_extension(cert, 30) is None


def test_generated_chain_raw_and_der_extensions() -> None:
    long_run = "https://github.example/o/r/actions/runs/" + "9" * 150 + "/attempts/1"  # DER long-form length
    leaf, ca = make_certificate(
        uri="https://github.com/o/r/.github/workflows/build.yml@refs/heads/main",
        raw={1: "https://old-issuer.example", 2: "pull_request", 3: "abc", 6: "refs/heads/old"},
        der={
            8: "https://token.actions.githubusercontent.com",
            9: "https://github.com/o/shared/.github/workflows/sign.yml@refs/tags/v1",
            12: "https://github.com/o/r",
            13: "0123456789abcdef0123456789abcdef01234567",
            14: "refs/heads/main",
            20: "workflow_dispatch",
            21: long_run,
        },
    )
    assert leaf.issuer == ca.subject
    expected = {
        "signer_identity": "https://github.com/o/r/.github/workflows/build.yml@refs/heads/main",
        "signer_issuer": "https://token.actions.githubusercontent.com",
        "signer_workflow": "https://github.com/o/shared/.github/workflows/sign.yml@refs/tags/v1",
        "signer_repository": "https://github.com/o/r",
        "signer_revision": "0123456789abcdef0123456789abcdef01234567",
        "signer_ref": "refs/heads/main",
        "signer_trigger": "workflow_dispatch",
        "signer_run": long_run,
    }
    assert certificates.signer_from(pem(leaf)) == expected
    assert certificates.signer_from(leaf.public_bytes(serialization.Encoding.DER)) == expected
    # A PEM chain (leaf first): the leaf is read.
    assert certificates.signer_from(pem(leaf) + pem(ca)) == expected
    assert certificates.fulcio_extension(leaf, 2) == "pull_request"


def test_email_identity_and_issuer_falls_back_to_1_1() -> None:
    leaf, _ = make_certificate(email="dev@example.com", raw={1: "https://accounts.google.com"})
    assert certificates.signer_from(pem(leaf)) == {
        "signer_identity": "dev@example.com",
        "signer_issuer": "https://accounts.google.com",
        "signer_workflow": None,
        "signer_repository": None,
        "signer_revision": None,
        "signer_ref": None,
        "signer_trigger": None,
        "signer_run": None,
    }


def test_no_san_identity_is_null_unless_subject_fallback() -> None:
    leaf, _ = make_certificate(common_name="Notation Signer")
    assert certificates.signer_from(pem(leaf))["signer_identity"] is None
    assert certificates.signer_from(pem(leaf), subject_fallback=True)["signer_identity"] == "CN=Notation Signer"


def test_der_utf8string() -> None:
    assert certificates.der_utf8string(b"\x0c\x04push") == "push"
    assert certificates.der_utf8string(b"\x0c\x81\x80" + b"a" * 128) == "a" * 128
    assert certificates.der_utf8string(b"plain") == "plain"


def test_garbage_certificate() -> None:
    with pytest.raises(certificates.CertificateError):
        certificates.signer_from("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(certificates.CertificateError):
        certificates.signer_from(b"\x00\x01")


def test_a_malformed_extension_is_a_certificate_error_not_a_crash() -> None:
    """`cryptography` parses extensions lazily: a SAN whose body is not a GeneralNames sequence loads, then fails."""
    from cryptography import x509

    san = x509.UnrecognizedExtension(x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x04\x03ab")
    bad, _ = make_certificate(extra=[san])
    with pytest.raises(certificates.CertificateError, match="extensions cannot be read"):
        certificates.signer_from(pem(bad))


def test_a_deeply_nested_notation_payload_is_malformed_not_a_crash() -> None:
    import base64
    import io
    import json

    from tap_ghcr.attestations import envelopes
    from tap_ghcr.attestations.errors import MalformedDocument

    payload = base64.urlsafe_b64encode(b"[" * 100_000).decode().rstrip("=")
    jws = io.BytesIO(json.dumps({"payload": payload, "protected": "", "header": {}, "signature": ""}).encode())
    with pytest.raises(MalformedDocument, match="not JSON"):
        envelopes.open_notation_jws(jws, "notation signature")
