"""`packages` and `package_versions` against the REST emulator: paging, encoding, bookmarks, filters."""

from __future__ import annotations

import json

import pytest

from tests.conftest import catalog_selecting, run_tap
from tests.emulator.dataset import Dataset, many_versions, sample_dataset

REST_STREAMS = {"packages", "package_versions"}


def big_dataset() -> Dataset:
    ds = Dataset()
    ds.tokens["ghp_big000000000000000000000000000000000"] = "octo"
    many_versions(ds)
    ds.package("bigorg", "other", visibility="private").image(tags=["x"], layers=1)
    ds.package("bigorg", "skip-me").image(tags=["y"], layers=1)
    return ds


@pytest.fixture
def rest_world(fresh_world):
    return lambda dataset=None: fresh_world(dataset or sample_dataset(), registry=False)


def sync(world, tmp_path, state=None, **overrides):
    config = world.config(**overrides)
    run = run_tap(config, tmp_path, state=state, catalog=catalog_selecting(config, tmp_path, REST_STREAMS))
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def version_paths(world):
    return [e for e in world.github.log if e["path"].split("?")[0].endswith("/versions")]


def test_pages_through_every_version(rest_world, tmp_path):
    world = rest_world(big_dataset())
    run = sync(world, tmp_path)
    many = [r for r in run.records("package_versions") if r["package_name"] == "many"]
    assert len(many) == 250 and len({r["id"] for r in many}) == 250
    pages = [e for e in version_paths(world) if "/many/" in e["path"] and "state=active" in e["path"]]
    read = [e for e in pages if e["status"] == 200]
    assert len(read) == 3, "250 versions are 3 pages of 100"
    # then each page once more with its new ETag, proving the list held still while it was read
    assert [e["status"] for e in pages if e not in read] == [304, 304, 304]
    assert all("per_page=100" in e["path"] for e in pages)
    tagged = {t for r in many for t in r["tags"]}
    assert tagged == {f"v{n}" for n in range(0, 250, 10)}


def test_package_names_with_slash_are_encoded(rest_world, tmp_path):
    world = rest_world()
    run = sync(world, tmp_path)
    api = [r for r in run.records("package_versions") if r["package_name"] == "tools/api"]
    assert len(api) == len(world.dataset.find("acme", "tools/api").versions)
    assert any("/tools%2Fapi/versions" in e["path"] for e in world.github.log)


def test_fields_follow_the_contract(rest_world, tmp_path):
    world = rest_world()
    run = sync(world, tmp_path)
    packages = {r["name"]: r for r in run.records("packages")}
    web = packages["web"]
    assert web["owner_login"] == "acme" and web["owner_type"] == "Organization"
    assert web["repository_full_name"] == "acme/web" and packages["worker"]["repository_full_name"] is None
    assert web["package_type"] == "container" and web["visibility"] == "public"
    version = next(r for r in run.records("package_versions") if "latest" in r["tags"])
    source = world.dataset.find("acme", "web")
    expected = next(v for v in source.versions if "latest" in v.tags)
    assert version["digest"] == expected.digest and version["id"] == expected.id
    assert version["package_id"] == source.id and version["owner_login"] == "acme"
    assert version["package_name"] == "web" and sorted(version["tags"]) == ["latest", "v1.1"]


def test_second_sync_emits_only_what_changed(rest_world, tmp_path):
    world = rest_world()
    first = sync(world, tmp_path)
    assert len(first.records("package_versions")) == sum(
        1 for p in world.dataset.packages for v in p.versions if v.state == "active")
    second = sync(world, tmp_path, state=first.final_state)
    assert second.records("package_versions") == []

    web = world.dataset.find("acme", "web")
    builder = _builder(world.dataset, web)
    new_digest = builder.image(tags=["v1.2"])
    old_digest = next(v.digest for v in web.versions if "v1.0" in v.tags)
    builder.retag("stable", old_digest)
    third = sync(world, tmp_path, state=second.final_state)
    got = {(r["digest"], tuple(sorted(r["tags"]))) for r in third.records("package_versions")}
    assert got == {(new_digest, ("v1.2",)), (old_digest, ("stable", "v1.0"))}
    fourth = sync(world, tmp_path, state=third.final_state)
    assert fourth.records("package_versions") == []


def test_version_at_the_bookmark_second_is_not_lost(rest_world, tmp_path):
    world = rest_world()
    first = sync(world, tmp_path)
    web = world.dataset.find("acme", "web")
    newest = max(v.updated_at for v in web.versions)
    digest = _builder(world.dataset, web).image(tags=["same-second"])
    late = next(v for v in web.versions if v.digest == digest)
    late.updated_at = late.created_at = newest  # GitHub timestamps are whole seconds
    second = sync(world, tmp_path, state=first.final_state)
    assert [r["digest"] for r in second.records("package_versions")] == [digest]
    assert sync(world, tmp_path, state=second.final_state).records("package_versions") == []


