"""Manifests, blobs and tags: auth challenge, digest checks and redirects over the transport."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import threading
import time
import typing as t
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit

from urllib3 import exceptions as u3

from tap_ghcr.registry import digest as digests
from tap_ghcr.registry import redirect, transport
from tap_ghcr.registry.challenge import Challenge, parse_challenge
from tap_ghcr.registry.errors import (
    DigestMismatchError,
    RedirectNotFollowedError,
    RegistryError,
    RegistryUnreachableError,
    ResponseTooLargeError,
    error_for,
)
from tap_ghcr.registry.media_types import ACCEPT
from tap_ghcr.registry.realm import same_registry, shown
from tap_ghcr.registry.retry import REGISTRY_POLICY, RetryPolicy, retry_after_seconds
from tap_ghcr.registry.token import TokenSource
from tap_ghcr.registry.transport import NETWORK_ERRORS, NetworkError, Response, SlowAnswerError, Transport

#: Manifests are read whole into memory. 4 MiB is what the OCI distribution-spec asks every registry to
#: accept and what the CNCF distribution registry itself refuses to store beyond, so a larger manifest
#: is abnormal; with `max_workers` fetches in flight it bounds memory to a few tens of MB.
#: (go-containerregistry allows 100 MiB; a tap holding eight at once should not.)
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: Image configs are JSON read whole too; history-heavy ones reach a few hundred KB, 16 MiB is generous.
MAX_CONFIG_BYTES = 16 * 1024 * 1024
#: Streamed blobs stay in memory up to this size, then spill to a temporary file.
SPOOL_BYTES = 1024 * 1024
CHUNK_BYTES = 64 * 1024
#: A tags list longer than this many pages (a million tags at 100 a page) is a registry in a loop.
MAX_TAG_PAGES = 10_000
logger = logging.getLogger("tap-ghcr.registry")


@dataclass(frozen=True)
class Manifest:
    """A manifest exactly as served: `body` hashes to `digest`."""

    repository: str
    digest: str
    media_type: str
    body: bytes = field(repr=False)

    @cached_property
    def document(self) -> dict:
        """The body as a JSON object; {} for anything else (its record then carries what the registry says)."""
        return read_object(self.body)[0]


def read_object(body: bytes) -> tuple[dict, str | None]:
    """`body` as a JSON object, or {} and why not: a registry's answer is checked against its digest, not
    its shape, and JSON that Python cannot hold (nesting past the recursion limit, a number of over 4,300
    digits) must not stop the sync."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and int-size errors are ValueErrors
        return {}, f"not JSON Python can read ({type(exc).__name__})"
    return (data, None) if isinstance(data, dict) else ({}, "not a JSON object")


