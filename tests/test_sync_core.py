"""The sync core end to end: nothing lost, nothing invented, whatever the state, the catalog or the network did.

Each test is named after what it proves, and each failed on the round-1 core.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from tests.conftest import catalog_selecting, run_tap
from tests.emulator.dataset import Dataset, PackageBuilder, many_versions, sample_dataset
from tests.emulator.proxy import Faults

ALL = ("packages", "package_versions", "tags", "manifests")
KEYS = {"packages": ("id",), "package_versions": ("id",), "tags": ("owner_login", "package_name", "tag"),
        "manifests": ("owner_login", "package_name", "digest")}


def keys(run, stream):
    return {tuple(r[k] for k in KEYS[stream]) for r in run.records(stream)}


def warehouse(*runs, stream):
    """What an upserting target holds after loading `runs` in order: the last record of each key."""
    return {tuple(r[k] for k in KEYS[stream]): r for run in runs for r in run.records(stream)}


def ok(run):
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def partition(state, stream, owner, name):
    parts = state["bookmarks"][stream]["partitions"]
    return next(p for p in parts if p["context"] == {"owner_login": owner, "package_name": name})


def manifest_gets(log):
    return [e for e in log if e["method"] == "GET" and "/manifests/" in e["path"]]


# 1. Conditional requests only where the state proves the rows were emitted -------------------------


@pytest.mark.parametrize("first", [{"manifests"}, {"tags"}, {"packages"}])
def test_state_of_a_narrower_selection_hides_nothing_from_a_wider_one(world, tmp_path, first):
    config = world.config()
    full = ok(run_tap(config, tmp_path))
    narrow = ok(run_tap(config, tmp_path, catalog=catalog_selecting(config, tmp_path, first)))
    wide = ok(run_tap(config, tmp_path, state=narrow.final_state))
    for stream in ALL:
        assert keys(narrow, stream) | keys(wide, stream) == keys(full, stream), stream
        if stream not in first:
            assert keys(wide, stream) == keys(full, stream), stream
    again = ok(run_tap(config, tmp_path, state=wide.final_state))
    assert sum(len(again.records(s)) for s in ALL) == 0, "and the state after it is cheap again"


def test_a_stream_map_filter_removed_later_emits_what_it_dropped(world, tmp_path):
    full = ok(run_tap(world.config(), tmp_path))
    maps = {"package_versions": {"__filter__": "record['package_name'] != 'web'"}}
    filtered = ok(run_tap(world.config(stream_maps=maps), tmp_path))
    assert "web" not in {r["package_name"] for r in filtered.records("package_versions")}
    unfiltered = ok(run_tap(world.config(), tmp_path, state=filtered.final_state))
    for stream in ("package_versions", "tags", "manifests"):
        assert keys(filtered, stream) | keys(unfiltered, stream) == keys(full, stream), stream


def test_wider_package_patterns_emit_the_newly_matched_packages(world, tmp_path):
    full = ok(run_tap(world.config(), tmp_path))
    narrow = ok(run_tap(world.config(package_patterns=["web"]), tmp_path))
    assert {r["name"] for r in narrow.records("packages")} == {"web"}
    wide = ok(run_tap(world.config(), tmp_path, state=narrow.final_state))
    for stream in ALL:
        assert keys(wide, stream) >= keys(full, stream) - keys(narrow, stream), stream
    assert keys(wide, "packages") == keys(full, "packages")


def test_an_earlier_start_date_backfills_what_a_late_one_left_out(world, tmp_path):
    full = ok(run_tap(world.config(), tmp_path))
    late = ok(run_tap(world.config(start_date="2030-01-01T00:00:00Z"), tmp_path))
    assert not late.records("package_versions")
    earlier = ok(run_tap(world.config(start_date="2020-01-01T00:00:00Z"), tmp_path, state=late.final_state))
    for stream in ("package_versions", "tags", "manifests"):
        assert keys(earlier, stream) == keys(full, stream), stream


@pytest.mark.parametrize("edit", ["remove", "rewind"])
def test_a_bookmark_removed_or_rewound_by_hand_is_honoured(world, tmp_path, edit):
    config = world.config()
    full = ok(run_tap(config, tmp_path))
    state = json.loads(json.dumps(full.final_state))
    web = partition(state, "package_versions", "acme", "web")
    if edit == "remove":
        del web["replication_key_value"]
    else:
        web["replication_key_value"] = "2000-01-01T00:00:00+00:00"
        web["bookmark_ids"] = []
    again = ok(run_tap(config, tmp_path, state=state))
    web_versions = {v.id for v in world.dataset.find("acme", "web").versions if v.state == "active"}
    assert {r["id"] for r in again.records("package_versions")} == web_versions
    web_manifests = {k for k in keys(full, "manifests") if k[1] == "web"}
    assert keys(again, "manifests") == web_manifests, "rewound: the manifests are backfilled too"


# 2. A registry failure is never committed ------------------------------------------------------------


def test_a_manifest_failing_after_retries_is_fetched_by_the_next_sync(world, tmp_path, fault_proxy):
    web = world.dataset.find("acme", "web")
    victim = next(d for d, p in web.manifests.items() if p.expected["kind"] == "image")
    full = ok(run_tap(world.config(), tmp_path))
    proxy = fault_proxy(world.registry.url, Faults(error_rate=1.0, only_paths=lambda path: victim in path))
    failed = run_tap(world.config(registry_url=proxy.url), tmp_path)
    assert failed.returncode == 0, "other packages completed: a warning, not a failed run"
    assert "incomplete" in failed.stderr and "acme/web" in failed.stderr
    assert not [r for r in failed.records("manifests") if r["package_name"] == "web"], "nothing half-known emitted"
    healthy_proxy = fault_proxy(world.registry.url)
    healthy = ok(run_tap(world.config(registry_url=healthy_proxy.url), tmp_path, state=failed.final_state))
    for stream in ALL:
        assert warehouse(failed, healthy, stream=stream) == warehouse(full, stream=stream), stream
    before = len(healthy_proxy.log)
    third = ok(run_tap(world.config(registry_url=healthy_proxy.url), tmp_path, state=healthy.final_state))
    assert len(healthy_proxy.log) == before, "after the healthy sync, nothing is left to fetch"
    assert sum(len(third.records(s)) for s in ALL) == 0


@pytest.mark.parametrize("where", ["/blobs/", "/tags/list"])
def test_a_failing_blob_or_tags_list_is_retried_by_the_next_sync(world, tmp_path, where, fault_proxy):
    images_only = {"organizations": [], "users": [], "images": ["acme/tools/api", "acme/web"]}
    config = world.config(**images_only) if where == "/tags/list" else world.config()
    full = ok(run_tap(config, tmp_path))
    faults = Faults(error_rate=1.0, only_paths=lambda path: where in path)
    proxy = fault_proxy(world.registry.url, faults)
    failed = run_tap({**config, "registry_url": proxy.url}, tmp_path)
    assert faults.injected.get("502"), "the fault was really injected"
    assert failed.returncode == 1 and "every package" in failed.stderr, "every package needed that path"
    healthy = ok(run_tap(config, tmp_path, state=failed.final_state))
    for stream in ALL:
        assert warehouse(failed, healthy, stream=stream) == warehouse(full, stream=stream), stream


def test_a_registry_failing_for_every_package_fails_the_run(world, tmp_path, fault_proxy):
    proxy = fault_proxy(world.registry.url, Faults(error_rate=1.0, only_paths=lambda path: "/manifests/" in path))
    run = run_tap(world.config(registry_url=proxy.url), tmp_path)
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("tap-ghcr: error:")]
    assert len(errors) == 1 and "every package" in errors[0]
    assert run.stderr.rstrip().splitlines()[-1] == errors[0], "nothing logged after the error line"
    assert not run.final_state["bookmarks"].get("package_versions", {}).get("partitions") or all(
        "replication_key_value" not in p for p in run.final_state["bookmarks"]["package_versions"]["partitions"])


def test_an_unreachable_registry_named_only_in_images_stops_nothing_else(world, tmp_path):
    full = ok(run_tap(world.config(), tmp_path))
    run = ok(run_tap(world.config(images=["127.0.0.1:9/some/image"]), tmp_path))
    assert "some/image is incomplete" in run.stderr
    for stream in ALL:
        assert keys(run, stream) == keys(full, stream), stream


# 3. A 404 in the middle of a listing ------------------------------------------------------------------


def one_package_of_250_versions() -> Dataset:
    ds = Dataset()
    ds.tokens["ghp_many00000000000000000000000000000000"] = "octo"
    many_versions(ds)
    return ds


@pytest.mark.parametrize("times", [1, 50])
def test_a_404_mid_listing_never_becomes_a_bookmark(fresh_world, tmp_path, times, fault_proxy):
    world = fresh_world(one_package_of_250_versions(), registry=False)
    config = world.config()
    catalog = catalog_selecting(config, tmp_path, {"packages", "package_versions"})
    page2 = Faults(error_rate=1.0, error_status="404",
                   only_paths=lambda p: "/many/versions" in p and "state=active" in p and "page=2" in p)
    if times == 1:
        page2.error_rate, page2.scripted = 0.0, ["404"]
    proxy = fault_proxy(world.github.url, page2)
    first = ok(run_tap({**config, "api_url": proxy.url}, tmp_path, catalog=catalog))
    assert page2.injected.get("404")
    ids = {r["id"] for r in first.records("package_versions")}
    if times == 1:
        assert len(ids) == 250, "a transient 404 is retried"
        return
    assert "vanished" in first.stderr
    second = ok(run_tap(config, tmp_path, state=first.final_state, catalog=catalog))
    assert ids | {r["id"] for r in second.records("package_versions")} == {v.id for v in
                                                                            world.dataset.packages[0].versions}


# 4. Deletions at the same second --------------------------------------------------------------------


def test_two_deletions_in_the_same_second_are_both_emitted(fresh_world, tmp_path):
    world = fresh_world(registry=False)
    config = world.config(include_deleted_versions=True)
    catalog = catalog_selecting(config, tmp_path, {"packages", "package_versions", "tags"})
    first = ok(run_tap(config, tmp_path, catalog=catalog))
    web = world.dataset.find("acme", "web")
    a, b = [v for v in web.versions if v.state == "active"][:2]
    stamp = "2025-06-01T00:00:00Z"
    a.deleted_at = a.updated_at = stamp
    second = ok(run_tap(config, tmp_path, state=first.final_state, catalog=catalog))
    assert a.id in {r["id"] for r in second.records("package_versions")}
    b.deleted_at = b.updated_at = stamp  # GitHub lists it late, at the second already bookmarked
    third = ok(run_tap(config, tmp_path, state=second.final_state, catalog=catalog))
    assert b.id in {r["id"] for r in third.records("package_versions")}
    assert a.id not in {r["id"] for r in third.records("package_versions")}


# 5. Records are a function of the registry, not of the batch ------------------------------------------


def test_tagging_a_platform_image_later_refetches_and_reemits_nothing_of_its_manifests(fresh_world, tmp_path,
                                                                                      fault_proxy):
    world = fresh_world()
    full = ok(run_tap(world.config(), tmp_path))
    web = world.dataset.find("acme", "web")
    child = next(d for d, p in web.manifests.items() if p.expected["kind"] == "image" and p.expected["index_digest"])
    builder = PackageBuilder(world.dataset, web)
    builder.retag("amd64-only", child)
    v10 = next(v for v in web.versions if "v1.0" in v.tags)
    builder.retag("latest", v10.digest)  # the old index loses `latest`
    world.push(web)
    proxy = fault_proxy(world.registry.url)
    second = ok(run_tap(world.config(registry_url=proxy.url), tmp_path, state=full.final_state))
    assert child in {r["digest"] for r in second.records("package_versions")}
    assert manifest_gets(proxy.log) == [], "manifests are immutable by digest: none fetched again"
    assert not second.records("manifests"), "no record without its index's fields"
    tags = {r["tag"]: r["digest"] for r in second.records("tags")}
    assert tags["amd64-only"] == child and tags["latest"] == v10.digest


# 6. Replication metadata and ACTIVATE_VERSION ---------------------------------------------------------


def test_every_stream_declares_incremental_and_no_version_message_is_sent(world, tmp_path):
    config = world.config()
    catalog = json.loads(run_tap(config, tmp_path, args=["--discover"]).stdout)
    for entry in catalog["streams"]:
        top = next(m["metadata"] for m in entry["metadata"] if m["breadcrumb"] == [])
        assert top.get("forced-replication-method", "INCREMENTAL") == "INCREMENTAL", entry["tap_stream_id"]
        assert (entry["tap_stream_id"] in ("tags", "manifests", "attestations", "sbom_packages")
                or top["valid-replication-keys"] == ["updated_at"])
    about = json.loads(run_tap(config, tmp_path, args=["--about", "--format=json"]).stdout)
    assert "activate-version" not in about["capabilities"]
    run = ok(run_tap({**config, "emit_activate_version_messages": True}, tmp_path))
    assert not [m for m in run.messages if m["type"] == "ACTIVATE_VERSION"]
    again = ok(run_tap({**config, "emit_activate_version_messages": True}, tmp_path, state=run.final_state))
    assert not [m for m in again.messages if m["type"] == "ACTIVATE_VERSION"]


# 7. An image that is also a package ---------------------------------------------------------------------


def test_an_image_also_listed_as_a_package_is_read_once_from_rest(world, tmp_path):
    run = ok(run_tap(world.config(images=["acme/web", "ACME/tools/api"]), tmp_path))
    for stream in ("tags", "manifests"):
        records = run.records(stream)
        assert len(records) == len(keys(run, stream)), f"duplicate keys in {stream}"
    assert all(r["version_id"] is not None for r in run.records("tags") if r["package_name"] in ("web", "tools/api"))


# 8. Deletions in each mode ------------------------------------------------------------------------------


@pytest.mark.parametrize("include_deleted", [False, True])
def test_a_deleted_version_retracts_its_tags_in_both_modes(fresh_world, tmp_path, include_deleted):
    world = fresh_world(sample_dataset())
    config = world.config(include_deleted_versions=include_deleted)
    first = ok(run_tap(config, tmp_path))
    web = world.dataset.find("acme", "web")
    victim = next(v for v in web.versions if "v1.0" in v.tags)
    PackageBuilder(world.dataset, web).delete_version(victim.digest)
    world.push(web)
    second = ok(run_tap(config, tmp_path, state=first.final_state))
    tags = {r["tag"]: r for r in second.records("tags")}
    assert tags["v1.0"]["deleted_at"] is not None and tags["v1.0"]["digest"] == victim.digest
    versions = {r["id"]: r for r in second.records("package_versions")}
    if include_deleted:
        assert versions[victim.id]["deleted_at"] is not None
    else:
        assert victim.id not in versions
    third = ok(run_tap(config, tmp_path, state=second.final_state))
    assert not third.records("tags"), "a retraction is emitted once"


def test_an_unreadable_registry_answer_is_a_warning_and_the_package_is_retried(world, tmp_path, fault_proxy):
    config = world.config(organizations=[], users=[], images=["acme/tools/api", "acme/web"])
    full = ok(run_tap(config, tmp_path))
    html = Faults(tamper=lambda path, body: b"<html>captive portal</html>" if "/tags/list" in path and "api" in path
                  else body)
    proxy = fault_proxy(world.registry.url, html)
    failed = ok(run_tap({**config, "registry_url": proxy.url}, tmp_path))
    assert "Traceback" not in failed.stderr
    assert "acme/tools/api is incomplete" in failed.stderr and "no JSON" in failed.stderr
    healthy = ok(run_tap(config, tmp_path, state=failed.final_state))
    for stream in ("tags", "manifests"):
        assert warehouse(failed, healthy, stream=stream) == warehouse(full, stream=stream), stream


def test_credentials_in_registry_url_never_reach_the_state(world, tmp_path):
    url = world.registry.url.replace("http://", "http://someone:ghp_secretinurl0000000000000000000000000@")
    run = run_tap(world.config(organizations=[], users=[], images=["acme/web"], registry_url=url), tmp_path)
    assert "ghp_secretinurl" not in json.dumps(run.states)


def test_a_state_with_several_owners_runs_the_sync_once(world, tmp_path):
    config = world.config(organizations=["acme", "acme"])  # and an owner given twice is read once
    first = ok(run_tap(config, tmp_path))
    for stream in ALL:
        assert len(first.records(stream)) == len(keys(first, stream)), f"duplicate keys in {stream}"
    before = len(world.github.log)
    ok(run_tap(config, tmp_path, state=first.final_state))
    lists = [e for e in world.github.log[before:] if e["path"].split("?")[0].endswith(("/packages", "/versions"))]
    pages = {e["path"] for e in lists}
    assert len(lists) == len(pages), "each list page is asked for once"


@pytest.mark.parametrize("change", ["delete", "push"])
def test_a_list_that_changes_while_it_is_paged_loses_no_version(fresh_world, tmp_path, fault_proxy, change):
    import hashlib

    world = fresh_world(one_package_of_250_versions(), registry=False)
    package = world.dataset.packages[0]
    config = world.config()
    catalog = catalog_selecting(config, tmp_path, {"packages", "package_versions", "tags"})
    # The emulator orders versions by this hash, as GitHub by something we do not know: page 1 is the first 100.
    page1 = sorted((v for v in package.versions if v.state == "active"),
                   key=lambda v: hashlib.md5(f"{v.id}".encode()).hexdigest())[:100]
    changed = []

    def while_page_2_is_asked(path: str) -> bool:
        if not changed and "/many/versions" in path and "state=active" in path and "page=2" in path:
            if change == "delete":  # a clean-up job deletes a version on page 1: page 2's first row moves up
                victim = page1[0]
                victim.deleted_at = victim.updated_at = "2030-01-01T00:00:00Z"
            else:  # CI pushes five versions: rows move down, and some of the new ones land on page 1
                builder = PackageBuilder(world.dataset, package)
                for n in range(5):
                    builder.image(tags=[f"new{n}"], layers=1)
            changed.append(path)
        return False

    proxy = fault_proxy(world.github.url, Faults(only_paths=while_page_2_is_asked))
    first = ok(run_tap({**config, "api_url": proxy.url}, tmp_path, catalog=catalog))
    assert changed, "the list really changed mid-walk"
    second = ok(run_tap(config, tmp_path, state=first.final_state, catalog=catalog))
    live = {v.id for v in package.versions if v.state == "active"}
    got = {r["id"] for r in first.records("package_versions") + second.records("package_versions")}
    assert live <= got, f"lost for good: {sorted(live - got)}"
    assert len(first.records("package_versions")) == len(keys(first, "package_versions")), "no duplicates"


def test_a_version_created_in_the_bookmarks_second_still_gets_its_manifests(fresh_world, tmp_path):
    world = fresh_world()
    first = ok(run_tap(world.config(), tmp_path))
    web = world.dataset.find("acme", "web")
    newest = max(web.versions, key=lambda v: v.updated_at)
    builder = PackageBuilder(world.dataset, web)
    # The next push is stamped in the same second as the newest version (the dataset's clock ticks 60 s a push).
    from tests.emulator.dataset import EPOCH

    newest_at = datetime.fromisoformat(newest.updated_at.replace("Z", "+00:00"))
    world.dataset._clock = int((newest_at - EPOCH).total_seconds()) - 60
    digest = builder.image(tags=["same-second"], layers=1)
    world.push(web)
    added = next(v for v in web.versions if v.digest == digest)
    assert added.updated_at == newest.updated_at and added.created_at == newest.created_at
    second = ok(run_tap(world.config(), tmp_path, state=first.final_state))
    assert added.id in {r["id"] for r in second.records("package_versions")}
    assert digest in {r["digest"] for r in second.records("manifests")}


def test_a_package_filtered_by_a_stream_map_stays_filtered_when_its_page_is_unchanged(world, tmp_path):
    maps = {"packages": {"__filter__": "name != 'web'"}}
    first = ok(run_tap(world.config(stream_maps=maps), tmp_path))
    assert "web" not in {r["package_name"] for r in first.records("package_versions")}
    again = ok(run_tap(world.config(stream_maps=maps), tmp_path, state=first.final_state))
    assert sum(len(again.records(s)) for s in ALL) == 0


@pytest.mark.parametrize("start", ["2024-01-01", "2024-01-01T00:10:00"])
def test_a_start_date_without_offset_is_utc(world, tmp_path, start):
    run = ok(run_tap(world.config(start_date=start), tmp_path))
    assert run.records("package_versions")


@pytest.mark.parametrize("how", [{"selected": False}, {"inclusion": "unsupported"}])
def test_deselecting_a_package_property_the_sync_reads_loses_nothing(world, tmp_path, how):
    """Found by review: the SDK drops deselected properties from the record it writes, in place, and the
    sync core then read the package's `name` from it (internal error: KeyError)."""
    config = world.config()
    full = ok(run_tap(config, tmp_path))
    catalog = catalog_selecting(config, tmp_path, set(ALL))
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == "packages")
    for meta in entry["metadata"]:
        if meta["breadcrumb"] in (["properties", "name"], ["properties", "owner_login"]):
            meta["metadata"].update(how)
    narrowed = ok(run_tap(config, tmp_path, catalog=catalog))
    assert all("name" not in r and "owner_login" not in r for r in narrowed.records("packages"))
    assert len(narrowed.records("packages")) == len(full.records("packages"))
    for stream in ALL[1:]:
        assert keys(narrowed, stream) == keys(full, stream), stream


