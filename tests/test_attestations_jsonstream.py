"""The streaming helpers: Subtrees, stream_objects, and the base64 payload Diverter."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys

import pytest

from tap_ghcr.attestations import MalformedDocument, jsonstream
from tap_ghcr.attestations.jsonstream import (
    ITEMS,
    MAX_DEPTH,
    MAX_PATH,
    Base64Sink,
    Diverter,
    Reads,
    Subtrees,
    events,
    prune,
    stream_objects,
)


class Trickle(io.BytesIO):
    """A file that returns at most `step` bytes per read (chunk boundaries everywhere)."""

    def __init__(self, data: bytes, step: int) -> None:
        super().__init__(data)
        self.step = step

    def read(self, size: int | None = -1) -> bytes:
        return super().read(self.step)


# "hello world!!" in base64 with a JSON \\u escape and an escaped slash inside the string.
PAYLOAD = b'"aGVsbG8gd2\\u0039ybGQhIQ=="'
ENVELOPE = (
    b'{"a": [1, {"payload": "no"}], "payloadType": "x\\"y", "payload": '
    + PAYLOAD
    + b', "z": {"payload": "q"}, "esc\\"aped": "\\\\"}'
)


@pytest.mark.parametrize("step", [1, 2, 3, 5, 7, 64, 10_000])
def test_diverter_takes_the_payload_out_at_any_chunking(step: int) -> None:
    sink = Base64Sink("test")
    diverter = Diverter(Trickle(ENVELOPE, step), ("payload",), sink.write)
    strings = [(p, v) for p, e, v in events(diverter, rewind=False) if e == "string"]
    assert strings == [
        ("a.item.payload", "no"),
        ("payloadType", 'x"y'),
        ("payload", ""),
        ("z.payload", "q"),
        ('esc"aped', "\\"),
    ]
    assert diverter.found == 1
    assert sink.finish().read() == b"hello world!!"


def test_diverter_nested_path_url_safe_unpadded_and_escaped_slash() -> None:
    data = bytes(range(256))
    text = base64.urlsafe_b64encode(data).decode().rstrip("=")
    std = base64.b64encode(data).decode().replace("/", "\\/")
    for encoded in (text, std):
        doc = '{"dsseEnvelope": {"payloadType": "t", "payload": "' + encoded + '"}, "payload": "x"}'
        sink = Base64Sink("test")
        diverter = Diverter(Trickle(doc.encode(), 3), ("dsseEnvelope", "payload"), sink.write)
        assert [v for p, e, v in events(diverter, rewind=False) if p == "payload"] == ["x"]
        assert sink.finish().read() == data


def test_base64_sink_rejects_garbage() -> None:
    sink = Base64Sink("the payload")
    with pytest.raises(MalformedDocument, match="the payload is not valid base64"):
        sink.write(b"!!!!")
    sink.close()


def test_subtrees_skip_and_scalars() -> None:
    doc = {"a": {"keep": 1, "big": list(range(5)), "deep": {"x": {"y": 2}, "z": 3}}, "b": "s", "c": [1]}
    trees = Subtrees(("a", "b"), skip=("a.big", "a.deep.x"))
    for event in events(io.BytesIO(json.dumps(doc).encode())):
        trees.feed(*event)
    assert trees.get("a") == {"keep": 1, "deep": {"z": 3}}
    assert trees.get("b") == "s"
    assert trees.get("c") is None


def test_stream_objects_nested_children_first_without_their_children() -> None:
    doc = {"components": [{"n": 1, "components": [{"n": 2, "components": [{"n": 3}]}], "after": True}, {"n": 4}]}
    found = list(
        stream_objects(
            events(io.BytesIO(json.dumps(doc).encode())),
            lambda p: (
                p
                in (
                    "components.item",
                    "components.item.components.item",
                    "components.item.components.item.components.item",
                )
            ),
            nested_key="components",
        )
    )
    assert found == [{"n": 3}, {"n": 2}, {"n": 1, "after": True}, {"n": 4}]


def _without(value: object, path: list[str]) -> None:
    """Delete `path` (object keys; "item" for every element of a list) from `value`, as a skip means."""
    head, rest = path[0], path[1:]
    targets = value if head == "item" and isinstance(value, list) else [value]
    for target in targets:
        if head == "item" and isinstance(value, list):
            if rest:
                _without(target, rest)
        elif isinstance(target, dict) and head in target:
            if rest:
                _without(target[head], rest)
            else:
                del target[head]


SKIP_CASES = [
    # (document, root, skip): the skipped value is a container, a scalar, absent, repeated in list items,
    # nested inside another skipped one, shares a prefix with a kept key, or holds a key named like the root.
    ({"p": {"big": {"a": [1, {"b": 2}]}, "keep": 1}}, "p", ["p.big"]),
    ({"p": {"big": "scalar", "keep": [1, 2]}}, "p", ["p.big"]),
    ({"p": {"keep": {"x": 1}}}, "p", ["p.absent"]),
    ({"p": {"items": [{"proof": {"h": [1]}, "id": 1}, {"proof": [], "id": 2}, {"id": 3}]}}, "p",
     ["p.items.item.proof"]),
    ({"p": {"a": {"b": {"c": 1}, "d": 2}}}, "p", ["p.a", "p.a.b"]),
    ({"p": {"big": [1], "bigger": {"x": 1}, "big2": 2}}, "p", ["p.big"]),
    ({"p": {"big": {"p": {"big": 1}}, "p": {"big": 2}}}, "p", ["p.big"]),
    ({"p": {"big": {"x": 1}}}, "p", ["p.big"]),  # the skipped key is the last: nothing dangles
    ({"p": [{"big": 1}, {"big": {"y": [2]}}]}, "p", ["p.item.big"]),
    ({"p": {"big.x": 1, "big": {"x": 2}}}, "p", ["p.big"]),  # a key with a dot is one key, not a path
]


@pytest.mark.parametrize(("doc", "root", "skip"), SKIP_CASES)
def test_subtrees_skip_leaves_exactly_the_skipped_values_out(doc: dict, root: str, skip: list[str]) -> None:
    expected = json.loads(json.dumps(doc))[root]
    for path in skip:
        _without({root: expected}, path.split("."))
    trees = Subtrees((root,), skip=skip)
    for event in events(io.BytesIO(json.dumps(doc).encode())):
        trees.feed(*event)
    assert trees.get(root) == expected


SHAPE = {"a": {"id": {}, "digest": {"*": {}}}, "list": {ITEMS: {"uri": {}}}, "b.c": {}, "item": {}, ITEMS: {}}
PRUNE_CASES = [
    # (document, what prune keeps of it with SHAPE)
    ({"a": {"id": "x", "other": {"deep": [1, 2]}}, "z": [1]}, {"a": {"id": "x"}}),
    ({"a": {"id": {"not": "scalar"}}}, {"a": {"id": {}}}),  # a container where a scalar belongs: kept empty
    ({"a": {"id": [1, [2]]}}, {"a": {"id": []}}),
    ({"a": "scalar"}, {"a": "scalar"}),  # a scalar where an object belongs is kept as it is
    (
        {"a": {"digest": {"sha256": "h", "sha1": "g", "x": {"y": 1}}}},
        {"a": {"digest": {"sha256": "h", "sha1": "g", "x": {}}}},
    ),
    ({"list": [{"uri": "u", "q": 1}, 2, {"q": 3}, [4]]}, {"list": [{"uri": "u"}, 2, {}, []]}),
    ({"list": {"item": {"uri": "u"}}}, {"list": {}}),  # an object's key named item is no list item
    ({"b.c": 1, "b": {"c": 2}}, {"b.c": 1}),  # a dotted key is one key
    ({"item": 5}, {"item": 5}),
    ({"a": {"id": 1}, "a ": 2}, {"a": {"id": 1}}),
    ([{"a": 1}, 2], [{}, 2]),  # not an object at the top: kept as what it is, without what SHAPE does not name
    ("text", "text"),
]


@pytest.mark.parametrize(("doc", "kept"), PRUNE_CASES)
def test_prune_keeps_exactly_what_the_shape_names(doc: object, kept: object) -> None:
    assert prune(io.BytesIO(json.dumps(doc).encode()), SHAPE, "doc", max_items=10, max_values=100) == kept


def test_prune_a_repeated_key_the_last_counts_as_in_a_whole_decode() -> None:
    repeated = b'{"a": {"id": 1}, "z": 0, "a": {"id": 2}}'
    assert prune(io.BytesIO(repeated), SHAPE, "doc", max_items=10, max_values=100) == {"a": {"id": 2}}


def test_prune_keeps_the_first_items_of_a_list_and_bounds_what_it_keeps() -> None:
    doc = {"list": [{"uri": str(i), "big": [0] * 50} for i in range(1000)]}
    kept = prune(io.BytesIO(json.dumps(doc).encode()), SHAPE, "doc", max_items=3, max_values=100)
    assert kept == {"list": [{"uri": "0"}, {"uri": "1"}, {"uri": "2"}]}
    # 1 + 1 + 3 x 2 = 8 values kept: the 9th is one too many.
    assert prune(io.BytesIO(json.dumps(doc).encode()), SHAPE, "doc", max_items=3, max_values=8) == kept
    with pytest.raises(MalformedDocument, match=r"doc holds more than 7 of the values read from it"):
        prune(io.BytesIO(json.dumps(doc).encode()), SHAPE, "doc", max_items=3, max_values=7)
    many_keys = {"a": {"digest": {f"alg{i}": "h" for i in range(100)}}}
    with pytest.raises(MalformedDocument, match="more than 50 of the values"):
        prune(io.BytesIO(json.dumps(many_keys).encode()), SHAPE, "doc", max_items=3, max_values=50)


@pytest.mark.parametrize(
    "data",
    [b'{"a": {"id": 1}', b'{"a": nope}', rb'{"a": "\udc00"}', b"[" * (MAX_DEPTH + 1)],
)
def test_prune_refuses_invalid_json_and_deep_nesting_outside_what_it_keeps(data: bytes) -> None:
    with pytest.raises(MalformedDocument, match=r"^doc "):
        prune(io.BytesIO(b'{"z": ' + data + b"}"), SHAPE, "doc", max_items=10, max_values=100)


def _nested_keys(key_length: int, levels: int) -> bytes:
    keys = [chr(ord("a") + i % 26) * key_length for i in range(levels)]
    return ("".join(f'{{"{k}": ' for k in keys) + "1" + "}" * levels).encode()


def test_a_key_path_longer_than_max_path_is_malformed() -> None:
    """ijson spells out the path of every open level: long keys deep down cost their square in memory."""
    fits = _nested_keys(MAX_PATH // 4 - 1, 4)  # four keys and three dots: exactly MAX_PATH - 1 characters
    assert len(next(e for e in events(io.BytesIO(fits)) if e[1] == "number")[0]) == MAX_PATH - 1
    with pytest.raises(MalformedDocument, match=f"doc has a key path longer than {MAX_PATH:,} characters"):
        list(events(io.BytesIO(_nested_keys(MAX_PATH // 4, 5)), "doc"))


def test_what_subtrees_build_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonstream, "MAX_BUILT", 20)
    small = {"subject": [{"name": "a", "digest": {"sha256": "b"}}], "big": list(range(100))}  # 9 events + 2
    trees = Subtrees(("subject",), what="doc")
    for event in events(io.BytesIO(json.dumps(small).encode())):
        trees.feed(*event)
    assert trees.get("subject") == small["subject"], "events outside the roots cost nothing"
    trees = Subtrees(("subject",), what="doc")
    with pytest.raises(MalformedDocument, match="doc holds more than 20 parse events where values are read"):
        for event in events(io.BytesIO(json.dumps({"subject": small["subject"] * 3}).encode())):
            trees.feed(*event)



def _string_state(data: bytes) -> list[bool]:
    """After each byte of `data`: inside a JSON string? (one byte at a time, the plain way)."""
    inside = escaped = False
    states = []
    for byte in data:
        if escaped:
            escaped = False
        elif inside and byte == ord("\\"):
            escaped = True
        elif byte == ord('"'):
            inside = not inside
        states.append(inside)
    return states


NUMBER = b"0123456789+-.eE"
READ_CASES = [
    b'{"a": "' + b"x" * 5000 + b'", "b": [1, "c"]}',
    b'{"a": "' + b'\\"\\\\' * 3000 + b'", "b": "\\\\"}',  # escaped quotes and backslashes, one that ends a string
    b'["' + b"\\" * 2048 + b'", "' + b"\\" * 2047 + b'"' + b"x" * 100 + b'"]',  # backslash runs across reads
    b'{"k' + b"e" * 3000 + b'y": ["' + "é€😀".encode() * 700 + b'"]}',  # a long key, multi-byte text
    b'{"a": "never closed' + b"z" * 4000,
    b'{"a": 1} \\ "x' + b"y" * 3000 + b'"',  # a backslash outside any string: invalid, the bytes still pass
    b"",
    b'{"a": ' + b'"s", ' * 2000 + b'"t"}',
    b"[" + b"1" * 5000 + b", -" + b"2" * 3000 + b'.5e+7, "x", 3]',  # long numbers
    b"[" + b"9" * 2048 + b', "' + b"y" * 1500 + b'", true, ' + b"7" * 1024 + b"]",  # ... ending at a boundary
    b'["xxxxx","' + b"\\\\" * 6 + b'"]' + b', "z"' * 300,  # a read that closes a string and opens one
]


@pytest.mark.parametrize("data", READ_CASES)
@pytest.mark.parametrize(("size", "step"), [(1, None), (7, None), (1024, None), (65536, None), (1024, 5)])
def test_reads_give_the_bytes_unchanged_and_only_a_long_string_in_longer_reads(
    data: bytes, size: int, step: int | None
) -> None:
    """A read is at most `size` bytes, except the reads of a string already longer than `size`: those
    hold string text only, up to its closing quote at most, so one read's events stay bounded."""
    reader = Reads(Trickle(data, step) if step else io.BytesIO(data))
    states = _string_state(data) if b" \\ " not in data else None
    got, at = [], 0
    while chunk := reader.read(size):
        if states is not None:
            if len(chunk) > size and at and states[at - 1]:
                assert all(states[at:at + len(chunk) - 1]), "a longer read holds the string's text and its end"
                opened = max(i for i in range(at) if states[i] and (i == 0 or not states[i - 1]))
                assert at - opened > size, "... of a string already longer than a read"
            elif len(chunk) > size:
                assert data[at - 1:at] in NUMBER and not chunk.strip(NUMBER), "... or a number's digits only"
            assert reader.in_string == states[at + len(chunk) - 1], at
        got.append(chunk)
        at += len(chunk)
    assert b"".join(got) == data


