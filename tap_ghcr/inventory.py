"""The registry side of a sync: one package's manifests, fetched concurrently, each ending in an outcome.

The SDK runs child streams one parent record at a time, so a plain child
stream would make every registry fetch wait for the one before. Instead each
package's new digests go to a bounded thread pool at once; index children and
image configs are submitted by the workers as their parents arrive. Every
fetch ends in an `Outcome` that says whether it is final (content read, digest
mismatch, a deleted version's manifest gone) or temporary (5xx, 429, network,
401/403, a 404 for an active version): the sync commits a package only when
every outcome is final (see `sync.py`).
"""

from __future__ import annotations

import logging
import threading
import types
import typing as t
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from urllib3.exceptions import LocationValueError

from tap_ghcr import oci
from tap_ghcr.attestations import (
    DocumentRef,
    MalformedDocument,
    attestation_record,
    describe_documents,
    download_decision,
    read_document,
)
from tap_ghcr.errors import ConfigError, RegistryConnectionError
from tap_ghcr.models import FetchJob, ImageRef
from tap_ghcr.registry import (
    DigestMismatchError,
    Manifest,
    ManifestUnknownError,
    RegistryClient,
    RegistryError,
    RegistryUnauthorizedError,
    RegistryUnreachableError,
    ResponseTooLargeError,
)
from tap_ghcr.registry.client import read_object
from tap_ghcr.registry.retry import REGISTRY_POLICY, RetryPolicy
from tap_ghcr.registry.transport import ProxyNotSupportedError
from tap_ghcr.settings import refused_token_note

logger = logging.getLogger("tap-ghcr")


def unreachable(exc: RegistryUnreachableError) -> RegistryConnectionError:
    """The one line for a registry that did not answer: its address and why, naming `registry_url`."""
    if exc.origin and exc.reason:
        return RegistryConnectionError(f"could not connect to {exc.origin} (registry_url): {exc.reason}")
    return RegistryConnectionError(f"the registry at `registry_url` failed: {exc}")


@dataclass(frozen=True)
class Outcome:
    """How one fetch ended: `value` when read; `final` says whether trying again could change it."""

    value: t.Any = None
    final: bool = True
    problem: str | None = None
    too_large: bool = False


class RegistryFetcher:
    """The pool and the registry clients shared by every package of a sync."""

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
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="registry")
        self._lock = threading.Lock()
        self._denied: set[str] = set()
        #: Held while a worker reads a document: reading is pure Python CPU, and threads doing it at once
        #: fight over the GIL, which doubled each read's CPU (and halved SBOM throughput) at 8 workers.
        self.reading = threading.Lock()
        #: The first "did not answer at all" of each registry (by base URL): later fetches from that
        #: registry fail fast instead of retrying each.
        self.outages: dict[str, RegistryUnreachableError] = {}

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
        self.pool.shutdown(wait=False, cancel_futures=True)

    def warn_denied(self, repository: str, client: RegistryClient) -> None:
        if repository not in self._denied:
            self._denied.add(repository)
            credentials = self._credentials()
            hint = "private image? set `token`" if client.base_url == self.registry_url and not credentials \
                else refused_token_note(credentials[1] if credentials else None) \
                or "does the token have read:packages, and access to this package?"
            logger.warning("registry %s refused %s (%s)", client.base_url, repository, hint)

    @property
    def outage(self) -> RegistryUnreachableError | None:
        """`registry_url` did not answer at all this sync."""
        return self.outages.get(self.registry_url)

    def call(self, what: str, action: t.Callable[[], t.Any], *, client: RegistryClient, repository: str,
             gone_is_final: bool) -> Outcome:
        """Run one registry read and classify how it ended."""
        if (outage := self.outages.get(client.base_url)) is not None:
            return Outcome(final=False, problem=f"{what}: {outage}")
        try:
            return Outcome(action())
        except DigestMismatchError as exc:
            logger.error("%s failed its digest check, not emitted: %s", what, exc)
            return Outcome(final=True, problem=str(exc))
        except ResponseTooLargeError as exc:
            logger.error("%s refused: %s", what, exc)
            return Outcome(final=True, problem=str(exc), too_large=True)
        except ManifestUnknownError as exc:
            if gone_is_final:
                logger.warning("%s is no longer in the registry (deleted version), no record", what)
            return Outcome(final=gone_is_final, problem=str(exc))
        except RegistryUnauthorizedError as exc:
            self.warn_denied(repository, client)
            return Outcome(final=False, problem=str(exc))
        except RegistryUnreachableError as exc:  # a proxy's 407 too: no later request would do better
            self.outages.setdefault(client.base_url, exc)
            return Outcome(final=False, problem=str(exc))
        except RegistryError as exc:
            return Outcome(final=False, problem=str(exc))
        except (ValueError, TypeError, KeyError, AttributeError, LocationValueError) as exc:
            # An answer the client could not make sense of (an HTML tags list, a redirect to a bad URL...):
            # the registry's fault, maybe a passing one; the package is retried by the next sync.
            logger.warning("%s: the registry's answer could not be read (%s: %s)", what, type(exc).__name__, exc)
            return Outcome(final=False, problem=f"{what}: unreadable answer ({type(exc).__name__})")

    # images mode -------------------------------------------------------------

    def image_tags(self, image: ImageRef) -> Outcome:
        """An image's `tag -> digest` (tags/list, then a HEAD per tag on the pool)."""
        client = self.client(image.base_url)
        listed = self.call(f"{image.repository} tags", lambda: client.list_tags(image.repository),
                           client=client, repository=image.repository, gone_is_final=False)
        if listed.value is None:
            return listed
        heads = list(self.pool.map(
            lambda tag: self.call(f"{image.repository}:{tag}", lambda: client.head_manifest(image.repository, tag),
                                  client=client, repository=image.repository, gone_is_final=True),
            listed.value,
        ))
        # A tag deleted between the list and its HEAD is simply not there any more (a final answer).
        failed = next((h for h in heads if not h.final), None)
        if failed is not None:
            return Outcome(final=False, problem=failed.problem)
        return Outcome({tag: h.value for tag, h in zip(listed.value, heads, strict=True) if h.value})

    # manifests ---------------------------------------------------------------

    def start(self, repository: str, owner_login: str, package_name: str, jobs: t.Sequence[FetchJob], *,
              base_url: str | None = None, configs: bool = True,
              documents: DocumentOptions | None = None) -> PackageFetch:
        """Start fetching a package's manifests on the pool now; read the outcome later."""
        return PackageFetch(self, self.client(base_url), repository, owner_login, package_name, jobs,
                            configs=configs, documents=documents or DocumentOptions())


