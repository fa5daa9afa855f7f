"""Streaming JSON over binary file objects (ijson): nothing here holds a whole document.

`events` yields ijson `(prefix, event, value)` triples from the start of a
seekable file; `Subtrees` builds the few small values a reader needs out of
that stream, leaving out named subtrees (an LLB definition, a package list);
`stream_objects` yields one object at a time from a list (SPDX packages,
CycloneDX components, nested ones included), never holding the list;
`Diverter` + `Base64Sink` take a base64 string (a DSSE payload) out of a
document and decode it into a temp file without ever holding it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import tempfile
import typing as t

import ijson
from ijson.common import ObjectBuilder

from tap_ghcr.attestations.errors import MalformedDocument

Event = tuple[str, str, t.Any]

# A decoded payload up to this size stays in memory; a larger one goes to disk.
SPOOL_BYTES = 1024 * 1024
_URLSAFE = str.maketrans("-_", "+/")


# Deeper nesting is refused. ijson's prefix of an event spells out every level above it, so its
# memory and time grow with the square of the depth (a 40 KB document nested 20,000 deep took
# 960 MB); msgspec, which reads small documents whole, stops at about the same depth.
MAX_DEPTH = 1000
# ijson keeps the dotted path of every open level, so long keys deep down cost the square of both (300
# levels of 20 KB keys took 1.8 GB). A longer path is refused: real paths are under a kilobyte, and the
# open levels' paths then stay under MAX_DEPTH x MAX_PATH.
MAX_PATH = 16 * 1024
# ijson reads this much at a time, and makes all of a read's events before the first is seen:
# small enough that the events of one read past MAX_DEPTH stay a few megabytes.
PARSE_BYTES = 1024
# `prune`'s basic events carry no prefix, so one large read's events stay small however deep they
# go, and fewer reads cost less (long tokens are `Reads`' business either way).
BASIC_PARSE_BYTES = 64 * 1024
_OPEN = frozenset({"start_map", "start_array"})
_CLOSE = frozenset({"end_map", "end_array"})


def parse(fileobj: t.Any) -> t.Iterator[Event]:
    """ijson's parse events, read PARSE_BYTES at a time (iterate inside `json_errors`)."""
    return ijson.parse(Reads(fileobj), buf_size=PARSE_BYTES, use_float=True)


# What can continue a number token across reads (`true`'s `e` too, harmlessly: it only sizes a read).
_NUMBER_BYTES = b"0123456789+-.eE"
_NUMBER_SET = frozenset(_NUMBER_BYTES)
_NUMBER_RUN = re.compile(rb"[-+.eE0-9]*")


def _blank_escapes(text: bytes) -> bytes:
    """`text` (which starts outside an escape) with every escape pair's bytes blanked, same length.

    JSON pairs backslashes left to right, as `bytes.replace` does; a backslash left over then escapes
    the byte after it, and only an escaped quote matters. What is left: quotes that open or close a
    string, and a lone backslash at the very end if the text stops inside an escape. (C-speed and in
    constant extra memory, whatever the escapes: a regex kept state for each one, 2 GB for 64 MiB.)"""
    if b"\\" not in text:
        return text
    return text.replace(b"\\\\", b"__").replace(b'\\"', b"__")


