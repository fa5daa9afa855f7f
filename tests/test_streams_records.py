"""`EmitterMixin` writes exactly what the SDK's own steps write, whatever the catalog and the stream
maps: its `_generate_record_messages` (less a pass that changes nothing when the catalog deselects no
property), and `emit_all`, which writes a record built to an unedited schema straight to the writer."""

from __future__ import annotations

import copy
import io
import logging
import signal
import sys
import typing as t
from datetime import datetime, timezone

import pytest
import singer_sdk.streams.core
from singer_sdk import Stream
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.helpers._typing import conform_record_data_types
from singer_sdk.helpers.conform import TypeConformanceLevel

import tap_ghcr.streams
import tap_ghcr.tap
from tap_ghcr.streams import EmitterMixin
from tap_ghcr.tap import TapGHCR
from tests.emulator.supply_chain import supply_chain_dataset

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


def record_for(stream: Stream, *, extra: bool = True) -> dict:
    record = {name: _value(sub) for name, sub in stream.schema["properties"].items()}
    if extra:  # a key the schema does not declare: the SDK drops it (and so does the tap)
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


def sync_in_process(tap: TapGHCR) -> None:
    """`sync_all`, and the signal handlers it installs put back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        tap.sync_all()
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


FIXED_TIME = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)


def written(stream: Stream, record: dict, *, sdk: bool) -> bytes:
    """The bytes a record becomes, `time_extracted` fixed: through `emit_all` (the sync core's way), or
    through the SDK's own message steps and its msgspec writer."""
    with pytest.MonkeyPatch.context() as patch:
        for module in (singer_sdk.streams.core, tap_ghcr.streams, tap_ghcr.tap):
            patch.setattr(module, "utc_now", lambda: FIXED_TIME)
        if sdk:
            writer = stream._tap.message_writer
            return b"".join(bytes(MsgSpecWriter.format_message(writer, message))
                            for message in Stream._generate_record_messages(stream, copy.deepcopy(record)))
        out = io.BytesIO()
        patch.setattr(sys, "stdout", io.TextIOWrapper(out))
        stream.emit_all([copy.deepcopy(record)])
        sys.stdout.flush()
        return out.getvalue()


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
@pytest.mark.parametrize("extra", [True, False], ids=["extra-key", "built-to-schema"])
@pytest.mark.parametrize("stream_name", STREAMS)
def test_records_are_written_as_the_sdk_writes_them(stream_name, deselected, config, extra) -> None:
    tap = make_tap(deselect(*deselected) if deselected else None, **config)
    stream = tap.streams[stream_name]
    record = record_for(stream, extra=extra)
    ours, sdks = messages(stream, record, sdk=False), messages(stream, record, sdk=True)
    assert ours == sdks
    assert written(stream, record, sdk=False) == written(stream, record, sdk=True)
    # A stream writes straight to the writer only when nothing the SDK does would change its records
    # (a record with a key the schema lacks still goes the SDK's way: the bytes above are the same).
    mapped = {"sbom_packages", "manifests", "tags", "packages"}  # in STREAM_MAPS (`packages_copy` reads `packages`)
    plain = (stream.BUILT_TO_SCHEMA and "flattening_enabled" not in config
             and not (deselected and deselected[0] == stream_name)
             and not ("stream_maps" in config and stream_name in mapped))
    assert (stream._plain_alias is not None) is plain
    mine = deselected is not None and deselected[0] == stream_name
    assert stream._selects_every_property is not mine  # the SDK's own method only when it changes something
    if mine and len(deselected) == 2:
        assert all(deselected[1] not in m["record"] for m in ours)
    if not (stream_name == "tags" and "stream_maps" in config):
        assert ours, "a record was written"


def _retyped(catalog: dict) -> None:
    """A catalog that declares the manifests' `size` a boolean: the SDK then writes `true`, not 1234."""
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == "manifests")
    entry["schema"]["properties"]["size"] = {"type": ["boolean", "null"]}


@pytest.mark.parametrize(
    ("edit", "config", "skips"),
    [
        (None, {}, {"packages", "package_versions", "tags", "manifests", "sbom_packages"}),
        (_retyped, {}, {"packages", "package_versions", "tags", "sbom_packages"}),
        (None, {"stream_maps": {"tags": {"__filter__": "tag != 'x'"}}},
         {"packages", "package_versions", "manifests", "sbom_packages"}),
        (None, {"flattening_enabled": True, "flattening_max_depth": 1},
         {"packages", "package_versions", "tags", "manifests", "sbom_packages"}),
    ],
)
def test_conformance_is_left_out_only_for_records_built_to_an_unedited_schema(edit, config, skips) -> None:
    tap = make_tap(edit, **config)
    assert {name for name in STREAMS if tap.streams[name]._built_keys is not None} == skips
    if edit is _retyped:
        stream = tap.streams["manifests"]
        record = {**record_for(stream, extra=False), "size": 1234}
        assert messages(stream, record, sdk=False)[0]["record"]["size"] is True