class RetryableAnswer(Exception):
    """A 429 or 5xx: worth another try; `retry_after` is the wait the server asked for, if any."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"registry answered {response.status_code}")
        self.response = response
        self.retry_after = retry_after_seconds(response.headers.get("Retry-After"))


class RegistryClient:
    """An OCI distribution client for one registry (e.g. https://ghcr.io).

    `credentials` are used only when this registry is `credentials_host` (a URL or `host:port`,
    compared by host AND port; default: this registry), and then only for token realms on this
    registry's host name (see `realm`). `policy` sets the retry timing.
    """

    def __init__(
        self,
        base_url: str,
        *,
        credentials: t.Callable[[], tuple[str, str] | None] = lambda: None,
        max_workers: int = 8,
        user_agent: str = "tap-ghcr",
        credentials_host: str | None = None,
        policy: RetryPolicy = REGISTRY_POLICY,
        max_manifest_bytes: int = MAX_MANIFEST_BYTES,
        max_config_bytes: int = MAX_CONFIG_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc
        if credentials_host is not None and not same_registry(self.base_url, credentials_host):
            credentials = _anonymous  # another registry named in `images`: it never sees the GitHub token
        self.policy = policy
        self.max_manifest_bytes = max_manifest_bytes
        self.max_config_bytes = max_config_bytes
        self.transport = Transport(max_workers, user_agent)
        self.transport.route(self.base_url)  # a proxy it cannot speak to is named now, not mid-sync
        self.stopped = threading.Event()
        self.tokens = TokenSource(self.transport, credentials, registry_url=self.base_url, policy=policy,
                                  send=lambda once: self._retrying(once, counted=False))
        self._challenge: Challenge | None = None
        self._probed = False
        self._probe_lock = threading.Lock()
        self._lock = threading.Lock()
        self.requests_made = 0

    def close(self) -> None:
        """Stop retrying (a sync that failed must not keep logging retries after its error line), and close
        the idle connections (a finished sync leaves no socket behind)."""
        self.stopped.set()
        self.transport.close()

    # Public API --------------------------------------------------------------

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """GET a manifest by tag or digest, checked against its digest."""
        what = f"manifest {repository}@{reference}" if digests.is_digest(reference) else \
            f"manifest {repository}:{reference}"
        response = self._request("GET", repository, f"manifests/{reference}", what, accept=ACCEPT,
                                 limit=self.max_manifest_bytes)
        body = response.content
        if digests.is_digest(reference):
            expected = reference
        else:
            expected = response.headers.get("Docker-Content-Digest") or digests.compute(body)
        digests.verify(body, expected, what)
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        document, problem = read_object(body)
        if problem:
            logger.warning("%s is %s: its record carries what the registry says", what, problem)
        served = document.get("mediaType")
        if (not media_type or media_type in ("application/json", "application/octet-stream")) \
                and isinstance(served, str) and served:
            media_type = served
        manifest = Manifest(repository, expected, media_type, body)
        manifest.__dict__["document"] = document  # parsed once (the cached property's slot)
        return manifest

    def head_manifest(self, repository: str, reference: str) -> str:
        """The digest a tag points at, from a HEAD (no body transferred)."""
        what = f"manifest {repository}:{reference}"
        response = self._request("HEAD", repository, f"manifests/{reference}", what, accept=ACCEPT)
        found = response.headers.get("Docker-Content-Digest")
        if found:
            return found
        return self.get_manifest(repository, reference).digest

    def get_blob(self, repository: str, digest: str) -> bytes:
        """GET a small blob (an image config) whole; redirects to other hosts go without credentials."""
        what = f"config {repository}@{digest}"
        response = self._request("GET", repository, f"blobs/{digest}", what, follow=True,
                                 limit=self.max_config_bytes)
        digests.verify(response.content, digest, what)
        return response.content

    def download_blob(self, repository: str, digest: str, *, max_bytes: int) -> t.BinaryIO:
        """Stream a blob of any size into a spooled temporary file (at position 0), hashing as it comes.

        Memory stays bounded by SPOOL_BYTES whatever the blob's size. A body over `max_bytes` is
        ResponseTooLargeError, content not matching `digest` DigestMismatchError.
        """
        what = f"blob {repository}@{digest}"
        algorithm = digest.partition(":")[0]
        if algorithm not in ("sha256", "sha512"):
            raise DigestMismatchError(f"{what}: unsupported digest algorithm in {digest!r}")
        hasher = hashlib.new(algorithm)
        response = self._request("GET", repository, f"blobs/{digest}", what, follow=True, limit=max_bytes,
                                 stream=True)
        raw = response.raw
        assert raw is not None
        out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        try:
            length = response.headers.get("Content-Length")
            if length is not None and int(length) > max_bytes:
                raise ResponseTooLargeError(f"{what}: the blob is {int(length)} bytes, over the {max_bytes}-byte bound")
            total = 0
            ends = time.monotonic() + transport.BLOB_DEADLINE
            try:
                while chunk := raw.read1(CHUNK_BYTES):
                    if time.monotonic() > ends:
                        raise SlowAnswerError(f"{what}: the download took over {transport.BLOB_DEADLINE:.0f} s; "
                                              "giving up on it for now")
                    total += len(chunk)
                    if total > max_bytes:
                        raise ResponseTooLargeError(f"{what}: the blob is over the {max_bytes}-byte bound")
                    hasher.update(chunk)
                    out.write(chunk)
            except (u3.HTTPError, OSError) as exc:
                raise RegistryUnreachableError(f"{what}: the download broke off ({type(exc).__name__})",
                                               origin=self.base_url, reason="the download broke off") from None
            raw.release_conn()
            actual = f"{algorithm}:{hasher.hexdigest()}"
            if actual != digest:
                raise DigestMismatchError(f"{what}: content hashes to {actual}, not {digest}")
        except BaseException:
            response.close()
            out.close()
            raise
        out.seek(0)
        return t.cast(t.BinaryIO, out)

    def list_tags(self, repository: str, page_size: int = 100) -> list[str]:
        """Every tag, following `Link: rel=next` (and `n`/`last` where honoured).

        A next link seen before, or more than MAX_TAG_PAGES pages, ends in an error: a registry that
        always links to another page must not keep a sync going forever."""
        tags: list[str] = []
        seen: set[str] = set()
        path = f"tags/list?n={page_size}"
        visited = {path}
        what = f"{repository} tags"
        while path:
            response = self._request("GET", repository, path, what, limit=self.max_manifest_bytes)
            for tag in _tags_of(response, what):
                if tag not in seen:
                    seen.add(tag)
                    tags.append(tag)
            link = response.links.get("next", {}).get("url")
            path = _relative_to_repo(link, repository) if link else ""
            if path and path in visited:
                raise RegistryError(f"{what}: the registry links back to a page it already sent ({path})")
            if len(visited) >= MAX_TAG_PAGES and path:
                raise RegistryError(f"{what}: more than {MAX_TAG_PAGES} pages of tags; giving up")
            visited.add(path)
        return tags

    # Auth, redirects, retries --------------------------------------------------

    def _request(
        self,
        method: str,
        repository: str,
        path: str,
        what: str,
        *,
        accept: str | None = None,
        follow: bool = False,
        limit: int = 64 * 1024,
        stream: bool = False,
    ) -> Response:
        args = (method, repository, path, what, accept, follow, limit, stream)
        if not self._probed:
            # The first answer says whether and how this registry wants a token; workers starting
            # together would each get the same 401 first, so one asks and the others wait for it.
            with self._probe_lock:
                if not self._probed:
                    try:
                        return self._authorized(*args)
                    finally:
                        self._probed = True
        return self._authorized(*args)

    def _authorized(
        self, method: str, repository: str, path: str, what: str, accept: str | None, follow: bool,
        limit: int, stream: bool,
    ) -> Response:
        """The request with this repository's token, learning the challenge from a 401 when needed."""
        url = f"{self.base_url}/v2/{repository}/{path}"
        scope = f"repository:{repository}:pull"
        challenge = self._challenge
        token = self.tokens.get(challenge, scope) if challenge else None
        for attempt in range(3):
            response = self._send(method, url, accept, token, follow, limit, stream, what)
            if response.status_code != 401 or attempt == 2:
                break
            if not same_registry(response.url, self.base_url):
                break  # a 401 from the blob storage host a redirect led to: its challenge is never taken
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
        if 300 <= response.status_code < 400:
            response.close()
            location = shown(response.headers.get("Location") or "")
            if follow:
                raise RedirectNotFollowedError(
                    f"{what}: more than {redirect.MAX_REDIRECTS} redirects (the last one to {location})",
                    response.status_code)
            raise RedirectNotFollowedError(
                f"{what}: the registry answered {response.status_code} (to {location}), a redirect not followed "
                "for this request", response.status_code)
        return response

    def _send(
        self, method: str, url: str, accept: str | None, token: str | None, follow: bool, limit: int,
        stream: bool, what: str,
    ) -> Response:
        headers = {"Accept": accept} if accept else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"

        def once(target: str, sent: dict[str, str]) -> Response:
            return self._retrying(lambda: self.transport.request(method, target, sent, limit=limit, what=what,
                                                                 stream=stream))

        try:
            response = once(url, headers)
            for _ in range(redirect.MAX_REDIRECTS):
                if not (follow and response.is_redirect):
                    break
                response.close()
                target = redirect.target_of(url, response.headers["Location"], what)
                # ghcr.io sends blobs to a storage host: it must never see our token (nor over plain http).
                headers = redirect.headers_for(url, target, headers)
                url = target
                response = once(url, headers)
            return response
        except NETWORK_ERRORS as exc:
            assert isinstance(exc, NetworkError)
            raise RegistryUnreachableError(f"registry {exc.origin} did not answer: {exc.reason}",
                                           origin=exc.origin, reason=exc.reason) from None

    def _retrying(self, send: t.Callable[[], Response], *, counted: bool = True) -> Response:
        """`send` under the retry policy: 429/5xx answers and network errors are tried again.
        `counted` requests add to `requests_made` (token requests are counted by the TokenSource)."""
        def attempt() -> Response:
            if counted:
                with self._lock:
                    self.requests_made += 1
            response = send()
            if response.status_code == 429 or response.status_code >= 500:
                response.close()
                raise RetryableAnswer(response)
            return response

        def too_long(exc: BaseException) -> bool:
            """A server wait over the policy's cap: give up now (the package is tried again next sync)."""
            wait = getattr(exc, "retry_after", None)
            return wait is not None and wait > min(self.policy.cap, self.policy.max_time)

        try:
            return self.policy.call(attempt, _RETRY_ON, on_retry=_log_retry, first_contact=_first_contact,
                                    stop=self.stopped, giveup=too_long)
        except RetryableAnswer as exc:
            if too_long(exc):
                exc.response.note = (f"it asked to wait {exc.retry_after:.0f} s (Retry-After), longer than the "
                                     f"{self.policy.cap:.0f} s this tap waits; tried again next sync")
            return exc.response


_RETRY_ON = (RetryableAnswer, *NETWORK_ERRORS)


def _anonymous() -> None:
    return None


def _first_contact(exc: BaseException) -> bool:
    return isinstance(exc, NetworkError) and exc.first_contact


def _log_retry(exc: BaseException, tries: int, wait: float) -> None:
    reason = f"status {exc.response.status_code}" if isinstance(exc, RetryableAnswer) else str(exc)
    logger.info("registry request failed (%s); retry %d in %.2f s", reason, tries, wait)


def _tags_of(response: Response, what: str) -> list[str]:
    """The `tags` of a tags/list page; anything else than a JSON object with a list of strings is an error."""
    try:
        body = response.json()
    except ValueError:
        raise RegistryError(f"{what}: the registry answered {response.status_code} with no JSON") from None
    if not isinstance(body, dict):
        raise RegistryError(f"{what}: the registry sent {type(body).__name__} JSON, not a tags list object")
    page = body.get("tags")
    if page is None:
        return []
    if not isinstance(page, list) or not all(isinstance(tag, str) for tag in page):
        raise RegistryError(f"{what}: the registry sent a tags list that is not a list of strings")
    return page


def _relative_to_repo(link: str, repository: str) -> str:
    """`/v2/<repo>/tags/list?...` (or an absolute URL) as a path below the repository."""
    parts = urlsplit(link)
    prefix = f"/v2/{repository}/"
    path = parts.path[len(prefix):] if parts.path.startswith(prefix) else "tags/list"
    return f"{path}?{parts.query}" if parts.query else path


__all__ = ["Manifest", "RegistryClient", "RegistryError"]
