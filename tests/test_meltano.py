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
    assert set(results) == {"images_per_package", "platforms", "largest_images", "unattested_images", "stale_tags",
                            "images_by_signer", "images_by_source", "top_sbom_packages", "images_with_package",
                            "coverage_by_package"}
    per_package = {row[0]: row for row in results["images_per_package"]}
    assert per_package["acme/web"][1:5] == (2, 4, 4, 1)  # 2 indexes, 4 platform images, 4 attestations, 1 signature
    web_tags = {t for t, in warehouse.sql("SELECT tag FROM ghcr.tags WHERE package_name = 'web' AND deleted_at IS "
                                          "NULL").fetchall()}
    assert any(t.startswith("sha256-") for t in web_tags), "the world signs web with cosign: a .sig tag"
    assert per_package["acme/web"][5] == len({t for t in web_tags if not t.startswith("sha256-")}), \
        "the tags people gave, not cosign's"
    unattested = {(row[0], row[2]) for row in results["unattested_images"]}
    assert ("acme/web", "latest, v1.1") not in unattested, "signed and attested"
    assert ("acme/web", "v1.0") in unattested, "attested but not signed"
    assert len(results["stale_tags"]) == 7, "the sample images were built in 2024"
    # The chart's query counts per package what unattested_images lists (they share their definitions).
    not_both = {row[0]: sum(row[3:]) for row in results["coverage_by_package"]}
    listed = {package: sum(1 for row in results["unattested_images"] if row[0] == package) for package in not_both}
    assert not_both == listed and sum(listed.values()) > 0


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
    assert set(SETTINGS.to_dict()["properties"]) <= set(declared)  # and the SDK's: test_meltano_config.py
    assert declared["token"].get("sensitive") is True
    assert all(s.get("kind") and s.get("description") for s in declared.values())
    hub = yaml.safe_load((ROOT / "plugins" / "extractors" / "tap-ghcr--tap-ghcr.yml").read_text())
    assert {s["name"] for s in hub["settings"]} == set(declared)
    assert next(s for s in hub["settings"] if s["name"] == "token").get("sensitive") is True


@pytest.fixture(scope="module")
def chain_warehouse(tmp_path_factory):
    """The supply-chain organisation (tests/emulator/supply_chain.py) loaded through Meltano."""
    from tests.emulator.supply_chain import supply_chain_dataset
    from tests.emulator.world import start_world

    world = start_world(supply_chain_dataset())
    try:
        path = tmp_path_factory.mktemp("duckdb-chain") / "warehouse.duckdb"
        run = meltano_run(world, "target-duckdb", TARGET_DUCKDB_FILEPATH=str(path))
        assert run.returncode == 0, run.stderr[-4000:]
        with duckdb.connect(str(path), read_only=True) as db:
            yield world, db
    finally:
        world.stop()


def test_duckdb_loads_attestations_and_sbom_packages(chain_warehouse):
    from tests.emulator.dataset import expected_attestations, expected_sbom_packages

    world, db = chain_warehouse
    attestations, sbom_packages = expected_attestations(world.dataset), expected_sbom_packages(world.dataset)
    assert db.sql("SELECT count(*) FROM ghcr.attestations").fetchone()[0] == len(attestations) == 8
    assert db.sql("SELECT count(*) FROM ghcr.sbom_packages").fetchone()[0] == len(sbom_packages) == 8
    total, distinct = db.sql("SELECT count(*), count(DISTINCT (owner_login, package_name, manifest_digest, "
                             "layer_index)) FROM ghcr.attestations").fetchone()
    assert total == distinct
    kinds = dict(db.sql("SELECT source || '/' || kind, count(*) FROM ghcr.attestations GROUP BY 1").fetchall())
    assert kinds == {"buildx/provenance": 2, "buildx/sbom": 2, "cosign/signature": 2,
                     "cosign/vulnerability-scan": 1, "referrer/provenance": 1}
    referrer = next(r for r in attestations.values() if r["source"] == "referrer")
    row = db.sql("SELECT signer_identity, signer_revision, source_uri, tlog_index, materials FROM ghcr.attestations "
                 "WHERE digest = ?", params=[referrer["digest"]]).fetchone()
    assert row[:4] == (referrer["signer_identity"], referrer["signer_revision"], referrer["source_uri"],
                       referrer["tlog_index"])
    assert json.loads(row[4]) == referrer["materials"]
    npm = db.sql("SELECT count(*) FROM ghcr.sbom_packages WHERE purl_type = 'npm' AND purl_namespace = '@acme'")
    assert npm.fetchone()[0] == sum(1 for p in sbom_packages.values() if p["purl_namespace"] == "@acme")


def test_report_sql_on_supply_chain_documents(chain_warehouse):
    """The report's supply-chain queries on known documents (tests/emulator/supply_chain.py)."""
    world, db = chain_warehouse
    results = {p.stem: db.sql(p.read_text()).fetchall() for p in sorted((ROOT / "sql").glob("*.sql"))}
    signed = world.dataset.find("acme", "signed").tags["latest"]
    artifact = world.dataset.find("acme", "artifact").tags["2.0"]
    # signed: buildx provenance and cosign/referrer signatures; artifact: provenance only; plain: nothing.
    unattested = {(row[0], row[2]): row[3:] for row in results["unattested_images"]}
    assert unattested == {("acme/artifact", "2.0"): (True, False), ("acme/plain", "0.1"): (False, False)}
    # images, signed and provenance, signed only, provenance only, neither (the demo's chart)
    coverage = {row[0]: row[1:] for row in results["coverage_by_package"]}
    assert coverage == {"acme/signed": (1, 1, 0, 0, 0), "acme/artifact": (1, 0, 0, 1, 0),
                        "acme/plain": (1, 0, 0, 0, 1)}
    signers = {(row[0], row[1]): row[3:5] for row in results["images_by_signer"]}
    workflow = "https://github.com/acme/signed/.github/workflows/release.yml@refs/"
    second = "https://github.com/acme/signed/.github/workflows/sign-1.yml@refs/heads/main"
    assert signers == {(workflow + "heads/main", workflow + "heads/main"): (1, "acme/signed"),
                       (second, second): (1, "acme/signed"),
                       (workflow + "tags/v1.0.0", workflow + "tags/v1.0.0"): (1, "acme/signed")}
    sources = {(row[0], row[1], row[2], row[3]) for row in results["images_by_source"]}
    cupdate = ("https://github.com/AlexGustafsson/cupdate", "2fbefbc45dd7")
    assert sources == {(*cupdate, "acme/signed", signed[:19]), (*cupdate, "acme/artifact", artifact[:19]),
                       ("https://github.com/acme/signed", "c0ffeec0ffee", "acme/signed", signed[:19]),
                       ("https://github.com/acme/signed", "feedfacefeed", "acme/signed", signed[:19])}
    top = results["top_sbom_packages"]
    assert top[0][:4] == ("libssl3", "deb", 2, 2) and all(row[2] == 1 for row in top[1:])
    assert {(row[0], row[1], row[2]) for row in results["images_with_package"]} == {
        ("acme/signed", signed[:19], "1.0, latest"), ("acme/artifact", artifact[:19], "2.0")}
