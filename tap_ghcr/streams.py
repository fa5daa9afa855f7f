"""The streams: short declarations over the GitHub base stream and the registry."""

from __future__ import annotations

import fnmatch
import time
import typing as t
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from singer_sdk import Stream
from singer_sdk import typing as th

from tap_ghcr.client import ConditionalPagesMixin, GitHubStream, Page, remember_pages
from tap_ghcr.errors import ConfigError, GitHubNotFoundError

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_ghcr.inventory import PackageFetch
    from tap_ghcr.tap import TapGHCR

DATETIME = th.DateTimeType


@dataclass(frozen=True)
class VersionRef:
    """What the registry streams need of one version: its digest and tags."""

    digest: str
    tags: tuple[str, ...]
    version_id: int | None = None


def _ts(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class CountedMixin:
    """Counts each record written, for the progress lines."""

    def _write_record_message(self: t.Any, record: dict) -> None:
        super()._write_record_message(record)  # type: ignore[misc]
        self._tap.progress.record(self.name)


class ThrottledStateMixin:
    """STATE at most every `state_interval` seconds from the per-package streams.

    A STATE message carries every package's partition, so writing one per package
    makes the output grow with the square of the package count.
    """

    def _write_state_message(self: t.Any) -> None:
        now = time.monotonic()
        interval = float(self.config.get("state_interval", 30))
        if now - self._tap.last_state_write < interval:
            return
        self._tap.last_state_write = now
        super()._write_state_message()  # type: ignore[misc]


class PackagesStream(CountedMixin, ConditionalPagesMixin, GitHubStream):
    """Container packages of the configured owners (or of the token's user)."""

    name = "packages"
    path = "/{owner_scope}/{owner}/packages"
    primary_keys = ("id",)
    replication_key = "updated_at"
    is_sorted = False
    not_found_hint = "GitHub owner"

    schema = th.PropertiesList(
        th.Property("id", th.IntegerType, required=True),
        th.Property("name", th.StringType),
        th.Property("package_type", th.StringType),
        th.Property("owner_login", th.StringType),
        th.Property("owner_type", th.StringType),
        th.Property("visibility", th.StringType),
        th.Property("version_count", th.IntegerType),
        th.Property("repository_full_name", th.StringType),
        th.Property("url", th.StringType),
        th.Property("html_url", th.StringType),
        th.Property("created_at", DATETIME),
        th.Property("updated_at", DATETIME),
    ).to_dict()

    @property
    def partitions(self) -> list[dict]:
        config = self.config
        parts: list[dict] = [{"owner_scope": "orgs", "owner": o} for o in config.get("organizations") or []]
        parts += [{"owner_scope": "users", "owner": u} for u in config.get("users") or []]
        images = config.get("images") or []
        if not parts and not images:
            if not self._tap.token:  # type: ignore[attr-defined]
                raise ConfigError(
                    "nothing to extract: set `organizations`, `users` or `images`, "
                    "or a `token` (GITHUB_TOKEN) to read your own packages"
                )
            parts = [{"owner_scope": "user", "owner": ""}]
        if parts and not self._tap.token:  # type: ignore[attr-defined]
            raise ConfigError(
                "`organizations` and `users` need a GitHub `token` with read:packages "
                "(or set GITHUB_TOKEN); only `images` can be read anonymously"
            )
        if images:
            parts.append({"owner_scope": "images", "owner": ""})
        return parts

    def get_path(self, context: Context | None) -> str:
        assert context is not None
        scope, owner = context["owner_scope"], quote(context["owner"], safe="")
        return "/user/packages" if scope == "user" else f"/{scope}/{owner}/packages"

    def base_params(self, context: Context | None) -> dict[str, t.Any]:
        params: dict[str, t.Any] = {"package_type": "container"}
        if self.config.get("visibility"):
            params["visibility"] = self.config["visibility"]
        return params

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        assert context is not None
        if context["owner_scope"] == "images":
            # No REST at all: each image is handed straight to the registry streams.
            for image in self._tap.images.values():  # type: ignore[attr-defined]
                self._sync_children({
                    "owner_login": image.owner,
                    "package_name": image.name,
                    "package_id": None,
                    "image": image.repository,
                })
            return
        # Each page's packages are remembered with its ETag: when GitHub answers 304,
        # their versions are still visited (themselves conditional), without a new record.
        state = self.get_context_state(context)
        stored: list[list] = state.get("pages") or []
        cached = [entry[:2] for entry in stored]  # [etag, count] of each page
        pages: list[Page] = []
        remembered: list[list] = []
        for page in self.iter_pages(context, cached):
            pages.append(page)
            if page.rows is None:
                known = stored[page.number - 1][2]
                remembered.append(known)
                for package_id, name, owner_login in known:
                    if self._wanted(name):
                        record = {"id": package_id, "name": name, "owner_login": owner_login}
                        self._sync_children(self.get_child_context(record, context))
                continue
            remembered.append([[r["id"], r["name"], (r.get("owner") or {}).get("login") or context["owner"]]
                               for r in page.rows])
            yield from page.rows
        self._tap.streams["package_versions"].complete_pending()  # type: ignore[attr-defined]
        state["pages"] = [
            [*etag_count, packages]
            for etag_count, packages in zip(remember_pages(pages, cached), remembered, strict=False)
        ]

    def _wanted(self, name: str) -> bool:
        patterns = self.config.get("package_patterns") or ["*"]
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        if not self._wanted(row["name"]):
            return None
        owner = row.get("owner") or {}
        repository = row.get("repository") or {}
        return {
            "id": row["id"],
            "name": row["name"],
            "package_type": row.get("package_type"),
            "owner_login": owner.get("login") or (context or {}).get("owner"),
            "owner_type": owner.get("type"),
            "visibility": row.get("visibility"),
            "version_count": row.get("version_count"),
            "repository_full_name": repository.get("full_name"),
            "url": row.get("url"),
            "html_url": row.get("html_url"),
            "created_at": row.get("created_at"),
            "updated_at": row.get("updated_at"),
        }

    def get_child_context(self, record: dict, context: Context | None) -> dict:
        assert context is not None
        name = quote(record["name"], safe="")  # `a/b` must travel as `a%2Fb`
        scope = context["owner_scope"]
        base = "/user" if scope == "user" else f"/{scope}/{quote(context['owner'], safe='')}"
        return {
            "owner_login": record["owner_login"],
            "package_name": record["name"],
            "package_id": record["id"],
            "versions_path": f"{base}/packages/container/{name}/versions",
        }


class PackageVersionsStream(CountedMixin, ThrottledStateMixin, ConditionalPagesMixin, GitHubStream):
    """Versions of each package, incremental on `updated_at` with a bookmark per package.

    GitHub does not document the order of versions, so every page is read and
    the bookmark only moves once the whole package is done. Ties at the bookmark
    second are resolved with the ids already emitted at that second
    (`bookmark_ids`), so nothing is skipped or emitted twice.
    """

    name = "package_versions"
    path = "/{owner}/packages/container/{package_name}/versions"
    parent_stream_type = PackagesStream
    primary_keys = ("id",)
    replication_key = "updated_at"
    is_sorted = False
    state_partitioning_keys = ("owner_login", "package_name")
    not_found_hint = "package"

    schema = th.PropertiesList(
        th.Property("id", th.IntegerType, required=True),
        th.Property("package_id", th.IntegerType),
        th.Property("package_name", th.StringType),
        th.Property("owner_login", th.StringType),
        th.Property("digest", th.StringType),
        th.Property("tags", th.ArrayType(th.StringType)),
        th.Property("url", th.StringType),
        th.Property("html_url", th.StringType),
        th.Property("package_html_url", th.StringType),
        th.Property("license", th.StringType),
        th.Property("description", th.StringType),
        th.Property("created_at", DATETIME),
        th.Property("updated_at", DATETIME),
        th.Property("deleted_at", DATETIME),
    ).to_dict()

    def __init__(self, tap: TapGHCR) -> None:
        super().__init__(tap)
        self._version_state = "active"
        #: The versions of the package whose registry streams are syncing, and its fetch in flight.
        self.batch: list[VersionRef] = []
        self.prefetched: PackageFetch | None = None
        #: Completes the previous package (tags, manifests, bookmark) once the next one is listed.
        self._pending: t.Callable[[], None] | None = None

    def get_path(self, context: Context | None) -> str:
        assert context is not None
        return context["versions_path"]

    def base_params(self, context: Context | None) -> dict[str, t.Any]:
        return {"state": self._version_state}

    def generate_child_contexts(self, record: dict, context: Context | None) -> t.Iterable[dict]:
        return ()  # children run once per package, after its last version (see get_records)

    def _sync_image(self, context: Context) -> None:
        """`images` mode: tags and manifests for the tags that are new or moved since the last sync.

        The registry has no versions list with dates, so the state keeps each tag's digest
        (`image_tags`) and the HEADs of this sync are compared with it.
        """
        image = self._tap.images[context["image"]]  # type: ignore[attr-defined]
        versions = self._tap.inventory.image_versions(image)  # type: ignore[attr-defined]
        state = self.get_context_state(context)
        known: dict[str, str] = state.get("image_tags") or {}
        self.batch = [v for v in versions if any(known.get(tag) != v.digest for tag in v.tags)]
        self._sync_children(dict(context))
        state["image_tags"] = {tag: v.digest for v in versions for tag in v.tags}

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        assert context is not None
        if context.get("image"):
            self._sync_image(context)
            return
        state = self.get_context_state(context)
        had_bookmark = "replication_key_value" in state
        start = self.get_starting_timestamp(context)
        tied = set(state.get("bookmark_ids", [])) if had_bookmark else set()
        deleted_mark = _ts(state.get("deleted_bookmark"))
        self.batch = []
        listed: dict[int, datetime] = {}
        newest_deletion = deleted_mark

        states = ["active", "deleted"] if self.config.get("include_deleted_versions") else ["active"]
        stored_pages: dict[str, list[list]] = state.get("pages") or {}
        walked: dict[str, list[Page]] = {}
        try:
            for version_state in states:
                self._version_state = version_state
                cached = stored_pages.get(version_state) or []
                walked[version_state] = []
                for row in self._changed_rows(context, cached, walked[version_state]):
                    updated = _ts(row["updated_at"])
                    assert updated is not None
                    deleted = _ts(row.get("deleted_at"))
                    if version_state == "active":
                        listed[row["id"]] = updated
                        is_new = (
                            start is None
                            or updated > start
                            or (updated == start and (not had_bookmark or row["id"] not in tied))
                        )
                    else:
                        when = deleted or updated
                        is_new = deleted_mark is None or when > deleted_mark
                        if start is not None and not had_bookmark and updated < start:
                            is_new = False
                        if newest_deletion is None or when > newest_deletion:
                            newest_deletion = when
                    if is_new:
                        record = self._record(row, context)
                        if version_state == "active":
                            self.batch.append(VersionRef(record["digest"], tuple(record["tags"]), row["id"]))
                        yield record
        except GitHubNotFoundError as exc:
            self.logger.warning("package %s/%s vanished during the sync, skipped: %s",
                                context["owner_login"], context["package_name"], exc)
            self.complete_pending()
            return
        finally:
            self._version_state = "active"

        # The registry starts on this package now; its records come after the next package is
        # listed, so GitHub's serial requests overlap the registry's concurrent ones.
        batch, package_context = self.batch, dict(context)
        prefetched = (
            self._tap.inventory.prefetch(context["owner_login"], context["package_name"], batch)  # type: ignore[attr-defined]
            if self._tap.streams["manifests"].selected and batch else None
        )

        def finish() -> None:
            self.batch, self.prefetched = batch, prefetched
            self._sync_children(package_context)
            # The package is complete, children included: make its bookmark and ETags final now.
            self._finalize_state(state)
            final = _ts(state.get("replication_key_value"))
            at_final = {i for i, ts in listed.items() if ts == final}
            if had_bookmark and final == start:
                at_final |= tied  # their pages may have answered 304: keep what was known
            state["bookmark_ids"] = sorted(at_final)
            state["pages"] = {
                name: remember_pages(pages, stored_pages.get(name) or []) for name, pages in walked.items()
            }
            if newest_deletion is not None:
                state["deleted_bookmark"] = newest_deletion.isoformat()
            self.prefetched = None
            self._write_state_message()

        self.complete_pending()
        self._pending = finish

    def complete_pending(self) -> None:
        """Emit the tags and manifests of the package listed last, and make its bookmark final."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending()

    def _changed_rows(self, context: Context, cached: list[list], walked: list[Page]) -> t.Iterator[dict]:
        """Rows of the pages GitHub says changed since the ETags in `cached`."""
        for page in self.iter_pages(context, cached):
            walked.append(page)
            yield from page.rows or ()

    def _record(self, row: dict, context: Context) -> dict:
        container = (row.get("metadata") or {}).get("container") or {}
        return {
            "id": row["id"],
            "package_id": context.get("package_id"),
            "package_name": context["package_name"],
            "owner_login": context["owner_login"],
            "digest": row.get("name"),
            "tags": list(container.get("tags") or []),
            "url": row.get("url"),
            "html_url": row.get("html_url"),
            "package_html_url": row.get("package_html_url"),
            "license": row.get("license"),
            "description": row.get("description"),
            "created_at": row.get("created_at"),
            "updated_at": row.get("updated_at"),
            "deleted_at": row.get("deleted_at"),
        }


class _BatchChildStream(CountedMixin, ThrottledStateMixin, Stream):
    """A stream that reads the versions batch its parent prepared for one package."""

    parent_stream_type = PackageVersionsStream
    state_partitioning_keys = ("owner_login", "package_name")

    @property
    def batch(self) -> list[VersionRef]:
        return self._tap.streams["package_versions"].batch  # type: ignore[attr-defined]


class TagsStream(_BatchChildStream):
    """One record per tag; a moved tag is emitted again with its new digest."""

    name = "tags"
    primary_keys = ("owner_login", "package_name", "tag")

    schema = th.PropertiesList(
        th.Property("owner_login", th.StringType, required=True),
        th.Property("package_name", th.StringType, required=True),
        th.Property("tag", th.StringType, required=True),
        th.Property("digest", th.StringType),
        th.Property("version_id", th.IntegerType),
    ).to_dict()

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        assert context is not None
        for ref in self.batch:
            for tag in ref.tags:
                yield {
                    "owner_login": context["owner_login"],
                    "package_name": context["package_name"],
                    "tag": tag,
                    "digest": ref.digest,
                    "version_id": ref.version_id,
                }


LAYER = th.ObjectType(
    th.Property("digest", th.StringType),
    th.Property("media_type", th.StringType),
    th.Property("size", th.IntegerType),
)


class ManifestsStream(_BatchChildStream):
    """Every manifest reachable from the package's new versions, read from the registry."""

    name = "manifests"
    primary_keys = ("owner_login", "package_name", "digest")

    schema = th.PropertiesList(
        th.Property("owner_login", th.StringType, required=True),
        th.Property("package_name", th.StringType, required=True),
        th.Property("digest", th.StringType, required=True),
        th.Property("media_type", th.StringType),
        th.Property("artifact_type", th.StringType),
        th.Property("size", th.IntegerType),
        th.Property("kind", th.StringType, allowed_values=["index", "image", "attestation", "signature", "artifact"]),
        th.Property("platform_os", th.StringType),
        th.Property("platform_architecture", th.StringType),
        th.Property("platform_variant", th.StringType),
        th.Property("index_digest", th.StringType),
        th.Property("child_digests", th.ArrayType(th.StringType)),
        th.Property("subject_digest", th.StringType),
        th.Property("config_digest", th.StringType),
        th.Property("config_media_type", th.StringType),
        th.Property("layers", th.ArrayType(LAYER)),
        th.Property("total_size", th.IntegerType),
        th.Property("image_created", DATETIME),
        th.Property("labels", th.ObjectType(additional_properties=th.StringType)),
        th.Property("annotations", th.ObjectType(additional_properties=th.StringType)),
    ).to_dict()

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        assert context is not None
        tap = self._tap
        prefetched = tap.streams["package_versions"].prefetched  # type: ignore[attr-defined]
        if prefetched is not None:
            yield from prefetched.records()
            return
        image = tap.images[context["image"]] if context.get("image") else None  # type: ignore[attr-defined]
        yield from tap.inventory.prefetch(  # type: ignore[attr-defined]
            context["owner_login"], context["package_name"], self.batch, image=image
        ).records()
