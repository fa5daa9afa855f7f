"""Media types, annotation keys and predicate types of supply-chain documents.

Manifest-level constants (in-toto, DSSE, cosign simple signing, notation,
sigstore bundle prefix) come from `tap_ghcr.oci`, so both modules agree.
"""

from __future__ import annotations

from tap_ghcr.oci import COSIGN_SIMPLESIGNING, DSSE, INTOTO, NOTARY_SIGNATURE, SIGSTORE_BUNDLE

__all__ = [
    "COSIGN_SIMPLESIGNING",
    "DSSE",
    "INTOTO",
    "NOTARY_SIGNATURE",
    "SIGSTORE_BUNDLE",
    "envelope_for",
    "kind_for_predicate",
]

# Layer media types of notation signatures (JWS and COSE envelopes).
NOTATION_JWS = "application/jose+json"
NOTATION_COSE = "application/cose"
# Plain SBOM artifacts (a referrer whose layer is the SBOM itself).
SPDX_JSON = frozenset({"application/spdx+json", "text/spdx+json"})
CYCLONEDX_JSON = frozenset({"application/vnd.cyclonedx+json"})

# Annotations.
LAYER_PREDICATE_TYPE = ("in-toto.io/predicate-type", "predicateType")  # buildx, cosign .att
BUNDLE_PREDICATE_TYPE = "dev.sigstore.bundle.predicateType"
BUNDLE_CONTENT = "dev.sigstore.bundle.content"  # dsse-envelope | message-signature
COSIGN_CERTIFICATE = "dev.sigstore.cosign/certificate"
COSIGN_BUNDLE = "dev.sigstore.cosign/bundle"
IMAGE_CREATED = "org.opencontainers.image.created"

# Predicate types with a fixed kind.
COSIGN_SIGN_V1 = "https://sigstore.dev/cosign/sign/v1"
COSIGN_VULN_V1 = "https://cosign.sigstore.dev/attestation/vuln/v1"


def envelope_for(media_type: str | None, *, notation: bool = False) -> str | None:
    """The contract's `envelope` of a layer media type; None when it holds no supply-chain document.

    `notation` says the manifest is a notation signature (its artifactType or
    config media type): only then is a JWS or COSE layer a notation envelope.
    """
    media_type = (media_type or "").strip()
    if media_type == INTOTO or media_type in SPDX_JSON or media_type in CYCLONEDX_JSON:
        return "none"
    if media_type == DSSE:
        return "dsse"
    if media_type == COSIGN_SIMPLESIGNING:
        return "simplesigning"
    if media_type.startswith(SIGSTORE_BUNDLE):
        return "sigstore-bundle"
    if notation and media_type in (NOTATION_JWS, NOTATION_COSE):
        return "notation"
    return None


def kind_for_predicate(predicate_type: str | None) -> str | None:
    """The contract's `kind` for an in-toto predicate type (None when there is none)."""
    if not predicate_type:
        return None
    pt = predicate_type.strip()
    if pt.startswith("https://slsa.dev/provenance/"):
        return "provenance"
    if pt == "https://spdx.dev/Document" or pt.startswith("https://spdx.dev/Document/"):
        return "sbom"
    if pt.startswith(("https://cyclonedx.org/bom", "https://cyclonedx.org/schema")):
        return "sbom"
    if pt.startswith("https://openvex.dev/ns"):
        return "vex"
    if pt == COSIGN_VULN_V1:
        return "vulnerability-scan"
    if pt == COSIGN_SIGN_V1:
        return "signature"
    return "other"
