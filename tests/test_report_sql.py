"""Report queries on small hand-made tables: the cases the loaded worlds do not hold."""

from __future__ import annotations

from pathlib import Path

import duckdb

SQL = Path(__file__).resolve().parents[1] / "sql"


def _warehouse() -> duckdb.DuckDBPyConnection:
    db = duckdb.connect()
    db.sql("CREATE SCHEMA ghcr")
    db.sql("CREATE TABLE ghcr.manifests (owner_login TEXT, package_name TEXT, digest TEXT, index_digest TEXT, "
           "kind TEXT, subject_digest TEXT, total_size BIGINT)")
    db.sql("CREATE TABLE ghcr.attestations (owner_login TEXT, package_name TEXT, subject_digest TEXT, kind TEXT, "
           "source TEXT, source_uri TEXT, source_revision TEXT, signer_repository TEXT, signer_revision TEXT, "
           "statement_type TEXT DEFAULT 'https://in-toto.io/Statement/v1')")
    db.sql("CREATE TABLE ghcr.tags (owner_login TEXT, package_name TEXT, tag TEXT, digest TEXT, deleted_at TEXT)")
    return db


def test_an_image_whose_provenance_names_no_source_is_listed_as_not_stated():
    """Found by review: images with provenance but no source (a local build without VCS information) were left
    out of images_by_source, while the coverage table counted their provenance."""
    db = _warehouse()
    db.sql("INSERT INTO ghcr.manifests VALUES ('acme', 'web', 'sha256:aaa', NULL, 'image', NULL, 10), "
           "('acme', 'api', 'sha256:bbb', NULL, 'image', NULL, 10), ('acme', 'bare', 'sha256:ccc', NULL, 'image', "
           "NULL, 10)")
    db.sql("INSERT INTO ghcr.attestations (owner_login, package_name, subject_digest, kind, source, source_uri, "
           "source_revision, signer_repository, signer_revision) VALUES "
           "('acme', 'web', 'sha256:aaa', 'provenance', 'buildx', NULL, NULL, NULL, NULL), "
           "('acme', 'api', 'sha256:bbb', 'provenance', 'buildx', 'https://github.com/acme/api', 'c0ffee', NULL, "
           "NULL), "
           "('acme', 'bare', 'sha256:ccc', 'sbom', 'buildx', NULL, NULL, NULL, NULL)")
    db.sql("INSERT INTO ghcr.tags VALUES ('acme', 'web', 'v1', 'sha256:aaa', NULL)")
    rows = db.sql((SQL / "images_by_source.sql").read_text()).fetchall()
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        ("(not stated)", None, "acme/web", "v1"),
        ("https://github.com/acme/api", "c0ffee", "acme/api", None),
    ], "an SBOM is no claim about the source: acme/bare stays out"


def test_images_per_package_counts_the_tags_people_gave():
    db = _warehouse()
    db.sql("INSERT INTO ghcr.manifests VALUES ('acme', 'web', 'sha256:aaa', NULL, 'image', NULL, 10)")
    hexes = "0123456789abcdef" * 4
    db.sql(f"INSERT INTO ghcr.tags VALUES ('acme', 'web', 'v1', 'sha256:aaa', NULL), "
           f"('acme', 'web', 'latest', 'sha256:aaa', NULL), ('acme', 'web', 'old', 'sha256:aaa', '2024-01-01'), "
           f"('acme', 'web', 'sha256-{hexes}.sig', 'sha256:s', NULL), "
           f"('acme', 'web', 'sha256-{hexes}.att', 'sha256:t', NULL), "
           f"('acme', 'web', 'sha256-{hexes}', 'sha256:r', NULL), "
           f"('acme', 'web', 'sha512-{hexes * 2}', 'sha256:r', NULL), "
           f"('acme', 'web', 'sha256-not-a-digest', 'sha256:aaa', NULL)")
    (row,) = db.sql((SQL / "images_per_package.sql").read_text()).fetchall()
    assert row[0] == "acme/web" and row[5] == 3, row  # v1, latest and a tag that only looks like one


def test_a_placeholder_source_only_where_no_document_names_one():
    """Found by review: an index whose amd64 image has a source-naming provenance and whose arm64 image has one
    without a source was listed twice, once as `(not stated)`. A provenance not read says `(not read)`."""
    db = _warehouse()
    db.sql("INSERT INTO ghcr.manifests VALUES ('o', 'p', 'sha256:idx', NULL, 'index', NULL, 0), "
           "('o', 'p', 'sha256:amd', 'sha256:idx', 'image', NULL, 5), ('o', 'p', 'sha256:arm', 'sha256:idx', 'image', "
           "NULL, 5), ('o', 'q', 'sha256:big', NULL, 'image', NULL, 5)")
    db.sql("INSERT INTO ghcr.attestations VALUES "
           "('o', 'p', 'sha256:amd', 'provenance', 'referrer', 'https://github.com/o/p', 'abc', NULL, NULL, 'x'), "
           "('o', 'p', 'sha256:arm', 'provenance', 'buildx', NULL, NULL, NULL, NULL, 'x'), "
           "('o', 'q', 'sha256:big', 'provenance', 'buildx', NULL, NULL, NULL, NULL, NULL)")
    rows = db.sql((SQL / "images_by_source.sql").read_text()).fetchall()
    assert [(r[0], r[2], r[3]) for r in rows] == [("(not read)", "o/q", "sha256:big"),
                                                  ("https://github.com/o/p", "o/p", "sha256:idx")]