@pytest.mark.parametrize(
    ("row", "usable"),
    [
        ({"id": 1, "name": "sha256:" + "a" * 64, "updated_at": "2024-01-01T00:00:00Z"}, True),
        ({"id": 1, "name": "sha256:" + "a" * 64, "updated_at": "2024-01-01T00:00:00Z", "deleted_at": None}, True),
        ({"id": 1, "name": "sha256:" + "a" * 64, "updated_at": "2024-01-01T00:00:00Z",
          "deleted_at": "2024-01-02T00:00:00Z"}, True),
        ({"id": "1", "name": "sha256:" + "a" * 64, "updated_at": "2024-01-01T00:00:00Z"}, False),
        ({"id": True, "name": "sha256:" + "a" * 64, "updated_at": "2024-01-01T00:00:00Z"}, False),
        ({"id": {"a": 1}, "name": "sha256:" + "a" * 64, "updated_at": "2024-01-01T00:00:00Z"}, False),
        ({"id": 1, "name": {"a": 1}, "updated_at": "2024-01-01T00:00:00Z"}, False),
        ({"id": 1, "name": None, "updated_at": "2024-01-01T00:00:00Z"}, False),
        ({"id": 1, "name": "latest", "updated_at": "2024-01-01T00:00:00Z"}, False),
        ({"id": 1, "name": "sha256:" + "a" * 64, "updated_at": 1704067200}, False),
        ({"id": 1, "name": "sha256:" + "a" * 64, "updated_at": "yesterday"}, False),
        ({"id": 1, "name": "sha256:" + "a" * 64}, False),
        ({"id": 1, "name": "sha256:" + "a" * 64, "updated_at": "2024-01-01T00:00:00Z", "deleted_at": 5}, False),
        ({"id": 1, "name": "sha256:" + "a" * 64, "updated_at": "2024-01-01T00:00:00Z", "created_at": 5}, False),
        ({"id": 1, "name": "sha256:" + "a" * 64, "updated_at": "2024-01-01T00:00:00Z", "created_at": "x"}, False),
        ("a row", False),
    ],
)
def test_a_version_row_is_used_only_with_an_id_a_digest_and_readable_times(row, usable) -> None:
    from tap_ghcr.sync import usable_version

    assert usable_version(row) is usable
