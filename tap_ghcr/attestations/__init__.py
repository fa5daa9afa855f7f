"""Supply-chain documents (attestations, signatures, SBOMs) read from OCI manifests: pure functions.

No network and no SDK here (the schemas live in `schema.py`, the one module
importing singer_sdk). The stream code calls:

- `describe_documents(...) -> list[DocumentRef]`: what one manifest holds;
- `download_decision(ref, ...) -> DownloadDecision`: whether to download it;
- `read_document(ref, fileobj, want_packages=...) -> DocumentResult`;
- `attestation_record(ref, fields=None) -> dict`: the `attestations` record.

Signatures are not verified anywhere in this package.

How a stream uses it, per manifest the sync reads (with the index descriptor
that lists it and the tags that point at it):

1. `refs = describe_documents(...)`; log each `ref.warnings`.
2. `decision = download_decision(ref, attestations_selected=..., sbom_packages_selected=...,
   max_document_mb=...)`; log `decision.warning` (a document over the size limit).
3. If `decision.download`: fetch the blob into a spooled temp file and check its
   digest (a mismatch: an error, no record). Then
   `result = read_document(ref, f, want_packages=<sbom_packages selected>)`;
   on `MalformedDocument` warn and use `attestation_record(ref)` (what the
   registry says); else `result.record(ref)`, log `result.warnings`, and emit
   `result.packages` as `sbom_packages` records (exhaust them before closing `f`).
4. Without a download, the `attestations` record is `attestation_record(ref)`.
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