MIB = 1024 * 1024


@dataclass(frozen=True)
class DocumentOptions:
    """Which supply-chain documents a sync reads (the contract's selection rule) and how large."""

    attestations: bool = False
    sbom_packages: bool = False
    max_document_mb: float = 64.0

    @property
    def wanted(self) -> bool:
        return self.attestations or self.sbom_packages


@dataclass
class Document:
    """One `attestations` record, and its SBOM packages: read lazily from `file` when emitted."""

    record: dict
    packages: t.Iterator[dict] = field(default_factory=lambda: iter(()))
    file: t.BinaryIO | None = None

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


@dataclass
class FetchResult:
    """A package's records, and whether every fetch behind them ended in a final answer."""

    records: list[dict]
    complete: bool
    problems: list[str]
    documents: list[Document] = field(default_factory=list)


class PackageFetch:
    """One package's registry work in flight: its manifests (and their configs) first, each digest once;
    then, once every manifest is known (a buildx attestation's subject is in its index's descriptor),
    the supply-chain documents they hold."""

    def __init__(self, fetcher: RegistryFetcher, client: RegistryClient, repository: str,
                 owner_login: str, package_name: str, jobs: t.Sequence[FetchJob], *,
                 configs: bool = True, documents: DocumentOptions | None = None) -> None:
        self.fetcher, self.client, self.repository = fetcher, client, repository
        self.owner_login, self.package_name = owner_login, package_name
        self.want_configs, self.options = configs, documents or DocumentOptions()
        self.tops = list(dict.fromkeys(job.digest for job in jobs))
        self.tags_by_digest: dict[str, set[str]] = {}
        for job in jobs:
            self.tags_by_digest.setdefault(job.digest, set()).update(job.tags)
        self.manifests: dict[str, Future[Outcome]] = {}
        self.configs: dict[str, Future[Outcome]] = {}
        self.documents: dict[str, Future[Outcome]] = {}
        self.document_refs: list[DocumentRef] | None = None
        self._lock = threading.Lock()
        #: Manifest fetches not yet ended, and whether the documents' planning has begun (once, on
        #: whichever thread sees the last manifest end) and how it failed, if it did.
        self._manifests_pending = 1  # this constructor's own, until every top manifest is submitted
        self._planning = False
        self._planning_error: BaseException | None = None
        self._planning_traceback: types.TracebackType | None = None  # as raised on the worker, kept as it was
        self._planned = threading.Event()
        deleted = {job.digest for job in jobs if job.deleted}
        for digest in self.tops:
            self._submit(digest, digest in deleted)
        self._manifest_ended()  # (a first top's fetch may end before the last is submitted)

    def _submit(self, digest: str, deleted: bool) -> None:
        with self._lock:
            if digest in self.manifests:
                return
            self._manifests_pending += 1
            future = self.manifests[digest] = self.fetcher.pool.submit(self._fetch, digest, deleted)
        future.add_done_callback(self._manifest_ended)

    def _manifest_ended(self, _future: Future[Outcome] | None = None) -> None:
        """Plan the documents on the worker that ended the last manifest fetch: the caller's thread may be
        busy writing an earlier package's SBOM packages for seconds, and the pool would wait for it.

        A child is submitted before its parent's fetch ends, and the tops before the constructor's own
        count ends, so the count reaches 0 once, at the last."""
        with self._lock:
            self._manifests_pending -= 1
            if self._manifests_pending or self._planning or not self.options.wanted:
                return
            self._planning = True
        try:
            self._plan_documents()
        except BaseException as exc:  # raised on the caller's thread by `done` (a cancelled fetch too)
            with self._lock:
                self._planning_error, self._planning_traceback = exc, exc.__traceback__
        finally:
            self._planned.set()

    def _fetch(self, digest: str, deleted: bool) -> Outcome:
        where = f"manifest {self.repository}@{digest}"
        outcome = self.fetcher.call(where, lambda: self.client.get_manifest(self.repository, digest),
                                    client=self.client, repository=self.repository, gone_is_final=deleted)
        manifest: Manifest | None = outcome.value
        if manifest is None:
            return outcome
        if oci.is_index(manifest.media_type, manifest.document):
            for descriptor in oci.child_descriptors(manifest.document):
                self._submit(descriptor["digest"], deleted)
            return outcome
        kind, _ = oci.classify(manifest.media_type, manifest.document, None, self.tags_by_digest.get(digest, ()))
        if self.want_configs and oci.wants_config(kind, manifest.document):
            with self._lock:
                self.configs[digest] = self.fetcher.pool.submit(self._config, manifest)
        return outcome

    def _config(self, manifest: Manifest) -> Outcome:
        config_digest = manifest.document["config"]["digest"]  # `oci.wants_config`: an object with a digest
        where = f"config {self.repository}@{config_digest} of manifest {manifest.digest}"
        outcome = self.fetcher.call(where, lambda: self.client.get_blob(self.repository, config_digest),
                                    client=self.client, repository=self.repository, gone_is_final=False)
        if outcome.value is None:
            return outcome
        config, problem = read_object(outcome.value)
        if problem:
            logger.error("%s is %s; the manifest is emitted without it", where, problem)
            return Outcome(None)
        return Outcome(config)

    # Supply-chain documents ------------------------------------------------------

    def _plan_documents(self) -> None:
        """Describe every document the manifests hold and start the downloads the selection asks for."""
        outcomes = {d: f.result() for d, f in self.manifests.items()}
        parent_of, order = self._walk_all(outcomes)
        refs: list[DocumentRef] = []
        to_read: dict[str, list[DocumentRef]] = {}
        for digest in order:
            manifest: Manifest | None = outcomes[digest].value
            if manifest is None or oci.is_index(manifest.media_type, manifest.document):
                continue
            for ref in describe_documents(
                owner_login=self.owner_login, package_name=self.package_name, digest=digest,
                media_type=manifest.media_type, document=manifest.document,
                descriptor=parent_of.get(digest, (None, None))[1], tags=sorted(self.tags_by_digest.get(digest, ())),
            ):
                for warning in ref.warnings:
                    logger.warning("%s: %s", ref.name, warning)
                decision = download_decision(ref, attestations_selected=self.options.attestations,
                                             sbom_packages_selected=self.options.sbom_packages,
                                             max_document_mb=self.options.max_document_mb)
                if decision.warning:
                    logger.warning("%s", decision.warning)
                refs.append(ref)
                if decision.download:
                    to_read.setdefault(ref.digest, []).append(ref)
        with self._lock:
            self.document_refs = refs
            for digest, same in to_read.items():  # each document downloaded once, however many layers hold it
                self.documents[digest] = self.fetcher.pool.submit(self._document, same)

    def _document(self, refs: list[DocumentRef]) -> Outcome:
        """Download a document into a spooled file (digest checked on the way) and read it for each layer."""
        first = refs[0]
        limit = int(self.options.max_document_mb * MIB)
        outcome = self.fetcher.call(
            f"document {first.name}", lambda: self.client.download_blob(self.repository, first.digest, max_bytes=limit),
            client=self.client, repository=self.repository, gone_is_final=False)
        if outcome.value is None:
            return outcome
        file: t.BinaryIO = outcome.value
        read: dict[tuple[str, int], Document] = {}
        for ref in refs:
            file.seek(0)
            try:
                with self.fetcher.reading:
                    result = read_document(ref, file, want_packages=self.options.sbom_packages and ref is first)
            except MalformedDocument as exc:
                logger.warning("%s could not be read (%s); its record carries what the registry says", ref.name, exc)
                read[ref.manifest_digest, ref.layer_index] = Document(attestation_record(ref))
                continue
            for warning in result.warnings:
                logger.warning("%s: %s", ref.name, warning)
            read[ref.manifest_digest, ref.layer_index] = Document(result.record(ref), result.packages,
                                                                  file if ref is first else None)
        if not any(d.file is file for d in read.values()):
            file.close()
        return Outcome(read)

    # Completion -----------------------------------------------------------------

    def done(self) -> bool:
        """Every fetch has ended, the documents' (planned once the manifests are in) included.

        A child is submitted before its parent's fetch ends, so when every future seen is done and none
        was added meanwhile, no more will come.
        """
        with self._lock:
            seen = [*self.manifests.values(), *self.configs.values()]
        if not all(f.done() for f in seen):
            return False
        with self._lock:
            if len(self.manifests) + len(self.configs) != len(seen):
                return False
            if self._planning_error is not None:  # each raise would add this frame to the stored traceback
                raise self._planning_error.with_traceback(self._planning_traceback)
            if self.options.wanted and self.document_refs is None:
                return False  # a worker is planning them
            return all(f.done() for f in self.documents.values())

    def _pending(self) -> list[Future[Outcome]]:
        with self._lock:
            return [f for f in (*self.manifests.values(), *self.configs.values(), *self.documents.values())
                    if not f.done()]

    def result(self) -> FetchResult:
        """Wait for every fetch; the records in a fixed order: each top manifest, then an index's children."""
        while not self.done():
            if pending := self._pending():
                wait(pending)
            else:  # the last manifest ended and a worker is planning the documents
                self._planned.wait()
        outcomes = {d: f.result() for d, f in self.manifests.items()}
        configs = {d: f.result() for d, f in self.configs.items()}
        downloads = {d: f.result() for d, f in self.documents.items()}
        problems = [o.problem for o in (*outcomes.values(), *configs.values(), *downloads.values())
                    if not o.final and o.problem]
        if problems:
            for outcome in downloads.values():
                for document in (outcome.value or {}).values():
                    document.close()
            return FetchResult([], False, problems)
        parent_of, order = self._walk_all(outcomes)
        records = []
        for digest in order:
            manifest: Manifest | None = outcomes[digest].value
            if manifest is None:
                continue
            index_digest, descriptor = parent_of.get(digest, (None, None))
            records.append(oci.describe(
                owner_login=self.owner_login,
                package_name=self.package_name,
                digest=digest,
                media_type=manifest.media_type,
                size=len(manifest.body),
                document=manifest.document,
                descriptor=descriptor,
                index_digest=index_digest,
                tags=sorted(self.tags_by_digest.get(digest, ())),
                config=configs[digest].value if digest in configs else None,
            ))
        return FetchResult(records, True, [], self._documents(downloads))

    def _documents(self, downloads: dict[str, Outcome]) -> list[Document]:
        """One `attestations` record per document layer: read when downloaded, else what the registry says;
        a document whose bytes did not match its digest gives none."""
        out = []
        for ref in self.document_refs or []:
            outcome = downloads.get(ref.digest)
            if outcome is None:
                out.append(Document(attestation_record(ref)))
            elif outcome.value is not None:
                out.append(outcome.value[ref.manifest_digest, ref.layer_index])
            elif outcome.too_large:  # larger than its descriptor said: not read, what the registry says
                out.append(Document(attestation_record(ref)))
        return out

    def _walk_all(self, outcomes: dict[str, Outcome]) -> tuple[dict[str, tuple[str, dict]], list[str]]:
        def children(digest: str) -> list[dict]:
            manifest: Manifest | None = outcomes[digest].value
            if manifest is None or not oci.is_index(manifest.media_type, manifest.document):
                return []
            return oci.child_descriptors(manifest.document)

        return walk_indexes(self.tops, children)


def walk_indexes(tops: t.Iterable[str], children: t.Callable[[str], list[dict]]
                 ) -> tuple[dict[str, tuple[str, dict]], list[str]]:
    """Depth-first in index order: each top digest, then its children (an index's `children`), each digest
    once; and for each child, the first index (and descriptor) that listed it. A loop, not a recursion: a
    registry may chain indexes thousands deep."""
    parent_of: dict[str, tuple[str, dict]] = {}
    order: list[str] = []
    seen: set[str] = set()
    for top in tops:
        if top in seen:
            continue
        seen.add(top)
        order.append(top)
        stack = [(top, iter(children(top)))]
        while stack:
            parent, pending = stack[-1]
            descriptor = next(pending, None)
            if descriptor is None:
                stack.pop()
                continue
            child = descriptor["digest"]
            parent_of.setdefault(child, (parent, descriptor))
            if child not in seen:
                seen.add(child)
                order.append(child)
                stack.append((child, iter(children(child))))
    return parent_of, order
