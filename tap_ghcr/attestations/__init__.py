"""Supply-chain documents (attestations, signatures, SBOMs) read from OCI manifests: pure functions.

No network and no SDK here (the schemas live in `schema.py`, the one module
importing singer_sdk). The stream code calls:

- `describe_documents(...) -> list[DocumentRef]`: what one manifest holds;
- `download_decision(ref, ...) -> DownloadDecision`: whether to download it;
- `read_document(ref, fileobj, want_packages=...) -> DocumentResult`;
- `attestation_record(ref, fields=None) -> dict`: the `attestations` record.

Signatures are not verified anywhere in this package.
"""

from tap_ghcr.attestations.documents import DocumentRef, DownloadDecision, describe_documents, download_decision
from tap_ghcr.attestations.errors import MalformedDocument
from tap_ghcr.attestations.reader import DocumentResult, read_document
from tap_ghcr.attestations.records import (
    ATTESTATION_FIELDS,
    ATTESTATIONS_KEY,
    SBOM_PACKAGE_FIELDS,
    SBOM_PACKAGES_KEY,
    attestation_record,
    sbom_package_record,
)

__all__ = [
    "ATTESTATIONS_KEY",
    "ATTESTATION_FIELDS",
    "SBOM_PACKAGES_KEY",
    "SBOM_PACKAGE_FIELDS",
    "DocumentRef",
    "DocumentResult",
    "DownloadDecision",
    "MalformedDocument",
    "attestation_record",
    "describe_documents",
    "download_decision",
    "read_document",
    "sbom_package_record",
]
