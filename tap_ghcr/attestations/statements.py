"""in-toto Statements (v0.1 and v1) and bare SBOM documents, streamed.

Pass 1 reads the statement header (`_type`, `predicateType`, `subject`) and
the SBOM summary in one walk over the parse events, building nothing but
those; a provenance predicate is then built in a second pass without the
subtrees the contract never reads (`provenance.SKIP`); SBOM packages come
from a further pass, lazily, one package at a time.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from tap_ghcr.attestations import provenance
from tap_ghcr.attestations.errors import MalformedDocument
from tap_ghcr.attestations.jsonstream import Subtrees, collect, events
from tap_ghcr.attestations.media import kind_for_predicate
from tap_ghcr.attestations.sbom import SbomScan, package_fields


@dataclass
class Statement:
    """What one pass over a statement (or a bare SBOM document) found."""

    statement_type: str | None
    predicate_type: str | None
    subjects: list[str]
    kind: str | None
    fields: dict[str, t.Any] = field(default_factory=dict)
    sbom_base: str | None = None
    sbom_created: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def sbom_format(self) -> str | None:
        """`spdx`, `cyclonedx` or None."""
        return self.fields.get("sbom_format")


def _subject_digests(subjects: t.Any) -> list[str]:
    found = []
    for subject in subjects if isinstance(subjects, list) else []:
        digest = subject.get("digest") if isinstance(subject, dict) else None
        if isinstance(digest, dict):
            found.extend(f"{alg}:{value}" for alg, value in digest.items() if isinstance(value, str))
    return found


def read_statement(fileobj: t.BinaryIO, what: str = "in-toto statement") -> Statement:
    """Read a statement's header, SBOM summary and (for provenance) its predicate from a seekable file."""
    header = Subtrees(("_type", "predicateType", "subject"))
    top_keys: set[str] = set()
    bare, wrapped = SbomScan(""), SbomScan("predicate.")
    for prefix, event, value in events(fileobj, what):
        if prefix == "" and event == "map_key":
            top_keys.add(value)
        elif prefix == "" and event != "start_map" and event != "end_map":
            raise MalformedDocument(f"{what} is not a JSON object")
        header.feed(prefix, event, value)
        bare.feed(prefix, event, value)
        wrapped.feed(prefix, event, value)
    if "predicate" in top_keys or "_type" in top_keys:
        statement_type, predicate_type = header.get("_type"), header.get("predicateType")
        if not isinstance(statement_type, str) or not isinstance(predicate_type, str) or not predicate_type:
            raise MalformedDocument(f"{what} has no `_type` or `predicateType`")
        if "predicate" not in top_keys:
            raise MalformedDocument(f"{what} has no `predicate`")
        result = Statement(
            statement_type, predicate_type, _subject_digests(header.get("subject")), kind_for_predicate(predicate_type)
        )
        scan = wrapped
    elif bare.format:  # a plain SBOM artifact: the document is the SBOM itself
        result, scan = Statement(None, None, [], "sbom"), bare
    else:
        raise MalformedDocument(f"{what} is neither an in-toto statement nor an SPDX or CycloneDX document")
    if result.kind == "sbom":
        result.fields.update(scan.fields())
        if scan.format is None:
            result.warnings.append(f"{what}: the SBOM is neither SPDX 2.x JSON nor CycloneDX JSON; no packages read")
        else:
            result.sbom_base, result.sbom_created = scan.base, scan.created
    elif result.kind == "provenance":
        skip = tuple(f"predicate.{s}" for s in provenance.SKIP)
        predicate = collect(fileobj, ("predicate",), skip, what).get("predicate")
        if not isinstance(predicate, dict):
            raise MalformedDocument(f"{what}: provenance predicate is not an object")
        result.fields.update(provenance.provenance_fields(predicate, result.predicate_type))
    return result


def statement_packages(fileobj: t.BinaryIO, statement: Statement, what: str = "SBOM") -> t.Iterator[dict[str, t.Any]]:
    """The package fields of a statement's SBOM, one at a time (a fresh pass over the file)."""
    if statement.sbom_base is None or statement.sbom_format is None:
        return iter(())
    return package_fields(events(fileobj, what), statement.sbom_base, statement.sbom_format)
