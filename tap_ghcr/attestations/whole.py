"""Small documents decoded whole, in one C call (msgspec), rather than streamed event by event.

Walking ijson's events costs Python work per event: about 7 ms for a 200-package
SBOM statement against 0.4 ms to decode it whole, and it was most of the tap's
CPU on an organisation with SBOMs. A document up to `WHOLE_MAX_BYTES` is
decoded whole: about 10 MB of Python objects for 1 MiB of SBOM, up to about
50 MB for 1 MiB of hostile JSON (tiny objects); documents are read one at a
time, and an SBOM's packages decode it again only when they are written: SPDX
packages then as their JSON texts (`spdx_packages`), each decoded only when
not seen before (`sbom.package_fields`). A
larger document streams as before (BuildKit allows 40 MiB). What msgspec will
not decode (invalid JSON, a lone surrogate escape, nesting deeper than about
1,000 levels) goes to the streaming reader, so a bad document gets the one
error that reader gives, whatever its size.

Both readers give the same fields for the same document, except where ijson's
dotted prefixes cannot say what the JSON says, which no SBOM tool writes: a
repeated key (the last one counts here), a key that contains a dot, an empty
key, an object key named `item` where a list belongs; and an integer outside
int64 (or exactly -2**63), which ijson refuses. There the whole reader reads
the JSON as written.
"""

from __future__ import annotations

import io
import typing as t

import msgspec

WHOLE_MAX_BYTES = 1024 * 1024
_decoder = msgspec.json.Decoder()


class NotWhole:
    """The document is to be streamed: too large, or not decodable here."""


NOT_WHOLE = NotWhole()


def load(fileobj: t.BinaryIO) -> t.Any:
    """The whole document from the start of a seekable file (any JSON value), or `NOT_WHOLE`."""
    data = _small(fileobj)
    if data is None:
        return NOT_WHOLE
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return NOT_WHOLE


class _SpdxRoot(msgspec.Struct):
    packages: list[msgspec.Raw] | None = None


class _SpdxStatement(msgspec.Struct):
    predicate: _SpdxRoot | None = None


# By base (see `at`): the SPDX document's `packages`, each left as its JSON text; the rest skipped unbuilt.
_spdx_decoders = {"": msgspec.json.Decoder(_SpdxRoot), "predicate.": msgspec.json.Decoder(_SpdxStatement)}


def spdx_packages(fileobj: t.BinaryIO, base: str) -> list[msgspec.Raw] | None:
    """The JSON text of each item of the SPDX `packages` at `base` (none when that is absent or null),
    from the start of a seekable file; None when `load` is to say: too large, not an object where one
    belongs, `packages` not a list, or not decodable here. Only the item texts are made, so an SBOM's
    second pass makes no Python objects for packages seen before (`sbom.package_fields`)."""
    decoder = _spdx_decoders.get(base)
    data = _small(fileobj)
    if decoder is None or data is None:
        return None
    try:
        root = decoder.decode(data)
    except (msgspec.DecodeError, RecursionError):  # (a ValidationError is a DecodeError)
        return None
    if isinstance(root, _SpdxStatement):
        root = root.predicate
    return (root.packages if root is not None else None) or []


def decode(data: bytes) -> t.Any:
    """Any JSON value from `data`, as `load` decodes it (msgspec.DecodeError or RecursionError if not)."""
    return _decoder.decode(data)


def _small(fileobj: t.BinaryIO) -> bytes | None:
    """The file's content when it is at most WHOLE_MAX_BYTES, the file left at its start."""
    fileobj.seek(0, io.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(0)
    if size > WHOLE_MAX_BYTES:
        return None
    data = fileobj.read()
    fileobj.seek(0)
    return data


def at(document: t.Any, base: str) -> t.Any:
    """The value at a reader's `base`: the document for `''`, its `predicate` for `'predicate.'` (the
    two bases there are); None when that is not an object's member."""
    for key in base.split(".")[:-1] if base else ():
        document = document.get(key) if isinstance(document, dict) else None
    return document
