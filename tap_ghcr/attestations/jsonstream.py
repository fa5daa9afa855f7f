"""Streaming JSON over binary file objects (ijson): nothing here holds a whole document.

`events` yields ijson `(prefix, event, value)` triples from the start of a
seekable file; `Subtrees` builds the few small values a reader needs out of
that stream, leaving out named subtrees (an LLB definition, a package list);
`stream_objects` yields one object at a time from a list (SPDX packages,
CycloneDX components, nested ones included), never holding the list.
"""

from __future__ import annotations

import base64
import binascii
import tempfile
import typing as t

import ijson
from ijson.common import ObjectBuilder

from tap_ghcr.attestations.errors import MalformedDocument

Event = tuple[str, str, t.Any]

# A decoded payload up to this size stays in memory; a larger one goes to disk.
SPOOL_BYTES = 1024 * 1024
_B64_CHUNK = 4 * 64 * 1024  # characters of base64 decoded at a time (a multiple of 4)
_URLSAFE = str.maketrans("-_", "+/")


def events(fileobj: t.BinaryIO, what: str = "document") -> t.Iterator[Event]:
    """Parse events of the whole file, from its start; invalid JSON is a MalformedDocument."""
    fileobj.seek(0)
    try:
        yield from ijson.parse(fileobj, use_float=True)
    except ijson.JSONError as exc:
        raise MalformedDocument(f"{what} is not valid JSON: {exc}") from exc


def under(prefix: str, root: str) -> bool:
    """Whether an event prefix is `root` or inside it."""
    return prefix == root or prefix.startswith(root + ".")


class Subtrees:
    """Builds the values found at `roots` (exact prefixes) from parse events, minus `skip` subtrees."""

    def __init__(self, roots: t.Iterable[str], skip: t.Iterable[str] = ()) -> None:
        self.roots = frozenset(roots)
        self.skip = tuple(skip)
        self.values: dict[str, t.Any] = {}
        self._root: str | None = None
        self._builder: ObjectBuilder | None = None

    def feed(self, prefix: str, event: str, value: t.Any) -> None:
        """Take one parse event."""
        if self._builder is None:
            if prefix not in self.roots or event in ("map_key", "end_map", "end_array"):
                return
            if event in ("start_map", "start_array"):
                self._root, self._builder = prefix, ObjectBuilder()
                self._builder.event(event, value)
            else:
                self.values[prefix] = value
            return
        if any(under(prefix, s) for s in self.skip):
            return
        self._builder.event(event, value)
        if prefix == self._root and event in ("end_map", "end_array"):
            self.values[prefix] = self._builder.value
            self._root, self._builder = None, None

    def get(self, root: str, default: t.Any = None) -> t.Any:
        """The value built at `root`, or `default`."""
        return self.values.get(root, default)


def collect(
    fileobj: t.BinaryIO, roots: t.Iterable[str], skip: t.Iterable[str] = (), what: str = "document"
) -> Subtrees:
    """One pass over the file building the values at `roots`."""
    trees = Subtrees(roots, skip)
    for prefix, event, value in events(fileobj, what):
        trees.feed(prefix, event, value)
    return trees


def stream_objects(
    stream: t.Iterable[Event], match: t.Callable[[str], bool], nested_key: str | None = None
) -> t.Iterator[dict]:
    """Yield each JSON object whose prefix `match`es, one at a time.

    With `nested_key` (CycloneDX `components`), an object's own nested list
    under that key is left out of it: the nested objects match too and are
    yielded on their own (a child before its parent), so only the chain of
    open ancestors is ever held, never a whole tree.
    """
    stack: list[tuple[str, ObjectBuilder]] = []
    for prefix, event, value in stream:
        if event == "start_map" and match(prefix):
            builder = ObjectBuilder()
            builder.event(event, value)
            stack.append((prefix, builder))
            continue
        if not stack:
            continue
        top, builder = stack[-1]
        if event == "end_map" and prefix == top:
            builder.event(event, value)
            stack.pop()
            if isinstance(builder.value, dict):
                yield builder.value
            continue
        if nested_key and under(prefix, f"{top}.{nested_key}"):
            continue
        builder.event(event, value)


def b64decode_to_file(text: str, what: str) -> t.BinaryIO:
    """Decode base64 (standard or URL-safe, padded or not) into a spooled temp file, a chunk at a time."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    try:
        text = text.strip()
        for start in range(0, len(text), _B64_CHUNK):
            chunk = text[start : start + _B64_CHUNK].translate(_URLSAFE)
            if start + _B64_CHUNK >= len(text):
                chunk += "=" * (-len(chunk) % 4)
            out.write(base64.b64decode(chunk, validate=True))
    except (binascii.Error, ValueError) as exc:
        out.close()
        raise MalformedDocument(f"{what} is not valid base64: {exc}") from exc
    out.seek(0)
    return t.cast(t.BinaryIO, out)


def b64decode_small(text: str, what: str) -> bytes:
    """Decode a short base64 value (standard or URL-safe, padded or not)."""
    try:
        text = text.strip().translate(_URLSAFE)
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError, AttributeError) as exc:
        raise MalformedDocument(f"{what} is not valid base64: {exc}") from exc
