"""`EmitterMixin._generate_record_messages` (the SDK's steps, less a pass that changes nothing when the
catalog deselects no property) writes exactly what the SDK's own method writes, whatever the catalog
and the stream maps."""

from __future__ import annotations

import signal
import typing as t

import pytest
from singer_sdk import Stream

from tap_ghcr.tap import TapGHCR

STREAMS = ("packages", "package_versions", "tags", "manifests", "attestations", "sbom_packages")


def _value(schema: dict, depth: int = 0) -> t.Any:
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if schema.get("format") == "date-time":
        return "2026-01-02T03:04:05+00:00"
    if "object" in types:
        props = schema.get("properties") or {"k": {"type": "string"}, "n": {"type": "integer"}}
        return {name: _value(sub, depth + 1) for name, sub in props.items()}
    if "array" in types:
        return [_value(schema.get("items") or {"type": "string"}, depth + 1)] * 2
    if "integer" in types:
        return 7
    if "boolean" in types:
        return True
    return "text"


def record_for(stream: Stream) -> dict:
    record = {name: _value(sub) for name, sub in stream.schema["properties"].items()}
    record["extra_not_in_schema"] = "x"
    return record


def make_tap(catalog_edit: t.Callable[[dict], None] | None = None, **config: t.Any) -> TapGHCR:
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        config = {"images": ["o/n"], **config}
        catalog = TapGHCR(config=config).catalog_dict
        for entry in catalog["streams"]:
            for meta in entry["metadata"]:
                if meta["breadcrumb"] == []:
                    meta["metadata"]["selected"] = True
        if catalog_edit:
            catalog_edit(catalog)
        return TapGHCR(config=config, catalog=catalog)
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def deselect(stream_name: str, *path: str) -> t.Callable[[dict], None]:
    def edit(catalog: dict) -> None:
        """The catalog with `stream_name`'s property at `path` deselected."""
        entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == stream_name)
        breadcrumb = [part for name in path for part in ("properties", name)]
        entry["metadata"] = [m for m in entry["metadata"] if m["breadcrumb"] != breadcrumb]
        entry["metadata"].append({"breadcrumb": breadcrumb, "metadata": {"selected": False}})

    return edit


def messages(stream: Stream, record: dict, sdk: bool) -> list[dict]:
    method = Stream._generate_record_messages if sdk else type(stream)._generate_record_messages
    out = []
    for message in method(stream, dict(record)):
        as_dict = message.to_dict()
        assert as_dict.pop("time_extracted")
        out.append(as_dict)
    return out


STREAM_MAPS = {
    "sbom_packages": {"name": "name.upper() if name else None", "purl": "__NULL__"},
    "manifests": {"__alias__": "images", "digest": "'d:' + str(digest)"},
    "tags": {"__filter__": "tag != 'text'"},
    "packages_copy": {"__source__": "packages"},
}


@pytest.mark.parametrize(
    ("deselected", "config"),
    [
        (None, {}),
        (None, {"stream_maps": STREAM_MAPS}),
        (("sbom_packages", "purl"), {}),
        (("manifests", "platform_os"), {"stream_maps": STREAM_MAPS}),
        (("attestations", "materials"), {}),
        (("manifests", "layers", "digest"), {}),
        (None, {"flattening_enabled": True, "flattening_max_depth": 2}),
        (("manifests", "annotations"), {"flattening_enabled": True, "flattening_max_depth": 1}),
    ],
)
@pytest.mark.parametrize("stream_name", STREAMS)
def test_records_are_written_as_the_sdk_writes_them(stream_name, deselected, config) -> None:
    tap = make_tap(deselect(*deselected) if deselected else None, **config)
    stream = tap.streams[stream_name]
    record = record_for(stream)
    ours, sdks = messages(stream, record, sdk=False), messages(stream, record, sdk=True)
    assert ours == sdks
    mine = deselected is not None and deselected[0] == stream_name
    assert stream._selects_every_property is not mine  # the SDK's own method only when it changes something
    if mine and len(deselected) == 2:
        assert all(deselected[1] not in m["record"] for m in ours)
    if not (stream_name == "tags" and "stream_maps" in config):
        assert ours, "a record was written"
