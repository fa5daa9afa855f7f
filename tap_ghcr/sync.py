"""The sync core: the one owner of every package's outcome.

For each package it reads GitHub's listing (serially, as GitHub asks), decides
with `bookmarks` what is new, starts the registry work on the shared pool, and
moves on to the next package while the registry works (pipelining). Packages
complete in listing order: their records are emitted, and their state is
committed only when every registry fetch ended in a final answer. A package
whose work failed keeps its previous state untouched, so the next sync does
exactly what was missed; nothing else ever writes a package's state, and the
state holds nothing uncommitted, so it may be written at any moment (a
signal, an error) without losing or inventing anything.
"""

from __future__ import annotations

import logging
import time
import typing as t
from collections import deque
from datetime import datetime, timezone

from tap_ghcr.bookmarks import (
    Mark,
    Window,
    advance,
    etags_usable,
    is_new,
    needs_manifests,
    parse_time,
    usable_state,
    widen_window,
)
from tap_ghcr.client import remember_pages
from tap_ghcr.errors import (
    ListChangingError,
    PackageVanishedError,
    RegistryIncompleteError,
)
from tap_ghcr.inventory import DocumentOptions, FetchResult, PackageFetch, RegistryFetcher, unreachable
from tap_ghcr.models import FetchJob, ImageRef, PackagePlan, version_tags
from tap_ghcr.registry.digest import well_formed

if t.TYPE_CHECKING:
    from tap_ghcr.streams import PackagesStream, PackageVersionsStream, RegistryChildStream
    from tap_ghcr.tap import TapGHCR

logger = logging.getLogger("tap-ghcr")

#: Listing goes on ahead of the oldest package still fetching while fewer than MAX_VERSIONS_AHEAD
#: versions to fetch (one fetch job each; an index brings its platform and attestation manifests)
#: wait behind it, and fewer than MAX_PACKAGES_AHEAD packages: small packages keep the pool busy
#: while GitHub is read, a large one alone does (measured with 245-version packages: 4 ahead
#: instead of 1 cost 6 MB of peak RSS for the same wall time).
MAX_VERSIONS_AHEAD = 128
MAX_PACKAGES_AHEAD = 4


def must_complete_oldest(versions_queued: t.Sequence[int]) -> bool:
    """Whether listing waits for the oldest queued package, given each queued package's fetch-job count."""
    behind = versions_queued[1:]
    return len(behind) >= MAX_PACKAGES_AHEAD or sum(behind) >= MAX_VERSIONS_AHEAD


VERSION_STREAMS = ("package_versions", "tags", "manifests", "attestations", "sbom_packages")
#: Streams whose records come from the registry: any of them selected means fetching manifests.
REGISTRY_STREAMS = ("manifests", "attestations", "sbom_packages")


def usable_package(row: t.Any) -> bool:
    """A packages-list row the sync can emit and list the versions of: an integer id and a name."""
    return isinstance(row, dict) and type(row.get("id")) is int and isinstance(row.get("name"), str) \
        and bool(row["name"])


def usable_version(row: t.Any) -> bool:
    """A versions-list row the sync can emit and bookmark: an integer id, a digest for a name (it is fetched
    by it), an `updated_at` that reads as a time, and a `created_at` and `deleted_at` that do when given."""
    if not isinstance(row, dict) or type(row.get("id")) is not int or not well_formed(row.get("name")):
        return False
    try:
        return parse_time(row.get("updated_at")) is not None and all(
            row.get(key) in (None, "") or parse_time(row[key]) is not None for key in ("created_at", "deleted_at"))
    except (TypeError, ValueError, AttributeError):  # a number, or a string that is no ISO 8601 time
        return False


def replace_partition(partition: dict, values: t.Mapping[str, t.Any]) -> None:
    """Commit: the partition becomes exactly `values` (its context kept)."""
    for key in [k for k in partition if k != "context"]:
        del partition[key]
    partition.update(values)