class Counted:
    """A file that counts its reads (ijson would use a BytesIO's readinto, uncounted)."""

    def __init__(self, data: bytes) -> None:
        self.file = io.BytesIO(data)
        self.reads = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        return self.file.read(size)


def test_a_long_string_reaches_the_parser_in_a_few_reads() -> None:
    """ijson lexes a token that spans reads again at every read: read a kilobyte at a time, a 16 MiB
    string took minutes (time in the square of its length). Its reads now double in size."""
    value = "v" * (16 << 20)
    doc = json.dumps({"predicate": {"note": value, "materials": [{"uri": "u"}]}}).encode()
    file = Counted(doc)
    got = [e for e in events(file) if e[1] == "string"]
    assert [(p, len(v)) for p, _, v in got] == [("predicate.note", len(value)), ("predicate.materials.item.uri", 1)]
    assert file.reads < 40, f"{file.reads} reads of the file"
    file = Counted(doc)
    assert prune(file, SHAPE, "doc", max_items=10, max_values=100) is not None
    assert file.reads < 40, f"{file.reads} reads of the file"


def test_a_long_number_reaches_the_parser_in_a_few_reads() -> None:
    file = Counted(b"[" + b"1" * (4 << 20) + b"]")
    with pytest.raises(MalformedDocument):  # too many digits for Python's int: an error, quickly
        list(events(file))
    assert file.reads < 40, f"{file.reads} reads of the file"