class Reads:
    """The file as ijson should read it: a string or number that spans reads arrives in reads of
    doubling size.

    ijson (yajl) lexes a token that spans reads again from its start at every read, so a long string
    read a kilobyte at a time costs time in the square of its length (8 MiB took 26 s, 64 MiB would
    take half an hour). Here, once a read ends inside a string (or a number), each next read is at
    least as long as what the token has had so far, and a read longer than asked stops where the token
    ends: the token costs linear time, and a read's events stay those of at most `buf_size` bytes plus
    one token, as the callers' bounds on one read's events assume. The bytes are the file's, unchanged
    and in order.
    """

    def __init__(self, raw: t.Any) -> None:
        self.raw = raw
        self.in_string = False
        self.escaped = False  # the last read ended inside a string, just after a backslash
        self.token_bytes = 0  # of the string or number the last read ended in, read so far
        self._pending = b""  # read from the file, not yet given: from `_at` on
        self._at = 0
        self._was_pending = False  # the last `_take` came from `_pending`

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""  # ijson's probe for bytes or text
        size = size if size > 0 else 64 * 1024
        data = self._take(size) if self.token_bytes <= size else self._take_full(self.token_bytes)
        if len(data) <= size:
            self._note(data)
            return data
        # A long token's read: it stops where the token ends, and the rest comes next.
        skip = 1 if self.in_string and self.escaped else 0  # the first byte is escaped
        if self.in_string:
            end = _blank_escapes(data[skip:]).find(b'"')
            end = -1 if end < 0 else end + skip + 1  # just after the closing quote
        else:
            end = _NUMBER_RUN.match(data).end()
            if end == 0:  # the number ended with the last read: this one is an ordinary read
                self._give_back(data, size)
                self.token_bytes = 0
                self._note(data[:size])
                return data[:size]
            end = -1 if end == len(data) else end
        if end < 0:  # the token goes on
            self.escaped = self.in_string and _blank_escapes(data[skip:]).endswith(b"\\")
            self.token_bytes += len(data)
            return data
        self._give_back(data, end)
        self.in_string = self.escaped = False
        self.token_bytes = 0
        return data[:end]

    def _note(self, data: bytes) -> None:
        """Follow the string state through `data`, and the token it ends in."""
        skip = 1 if self.in_string and self.escaped else 0  # the first byte is escaped
        text = _blank_escapes(data[skip:] if skip else data)
        quotes = text.count(b'"')
        if quotes % 2:
            self.in_string = not self.in_string
        if self.in_string:  # in the string open before (no quote here), or in the one the last quote opens
            self.escaped = text.endswith(b"\\")
            self.token_bytes = len(text) - text.rfind(b'"') if quotes else self.token_bytes + len(data)
            return
        self.escaped = False
        number = len(data) - len(data.rstrip(_NUMBER_BYTES)) if data[-1:] and data[-1] in _NUMBER_SET else 0
        self.token_bytes = self.token_bytes + len(data) if number == len(data) and self.token_bytes else number

    def _give_back(self, data: bytes, end: int) -> None:
        """The bytes of `data` from `end` on are read again next."""
        if self._was_pending:
            self._at -= len(data) - end
        else:
            self._pending, self._at = data, end

    def _take_full(self, size: int) -> bytes:
        """`size` bytes, or up to the end: a long token's read stays long over a file that returns less."""
        data = self._take(size)
        if not data or len(data) >= size:
            return data
        parts, total = [data], len(data)
        while total < size and (more := self._take(size - total)):
            parts.append(more)
            total += len(more)
        if len(parts) > 1:
            self._was_pending = False  # a copy: what is given back is held as it is
        return b"".join(parts)

    def _take(self, size: int) -> bytes:
        self._was_pending = self._at < len(self._pending)
        if not self._was_pending:
            return self.raw.read(size)
        data = self._pending[self._at:self._at + size]
        self._at += len(data)
        return data


def events(fileobj: t.Any, what: str = "document", *, rewind: bool = True) -> t.Iterator[Event]:
    """Parse events of the whole file, from its start; invalid JSON, or nesting deeper than MAX_DEPTH,
    is a MalformedDocument."""
    if rewind:
        fileobj.seek(0)
    depth = Depth(what)
    with json_errors(what):
        for event in parse(fileobj):
            depth.take(event[1], event[0])
            yield event


