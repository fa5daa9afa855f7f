"""The GitHub REST emulator: the packages API of api.github.com, from a Dataset.

Faithful where the tap depends on it: Link paging (`per_page` <= 100,
`page * per_page` <= 10,000 on package lists), `%2F` in package names (a raw
`/` is a 404), the root `/` (no token needed), `visibility`, `state`, Bearer auth (401 Bad credentials),
404 for unknown owners, weak `ETag`s with `304` on `If-None-Match` (not counted
against the rate limit), and `x-ratelimit-*` headers. Response shapes are
checked against GitHub's OpenAPI description in the tests.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import typing as t
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from tests.emulator.dataset import Dataset, Owner, Package, Version
from tests.emulator.servers import LoggedServer, QuietHandler

API = "https://api.github.com"
_USER_URLS = ["followers", "following{/other_user}", "gists{/gist_id}", "starred{/owner}{/repo}",
              "subscriptions", "organizations", "repos", "events{/privacy}", "received_events"]
_REPO_URLS = ["archive_url:{archive_format}{/ref}", "assignees_url:assignees{/user}", "blobs_url:git/blobs{/sha}",
              "branches_url:branches{/branch}", "collaborators_url:collaborators{/collaborator}",
              "comments_url:comments{/number}", "commits_url:commits{/sha}", "compare_url:compare/{base}...{head}",
              "contents_url:contents/{+path}", "contributors_url:contributors", "deployments_url:deployments",
              "downloads_url:downloads", "events_url:events", "forks_url:forks",
              "git_commits_url:git/commits{/sha}", "git_refs_url:git/refs{/sha}", "git_tags_url:git/tags{/sha}",
              "hooks_url:hooks", "issue_comment_url:issues/comments{/number}",
              "issue_events_url:issues/events{/number}", "issues_url:issues{/number}", "keys_url:keys{/key_id}",
              "labels_url:labels{/name}", "languages_url:languages", "merges_url:merges",
              "milestones_url:milestones{/number}", "notifications_url:notifications{?since,all,participating}",
              "pulls_url:pulls{/number}", "releases_url:releases{/id}", "stargazers_url:stargazers",
              "statuses_url:statuses/{sha}", "subscribers_url:subscribers", "subscription_url:subscription",
              "tags_url:tags", "teams_url:teams", "trees_url:git/trees{/sha}"]


def user_json(owner: Owner) -> dict:
    base = f"{API}/users/{owner.login}"
    doc = {"login": owner.login, "id": owner.id, "node_id": f"MDQ6{owner.id:08d}",
           "avatar_url": f"https://avatars.githubusercontent.com/u/{owner.id}?v=4", "gravatar_id": "",
           "url": base, "html_url": f"https://github.com/{owner.login}", "type": owner.type, "site_admin": False}
    for name in _USER_URLS:
        doc[f"{name.split('{')[0]}_url"] = f"{base}/{name}"
    return doc


def repository_json(full_name: str, owner: Owner, private: bool) -> dict:
    base = f"{API}/repos/{full_name}"
    doc: dict[str, t.Any] = {"id": abs(hash(full_name)) % 10**8, "node_id": "R_kgDO" + full_name.replace("/", "_"),
                             "name": full_name.split("/")[1], "full_name": full_name, "owner": user_json(owner),
                             "private": private, "html_url": f"https://github.com/{full_name}", "description": None,
                             "fork": False, "url": base}
    for spec in _REPO_URLS:
        key, _, suffix = spec.partition(":")
        doc[key] = f"{base}/{suffix}"
    return doc


def package_json(pkg: Package, scope: str) -> dict:
    where = "orgs" if pkg.owner.type == "Organization" else "users"
    name = pkg.name.replace("/", "%2F")
    doc = {"id": pkg.id, "name": pkg.name, "package_type": "container", "owner": user_json(pkg.owner),
           "version_count": sum(1 for v in pkg.versions if v.state == "active"), "visibility": pkg.visibility,
           "url": f"{API}/{where}/{pkg.owner.login}/packages/container/{name}",
           "created_at": pkg.created_at, "updated_at": pkg.updated_at,
           "html_url": f"https://github.com/{where}/{pkg.owner.login}/packages/container/package/{name}"}
    del scope
    if pkg.repository:
        doc["repository"] = repository_json(pkg.repository, pkg.owner, pkg.visibility != "public")
    return doc


def version_json(pkg: Package, version: Version) -> dict:
    where = "orgs" if pkg.owner.type == "Organization" else "users"
    name = pkg.name.replace("/", "%2F")
    doc = {"id": version.id, "name": version.digest,
           "url": f"{API}/{where}/{pkg.owner.login}/packages/container/{name}/versions/{version.id}",
           "package_html_url": f"https://github.com/{where}/{pkg.owner.login}/packages/container/package/{name}",
           "created_at": version.created_at, "updated_at": version.updated_at,
           "html_url": f"https://github.com/{where}/{pkg.owner.login}/packages/container/{name}/{version.id}",
           "metadata": {"package_type": "container", "container": {"tags": list(version.tags)}}}
    if version.deleted_at:
        doc["deleted_at"] = version.deleted_at
    return doc


class GitHubState:
    """Mutable emulator state: dataset, rate-limit budget, version order, request counts."""

    def __init__(self, dataset: Dataset, *, rate_limit: int = 5000, shuffle_versions: bool = True) -> None:
        self.dataset = dataset
        self.rate_limit = rate_limit
        self.remaining = rate_limit
        self.reset_at = int(time.time()) + 3600
        self.shuffle_versions = shuffle_versions
        #: Packages listed, but deleted before their versions are read (a 404 mid-sync).
        self.vanished: set[str] = set()
        self.lock = threading.Lock()

    def spend(self) -> bool:
        """Count one request; False when the budget is used up (GitHub then answers 403 until the reset)."""
        with self.lock:
            if time.time() >= self.reset_at:
                self.remaining, self.reset_at = self.rate_limit, int(time.time()) + 3600
            if self.remaining == 0:
                return False
            self.remaining -= 1
            return True


def _error(status: int, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"message": message, "documentation_url": "https://docs.github.com/rest",
                               "status": str(status)}).encode()


def make_handler(state: GitHubState) -> type[QuietHandler]:
    class GitHubHandler(QuietHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            status, body, extra = self._route(url.path, query)
            headers = {"X-GitHub-Api-Version-Selected": "2022-11-28", **extra}
            if status == 200:
                etag = 'W/"' + hashlib.sha256(body).hexdigest() + '"'
                headers["ETag"] = etag
                if self.headers.get("If-None-Match") == etag:
                    # Conservative: a 304 here carries no Link, so clients cannot page on it.
                    self._send_with_limits(304, b"", {"ETag": etag}, spend=False)
                    return
            self._send_with_limits(status, body, headers, spend=status != 401)

        def _send_with_limits(self, status: int, body: bytes, headers: dict[str, str], *, spend: bool) -> None:
            if spend and not state.spend():
                status, body = _error(403, "API rate limit exceeded for user ID 1.")
                headers = {}
            headers.update({"x-ratelimit-limit": str(state.rate_limit),
                            "x-ratelimit-remaining": str(state.remaining),
                            "x-ratelimit-reset": str(state.reset_at), "x-ratelimit-resource": "core",
                            "x-ratelimit-used": str(state.rate_limit - state.remaining)})
            self.send_body(status, body, headers)

        def _login(self) -> str | None:
            header = self.headers.get("Authorization", "")
            for prefix in ("Bearer ", "token "):
                if header.startswith(prefix):
                    return state.dataset.tokens.get(header[len(prefix):])
            return None

        def _route(self, path: str, query: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
            if path == "/":  # GitHub's root endpoint answers without a token
                base = f"http://{self.headers.get('Host')}"
                return 200, json.dumps({"current_user_url": f"{base}/user",
                                        "organization_url": f"{base}/orgs/{{org}}"}).encode(), {}
            header = self.headers.get("Authorization")
            login = self._login()
            if header and header.split(" ", 1)[-1] in state.dataset.scopeless_tokens and path != "/user":
                return (*_error(403, "Resource not accessible by personal access token"), {})
            if header and login is None:
                return (*_error(401, "Bad credentials"), {})
            if login is None:
                return (*_error(401, "Requires authentication"), {})
            if path == "/user":
                owner = state.dataset.owners.get(login) or Owner(login, 1, "User")
                return 200, json.dumps(user_json(owner)).encode(), {}
            parts = path.strip("/").split("/")
            # /orgs/{org}/packages, /users/{u}/packages, /user/packages
            if parts[0] in ("orgs", "users") and len(parts) >= 3:
                scope, owner_login, rest = parts[0], unquote(parts[1]), parts[2:]
            elif parts[0] == "user":
                scope, owner_login, rest = "user", login, parts[1:]
            else:
                return (*_error(404, "Not Found"), {})
            owner = state.dataset.owners.get(owner_login)
            wanted_type = {"orgs": "Organization", "users": "User"}.get(scope)
            if owner is None or (wanted_type and owner.type != wanted_type):
                return (*_error(404, "Not Found"), {})
            if rest == ["packages"]:
                return self._packages(owner, scope, query)
            # packages/container/{name}/versions: the name is ONE segment (%2F for '/')
            if len(rest) == 4 and rest[0] == "packages" and rest[1] == "container" and rest[3] == "versions":
                name = unquote(rest[2])
                pkg = next((p for p in state.dataset.packages if p.owner is owner and p.name == name), None)
                if pkg is None or name in state.vanished:
                    return (*_error(404, "Package not found."), {})
                return self._versions(pkg, query)
            return (*_error(404, "Not Found"), {})

        def _page(self, items: list[dict], query: dict[str, str], cap: int | None) -> tuple[int, bytes, dict]:
            try:
                per_page = min(int(query.get("per_page", 30)), 100)
                page = max(int(query.get("page", 1)), 1)
            except ValueError:
                return (*_error(400, "Invalid pagination"), {})
            if cap is not None and page * per_page > cap:
                return (*_error(400, "Pagination is limited to 10000 results"), {})
            chunk = items[(page - 1) * per_page: page * per_page]
            last = max((len(items) + per_page - 1) // per_page, 1)
            links = []
            base = urlsplit(self.path)
            def link(n: int, rel: str) -> str:
                q = {**query, "page": str(n)}
                return f'<http://{self.headers.get("Host")}{base.path}?{urlencode(q)}>; rel="{rel}"'
            if page < last:
                links += [link(page + 1, "next"), link(last, "last")]
            if page > 1:
                links += [link(1, "first"), link(page - 1, "prev")]
            return 200, json.dumps(chunk).encode(), ({"Link": ", ".join(links)} if links else {})

        def _packages(self, owner: Owner, scope: str, query: dict[str, str]) -> tuple[int, bytes, dict]:
            if query.get("package_type") not in ("npm", "maven", "rubygems", "docker", "nuget", "container"):
                return (*_error(400, "package_type is required"), {})
            visibility = query.get("visibility")
            pkgs = [p for p in state.dataset.packages if p.owner is owner and query["package_type"] == "container"
                    and (visibility is None or p.visibility == visibility)]
            return self._page([package_json(p, scope) for p in pkgs], query, cap=10_000)

        def _versions(self, pkg: Package, query: dict[str, str]) -> tuple[int, bytes, dict]:
            wanted = query.get("state", "active")
            if wanted not in ("active", "deleted"):
                return (*_error(422, "Invalid state"), {})
            versions = [v for v in pkg.versions if v.state == wanted]
            if state.shuffle_versions:  # GitHub promises no order: neither do we
                versions.sort(key=lambda v: hashlib.md5(f"{v.id}".encode()).hexdigest())
            return self._page([version_json(pkg, v) for v in versions], query, cap=None)

    return GitHubHandler


def start_github(state: GitHubState) -> LoggedServer:
    return LoggedServer(make_handler(state)).start()
