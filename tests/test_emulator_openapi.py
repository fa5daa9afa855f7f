"""The emulator answers in GitHub's shapes: validated against the official OpenAPI description."""

from __future__ import annotations

import json

import jsonschema
import pytest
import requests

from tests.emulator.dataset import sample_dataset
from tests.emulator.world import start_world
from tests.reference import GITHUB_OPENAPI

SPEC_FILE = GITHUB_OPENAPI


def openapi_to_jsonschema(node):
    """OpenAPI 3.0's `nullable: true` means JSON Schema's `type: [T, "null"]`."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_to_jsonschema(v) for k, v in node.items()}
    if out.pop("nullable", False) is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


ORG_VERSIONS = "/orgs/{org}/packages/{package_type}/{package_name}/versions"
SPEC = openapi_to_jsonschema(json.loads(SPEC_FILE.read_text()))


def response_schema(path: str, status: str = "200") -> dict:
    content = SPEC["paths"][path]["get"]["responses"][status]
    if "$ref" in content:
        content = SPEC["components"]["responses"][content["$ref"].rsplit("/", 1)[1]]
    schema = content["content"]["application/json"]["schema"]
    return {**schema, "components": SPEC["components"]}


@pytest.fixture(scope="module")
def rest():
    w = start_world(sample_dataset(), registry=False)
    yield w
    w.stop()


def get(rest, path, **params):
    return requests.get(rest.github.url + path, params=params, timeout=10,
                        headers={"Authorization": f"Bearer {rest.token}"})


@pytest.mark.parametrize(("url", "spec_path"), [
    ("/orgs/acme/packages", "/orgs/{org}/packages"),
    ("/users/octo-admin/packages", "/users/{username}/packages"),
    ("/user/packages", "/user/packages"),
])
def test_package_lists_match_schema(rest, url, spec_path):
    response = get(rest, url, package_type="container")
    assert response.status_code == 200
    body = response.json()
    assert body, "the sample dataset must give packages here"
    jsonschema.validate(body, response_schema(spec_path))


@pytest.mark.parametrize(("url", "spec_path"), [
    ("/orgs/acme/packages/container/tools%2Fapi/versions", ORG_VERSIONS),
    ("/users/octo-admin/packages/container/cli/versions",
     "/users/{username}/packages/{package_type}/{package_name}/versions"),
    ("/user/packages/container/cli/versions", "/user/packages/{package_type}/{package_name}/versions"),
])
def test_version_lists_match_schema(rest, url, spec_path):
    response = get(rest, url, state="active")
    assert response.status_code == 200
    body = response.json()
    assert body
    jsonschema.validate(body, response_schema(spec_path))
    deleted = get(rest, "/orgs/acme/packages/container/worker/versions", state="deleted").json()
    assert deleted and all("deleted_at" in v for v in deleted)
    jsonschema.validate(deleted, response_schema("/orgs/{org}/packages/{package_type}/{package_name}/versions"))


def test_errors_match_schema(rest):
    missing = get(rest, "/orgs/nobody/packages", package_type="container")
    assert missing.status_code == 404
    jsonschema.validate(missing.json(), response_schema(ORG_VERSIONS, "404"))
    bad = requests.get(rest.github.url + "/orgs/acme/packages", params={"package_type": "container"},
                       headers={"Authorization": "Bearer nope"}, timeout=10)
    assert bad.status_code == 401 and bad.json()["message"] == "Bad credentials"
    jsonschema.validate(bad.json(), response_schema(ORG_VERSIONS, "401"))


def test_raw_slash_in_package_name_is_404(rest):
    assert get(rest, "/orgs/acme/packages/container/tools/api/versions").status_code == 404
    assert get(rest, "/orgs/acme/packages/container/tools%2Fapi/versions").status_code == 200


def test_link_paging_etag_and_rate_limit_headers(rest):
    first = get(rest, "/orgs/acme/packages/container/web/versions", per_page=4)
    assert first.status_code == 200 and len(first.json()) == 4
    assert 'rel="next"' in first.headers["Link"]
    assert int(first.headers["x-ratelimit-remaining"]) < int(first.headers["x-ratelimit-limit"])
    seen = {v["id"] for v in first.json()}
    url = first.links["next"]["url"]
    while url:
        page = requests.get(url, headers={"Authorization": f"Bearer {rest.token}"}, timeout=10)
        seen |= {v["id"] for v in page.json()}
        url = page.links.get("next", {}).get("url")
    assert len(seen) == len([v for v in rest.dataset.find("acme", "web").versions if v.state == "active"])
    before = int(get(rest, "/user").headers["x-ratelimit-remaining"])
    again = requests.get(rest.github.url + "/orgs/acme/packages/container/web/versions?per_page=4",
                         headers={"Authorization": f"Bearer {rest.token}", "If-None-Match": first.headers["ETag"]},
                         timeout=10)
    assert again.status_code == 304
    assert int(again.headers["x-ratelimit-remaining"]) == before, "a 304 must not spend the rate limit"
    assert get(rest, "/orgs/acme/packages", package_type="container", per_page=100, page=101).status_code == 400