class Depth:
    """Counts nesting from parse events; past MAX_DEPTH, or a key path past MAX_PATH, a MalformedDocument."""

    def __init__(self, what: str) -> None:
        self.what, self.depth = what, 0

    def take(self, event: str, prefix: str = "") -> None:
        if len(prefix) > MAX_PATH:
            raise MalformedDocument(f"{self.what} has a key path longer than {MAX_PATH:,} characters")
        if event in _OPEN:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise MalformedDocument(f"{self.what} nests deeper than {MAX_DEPTH} levels")
        elif event in _CLOSE:
            self.depth -= 1


@contextlib.contextmanager
def json_errors(what: str) -> t.Iterator[None]:
    """Invalid JSON met while parsing inside the block is a MalformedDocument naming `what`.

    A loop over every event of a large document iterates `parse` itself
    inside this block: each event through `events` costs a generator step more.
    ijson decodes a lone surrogate escape (`"\\udc00"`) into bytes that are not UTF-8.
    """
    try:
        yield
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise MalformedDocument(f"{what} is not valid JSON: {exc}") from exc


def under(prefix: str, root: str) -> bool:
    """Whether an event prefix is `root` or inside it."""
    return prefix == root or prefix.startswith(root + ".")


# What `Subtrees` builds is bounded: a 64 MiB `subject` list took 1.9 GB. 400,000 events are about 100,000
# in-toto subjects, or a few tens of MB.
MAX_BUILT = 400_000


class Subtrees:
    """Builds the values found at `roots` (exact prefixes) from parse events, minus `skip` subtrees.

    Every event of a document passes through `feed`, so it does one set lookup
    per event outside the values it builds, and drops a skipped subtree by
    remembering where it ends (a provenance predicate's LLB definition is most
    of its events).
    """

    def __init__(self, roots: t.Iterable[str], skip: t.Iterable[str] = (), what: str = "document") -> None:
        self.roots = frozenset(roots)
        self.skip = frozenset(skip)
        self.what, self.built = what, 0
        self.values: dict[str, t.Any] = {}
        self._root: str | None = None
        self._builder: ObjectBuilder | None = None
        self._skipping: str | None = None  # the prefix of the skipped container being passed over

    def feed(self, prefix: str, event: str, value: t.Any) -> None:
        """Take one parse event."""
        if self._builder is None:
            if prefix not in self.roots or event in _NOT_A_VALUE:
                return
            if event in _STARTS:
                self._root, self._builder = prefix, ObjectBuilder()
                self._builder.event(event, value)
            else:
                self.values[prefix] = value
            return
        if self._skipping is not None:
            if prefix == self._skipping and event in _ENDS:
                self._skipping = None
            return
        if prefix in self.skip:  # a skipped key's value: a scalar, or a container to pass over
            if event in _STARTS:
                self._skipping = prefix
            return
        self.built += 1
        if self.built > MAX_BUILT:
            raise MalformedDocument(f"{self.what} holds more than {MAX_BUILT:,} parse events where values are read")
        self._builder.event(event, value)
        if prefix == self._root and event in _ENDS:
            self.values[prefix] = self._builder.value
            self._root, self._builder = None, None

    def get(self, root: str, default: t.Any = None) -> t.Any:
        """The value built at `root`, or `default`."""
        return self.values.get(root, default)


_STARTS = frozenset({"start_map", "start_array"})
_ENDS = frozenset({"end_map", "end_array"})
_NOT_A_VALUE = frozenset({"map_key", "end_map", "end_array"})


def collect(
    fileobj: t.BinaryIO, roots: t.Iterable[str], skip: t.Iterable[str] = (), what: str = "document"
) -> Subtrees:
    """One pass over the file building the values at `roots`."""
    trees = Subtrees(roots, skip, what)
    for prefix, event, value in events(fileobj, what):
        trees.feed(prefix, event, value)
    return trees


# A shape: for each key an object may hold, the shape of its value (`"*"`: any other key; `ITEMS`: a
# list's items, which no object key can name; `{}`: a scalar is kept, a container is kept empty).
Shape = dict[t.Any, "Shape"]
ITEMS = object()


