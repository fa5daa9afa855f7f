"""The registry side of a sync: fetch a package's manifests concurrently.

The SDK runs child streams one parent record at a time, so a plain child
stream would make every registry fetch wait for the one before. Instead the
`manifests` stream hands this class all new digests of a package at once; it
fetches them (and their configs, and index children) on a bounded thread pool
and yields records in a deterministic order.
"""

from __future__ import annotations

import json
import logging
import threading
import typing as t
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import urlsplit

from tap_ghcr import oci
from tap_ghcr.errors import ConfigError, RegistryConnectionError
from tap_ghcr.registry import (
    DigestMismatchError,
    Manifest,
    ManifestUnknownError,
    RegistryClient,
    RegistryError,
    RegistryUnauthorizedError,
    RegistryUnreachableError,
)
from tap_ghcr.registry.retry import REGISTRY_POLICY, RetryPolicy
from tap_ghcr.registry.transport import ProxyNotSupportedError

if t.TYPE_CHECKING:
    from tap_ghcr.streams import VersionRef

logger = logging.getLogger("tap-ghcr")


@dataclass(frozen=True)
class ImageRef:
    """An `images` entry: `[host/]owner/name` split into its parts."""

    base_url: str
    owner: str
    name: str

    @property
    def repository(self) -> str:
        return f"{self.owner}/{self.name}"


def parse_image(entry: str, registry_url: str) -> ImageRef:
    """`owner/name`, `ghcr.io/owner/name`, or `localhost:5000/owner/name`."""
    value = entry.strip().strip("/")
    if "://" in value:
        raise ConfigError(f"`images` entry {entry!r}: give `[host/]owner/name`, not a URL")
    if "@" in value or (":" in value.rsplit("/", 1)[-1]):
        raise ConfigError(f"`images` entry {entry!r}: give a repository, without tag or digest")
    parts = value.split("/")
    base = registry_url.rstrip("/")
    first = parts[0]
    if len(parts) > 2 and ("." in first or ":" in first or first == "localhost"):
        parts = parts[1:]
        if first != urlsplit(base).netloc:
            base = f"https://{first}"
    if len(parts) < 2 or not all(parts):
        raise ConfigError(f"`images` entry {entry!r}: expected `owner/name`")
    return ImageRef(base, parts[0].lower(), "/".join(parts[1:]))


class RegistryInventory:
    """Fetches manifests for the `tags` and `manifests` streams."""

    def __init__(
        self,
        registry_url: str,
        *,
        credentials: t.Callable[[], tuple[str, str] | None],
        max_workers: int,
        policy: RetryPolicy = REGISTRY_POLICY,
    ) -> None:
        self.registry_url = registry_url.rstrip("/")
        self.max_workers = max_workers
        self.policy = policy
        self._credentials = credentials
        self._clients: dict[str, RegistryClient] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="registry")
        self._lock = threading.Lock()
        self.denied: set[str] = set()

    def client(self, base_url: str | None = None) -> RegistryClient:
        base = (base_url or self.registry_url).rstrip("/")
        with self._lock:
            if base not in self._clients:
                try:
                    self._clients[base] = RegistryClient(
                        base, credentials=self._credentials, max_workers=self.max_workers,
                        credentials_host=self.registry_url,  # other registries in `images` read anonymously
                        policy=self.policy,
                    )
                except ProxyNotSupportedError as exc:
                    raise ConfigError(str(exc)) from None
            return self._clients[base]

    @property
    def requests_made(self) -> int:
        return sum(c.requests_made + c.tokens.requests_made for c in self._clients.values())

    def close(self) -> None:
        for client in list(self._clients.values()):
            client.close()  # workers still retrying give up: no log line after the error line
        self._pool.shutdown(wait=False, cancel_futures=True)

    # images mode -------------------------------------------------------------

    def image_versions(self, image: ImageRef) -> list[VersionRef]:
        """Tags of an image grouped by the digest each points at (tags/list, then HEADs)."""
        from tap_ghcr.streams import VersionRef

        client = self.client(image.base_url)
        try:
            tags = client.list_tags(image.repository)
        except RegistryUnauthorizedError:
            self._warn_denied(image.repository)
            return []
        except ManifestUnknownError:
            logger.warning("image %s not found in the registry, skipped", image.repository)
            return []
        except RegistryUnreachableError as exc:
            raise _unreachable(exc) from None
        digests = list(self._pool.map(lambda tag: self._head(client, image.repository, tag), tags))
        by_digest: dict[str, list[str]] = {}
        for tag, found in zip(tags, digests, strict=True):
            if found:
                by_digest.setdefault(found, []).append(tag)
        return [VersionRef(d, tuple(sorted(ts))) for d, ts in sorted(by_digest.items())]

    def _head(self, client: RegistryClient, repository: str, tag: str) -> str | None:
        try:
            return client.head_manifest(repository, tag)
        except RegistryUnreachableError as exc:
            raise _unreachable(exc) from None
        except RegistryError as exc:
            logger.warning("tag %s:%s could not be resolved, skipped: %s", repository, tag, exc)
            return None

    def _warn_denied(self, repository: str) -> None:
        if repository not in self.denied:
            self.denied.add(repository)
            logger.warning(
                "image %s needs credentials the registry accepts (private image? set `token`), skipped",
                repository,
            )

    # manifests ---------------------------------------------------------------

    def prefetch(
        self,
        owner_login: str,
        package_name: str,
        refs: t.Sequence[VersionRef],
        image: ImageRef | None = None,
    ) -> PackageFetch:
        """Start fetching a package's manifests on the pool now; read the records later."""
        if image is not None:
            client, repository = self.client(image.base_url), image.repository
        else:
            client, repository = self.client(), f"{owner_login.lower()}/{package_name}"
        return PackageFetch(self, client, repository, owner_login, package_name, refs)

    def _get_manifest(self, client: RegistryClient, repository: str, found_digest: str) -> Manifest | None:
        where = f"{repository}@{found_digest}"
        if repository in self.denied:
            return None
        try:
            return client.get_manifest(repository, found_digest)
        except DigestMismatchError as exc:
            logger.error("manifest %s failed its digest check, not emitted: %s", where, exc)
        except ManifestUnknownError:
            logger.warning("manifest %s is no longer in the registry (deleted version?), skipped", where)
        except RegistryUnauthorizedError:
            self._warn_denied(repository)
        except RegistryUnreachableError as exc:
            raise _unreachable(exc) from None
        except RegistryError as exc:
            logger.error("manifest %s could not be read, skipped: %s", where, exc)
        return None

    def _get_config(self, client: RegistryClient, repository: str, manifest: Manifest) -> dict | None:
        config_digest = manifest.document["config"].get("digest", "")
        try:
            config = json.loads(client.get_blob(repository, config_digest))
        except RegistryUnreachableError as exc:
            raise _unreachable(exc) from None
        except (RegistryError, ValueError) as exc:
            logger.error("config %s@%s could not be read (%s); manifest %s@%s emitted without it",
                         repository, config_digest, exc, repository, manifest.digest)
            return None
        return config if isinstance(config, dict) else None