class SyncCore:
    """Lists packages, runs their registry work, emits their records and commits their state."""

    def __init__(self, tap: TapGHCR, fetcher: t.Callable[[], RegistryFetcher]) -> None:
        self.tap = tap
        self.config = tap.config
        streams = tap.streams
        self.packages: PackagesStream = streams["packages"]  # type: ignore[assignment]
        self.versions: PackageVersionsStream = streams["package_versions"]  # type: ignore[assignment]
        self.tags: RegistryChildStream = streams["tags"]  # type: ignore[assignment]
        self.manifests: RegistryChildStream = streams["manifests"]  # type: ignore[assignment]
        self.attestations: RegistryChildStream = streams["attestations"]  # type: ignore[assignment]
        self.sbom_packages: RegistryChildStream = streams["sbom_packages"]  # type: ignore[assignment]
        self._fetcher_factory = fetcher
        self.start = parse_time(self.config.get("start_date"))
        if self.start is not None and self.start.tzinfo is None:
            self.start = self.start.replace(tzinfo=timezone.utc)  # a date-time without offset is UTC
        self.include_deleted = bool(self.config.get("include_deleted_versions"))
        self.selected = sorted(name for name in VERSION_STREAMS if streams[name].selected)
        self.registry_selected = any(streams[name].selected for name in REGISTRY_STREAMS)
        self.documents = DocumentOptions(
            attestations=self.attestations.selected,
            sbom_packages=self.sbom_packages.selected,
            max_document_mb=float(self.config.get("max_document_mb") or 64),
        )
        self.queue: deque[tuple[PackagePlan, PackageFetch | None]] = deque()
        self.failed: list[tuple[str, str]] = []
        self.with_registry_work = 0
        self.completed_registry_work = 0
        self.covered: set[str] = set()
        self.started_at = datetime.now(timezone.utc)
        self._last_state_write = time.monotonic()

    @property
    def fetcher(self) -> RegistryFetcher:
        return self._fetcher_factory()

    # The run ------------------------------------------------------------------

    def run(self, owners: t.Sequence[dict], images: t.Sequence[ImageRef]) -> None:
        for stream in (self.versions, self.tags, self.manifests, self.attestations, self.sbom_packages):
            stream.write_schema()  # once per stream, not once per package (the SDK wrote `packages`')
        for owner in owners:
            self._sync_owner(owner)
        for image in images:
            if self._covered_by_rest(image):
                logger.info("image %s is read as a package of its owner, not again from `images`",
                            image.repository)
                continue
            self._sync_image(image)
        self._drain(everything=True)
        self._report_failures()

    def _covered_by_rest(self, image: ImageRef) -> bool:
        return (image.base_url.rstrip("/") == self.fetcher.registry_url
                and image.repository.lower() in self.covered)

    # Owners and their packages ------------------------------------------------

    def _sync_owner(self, owner: dict) -> None:
        """One owner's packages list; its ETags prove the `packages` records of unchanged pages."""
        packages = self.packages
        state = packages.get_context_state(owner)
        scope = {
            "streams": ["packages"] if packages.selected else [],
            "package_patterns": list(self.config.get("package_patterns") or ["*"]),
            "visibility": self.config.get("visibility"),
            "stream_maps": self.config.get("stream_maps"),  # a `__filter__` decides what was emitted
        }
        stored = state if usable_state(state.get("scope"), scope) else {}
        stored_pages: list[list] = stored.get("pages") or []
        cached = [entry[:2] for entry in stored_pages]
        walked, remembered = [], []
        for page in packages.iter_pages(owner, cached):
            walked.append(page)
            if page.rows is None:  # unchanged since a sync that emitted its packages
                known = stored_pages[page.number - 1][2]
                remembered.append(known)
                for package_id, name, owner_login, *kept in known:
                    # `kept`: whether a stream map's filter let the package's children through (the scope
                    # includes the stream maps, so the answer stored with the ETag still holds)
                    if packages.wanted(name) and (kept or [True])[0]:
                        self._sync_package(owner, {"id": package_id, "name": name, "owner_login": owner_login})
                continue
            entries = []
            for row in page.rows:
                if not usable_package(row):
                    logger.warning("%s: GitHub listed a package without an integer id and a name; skipped", owner)
                    continue
                record = packages.post_process(row, owner)
                assert record is not None
                keeps = packages.wanted(record["name"]) and packages.keeps_children(record)
                entries.append([record["id"], record["name"], record["owner_login"], keeps])
                if not packages.wanted(record["name"]):
                    continue
                packages.emit(dict(record))  # the SDK drops deselected properties in place; ours are read below
                if keeps:
                    self._sync_package(owner, record)
            remembered.append(entries)
        replace_partition(state, {
            "scope": scope,
            "pages": [[*etag_count, known]
                      for etag_count, known in zip(remember_pages(walked, cached), remembered, strict=False)],
        })

    def _sync_package(self, owner: dict, record: dict) -> None:
        if not self.selected:
            return
        context = self.packages.get_child_context(record, owner)
        self.covered.add(f"{context['owner_login'].lower()}/{context['package_name'].lower()}")
        try:
            plan = self._plan_package(context)
        except PackageVanishedError as exc:
            logger.warning("package %s/%s vanished during the sync, skipped (its state is kept): %s",
                           context["owner_login"], context["package_name"], exc)
            return
        except ListChangingError as exc:
            logger.warning("package %s/%s skipped, its state is kept and the next sync reads it: %s",
                           context["owner_login"], context["package_name"], exc)
            return
        self._submit(plan)

    def _version_scope(self) -> dict[str, t.Any]:
        return {"streams": self.selected, "start_date": self.config.get("start_date"),
                "include_deleted_versions": self.include_deleted, "stream_maps": self.config.get("stream_maps")}

    def _plan_package(self, context: dict) -> PackagePlan:
        """Read both versions lists of one package and decide its records, fetches and next state."""
        versions = self.versions
        key = {"owner_login": context["owner_login"], "package_name": context["package_name"]}
        partition = versions.get_context_state(key)
        scope = self._version_scope()
        try:
            stored = partition if usable_state(partition.get("scope"), scope) else {}
            marks = {
                "active": Mark.load(stored.get("replication_key_value"), stored.get("bookmark_ids")),
                "deleted": Mark.load(stored.get("deleted_bookmark"), stored.get("deleted_bookmark_ids")),
            }
            window = Window.load(stored.get("fetched"))
            stored_etags = stored.get("etags") or {}
            if not isinstance(stored_etags, dict):
                raise TypeError("etags is not an object")
        except (ValueError, TypeError, AttributeError) as exc:
            # A state edited by hand: read this package as on a first sync rather than guess.
            logger.warning("the state of package %s/%s cannot be read (%s); it is read as on a first sync",
                           key["owner_login"], key["package_name"], exc)
            marks, window, stored_etags = {"active": Mark(), "deleted": Mark()}, None, {}
        rows: dict[str, list[dict]] = {}
        etags: dict[str, list[list]] = {}
        for list_state, mark in marks.items():
            kept = stored_etags.get(list_state) or {}
            cached = (kept.get("pages") or []) if etags_usable(kept.get("mark"), mark) else []
            listed, etags[list_state] = self._read_list({**context, "version_state": list_state}, cached)
            rows[list_state] = [row for row in listed if usable_version(row)]
            if len(rows[list_state]) < len(listed):
                logger.warning("%s/%s: GitHub listed %d %s version(s) without an integer id, a digest name or a "
                               "readable time; skipped", context["owner_login"],
                               context["package_name"], len(listed) - len(rows[list_state]), list_state)

        def stamp(row: dict, list_state: str) -> datetime:
            value = parse_time(row.get("deleted_at") if list_state == "deleted" else None)
            return value or t.cast(datetime, parse_time(row["updated_at"]))

        new = {s: [r for r in rows[s] if is_new(stamp(r, s), r["id"], marks[s], self.start)] for s in marks}
        plan = PackagePlan(context["owner_login"], context["package_name"],
                           f"{context['owner_login'].lower()}/{context['package_name']}", None)
        emitted_versions = new["active"] + (new["deleted"] if self.include_deleted else [])
        children_of: set[int] = set()
        for row in emitted_versions:
            record = versions.post_process(row, context)
            assert record is not None
            plan.version_records.append(record)
            if versions.keeps_children(record):
                children_of.add(row["id"])
        # Tags: a deleted version's tags are retracted first, then the active versions' tags assigned.
        active_tags = {tag for row in rows["active"] for tag in version_tags(row)}
        for row in new["deleted"]:
            if row["id"] in children_of or not self.include_deleted:
                plan.tag_records += [
                    self._tag(context, tag, row["name"], row["id"], stamp(row, "deleted").isoformat())
                    for tag in version_tags(row) if tag not in active_tags
                ]
        for row in new["active"]:
            if row["id"] in children_of:
                plan.tag_records += [self._tag(context, tag, row["name"], row["id"], None) for tag in version_tags(row)]
        fetched_created: list[datetime] = []
        if self.registry_selected:
            for row in emitted_versions:
                created = parse_time(row.get("created_at")) or stamp(row, "active")
                if row["id"] in children_of and needs_manifests(created, window, marks["active"]):
                    plan.jobs.append(FetchJob(row["name"], tuple(version_tags(row)),
                                              deleted=bool(row.get("deleted_at"))))
                    fetched_created.append(created)
        moved = {s: advance(marks[s], [(stamp(r, s), r["id"]) for r in new[s]]) for s in marks}
        active_at, active_ids = moved["active"].dump()
        deleted_at, deleted_ids = moved["deleted"].dump()
        plan.partition = partition
        plan.commit = {
            "scope": scope,
            "replication_key": "updated_at",
            "replication_key_value": active_at,
            "bookmark_ids": active_ids,
            "deleted_bookmark": deleted_at,
            "deleted_bookmark_ids": deleted_ids,
            "etags": {s: {"mark": moved[s].dump()[0], "pages": etags[s]} for s in marks},
        }
        if self.registry_selected:
            widened = widen_window(window, self.start, fetched_created)
            plan.commit["fetched"] = widened.dump() if widened else None
        return plan

    def _read_list(self, context: dict, cached: list[list]) -> tuple[list[dict], list[list]]:
        """The rows of a versions list's changed pages, and its `[etag, count]` per page, proven stable.

        Pages are addressed by number, so a version pushed or deleted while the list is paged through
        shifts rows between pages: one would be read twice and another never. So a list that was read
        is asked for once more with the ETags it just gave (free 304s when it held still); if it moved,
        it is read again, and after three tries the package waits for the next sync.
        """
        for _ in range(3):
            pages = list(self.versions.iter_pages(context, cached))
            etags = remember_pages(pages, cached)
            if all(page.rows is None for page in pages):
                return [], etags  # every page unchanged since a committed sync: nothing new to prove
            if len(pages) == 1:
                return pages[0].rows or [], etags  # one answer is one snapshot: nothing can shift
            check = list(self.versions.iter_pages(context, etags, max_pages=len(etags)))
            if len(check) == len(etags) and all(page.rows is None for page in check):
                return [row for page in pages for row in page.rows or ()], etags
        raise ListChangingError("its versions list kept changing while it was read")

    @staticmethod
    def _tag(context: dict, tag: str, digest: str, version_id: int | None, deleted_at: str | None) -> dict:
        return {"owner_login": context["owner_login"], "package_name": context["package_name"], "tag": tag,
                "digest": digest, "version_id": version_id, "deleted_at": deleted_at}

    # images mode ----------------------------------------------------------------

    def _sync_image(self, image: ImageRef) -> None:
        """`images` mode: the state keeps each tag's digest; new or moved tags are emitted and
        their digests fetched unless an earlier sync fetched them, vanished tags retracted."""
        selected = [s for s in self.selected if s == "tags" or s in REGISTRY_STREAMS]
        if not selected:
            return
        key = {"owner_login": image.owner, "package_name": image.name}
        partition = self.tags.get_context_state(key)
        scope = {"streams": selected, "registry": image.registry}
        stored = partition if usable_state(partition.get("scope"), scope) else {}
        known: dict[str, str] = stored.get("image_tags") or {}
        listed = self.fetcher.image_tags(image)
        if listed.value is None:
            self.with_registry_work += 1
            self._failed(image.repository, listed.problem or "tags could not be listed")
            return
        current: dict[str, str] = listed.value
        plan = PackagePlan(image.owner, image.name, image.repository, image.base_url, partition=partition,
                           commit={"scope": scope, "image_tags": current})
        now = self.started_at.isoformat()
        plan.tag_records = [self._tag(key, tag, digest, None, now) for tag, digest in known.items()
                            if tag not in current]
        moved = {tag: digest for tag, digest in sorted(current.items()) if known.get(tag) != digest}
        plan.tag_records += [self._tag(key, tag, digest, None, None) for tag, digest in moved.items()]
        if self.registry_selected:
            seen = set(known.values())
            tags_of: dict[str, list[str]] = {}
            for tag, digest in current.items():
                tags_of.setdefault(digest, []).append(tag)
            plan.jobs = [FetchJob(d, tuple(sorted(tags_of[d]))) for d in sorted(set(moved.values()) - seen)]
        self._submit(plan)

    # Completing packages --------------------------------------------------------

    def _submit(self, plan: PackagePlan) -> None:
        fetch = None
        self.with_registry_work += plan.uses_registry
        if plan.jobs:
            fetch = self.fetcher.start(plan.repository, plan.owner_login, plan.package_name, plan.jobs,
                                       base_url=plan.base_url, configs=self.manifests.selected,
                                       documents=self.documents)
        self.queue.append((plan, fetch))
        self._drain()

    def _drain(self, *, everything: bool = False) -> None:
        """Complete packages in listing order: those whose work is done, and the oldest when too many wait."""
        while self.queue:
            plan, fetch = self.queue[0]
            ready = fetch is None or fetch.done()
            if not (ready or everything or must_complete_oldest([len(p.jobs) for p, _ in self.queue])):
                return
            self.queue.popleft()
            self._complete(plan, fetch.result() if fetch else FetchResult([], True, []))

    def _complete(self, plan: PackagePlan, result: FetchResult) -> None:
        self.versions.emit_all(plan.version_records)
        self.tags.emit_all(plan.tag_records)
        self.manifests.emit_all(result.records)
        for document in result.documents:
            self.attestations.emit(document.record)
            try:  # packages are read from the document's file as they are written
                self.sbom_packages.emit_all(p for p in document.packages if p.get("package_ref") is not None)
            finally:
                document.close()
        if result.complete:
            replace_partition(plan.partition, plan.commit)
            self.completed_registry_work += plan.uses_registry
            self._write_state()
        else:
            self._failed(f"{plan.owner_login}/{plan.package_name}", result.problems[0])

    def _failed(self, package: str, problem: str) -> None:
        outage = self.fetcher.outage
        if outage is not None and not self.completed_registry_work:
            # The registry never answered this sync: say so now, not after listing every package.
            raise unreachable(outage)
        self.failed.append((package, problem))
        logger.warning("package %s is incomplete, its state is kept and the next sync retries it: %s",
                       package, problem)

    def _report_failures(self) -> None:
        if not self.failed:
            return
        first = self.failed[0][1]
        if len(self.failed) >= self.with_registry_work:
            raise RegistryIncompleteError(
                f"the registry failed for every package it was asked about ({len(self.failed)}), "
                f"first: {first}; their state was kept, so the next sync retries them"
            )
        logger.warning("%d of %d packages are incomplete (registry errors, first: %s); their state was kept, "
                       "so the next sync retries them", len(self.failed), self.with_registry_work, first)

    def _write_state(self) -> None:
        """STATE at most every `state_interval` seconds: each one holds every package's partition."""
        now = time.monotonic()
        if now - self._last_state_write >= float(self.config.get("state_interval", 30)):
            self._last_state_write = now
            self.tap.state_writer.write_state(self.tap.state)  # marked by the tap's LineWriter
