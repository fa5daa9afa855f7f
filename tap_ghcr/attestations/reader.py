"""`read_document`: one downloaded, digest-verified document -> record fields and SBOM packages."""

from __future__ import annotations

import contextlib
import typing as t
from dataclasses import dataclass, field

from tap_ghcr.attestations import cosign, envelopes
from tap_ghcr.attestations.errors import MalformedDocument
from tap_ghcr.attestations.media import NOTATION_COSE, NOTATION_JWS
from tap_ghcr.attestations.records import attestation_record, sbom_package_record
from tap_ghcr.attestations.statements import Statement, read_statement, statement_packages

if t.TYPE_CHECKING:
    from tap_ghcr.attestations.documents import DocumentRef


@dataclass
class DocumentResult:
    """What a document says.

    `fields`: contract fields read from the document (overlay them on what
    the registry says with `attestation_record(ref, fields)`; `created_at`
    is already resolved). `packages`: a lazy iterator of `sbom_packages`
    records (empty unless asked for and the document is an SBOM); it reads
    the caller's file again, so keep the file open until it is exhausted.
    `warnings`: things to log (a subject that disagrees with the registry,
    a certificate that cannot be read); the registry-side link wins.
    """

    fields: dict[str, t.Any]
    packages: t.Iterator[dict[str, t.Any]] = field(default_factory=lambda: iter(()))
    warnings: list[str] = field(default_factory=list)

    def record(self, ref: DocumentRef) -> dict[str, t.Any]:
        """The `attestations` record of `ref` with these fields."""
        return attestation_record(ref, self.fields)


def _subject_warning(ref: DocumentRef, claimed: list[str], where: str) -> list[str]:
    if not ref.subject_digest or not claimed or ref.subject_digest in claimed:
        return []
    return [
        f"{ref.name}: {where} names subject {', '.join(claimed)} but the registry links it to "
        f"{ref.subject_digest}; the registry-side link wins"
    ]


def _packages(
    fileobj: t.BinaryIO, statement: Statement, ref: DocumentRef, subject: str | None, owned: t.BinaryIO | None
) -> t.Iterator[dict[str, t.Any]]:
    try:
        fmt = statement.sbom_format or ""
        for package in statement_packages(fileobj, statement, f"{ref.name} SBOM"):
            yield sbom_package_record(ref, subject, fmt, package)
    finally:
        if owned is not None:
            owned.close()


def _from_statement(
    ref: DocumentRef, fileobj: t.BinaryIO, *, want_packages: bool, owned: t.BinaryIO | None, where: str
) -> DocumentResult:
    try:
        statement = read_statement(fileobj, f"{ref.name} {where}")
    except BaseException:
        if owned is not None:
            owned.close()
        raise
    fields: dict[str, t.Any] = dict(statement.fields)
    fields.update(kind=statement.kind, predicate_type=statement.predicate_type, statement_type=statement.statement_type)
    warnings = list(statement.warnings) + _subject_warning(ref, statement.subjects, where)
    if ref.predicate_type and statement.predicate_type and ref.predicate_type != statement.predicate_type:
        warnings.append(
            f"{ref.name}: the registry annotation says predicate type {ref.predicate_type} but the statement "
            f"says {statement.predicate_type}; the statement's is kept"
        )
    subject = ref.subject_digest or (statement.subjects[0] if statement.subjects else None)
    fields["subject_digest"] = subject
    fields["_sbom_created"] = statement.sbom_created
    packages: t.Iterator[dict[str, t.Any]] = iter(())
    if want_packages and statement.sbom_base is not None:
        packages = _packages(fileobj, statement, ref, subject, owned)
    elif owned is not None:
        owned.close()
    return DocumentResult(fields, packages, warnings)


def read_document(ref: DocumentRef, fileobj: t.BinaryIO, *, want_packages: bool = False) -> DocumentResult:
    """Read one document (its bytes already checked against `ref.digest`) from a seekable binary file.

    Raises `MalformedDocument` naming what is wrong; the caller warns and
    emits `attestation_record(ref)` (what the registry says). Signatures are
    not verified: signer fields say what the certificate claims.
    """
    what = f"{ref.name} ({ref.media_type})"
    opened: envelopes.Opened | None = None
    if ref.envelope == "none":
        result = _from_statement(ref, fileobj, want_packages=want_packages, owned=None, where="statement")
    elif ref.envelope == "simplesigning":
        claimed = cosign.simple_signing_subject(fileobj, what)
        if claimed is None:
            raise MalformedDocument(f"{what}: simple-signing payload has no critical.image.docker-manifest-digest")
        result = DocumentResult({"kind": "signature"}, warnings=_subject_warning(ref, [claimed], "the payload"))
    elif ref.envelope in ("dsse", "sigstore-bundle"):
        opened = envelopes.open_dsse(fileobj, what) if ref.envelope == "dsse" else envelopes.open_bundle(fileobj, what)
        if opened.payload is not None:
            payload, opened.payload = opened.payload, None
            result = _from_statement(ref, payload, want_packages=want_packages, owned=payload, where="statement")
        else:
            result = DocumentResult({}, warnings=_subject_warning(ref, opened.subjects, "the bundle"))
        result.fields.update(opened.fields)
        result.warnings[:0] = opened.warnings
    elif ref.envelope == "notation" and ref.media_type in (NOTATION_JWS, NOTATION_COSE):
        read = envelopes.open_notation_jws if ref.media_type == NOTATION_JWS else envelopes.open_notation_cose
        opened = read(fileobj, what)
        result = DocumentResult(dict(opened.fields), warnings=opened.warnings)
        result.warnings += _subject_warning(ref, opened.subjects, "the signature payload")
    else:
        result = DocumentResult(
            {}, warnings=[f"{what}: this envelope is not read; the record says what the registry says"]
        )
    if opened is not None:
        opened.close()
    sbom_created = result.fields.pop("_sbom_created", None)
    signed_at = result.fields.get("signed_at") or ref.signed_at
    result.fields["created_at"] = ref.manifest_created or signed_at or sbom_created
    with contextlib.suppress(KeyError):
        if result.fields["subject_digest"] is None:
            del result.fields["subject_digest"]
    return result