def prune(fileobj: t.BinaryIO, shape: Shape, what: str, *, max_items: int, max_values: int) -> t.Any:
    """The document, keeping only the values `shape` names: one pass, building nothing else.

    A list keeps its first `max_items` items. What is kept is bounded: past `max_values` values kept, the
    document is a MalformedDocument (a provenance statement can be 64 MiB of material, and a whole
    tree of it takes 50 times that). ijson's basic events carry no prefix, so the cost per event does
    not grow with the depth, and keys are read as written (dotted, empty, named `item`).
    """
    stack: list[list[t.Any]] = []  # [container, its shape, the pending key]
    root: t.Any = None
    dropping = kept = 0  # the depth inside a container not kept; values kept
    depth = Depth(what)
    fileobj.seek(0)
    with json_errors(what):
        for event, value in ijson.basic_parse(Reads(fileobj), buf_size=BASIC_PARSE_BYTES, use_float=True):
            depth.take(event)
            if dropping:
                dropping += 1 if event in _STARTS else -1 if event in _ENDS else 0
                continue
            if event == "map_key":
                stack[-1][2] = value
                continue
            if event in _ENDS:
                stack.pop()
                continue
            if not stack:
                child: Shape | None = shape
            else:
                parent, parent_shape, key = stack[-1]
                if isinstance(parent, list):
                    child = parent_shape.get(ITEMS) if len(parent) < max_items else None
                else:
                    child = parent_shape.get(key, parent_shape.get("*"))
            if child is None:
                dropping = 1 if event in _STARTS else 0
                continue
            kept += 1
            if kept > max_values:
                raise MalformedDocument(f"{what} holds more than {max_values:,} of the values read from it")
            node = {} if event == "start_map" else [] if event == "start_array" else value
            if not stack:
                root = node
            elif isinstance(stack[-1][0], list):
                stack[-1][0].append(node)
            else:
                stack[-1][0][stack[-1][2]] = node
            if event in _STARTS:
                stack.append([node, child, None])
    return root


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


def b64decode_small(text: str, what: str) -> bytes:
    """Decode a short base64 value (standard or URL-safe, padded or not)."""
    try:
        text = text.strip().translate(_URLSAFE)
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError, AttributeError) as exc:
        raise MalformedDocument(f"{what} is not valid base64: {exc}") from exc


_URLSAFE_BYTES = bytes.maketrans(b"-_", b"+/")
_STRING_SPECIAL = re.compile(rb'["\\]')
_ESCAPES = {ord("/"): b"/", ord("\\"): b"\\", ord('"'): b'"', ord("b"): b"\b", ord("f"): b"\f", ord("n"): b"\n"}
_ESCAPES.update({ord("r"): b"\r", ord("t"): b"\t"})
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_HEX4 = re.compile(rb"[0-9a-fA-F]{4}")


