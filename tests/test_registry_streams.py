"""`tags` and `manifests` end to end: the tap against the REST emulator and the real registry."""

from __future__ import annotations

import collections

from tests.conftest import run_tap
from tests.emulator.proxy import Faults


def manifests_by_key(run):
    return {(r["owner_login"], r["package_name"], r["digest"]): r for r in run.records("manifests")}


def test_full_sync_equals_what_was_pushed(world, tmp_path):
    run = run_tap(world.config(), tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    expected = world.dataset.expected_manifests()
    got = manifests_by_key(run)
    assert set(got) == set(expected)
    for key, want in expected.items():
        for field_name, value in want.items():
            assert got[key][field_name] == value, (key, field_name)
    kinds = collections.Counter(r["kind"] for r in got.values())
    assert set(kinds) == {"index", "image", "attestation", "signature"}
    want_tags = {(p.owner.login, p.name, tag, digest) for p in world.dataset.packages
                 for v in p.versions if v.state == "active" for tag in v.tags for digest in [v.digest]}
    live = [r for r in run.records("tags") if r["deleted_at"] is None]
    got_tags = {(r["owner_login"], r["package_name"], r["tag"], r["digest"]) for r in live}
    assert got_tags == want_tags
    # A deleted version's tags are retracted, whatever include_deleted_versions says.
    retracted = {(p.owner.login, p.name, tag, v.digest, v.deleted_at) for p in world.dataset.packages
                 for v in p.versions if v.state == "deleted" for tag in v.tags}
    assert retracted, "the sample has a deleted, tagged version"
    assert {(r["owner_login"], r["package_name"], r["tag"], r["digest"], r["deleted_at"].replace("+00:00", "Z"))
            for r in run.records("tags") if r["deleted_at"]} == retracted
    assert all(r["version_id"] for r in run.records("tags"))
    assert world.token not in run.stdout + run.stderr
    summary = next(line for line in run.stderr.splitlines() if "sync complete:" in line)
    assert f"manifests {len(expected)}," in summary and f"tags {len(want_tags) + len(retracted)}" in summary


def test_each_digest_is_fetched_once_and_blobs_skip_the_token(world, tmp_path, fault_proxy):
    proxy = fault_proxy(world.registry.url)
    blob_log_start = len(world.registry.blob_host.log)
    run = run_tap(world.config(registry_url=proxy.url), tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    gets = collections.Counter(e["path"] for e in proxy.log
                               if e["method"] == "GET" and "/manifests/" in e["path"] and e["status"] == 200)
    assert gets and max(gets.values()) == 1
    assert len(gets) == len(manifests_by_key(run))
    blob_hits = world.registry.blob_host.log[blob_log_start:]
    assert blob_hits and all("Authorization" not in h["headers"] for h in blob_hits)


def test_images_mode_reads_a_public_image_with_no_token(world, tmp_path):
    before = len(world.github.log)
    run = run_tap({"images": ["acme/web", "octo-admin/cli"], "registry_url": world.registry.url}, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(world.github.log) == before, "images mode makes no GitHub REST call"
    web = world.dataset.find("acme", "web")
    got_tags = {(r["package_name"], r["tag"], r["digest"], r["version_id"]) for r in run.records("tags")}
    assert {(n, t, d) for n, t, d, _ in got_tags} == (
        {("web", t, d) for t, d in web.tags.items()}
        | {("cli", t, d) for t, d in world.dataset.find("octo-admin", "cli").tags.items()})
    assert {v for *_, v in got_tags} == {None}
    expected = world.dataset.expected_manifests()
    got = manifests_by_key(run)
    assert set(got) == {k for k in expected if k[1] in ("web", "cli")}
    for key, record in got.items():
        assert record == {**record, **expected[key]}
    assert run.records("packages") == [] and run.records("package_versions") == []


def test_images_mode_fetches_only_new_or_moved_tags_the_next_time(fresh_world, tmp_path, fault_proxy):
    w = fresh_world()
    web = w.dataset.find("acme", "web")
    proxy = fault_proxy(w.registry.url)
    config = {"images": ["acme/web"], "registry_url": proxy.url}
    first = run_tap(config, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert {r["tag"] for r in first.records("tags")} == set(web.tags)

    start = len(proxy.log)
    again = run_tap(config, tmp_path, state=first.final_state)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.records("tags") == [] and again.records("manifests") == []
    gets = [e["path"] for e in proxy.log[start:] if e["method"] == "GET" and e["status"] == 200]
    assert gets and all("/tags/list" in p for p in gets), "only the tags list and HEADs: no manifest GET"

    # Move one tag to another version's manifest, as a new push of that tag would.
    tag, old_digest = sorted(web.tags.items())[0]
    target = next(v.digest for v in web.versions if v.state == "active" and v.digest != old_digest)
    pushed = web.manifests[target]
    w.pusher.manifest(web.registry_repository, tag, pushed.media_type, pushed.body)
    moved = run_tap(config, tmp_path, state=again.final_state)
    assert moved.returncode == 0, moved.stderr[-3000:]
    assert {(r["tag"], r["digest"]) for r in moved.records("tags")} == (
        {(tag, target)} | {(t, d) for t, d in web.tags.items() if d == target})
    children = set(pushed.expected.get("child_digests") or [])
    assert {r["digest"] for r in moved.records("manifests")} == {target} | children


def test_private_image_without_token_is_a_warning(world, tmp_path):
    run = run_tap({"images": ["acme/worker", f"{world.registry.url.split('//')[1]}/acme/web"],
                   "registry_url": world.registry.url}, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "acme/worker" in run.stderr and "private image" in run.stderr
    assert {r["package_name"] for r in run.records("manifests")} == {"web"}


def test_tampered_manifest_is_dropped_and_named(world, tmp_path, fault_proxy):
    web = world.dataset.find("acme", "web")
    victim = next(p for p in web.manifests.values() if p.expected["kind"] == "image")

    def tamper(path, body):
        if path.endswith(f"/manifests/{victim.digest}"):
            return body.replace(b'"size": ', b'"size":  ', 1)  # one byte more
        return body

    proxy = fault_proxy(world.registry.url, Faults(tamper=tamper))
    run = run_tap(world.config(registry_url=proxy.url), tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    got = manifests_by_key(run)
    key = ("acme", "web", victim.digest)
    assert key not in got
    assert set(got) == set(world.dataset.expected_manifests()) - {key}
    error_lines = [line for line in run.stderr.splitlines() if "ERROR" in line and "digest check" in line]
    assert any(f"acme/web@{victim.digest}" in line for line in error_lines)


def test_deleted_version_without_manifest_is_a_warning(world, tmp_path, fault_proxy):
    proxy = fault_proxy(world.registry.url)
    run = run_tap(world.config(include_deleted_versions=True, organizations=["acme"], users=[],
                               registry_url=proxy.url), tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    worker = world.dataset.find("acme", "worker")
    gone = next(v for v in worker.versions if v.state == "deleted")
    assert gone.id in {r["id"] for r in run.records("package_versions")}
    # The registry was asked, answered 404, and that is a final answer: a warning, no record.
    asked = [e for e in proxy.log if e["path"].endswith(f"/manifests/{gone.digest}")]
    assert asked and {e["status"] for e in asked} == {404}
    assert any("no longer in the registry" in line and gone.digest in line for line in run.stderr.splitlines())
    assert gone.digest not in {r["digest"] for r in run.records("manifests")}
    assert {r["deleted_at"] is not None for r in run.records("tags") if r["digest"] == gone.digest} == {True}
    assert run.final_state["bookmarks"]["package_versions"]["partitions"], "the package was committed"
