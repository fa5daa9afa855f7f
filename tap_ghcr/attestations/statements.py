"""in-toto Statements (v0.1 and v1) and bare SBOM documents.

A small document is decoded whole (`whole`) and read from the tree. A large
one is streamed: pass 1 reads the statement header (`_type`, `predicateType`, `subject`) and
the SBOM summary in one walk over the parse events, building nothing but
those; a provenance predicate is then built in a second pass keeping only
what the contract reads (`provenance.SHAPE`); SBOM packages come
from a further pass, lazily, one package at a time.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from tap_ghcr.attestations import provenance, whole
from tap_ghcr.attestations.errors import MalformedDocument
from tap_ghcr.attestations.jsonstream import Depth, Subtrees, json_errors, parse, prune
from tap_ghcr.attestations.media import kind_for_predicate
from tap_ghcr.attestations.sbom import SbomScan, package_fields
from tap_ghcr.oci import as_object

_STATEMENT_KEYS = frozenset({"_type", "subject", "predicateType", "predicate"})
_HEADER_KEYS = ("_type", "predicateType", "subject")
_PROVENANCE = {"predicate": provenance.SHAPE}
# One more material than is kept says the list was cut; a kept material is five values or so (itself,
# its uri, its digest and the digest's algorithms), so 200,000 values (a few tens of MB) is far past
# any real predicate.
_PROVENANCE_BOUNDS = {"max_items": provenance.MAX_MATERIALS + 1, "max_values": 20 * provenance.MAX_MATERIALS}


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


def _first_pass(fileobj: t.BinaryIO, what: str, statement: bool | None) -> tuple[set[str], Subtrees, SbomScan]:
    """The in-toto keys found at the top level, statement header and SBOM summary in one walk over the events.

    Unless told (`statement`), the first top-level key says whether this is a
    statement (`_type`, `subject`, `predicateType`, `predicate`) or a bare SBOM.
    Each event goes to the one reader its top-level key concerns: this walk
    sees every event of an SBOM, so it does as little per event as it can.
    """
    header = Subtrees(_HEADER_KEYS, what=what)
    top_keys: set[str] = set()
    scan: SbomScan | None = None if statement is None else SbomScan("predicate." if statement else "")
    reader: t.Callable[[str, str, t.Any], None] | None = None  # for the events under the current top-level key
    depth = Depth(what)
    fileobj.seek(0)
    with json_errors(what):
        for prefix, event, value in parse(fileobj):
            depth.take(event, prefix)
            if prefix:
                if reader is not None:
                    reader(prefix, event, value)
            elif event == "map_key":
                if value in _STATEMENT_KEYS:  # all the caller asks of the top-level keys (64 MiB of keys: 434 MB)
                    top_keys.add(value)
                if scan is None:
                    scan = SbomScan("predicate." if value in _STATEMENT_KEYS else "")
                if not scan.base:
                    reader = scan.feed  # a bare SBOM: every key may hold its fields
                else:
                    reader = header.feed if value in _HEADER_KEYS else scan.feed if value == "predicate" else None
            elif event != "start_map" and event != "end_map":
                raise MalformedDocument(f"{what} is not a JSON object")
    return top_keys, header, scan or SbomScan("")


def _whole_pass(document: t.Any, what: str) -> tuple[set[str], dict[str, t.Any], SbomScan]:
    """What `_first_pass` finds, from a whole document."""
    if not isinstance(document, dict):
        raise MalformedDocument(f"{what} is not a JSON object")
    # The SBOM is under `predicate` when the first key is an in-toto one, or else (the walk again in
    # `read_statement`) when `predicate` or `_type` is a key at all.
    statement = "predicate" in document or "_type" in document or next(iter(document), None) in _STATEMENT_KEYS
    scan = SbomScan("predicate." if statement else "")
    scan.read_whole(whole.at(document, scan.base))
    return set(document), {k: document[k] for k in _HEADER_KEYS if k in document}, scan


def read_statement(fileobj: t.BinaryIO, what: str = "in-toto statement") -> Statement:
    """Read a statement's header, SBOM summary and (for provenance) its predicate from a seekable file."""
    document = whole.load(fileobj)
    header: Subtrees | dict[str, t.Any]
    if document is not whole.NOT_WHOLE:
        top_keys, header, scan = _whole_pass(document, what)
    else:
        top_keys, header, scan = _first_pass(fileobj, what, None)
    is_statement = "predicate" in top_keys or "_type" in top_keys
    if is_statement and not scan.base:  # a statement whose first key is not an in-toto one: walk it again
        top_keys, header, scan = _first_pass(fileobj, what, True)
    if is_statement:
        statement_type, predicate_type = header.get("_type"), header.get("predicateType")
        if not isinstance(statement_type, str) or not isinstance(predicate_type, str) or not predicate_type:
            raise MalformedDocument(f"{what} has no `_type` or `predicateType`")
        if "predicate" not in top_keys:
            raise MalformedDocument(f"{what} has no `predicate`")
        result = Statement(
            statement_type, predicate_type, _subject_digests(header.get("subject")), kind_for_predicate(predicate_type)
        )
    elif scan.format:  # a plain SBOM artifact: the document is the SBOM itself
        result = Statement(None, None, [], "sbom")
    else:
        raise MalformedDocument(f"{what} is neither an in-toto statement nor an SPDX or CycloneDX document")
    if result.kind == "sbom":
        result.fields.update(scan.fields())
        if scan.format is None:
            result.warnings.append(f"{what}: the SBOM is neither SPDX 2.x JSON nor CycloneDX JSON; no packages read")
        else:
            result.sbom_base, result.sbom_created = scan.base, scan.created
    elif result.kind == "provenance":
        if document is not whole.NOT_WHOLE:
            predicate = document.get("predicate")
        else:
            predicate = as_object(prune(fileobj, _PROVENANCE, what, **_PROVENANCE_BOUNDS)).get("predicate")
        if not isinstance(predicate, dict):
            raise MalformedDocument(f"{what}: provenance predicate is not an object")
        result.fields.update(provenance.provenance_fields(predicate, result.predicate_type))
        result.warnings += provenance.materials_warning(predicate, result.predicate_type, what)
    return result


def statement_packages(fileobj: t.BinaryIO, statement: Statement, what: str = "SBOM") -> t.Iterator[dict[str, t.Any]]:
    """The package fields of a statement's SBOM, one at a time (a fresh pass over the file)."""
    if statement.sbom_base is None or statement.sbom_format is None:
        return iter(())
    return package_fields(fileobj, statement.sbom_base, statement.sbom_format, what)
