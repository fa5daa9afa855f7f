"""The real Meltano path: `meltano run tap-ghcr target-duckdb` (and target-jsonl), checked with SQL."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import yaml

from tap_ghcr.tap import SETTINGS
from tests.emulator.meltano import meltano_run

ROOT = Path(__file__).resolve().parents[1]


def expected_counts(dataset) -> dict[str, int]:
    active = [v for p in dataset.packages for v in p.versions if v.state == "active"]
    return {
        "packages": len(dataset.packages),
        "package_versions": len(active),
        # live tags, and the retracted tags of deleted versions (`deleted_at` set)
        "tags": len({(p.owner.login, p.name, tag) for p in dataset.packages for v in p.versions for tag in v.tags}),
        "manifests": len(dataset.expected_manifests()),
    }


@pytest.fixture(scope="module")
def warehouse(world, tmp_path_factory):
    path = tmp_path_factory.mktemp("duckdb") / "warehouse.duckdb"
    run = meltano_run(world, "target-duckdb", TARGET_DUCKDB_FILEPATH=str(path))
    assert run.returncode == 0, run.stderr[-4000:]
    with duckdb.connect(str(path), read_only=True) as db:
        yield db


def test_duckdb_row_counts_prove_the_duckdb_pin(world, warehouse):
    """target-duckdb 0.8.0 with duckdb 2.x loads 0 rows, silently: these counts would fail."""
    for table, count in expected_counts(world.dataset).items():
        assert warehouse.sql(f"SELECT count(*) FROM ghcr.{table}").fetchone()[0] == count, table


@pytest.mark.parametrize(("table", "key"), [
    ("packages", "id"), ("package_versions", "id"),
    ("tags", "owner_login, package_name, tag"), ("manifests", "owner_login, package_name, digest"),
])
def test_duckdb_keys_are_unique(warehouse, table, key):
    total, distinct = warehouse.sql(f"SELECT count(*), count(DISTINCT ({key})) FROM ghcr.{table}").fetchone()
    assert total == distinct > 0


def test_duckdb_values(world, warehouse):
    web = world.dataset.find("acme", "web")
    index = web.tags["latest"]
    kind, children = warehouse.sql(
        "SELECT kind, child_digests FROM ghcr.manifests WHERE digest = ?", params=[index]).fetchone()
    assert kind == "index" and json.loads(children) == web.manifests[index].expected["child_digests"]
    image = next(p for p in web.manifests.values() if p.expected["kind"] == "image")
    row = warehouse.sql("SELECT platform_os, platform_architecture, total_size, labels->>'org.opencontainers."
                        "image.source', index_digest FROM ghcr.manifests WHERE digest = ?", params=[image.digest])
    os_, arch, size, source, parent = row.fetchone()
    want = image.expected
    assert (os_, arch, size, parent) == (want["platform_os"], want["platform_architecture"], want["total_size"],
                                          want["index_digest"])
    assert source == "https://github.com/acme/web"
    kinds = dict(warehouse.sql("SELECT kind, count(*) FROM ghcr.manifests GROUP BY kind").fetchall())
    assert kinds == {k: sum(1 for m in world.dataset.expected_manifests().values() if m["kind"] == k)
                     for k in ("index", "image", "attestation", "signature")}
    tag_digest = warehouse.sql("SELECT digest FROM ghcr.tags WHERE package_name = 'web' AND tag = 'v1.0'").fetchone()
    assert tag_digest == (web.tags["v1.0"],)


def test_report_sql_runs_on_the_loaded_tables(warehouse):
    results = {p.stem: warehouse.sql(p.read_text()).fetchall() for p in sorted((ROOT / "sql").glob("*.sql"))}
    assert set(results) == {"images_per_package", "platforms", "largest_images", "unattested_images", "stale_tags"}
    per_package = {row[0]: row for row in results["images_per_package"]}
    assert per_package["acme/web"][1:5] == (2, 4, 4, 1)  # 2 indexes, 4 platform images, 4 attestations, 1 signature
    unattested = {(row[0], row[2]) for row in results["unattested_images"]}
    assert ("acme/web", "latest, v1.1") not in unattested, "signed and attested"
    assert ("acme/web", "v1.0") in unattested, "attested but not signed"
    assert len(results["stale_tags"]) == 7, "the sample images were built in 2024"


def test_flattened_load_keeps_labels_and_annotations(world, tmp_path):
    """The SDK's flattener used to drop `labels` from the SCHEMA and spread records as `labels__*` keys,
    which target-duckdb then loaded as no column at all."""
    path = tmp_path / "flat.duckdb"
    run = meltano_run(world, "target-duckdb", TARGET_DUCKDB_FILEPATH=str(path), TAP_GHCR_FLATTENING_ENABLED="true",
                      TAP_GHCR_FLATTENING_MAX_DEPTH="1")
    assert run.returncode == 0, run.stderr[-4000:]
    with duckdb.connect(str(path), read_only=True) as db:
        columns = {row[0] for row in db.sql("DESCRIBE ghcr.manifests").fetchall()}
        assert {"labels", "annotations"} <= columns
        assert not {c for c in columns if c.startswith(("labels__", "annotations__"))}
        labels = [json.loads(v) for (v,) in db.sql("SELECT labels FROM ghcr.manifests WHERE kind = 'image'").fetchall()]
    expected = [want["labels"] for want in world.dataset.expected_manifests().values() if want["kind"] == "image"]
    assert sorted(map(json.dumps, labels)) == sorted(map(json.dumps, expected))


def test_jsonl_loader(world, tmp_path):
    run = meltano_run(world, "target-jsonl", TARGET_JSONL_DESTINATION_PATH=str(tmp_path))
    assert run.returncode == 0, run.stderr[-4000:]
    for stream, count in expected_counts(world.dataset).items():
        lines = (tmp_path / f"{stream}.jsonl").read_text().splitlines()
        assert len(lines) == count, stream


def test_meltano_yml_declares_every_setting():
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    extractor = next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-ghcr")
    declared = {s["name"]: s for s in extractor["settings"]}
    sdk_flattening = {"flattening_enabled", "flattening_max_depth"}  # the SDK's, for schema-flattening
    assert set(declared) == set(SETTINGS.to_dict()["properties"]) | sdk_flattening
    assert declared["token"].get("sensitive") is True
    assert all(s.get("kind") and s.get("description") for s in declared.values())
    hub = yaml.safe_load((ROOT / "plugins" / "extractors" / "tap-ghcr--tap-ghcr.yml").read_text())
    assert {s["name"] for s in hub["settings"]} == set(declared)
    assert next(s for s in hub["settings"] if s["name"] == "token").get("sensitive") is True