class PackageFetch:
    """One package's manifests in flight: index children and image configs are submitted by the
    workers as soon as their parent manifest arrives, so the pool never waits for the main thread."""

    def __init__(self, inventory: RegistryInventory, client: RegistryClient, repository: str,
                 owner_login: str, package_name: str, refs: t.Sequence[VersionRef]) -> None:
        self.inventory, self.client, self.repository = inventory, client, repository
        self.owner_login, self.package_name = owner_login, package_name
        self.tops = list(dict.fromkeys(ref.digest for ref in refs))
        self.tags_by_digest: dict[str, set[str]] = {}
        for ref in refs:
            self.tags_by_digest.setdefault(ref.digest, set()).update(ref.tags)
        self.manifests: dict[str, Future[Manifest | None]] = {}
        self.configs: dict[str, Future[dict | None]] = {}
        self._lock = threading.Lock()
        for found_digest in self.tops:
            self._submit(found_digest)

    def _submit(self, found_digest: str) -> None:
        with self._lock:
            if found_digest not in self.manifests:
                self.manifests[found_digest] = self.inventory._pool.submit(self._fetch, found_digest)

    def _fetch(self, found_digest: str) -> Manifest | None:
        inventory = self.inventory
        manifest = inventory._get_manifest(self.client, self.repository, found_digest)
        if manifest is None:
            return None
        if oci.is_index(manifest.media_type, manifest.document):
            for descriptor in oci.child_descriptors(manifest.document):
                self._submit(descriptor["digest"])
            return manifest
        kind, _ = oci.classify(manifest.media_type, manifest.document, None,
                               self.tags_by_digest.get(found_digest, ()))
        if oci.wants_config(kind, manifest.document):
            with self._lock:
                self.configs[found_digest] = inventory._pool.submit(
                    inventory._get_config, self.client, self.repository, manifest)
        return manifest

    def _wait_for_manifests(self) -> dict[str, Manifest | None]:
        """Every manifest, children included; configs may still be in flight."""
        while True:
            with self._lock:
                futures = list(self.manifests.values())
            wait(futures)
            with self._lock:
                if len(self.manifests) == len(futures):
                    return {d: f.result() for d, f in self.manifests.items()}

    def _walk(
        self,
        found_digest: str,
        fetched: dict[str, Manifest | None],
        parent_of: dict[str, tuple[str, dict]],
        order: list[str],
    ) -> None:
        """Depth-first in index order: an index, then its children, each digest once."""
        if found_digest in order:
            return
        order.append(found_digest)
        manifest = fetched.get(found_digest)
        if manifest is None or not oci.is_index(manifest.media_type, manifest.document):
            return
        for descriptor in oci.child_descriptors(manifest.document):
            parent_of.setdefault(descriptor["digest"], (found_digest, descriptor))
            self._walk(descriptor["digest"], fetched, parent_of, order)

    def records(self) -> t.Iterator[dict]:
        """The records in a fixed order: each version's manifest, then an index's children in index order."""
        fetched = self._wait_for_manifests()
        parent_of: dict[str, tuple[str, dict]] = {}
        order: list[str] = []
        for top in self.tops:
            self._walk(top, fetched, parent_of, order)
        for found_digest in order:
            manifest = fetched.get(found_digest)
            if manifest is None:
                continue
            index_digest, descriptor = parent_of.get(found_digest, (None, None))
            config = self.configs[found_digest].result() if found_digest in self.configs else None
            yield oci.describe(
                owner_login=self.owner_login,
                package_name=self.package_name,
                digest=found_digest,
                media_type=manifest.media_type,
                size=len(manifest.body),
                document=manifest.document,
                descriptor=descriptor,
                index_digest=index_digest,
                tags=sorted(self.tags_by_digest.get(found_digest, ())),
                config=config,
            )


def _unreachable(exc: RegistryUnreachableError) -> RegistryConnectionError:
    if exc.origin:
        return RegistryConnectionError(f"could not connect to {exc.origin} (registry_url): {exc.reason}")
    return RegistryConnectionError(f"{exc}: check `registry_url` and the network")
