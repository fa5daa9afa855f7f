"""The streaming helpers: Subtrees, stream_objects, and the base64 payload Diverter."""

from __future__ import annotations

import base64
import io
import json

import pytest

from tap_ghcr.attestations import MalformedDocument
from tap_ghcr.attestations.jsonstream import Base64Sink, Diverter, Subtrees, events, stream_objects


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