@pytest.mark.parametrize("organisation", ["sample", "supply-chain"])
def test_every_record_the_tap_builds_is_already_what_the_sdk_would_conform_it_to(
    organisation, world, fresh_world, monkeypatch, capsys
) -> None:
    """`BUILT_TO_SCHEMA` holds for the records as the sync core builds them, before any JSON (the
    sample organisation with deleted versions, and the supply-chain one's signed and attested images):
    the SDK's recursive conformance would neither drop a key nor change a value. A builder that wrote
    a datetime, bytes, a float or an undeclared key fails here."""
    if organisation == "supply-chain":
        world = fresh_world(supply_chain_dataset())
    built: list[tuple[str, dict]] = []
    emit_all = EmitterMixin.emit_all

    def spy(stream: t.Any, records: t.Iterable[dict]) -> None:
        def copied() -> t.Iterator[dict]:
            for record in records:  # (not read at all for a stream not selected)
                built.append((stream.name, copy.deepcopy(record)))
                yield record

        emit_all(stream, copied())

    monkeypatch.setattr(EmitterMixin, "emit_all", spy)
    tap = make_tap(**world.config(include_deleted_versions=True, retry_base_seconds=0.02))
    sync_in_process(tap)
    capsys.readouterr()
    counts: dict[str, int] = {}
    for name, record in built:
        stream = tap.streams[name]
        if not stream.BUILT_TO_SCHEMA:
            continue
        conformed = conform_record_data_types(stream_name=name, record=copy.deepcopy(record), schema=stream.schema,
                                              level=TypeConformanceLevel.RECURSIVE,
                                              logger=logging.getLogger("conformance"))
        assert conformed == record, (name, record)
        assert all(type(v) in (str, int, type(None), list, dict) for v in record.values()), (name, record)
        assert record.keys() == stream.schema["properties"].keys(), (name, record)
        counts[name] = counts.get(name, 0) + 1
    expected = {"packages", "package_versions", "tags", "manifests"}
    assert set(counts) == (expected | {"sbom_packages"} if organisation == "supply-chain" else expected), counts
    assert sum(counts.values()) > 20, counts


@pytest.mark.parametrize("config", [{}, {"flattening_enabled": True, "flattening_max_depth": 1}])
@pytest.mark.parametrize("stream_name", ["package_versions", "manifests"])
def test_nan_and_infinity_from_json_are_written_as_the_sdk_writes_them(stream_name, config) -> None:
    """The one value conformance changes in these streams: a NaN or infinite float (Python's JSON parsers
    accept `NaN` and `1e400`). Conformance makes it null; unconformed, the JSON writers must too, at the
    top level and inside a flattened list (an SDK whose writer changed would fail here)."""
    from singer_sdk.contrib.msgspec import serialize_jsonl

    tap = make_tap(**config)
    stream = tap.streams[stream_name]
    record = record_for(stream, extra=False)
    if stream_name == "package_versions":
        record.update(tags=[float("nan"), 1e400, "a"], description=float("-inf"))
    else:
        record.update(size=float("nan"), layers=[{"digest": "d", "media_type": "m", "size": 1e400}])
    assert stream._built_keys is not None

    def generated(sdk: bool) -> bytes:
        method = Stream._generate_record_messages if sdk else type(stream)._generate_record_messages
        lines = []
        for message in method(stream, copy.deepcopy(record)):
            as_dict = message.to_dict()
            as_dict.pop("time_extracted")
            lines.append(bytes(serialize_jsonl(as_dict)))
        return b"".join(lines)

    ours = generated(sdk=False)
    assert ours == generated(sdk=True)
    assert b"NaN" not in ours and b"Infinity" not in ours
    assert stream._plain_alias is not None or config  # and straight to the writer, unflattened:
    assert written(stream, record, sdk=False) == written(stream, record, sdk=True)


@pytest.mark.parametrize("override", ["write_message", "serialize_message", None])
def test_a_writer_that_writes_messages_its_own_way_still_gets_every_record(override) -> None:
    """A LineWriter subclass (say, one that captures messages in process) gets the SDK's RecordMessage
    for every record; only the tap's own writer takes records straight from the record."""
    from tap_ghcr.tap import LineWriter

    seen: list[dict] = []

    def capture(writer: t.Any, message: t.Any) -> t.Any:
        seen.append(message.to_dict())
        return bytearray()

    tap = make_tap()
    if override:
        tap.message_writer = type("Capturing", (LineWriter,), {override: capture})()
    stream = tap.streams["manifests"]
    record = record_for(stream, extra=False)
    out = io.BytesIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdout", io.TextIOWrapper(out))
        stream.emit_all([copy.deepcopy(record)])
        sys.stdout.flush()
        written_out = out.getvalue()
    if override:
        assert stream._plain_alias is None
        assert [m["record"] for m in seen] == [record] and written_out == b""
    else:
        assert stream._plain_alias == "manifests" and written_out.startswith(b'{"type":"RECORD"')
