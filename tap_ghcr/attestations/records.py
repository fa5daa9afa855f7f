"""The contract's record shapes for `attestations` and `sbom_packages`."""

from __future__ import annotations

import typing as t

from tap_ghcr.attestations.certificates import SIGNER_FIELDS
from tap_ghcr.attestations.provenance import PROVENANCE_FIELDS
from tap_ghcr.attestations.sbom import PACKAGE_FIELDS

if t.TYPE_CHECKING:
    from tap_ghcr.attestations.documents import DocumentRef

ATTESTATION_FIELDS = (
    "owner_login",
    "package_name",
    "digest",
    "media_type",
    "size",
    "manifest_digest",
    "layer_index",
    "subject_digest",
    "source",
    "kind",
    "predicate_type",
    "statement_type",
    "envelope",
    "signed",
    *SIGNER_FIELDS,
    "signed_at",
    "tlog_index",
    *PROVENANCE_FIELDS,
    "sbom_format",
    "sbom_spec_version",
    "sbom_package_count",
    "created_at",
)
SBOM_PACKAGE_FIELDS = ("owner_login", "package_name", "sbom_digest", "subject_digest", "sbom_format", *PACKAGE_FIELDS)
ATTESTATIONS_KEY = ("owner_login", "package_name", "manifest_digest", "layer_index")
SBOM_PACKAGES_KEY = ("owner_login", "package_name", "sbom_digest", "package_ref")


def registry_fields(ref: DocumentRef) -> dict[str, t.Any]:
    """What the registry says about a document: every contract field, the rest null."""
    record: dict[str, t.Any] = dict.fromkeys(ATTESTATION_FIELDS)
    record.update(
        owner_login=ref.owner_login,
        package_name=ref.package_name,
        digest=ref.digest,
        media_type=ref.media_type,
        size=ref.size,
        manifest_digest=ref.manifest_digest,
        layer_index=ref.layer_index,
        subject_digest=ref.subject_digest,
        source=ref.source,
        kind=ref.kind,
        predicate_type=ref.predicate_type,
        envelope=ref.envelope,
        signed=ref.signed,
        signed_at=ref.signed_at,
        tlog_index=ref.tlog_index,
        created_at=ref.created_at,
        **ref.signer(),
    )
    return record


def attestation_record(ref: DocumentRef, fields: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
    """The `attestations` record: what the registry says, overlaid with `fields` read from the document.

    Exactly the contract's field set, every field present. The identity of the
    document (owner, package, digest, media type, size, manifest, layer,
    source, envelope, signed) and the registry-side `subject_digest` always
    come from `ref`; a null `subject_digest` is filled from `fields`.
    """
    record = registry_fields(ref)
    for name, value in (fields or {}).items():
        if name not in record or name in _REGISTRY_ONLY:
            continue
        if name == "subject_digest" and record["subject_digest"]:
            continue
        if value is not None:
            record[name] = value
    return record


_REGISTRY_ONLY = frozenset(
    {
        "owner_login",
        "package_name",
        "digest",
        "media_type",
        "size",
        "manifest_digest",
        "layer_index",
        "source",
        "envelope",
        "signed",
    }
)


_PACKAGE_KEYS = frozenset(PACKAGE_FIELDS)


def sbom_package_record(
    ref: DocumentRef, subject_digest: str | None, sbom_format: str, package: dict[str, t.Any]
) -> dict[str, t.Any]:
    """The `sbom_packages` record of one package of the SBOM document `ref`."""
    if package.keys() != _PACKAGE_KEYS:  # (both SBOM readers build exactly these: a third of the time)
        package = dict(zip(PACKAGE_FIELDS, map(package.get, PACKAGE_FIELDS), strict=True))
    return {
        "owner_login": ref.owner_login,
        "package_name": ref.package_name,
        "sbom_digest": ref.digest,
        "subject_digest": subject_digest,
        "sbom_format": sbom_format,
        **package,
    }