class Base64Sink:
    """Decodes base64 text (standard or URL-safe, padded or not) as it arrives into a spooled temp file."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # the caller closes it (finish/close)
        self._pending = b""

    def write(self, data: bytes) -> None:
        """Take the next piece of base64 text."""
        data = self._pending + data.translate(_URLSAFE_BYTES, b" \t\r\n")
        cut = len(data) - len(data) % 4
        self._pending = data[cut:]
        if cut:
            self._decode(data[:cut])

    def _decode(self, data: bytes) -> None:
        try:
            self.out.write(base64.b64decode(data, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise MalformedDocument(f"{self.what} is not valid base64: {exc}") from exc

    def finish(self) -> t.BinaryIO:
        """The decoded bytes, from their start."""
        if self._pending:
            self._decode(self._pending + b"=" * (-len(self._pending) % 4))
            self._pending = b""
        self.out.seek(0)
        return t.cast(t.BinaryIO, self.out)

    def close(self) -> None:
        """Drop the decoded bytes."""
        self.out.close()


class Diverter:
    """A file-like view of a JSON document in which the string at `path` reads as `""`.

    The string's content (JSON escapes decoded) goes to `sink` as it is read,
    a chunk at a time, so a multi-megabyte base64 payload is never one Python
    string. `path` is the chain of object keys (`"item"` for an array level)
    from the root to the string, as in ijson prefixes.
    """

    def __init__(self, raw: t.BinaryIO, path: tuple[str, ...], sink: t.Callable[[bytes], None]) -> None:
        self.raw, self.path, self.sink = raw, path, sink
        self.found = 0
        self._stack: list[list[t.Any]] = []  # ["{", key, expecting_key] or ["["]
        self._mode = "struct"  # struct | string | key | divert
        self._key = bytearray()
        self._escape = b""
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes of the filtered document (b"" at its end; `read(0)` is b"", as ijson probes)."""
        if size == 0:
            return b""
        size = size if size > 0 else 64 * 1024
        while not self._buffer:
            chunk = self.raw.read(max(size, 64 * 1024))
            if not chunk:
                return b""
            self._buffer = self._process(chunk)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _value_path(self) -> tuple[str, ...]:
        return tuple(entry[1] if entry[0] == "{" else "item" for entry in self._stack)

    def _emit(self, out: bytearray, piece: bytes) -> None:
        if self._mode == "divert":
            if piece:
                self.sink(piece)
        else:
            out += piece
            if self._mode == "key":
                self._key += piece

    def _end_escape(self, out: bytearray) -> None:
        escape, self._escape = self._escape, b""
        if self._mode != "divert":
            self._emit(out, escape)
        elif escape[1] == ord("u"):
            if not _HEX4.fullmatch(escape[2:]):
                raise MalformedDocument(f"invalid JSON escape {escape!r}")
            self.sink(chr(int(escape[2:], 16)).encode("utf-8", "replace"))
        elif escape[1] in _ESCAPES:
            self.sink(_ESCAPES[escape[1]])
        else:
            raise MalformedDocument(f"invalid JSON escape {escape!r}")

    def _end_string(self, out: bytearray) -> None:
        out += b'"'
        if self._mode == "key":
            try:
                self._stack[-1][1] = json.loads(b'"' + bytes(self._key) + b'"')
            except ValueError as exc:  # a bad escape, a raw control character, bytes that are not UTF-8
                raise MalformedDocument(f"invalid JSON object key: {exc}") from None
            self._key = bytearray()
        self._mode = "struct"

    def _process(self, chunk: bytes) -> bytes:
        out = bytearray()
        i, n = 0, len(chunk)
        while i < n:
            if self._mode == "struct":
                c = chunk[i]
                i += 1
                if c == _QUOTE:
                    out += b'"'
                    top = self._stack[-1] if self._stack else None
                    if top is not None and top[0] == "{" and top[2]:
                        self._mode = "key"
                    elif len(self._stack) == len(self.path) and self._value_path() == self.path:
                        self._mode, self.found = "divert", self.found + 1
                    else:
                        self._mode = "string"
                    continue
                out.append(c)
                if c == ord("{"):
                    self._stack.append(["{", None, True])
                elif c == ord("["):
                    self._stack.append(["["])
                elif c in (ord("}"), ord("]")) and self._stack:
                    self._stack.pop()
                elif c == ord(":") and self._stack:
                    self._stack[-1][2:] = [False]
                elif c == ord(",") and self._stack and self._stack[-1][0] == "{":
                    self._stack[-1][2] = True
                continue
            if self._escape:
                self._escape += chunk[i : i + 1]
                i += 1
                if self._escape[1] != ord("u") or len(self._escape) == 6:
                    self._end_escape(out)
                continue
            match = _STRING_SPECIAL.search(chunk, i)
            end = match.start() if match else n
            self._emit(out, chunk[i:end])
            i = end
            if match is None:
                break
            i += 1
            if chunk[end] == _QUOTE:
                self._end_string(out)
            else:
                self._escape = b"\\"
        return bytes(out)
