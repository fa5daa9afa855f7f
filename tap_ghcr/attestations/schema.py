"""singer-sdk schemas of the `attestations` and `sbom_packages` streams.

The tap does not verify signatures: signer fields say what a certificate
claims, and the descriptions say so.
"""

from __future__ import annotations

from singer_sdk import typing as th

from tap_ghcr.attestations.records import (
    ATTESTATION_FIELDS,
    ATTESTATIONS_KEY,
    SBOM_PACKAGE_FIELDS,
    SBOM_PACKAGES_KEY,
)

__all__ = [
    "ATTESTATIONS_KEY",
    "ATTESTATIONS_SCHEMA",
    "ATTESTATION_FIELDS",
    "SBOM_PACKAGES_KEY",
    "SBOM_PACKAGES_SCHEMA",
    "SBOM_PACKAGE_FIELDS",
]

_NOT_VERIFIED = "Not verified: the tap does not check signatures or certificate chains; this is what the {} claims."
_CERT = _NOT_VERIFIED.format("signing certificate")


def _s(name: str, description: str, required: bool = False) -> th.Property:
    return th.Property(name, th.StringType, required=required, description=description)


def _t(name: str, description: str) -> th.Property:
    return th.Property(name, th.DateTimeType, description=description)


MATERIAL = th.ObjectType(
    th.Property("uri", th.StringType, description="The material's URI (a purl for base images, a git URL, ...)."),
    th.Property("digest", th.StringType, description="`alg:hex` (sha256 when the material gives it)."),
)

ATTESTATIONS_SCHEMA = th.PropertiesList(
    _s("owner_login", "Owner (user or organization) of the package.", True),
    _s("package_name", "Container package name.", True),
    _s("digest", "The document's own digest (its layer descriptor's)."),
    _s("media_type", "Layer media type of the document."),
    th.Property("size", th.IntegerType, description="Document size in bytes (descriptor)."),
    _s("manifest_digest", "Digest of the manifest that holds the document.", True),
    th.Property(
        "layer_index", th.IntegerType, required=True, description="Position of the layer in that manifest, from 0."
    ),
    _s(
        "subject_digest",
        "The manifest the document is about (vnd.docker.reference.digest, OCI subject, or the cosign tag's digest).",
    ),
    _s("source", "`buildx` (index attestation manifest), `cosign` (.sig/.att tag) or `referrer` (OCI subject)."),
    _s("kind", "`provenance`, `sbom`, `signature`, `vex`, `vulnerability-scan` or `other`; null when unknown."),
    _s("predicate_type", "in-toto predicate type; null for a plain signature."),
    _s("statement_type", "in-toto statement `_type`; null when there is no statement or it was not read."),
    _s("envelope", "`none` (unsigned bare statement), `dsse`, `simplesigning`, `sigstore-bundle` or `notation`."),
    th.Property(
        "signed",
        th.BooleanType,
        description="True when the document is in a signature envelope. " + _NOT_VERIFIED.format("envelope"),
    ),
    _s("signer_identity", "Certificate subject alternative name (URI or e-mail). " + _CERT),
    _s("signer_issuer", "OIDC issuer (Fulcio extension 1.8, else 1.1). " + _CERT),
    _s("signer_workflow", "Build signer URI (Fulcio 1.9). " + _CERT),
    _s("signer_repository", "Source repository URI (Fulcio 1.12). " + _CERT),
    _s("signer_revision", "Source repository digest, the commit (Fulcio 1.13). " + _CERT),
    _s("signer_ref", "Source repository ref (Fulcio 1.14). " + _CERT),
    _s("signer_trigger", "Build trigger event (Fulcio 1.20). " + _CERT),
    _s("signer_run", "Run invocation URI (Fulcio 1.21). " + _CERT),
    _t("signed_at", "Transparency log integrated time. " + _NOT_VERIFIED.format("log entry")),
    th.Property(
        "tlog_index",
        th.IntegerType,
        description="Transparency log index. " + _NOT_VERIFIED.format("log entry"),
    ),
    _s("builder_id", "SLSA builder id (unsigned for buildx: a hint, not a signer)."),
    _s("build_type", "SLSA build type."),
    _s("build_invocation_id", "Build invocation id (BuildKit id or GitHub run URL)."),
    _t("build_started_at", "Build start time."),
    _t("build_finished_at", "Build finish time."),
    _s(
        "source_uri",
        "Source repository: the config source (without its #ref fragment) where there is one, "
        "else BuildKit's unverified vcs hint.",
    ),
    _s("source_revision", "Source revision (commit), same precedence as source_uri."),
    _s("source_ref", "Source ref (GitHub workflow ref, else the config source URI's #fragment)."),
    _s("build_config_path", "Build configuration path (workflow file or Dockerfile)."),
    th.Property(
        "materials", th.ArrayType(MATERIAL), description="Build materials / resolved dependencies (the first 10,000)."
    ),
    _s("sbom_format", "`spdx` or `cyclonedx`."),
    _s("sbom_spec_version", "As the SBOM writes it (SPDX `SPDX-2.3`, CycloneDX `1.5`)."),
    th.Property("sbom_package_count", th.IntegerType, description="Packages (SPDX) or components (CycloneDX, nested)."),
    _t("created_at", "Manifest org.opencontainers.image.created, else signed_at, else the SBOM's creation time."),
).to_dict()

SBOM_PACKAGES_SCHEMA = th.PropertiesList(
    _s("owner_login", "Owner (user or organization) of the package.", True),
    _s("package_name", "Container package name.", True),
    _s("sbom_digest", "The SBOM document's digest (the attestations record's `digest`).", True),
    _s("subject_digest", "The image the SBOM describes."),
    _s("sbom_format", "`spdx` or `cyclonedx`."),
    _s("package_ref", "SPDX SPDXID or CycloneDX bom-ref (else purl, else name@version).", True),
    _s("name", "Package name."),
    _s("version", "Package version (SPDX versionInfo)."),
    _s("purl", "Package URL."),
    _s("purl_type", "purl type (percent-decoded)."),
    _s("purl_namespace", "purl namespace (percent-decoded)."),
    _s("purl_name", "purl name (percent-decoded)."),
    _s("cpe", "First CPE reference."),
    _s("license_concluded", "SPDX licenseConcluded (NOASSERTION/NONE as null)."),
    _s("license_declared", "SPDX licenseDeclared, or CycloneDX licenses joined with ' AND '."),
    _s("supplier", "Supplier without its Organization:/Person: prefix."),
    _s("package_type", "CycloneDX type or SPDX primaryPackagePurpose, lower case."),
).to_dict()
