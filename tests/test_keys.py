"""No two RECORD messages of a stream share its key in one full sync.

singer-sdk 0.54's standard primary-key test compares generator objects, so it
passes with duplicate keys; this one reads the keys from the SCHEMA messages.
"""

from __future__ import annotations

import collections

from tests.conftest import run_tap


def duplicate_keys(messages: list[dict]) -> dict[str, list[tuple]]:
    """Per stream, the key values (its SCHEMA's `key_properties`) seen in more than one RECORD."""
    keys = {m["stream"]: m["key_properties"] for m in messages if m["type"] == "SCHEMA"}
    seen: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for message in messages:
        if message["type"] == "RECORD":
            record = message["record"]
            seen[message["stream"]][tuple(record.get(k) for k in keys[message["stream"]])] += 1
    return {stream: [key for key, n in counts.items() if n > 1] for stream, counts in seen.items()
            if any(n > 1 for n in counts.values())}


def test_duplicate_keys_finds_duplicates():
    schema = {"type": "SCHEMA", "stream": "s", "key_properties": ["a", "b"], "schema": {}}
    records = [{"type": "RECORD", "stream": "s", "record": {"a": 1, "b": b, "c": c}} for b, c in
               [(1, 1), (2, 1), (1, 2)]]
    assert duplicate_keys([schema, *records]) == {"s": [(1, 1)]}


def test_a_full_sync_has_no_duplicate_keys(world, tmp_path):
    run = run_tap(world.config(), tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert {m["stream"] for m in run.messages if m["type"] == "RECORD"} >= {
        "packages", "package_versions", "tags", "manifests"}
    assert duplicate_keys(run.messages) == {}


def test_an_image_also_listed_as_an_organization_package_is_not_emitted_twice(world, tmp_path):
    run = run_tap(world.config(images=["acme/web"]), tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert duplicate_keys(run.messages) == {}