def test_start_date_applies_to_the_first_sync(rest_world, tmp_path):
    world = rest_world()
    web = world.dataset.find("acme", "web")
    cut = sorted(v.updated_at for v in web.versions)[5]
    run = sync(world, tmp_path, start_date=cut, organizations=["acme"], users=[], package_patterns=["web"])
    assert sorted(r["updated_at"].replace("+00:00", "Z") for r in run.records("package_versions")) == sorted(
        v.updated_at for v in web.versions if v.updated_at >= cut)


def test_patterns_and_visibility_filter_packages(rest_world, tmp_path):
    world = rest_world(big_dataset())
    run = sync(world, tmp_path, package_patterns=["m*", "oth?r"])
    assert {r["name"] for r in run.records("packages")} == {"many", "other"}
    run = sync(world, tmp_path, visibility="private")
    assert {r["name"] for r in run.records("packages")} == {"other"}
    assert any("visibility=private" in e["path"] for e in world.github.log)


def test_deleted_versions_only_when_asked(rest_world, tmp_path):
    world = rest_world()
    worker = world.dataset.find("acme", "worker")
    deleted = next(v for v in worker.versions if v.state == "deleted")
    plain = sync(world, tmp_path)
    assert deleted.id not in {r["id"] for r in plain.records("package_versions")}
    run = sync(world, tmp_path, include_deleted_versions=True)
    got = {r["id"]: r for r in run.records("package_versions")}
    assert got[deleted.id]["deleted_at"] is not None
    again = sync(world, tmp_path, state=run.final_state, include_deleted_versions=True)
    assert again.records("package_versions") == []
    newly = next(v for v in worker.versions if v.state == "active")
    _builder(world.dataset, worker).delete_version(newly.digest)
    third = sync(world, tmp_path, state=again.final_state, include_deleted_versions=True)
    assert [(r["id"], bool(r["deleted_at"])) for r in third.records("package_versions")] == [(newly.id, True)]


def test_authenticated_user_packages_when_no_owner_is_set(rest_world, tmp_path):
    world = rest_world()
    run = sync(world, tmp_path, organizations=[], users=[])
    assert {r["owner_login"] for r in run.records("packages")} == {"octo-admin"}
    assert any(e["path"].startswith("/user/packages") for e in world.github.log)


def _builder(dataset, package):
    from tests.emulator.dataset import PackageBuilder

    return PackageBuilder(dataset, package)


def _answer(status: int, body: dict, url: str = "https://api.github.com/orgs/acme/packages?package_type=container"):
    """A GitHub answer built by hand, as `requests` would hand it to `validate_response`."""
    import requests

    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    response.url = url
    response.request = requests.Request("GET", url).prepare()
    return response


@pytest.mark.parametrize(("status", "token", "expected"), [
    (401, "ghp_" + "a" * 36, "GitHub rejected the token (401 Bad credentials): set a valid `token` (or GITHUB_TOKEN) "
                             "with the read:packages scope"),
    (401, "github_pat_11AAAA" + "a" * 60, "GitHub rejected the token (401 Bad credentials): this is a fine-grained "
                                          "token (github_pat_...), which GitHub Packages does not accept"),
    (403, "github_pat_11AAAA" + "a" * 60, "GitHub refused access to /orgs/acme/packages (403 Bad credentials): this "
                                          "is a fine-grained token"),
    (403, "ghp_" + "a" * 36, "GitHub refused access to /orgs/acme/packages (403 Bad credentials): the token needs "
                             "the read:packages scope"),
])
def test_a_refused_token_is_explained_by_its_kind(status, token, expected):
    """In process, on a hand-built answer: a fine-grained token is named as such (GitHub answers it like a
    token without the scope), and the message never holds the token."""
    from tap_ghcr.errors import GitHubAuthError
    from tap_ghcr.tap import TapGHCR

    tap = TapGHCR(config={"token": token, "organizations": ["acme"]}, validate_config=True, setup_mapper=False)
    stream = tap.streams["packages"]
    with pytest.raises(GitHubAuthError) as raised:
        stream.validate_response(_answer(status, {"message": "Bad credentials"}))
    assert str(raised.value).startswith(expected), str(raised.value)
    assert token not in str(raised.value)


@pytest.mark.parametrize(("token", "hint"), [
    ("github_pat_11AAAA" + "a" * 60, "this is a fine-grained token (github_pat_...)"),
    ("ghp_" + "a" * 36, "does the token have read:packages, and access to this package?"),
    (None, "private image? set `token`"),
])
def test_a_registry_refusal_is_explained_by_the_tokens_kind(caplog, token, hint):
    from tap_ghcr.inventory import RegistryFetcher

    fetcher = RegistryFetcher("https://ghcr.io", credentials=lambda: ("me", token) if token else None, max_workers=1)
    try:
        with caplog.at_level("WARNING"):
            fetcher.warn_denied("acme/web", fetcher.client())
    finally:
        fetcher.close()
    (record,) = [r for r in caplog.records if "refused" in r.getMessage()]
    assert record.getMessage().startswith(f"registry https://ghcr.io refused acme/web ({hint}")
