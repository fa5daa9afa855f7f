"""Manifests, blobs and tags: auth challenge, digest checks and redirects over the transport."""

from __future__ import annotations

import json
import threading
import typing as t
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urljoin, urlsplit

from tap_ghcr.registry import digest as digests
from tap_ghcr.registry.challenge import Challenge, parse_challenge
from tap_ghcr.registry.errors import RegistryError, RegistryUnreachableError, error_for
from tap_ghcr.registry.media_types import ACCEPT
from tap_ghcr.registry.retry import RETRY_EXCEPTIONS, send_with_retries
from tap_ghcr.registry.token import TokenSource
from tap_ghcr.registry.transport import Response, Transport

MAX_REDIRECTS = 5


@dataclass(frozen=True)
class Manifest:
    """A manifest exactly as served: `body` hashes to `digest`."""

    repository: str
    digest: str
    media_type: str
    body: bytes = field(repr=False)

    @cached_property
    def document(self) -> dict:
        data = json.loads(self.body)
        return data if isinstance(data, dict) else {}


class RegistryClient:
    """An OCI distribution client for one registry (e.g. https://ghcr.io)."""

    def __init__(
        self,
        base_url: str,
        *,
        credentials: t.Callable[[], tuple[str, str] | None] = lambda: None,
        max_workers: int = 8,
        user_agent: str = "tap-ghcr",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc
        self.transport = Transport(max_workers, user_agent, proxy_for=self.base_url)
        self.tokens = TokenSource(self.transport, credentials)
        self._challenge: Challenge | None = None
        self._probed = False
        self._probe_lock = threading.Lock()
        self._lock = threading.Lock()
        self.requests_made = 0

    # Public API --------------------------------------------------------------

    def close(self) -> None:
        self.transport.close()

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """GET a manifest by tag or digest, checked against its digest."""
        what = f"{repository}@{reference}" if digests.is_digest(reference) else f"{repository}:{reference}"
        response = self._request("GET", repository, f"manifests/{reference}", what, accept=ACCEPT)
        body = response.content
        if digests.is_digest(reference):
            expected = reference
        else:
            expected = response.headers.get("Docker-Content-Digest") or digests.compute(body)
        digests.verify(body, expected, what)
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if not media_type or media_type in ("application/json", "application/octet-stream"):
            try:
                media_type = str(json.loads(body).get("mediaType") or media_type)
            except (ValueError, AttributeError):
                pass
        return Manifest(repository, expected, media_type, body)

    def head_manifest(self, repository: str, reference: str) -> str:
        """The digest a tag points at, from a HEAD (no body transferred)."""
        what = f"{repository}:{reference}"
        response = self._request("HEAD", repository, f"manifests/{reference}", what, accept=ACCEPT)
        found = response.headers.get("Docker-Content-Digest")
        if found:
            return found
        return self.get_manifest(repository, reference).digest

    def get_blob(self, repository: str, digest: str) -> bytes:
        """GET a blob (an image config); redirects to other hosts go without credentials."""
        what = f"{repository}@{digest}"
        response = self._request("GET", repository, f"blobs/{digest}", what, follow=True)
        digests.verify(response.content, digest, what)
        return response.content

    def list_tags(self, repository: str, page_size: int = 100) -> list[str]:
        """Every tag, following `Link: rel=next` (and `n`/`last` where honoured)."""
        tags: list[str] = []
        seen: set[str] = set()
        path = f"tags/list?n={page_size}"
        while path:
            response = self._request("GET", repository, path, f"{repository} tags")
            page = response.json().get("tags") or []
            for tag in page:
                if tag not in seen:
                    seen.add(tag)
                    tags.append(tag)
            link = response.links.get("next", {}).get("url")
            path = _relative_to_repo(link, repository) if link else ""
        return tags

    # Transport ---------------------------------------------------------------

    def _request(
        self,
        method: str,
        repository: str,
        path: str,
        what: str,
        *,
        accept: str | None = None,
        follow: bool = False,
    ) -> Response:
        if not self._probed:
            # The first answer says whether and how this registry wants a token; workers starting
            # together would each get the same 401 first, so one asks and the others wait for it.
            with self._probe_lock:
                if not self._probed:
                    try:
                        return self._authorized(method, repository, path, what, accept, follow)
                    finally:
                        self._probed = True
        return self._authorized(method, repository, path, what, accept, follow)

    def _authorized(
        self, method: str, repository: str, path: str, what: str, accept: str | None, follow: bool
    ) -> Response:
        """The request with this repository's token, learning the challenge from a 401 when needed."""
        url = f"{self.base_url}/v2/{repository}/{path}"
        scope = f"repository:{repository}:pull"
        challenge = self._challenge
        token = self.tokens.get(challenge, scope) if challenge else None
        for attempt in range(3):
            response = self._send(method, url, accept, token, follow)
            if response.status_code != 401 or attempt == 2:
                break
            offered = parse_challenge(response.headers.get("WWW-Authenticate"))
            if offered is None or offered.scheme != "bearer":
                break
            if token and challenge:
                self.tokens.invalidate(challenge, scope, token)  # expired or revoked early
            challenge = Challenge("bearer", {k: v for k, v in offered.params.items() if k != "scope"})
            self._challenge = challenge
            token = self.tokens.get(challenge, offered.scope or scope)
        if response.status_code >= 400:
            raise error_for(response, what)
        return response

    def _send(
        self, method: str, url: str, accept: str | None, token: str | None, follow: bool
    ) -> Response:
        headers = {"Accept": accept} if accept else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._send_once(method, url, headers)
            for _ in range(MAX_REDIRECTS):
                if not (follow and response.is_redirect):
                    break
                url = urljoin(url, response.headers["Location"])
                if urlsplit(url).netloc != self.host:
                    # ghcr.io sends blobs to a storage host: it must never see our token.
                    headers = {k: v for k, v in headers.items() if k != "Authorization"}
                response = self._send_once(method, url, headers)
            return response
        except RETRY_EXCEPTIONS as exc:
            raise RegistryUnreachableError(
                f"registry {self.host} did not answer ({type(exc).__name__})"
            ) from None

    def _send_once(self, method: str, url: str, headers: dict[str, str]) -> Response:
        def send() -> Response:
            with self._lock:
                self.requests_made += 1
            return self.transport.request(method, url, headers)

        return send_with_retries(send)


def _relative_to_repo(link: str, repository: str) -> str:
    """`/v2/<repo>/tags/list?...` (or an absolute URL) as a path below the repository."""
    parts = urlsplit(link)
    prefix = f"/v2/{repository}/"
    path = parts.path[len(prefix):] if parts.path.startswith(prefix) else "tags/list"
    return f"{path}?{parts.query}" if parts.query else path


__all__ = ["Manifest", "RegistryClient", "RegistryError"]