def test_a_long_string_closed_in_held_back_bytes_does_not_copy_them() -> None:
    """After a long read, the bytes past a string's end are held back; strings that close inside them
    must not copy what is left each time (that was quadratic: 64 MiB took 45 s)."""
    doc = b'["' + b"a" * 300_000 + b'", ' + b", ".join(b'"' + b"b" * 2500 + b'"' for _ in range(400)) + b"]"
    file_reads: list[bytes] = []  # kept alive, so that their ids stay theirs

    class Recorded(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            file_reads.append(super().read(size))
            return file_reads[-1]

    reader = Reads(Recorded(doc))
    held, got = [], []
    while chunk := reader.read(1024):
        got.append(chunk)
        if reader._at < len(reader._pending):
            held.append(reader._pending)
    assert b"".join(got) == doc
    read_ids = {id(data) for data in file_reads}
    copies = {id(data): len(data) for data in held if id(data) not in read_ids}
    assert sum(copies.values()) < len(doc), f"held-back bytes copied {len(copies)} times, {sum(copies.values())} bytes"


ESCAPED_STRING_RSS = """
import io, resource, sys
from tap_ghcr.attestations import jsonstream
doc = b'{"a": "' + b"\\\\n" * (8 << 20) + b'"}'
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
events = list(jsonstream.events(io.BytesIO(doc)))
assert len(events[2][2]) == 8 << 20
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_a_string_of_escapes_costs_no_memory_per_escape() -> None:
    """8 million escapes: a regex finding the closing quote kept state for each (+916 MB)."""
    proc = subprocess.run([sys.executable, "-c", ESCAPED_STRING_RSS], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout) < 200, f"{proc.stdout.strip()} MB over the document"
