"""The streams: short declarations of what each record holds, and how GitHub's lists are read.

None of them decides state: `sync.SyncCore` lists each package through these
streams, runs its registry work and alone commits its state. The streams keep
the SDK's parent/child declarations, so the catalog, stream maps and
flattening behave as in any SDK tap.

GitHub REST reference: https://docs.github.com/en/rest/packages/packages
"""

from __future__ import annotations

import fnmatch
import functools
import typing as t
from urllib.parse import quote

from singer_sdk import Stream
from singer_sdk import typing as th
from singer_sdk.helpers._typing import conform_record_data_types
from singer_sdk.helpers._util import utc_now
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import RemoveRecordTransform, SameRecordTransform
from singer_sdk.singerlib import RecordMessage

from tap_ghcr.attestations import ATTESTATIONS_KEY, SBOM_PACKAGES_KEY
from tap_ghcr.attestations.schema import ATTESTATIONS_SCHEMA, SBOM_PACKAGES_SCHEMA
from tap_ghcr.client import ConditionalPagesMixin, GitHubStream
from tap_ghcr.models import version_tags

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

DATETIME = th.DateTimeType
INCREMENTAL = "INCREMENTAL"
EMIT_BATCH = 256  # records written under one `writing()` mark by `emit_all`


class EmitterMixin:
    """Writes records for the sync core, counted: through the SDK's steps (stream maps, flattening,
    typing), or straight to the tap's writer when those would change nothing."""

    def write_schema(self: t.Any) -> None:
        if self.selected:
            self._write_schema_message()  # SCHEMA is marked by the tap's LineWriter

    def emit(self: t.Any, record: dict) -> None:
        self.emit_all((record,))

    def emit_all(self: t.Any, records: t.Iterable[dict]) -> None:
        """`emit` each record as it comes, marking and counting them a batch at a time: a package's
        versions or an SBOM's packages are thousands of records, and the mark and count cost a third
        of what writing one did. A signal stops the batch at the next record boundary."""
        if not self.selected:
            return
        alias, built, version = self._plain_alias, self._built_keys, self._stream_version
        write = self._tap.message_writer.write_record if alias is not None else None
        pending, more = iter(records), True
        while more:
            count, more = 0, False
            try:
                with self._tap.writing():
                    for record in pending:
                        if write is not None and record.keys() == built:
                            write(alias, record, version)
                        else:
                            self._write_record_message(record)
                        count += 1
                        if count == EMIT_BATCH or self._tap.stop_requested:
                            more = True
                            break
            finally:
                if count:
                    self.state_manager.is_flushed = False  # as the SDK's `_write_record_message` marks it
                    self._tap.progress.record(self.name, count)

    def _generate_record_messages(self: t.Any, record: dict) -> t.Iterator[RecordMessage]:
        """The SDK's record messages, without its pass over the record for deselected properties when
        the catalog deselects none: that pass then changes nothing, and it was over half of the
        time to write a record (8 of 14 us; an SBOM gives thousands). The rest is the SDK's own steps,
        and `tests/test_streams_records.py` checks them against the SDK's method."""
        if not self._selects_every_property:
            yield from super()._generate_record_messages(record)  # type: ignore[misc]
            return
        if record.keys() != self._built_keys:  # (never, for a stream the tap builds to its schema)
            record = conform_record_data_types(stream_name=self.name, record=record, schema=self.effective_schema,
                                               level=self.TYPE_CONFORMANCE_LEVEL, logger=self.logger)
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield RecordMessage(stream=stream_map.stream_alias, record=mapped, version=self._stream_version,
                                    time_extracted=utc_now())

    #: The tap builds every record of this stream with exactly its schema's top-level keys, from values
    #: decoded from JSON or made as str/int/None, and the schema declares no boolean. The SDK's type
    #: conformance then changes nothing a target reads: it drops undeclared keys, turns datetimes and
    #: bytes into strings and ints into booleans where a boolean is declared, and NaN into null (as the
    #: JSON writer does anyway); other values pass as they are. `tests/test_streams_records.py` checks
    #: it on every record of the test worlds. It was a manifest's largest cost: 86 us per record.
    BUILT_TO_SCHEMA = False

    @functools.cached_property
    def _built_keys(self: t.Any) -> frozenset[str] | None:
        """The top-level keys of a record built to the schema, when conformance can be left out: the
        stream is `BUILT_TO_SCHEMA`, the catalog kept the schema as declared (an edited one may
        retype a property, which conformance then follows), and no stream map reads the values."""
        if not (self.BUILT_TO_SCHEMA and self.effective_schema == self.schema
                and all(type(m) is SameRecordTransform for m in self.stream_maps)):
            return None
        return frozenset(self.schema["properties"])

    @functools.cached_property
    def _plain_alias(self: t.Any) -> str | None:
        """The stream name to write a record built to the schema under, straight from the record
        (`LineWriter.write_record`), when the SDK's steps would change nothing: no conformance
        (`_built_keys`), no property deselected, and one stream map, the SDK's plain SameRecordTransform,
        not flattening. None: the SDK's message. An SBOM's packages are written in 60% of the time."""
        if self._built_keys is None or not self._selects_every_property or len(self.stream_maps) != 1:
            return None
        mapper = self.stream_maps[0]
        if mapper.flattening_options and mapper.flattening_enabled:
            return None
        if not getattr(self._tap.message_writer, "writes_records_directly", False):
            return None
        return mapper.stream_alias

    @functools.cached_property
    def _selects_every_property(self: t.Any) -> bool:
        """Every breadcrumb the catalog names is selected (an unnamed one takes its parent's answer)."""
        return all(self.mask.values())

    def keeps_children(self: t.Any, record: dict) -> bool:
        """A stream map's `__filter__` drops a record's children too; a removed stream (`None`) does not."""
        mapper = self.stream_maps[0]
        return isinstance(mapper, RemoveRecordTransform) or mapper.get_filter_result(record)


class PackagesStream(EmitterMixin, ConditionalPagesMixin, GitHubStream):
    """Container packages of the configured owners (or of the token's user)."""

    name = "packages"
    path = "/{owner_scope}/{owner}/packages"
    primary_keys = ("id",)
    replication_key = "updated_at"
    not_found_hint = "GitHub owner"

    BUILT_TO_SCHEMA = True
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
    def partitions(self) -> list[dict] | None:
        """None: the SDK would otherwise take one partition per owner in the input state and call
        `get_records` (so the whole sync) once for each."""
        return None

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        """The SDK's entry to the whole sync (`sync_all`, `run_sync_dry_run`): the tap's sync core lists
        every owner and package, runs the registry work and emits the records of every stream."""
        self._tap.run_sync_core()  # type: ignore[attr-defined]
        return ()

    def get_path(self, context: Context | None) -> str:
        assert context is not None
        scope, owner = context["owner_scope"], quote(context["owner"], safe="")
        return "/user/packages" if scope == "user" else f"/{scope}/{owner}/packages"

    def base_params(self, context: Context | None) -> dict[str, t.Any]:
        params: dict[str, t.Any] = {"package_type": "container"}
        if self.config.get("visibility"):
            params["visibility"] = self.config["visibility"]
        return params

    def wanted(self, name: str) -> bool:
        patterns = self.config.get("package_patterns") or ["*"]
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        owner = row.get("owner") if isinstance(row.get("owner"), dict) else {}
        repository = row.get("repository") if isinstance(row.get("repository"), dict) else {}
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


class PackageVersionsStream(EmitterMixin, ConditionalPagesMixin, GitHubStream):
    """Versions of each package, incremental on `updated_at` with a bookmark per package.

    Both lists are read: `state=active` and `state=deleted` (a deleted version's
    tags are retracted whatever `include_deleted_versions` says).
    """

    name = "package_versions"
    path = "/{owner}/packages/container/{package_name}/versions"
    parent_stream_type = PackagesStream
    primary_keys = ("id",)
    replication_key = "updated_at"
    state_partitioning_keys = ("owner_login", "package_name")
    not_found_hint = "package"
    vanished_after_404s = 3

    BUILT_TO_SCHEMA = True
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

    def get_path(self, context: Context | None) -> str:
        assert context is not None
        return context["versions_path"]

    def base_params(self, context: Context | None) -> dict[str, t.Any]:
        assert context is not None
        return {"state": context["version_state"]}

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        assert context is not None
        return {
            "id": row["id"],
            "package_id": context.get("package_id"),
            "package_name": context["package_name"],
            "owner_login": context["owner_login"],
            "digest": row.get("name"),
            "tags": version_tags(row),
            "url": row.get("url"),
            "html_url": row.get("html_url"),
            "package_html_url": row.get("package_html_url"),
            "license": row.get("license"),
            "description": row.get("description"),
            "created_at": row.get("created_at"),
            "updated_at": row.get("updated_at"),
            "deleted_at": row.get("deleted_at"),
        }


class RegistryChildStream(EmitterMixin, Stream):
    """A stream whose records the sync core shapes from a package's listing and registry work.

    Records are emitted only for what changed, so it is incremental without a
    replication key (the SDK would otherwise call it full-table).
    """

    parent_stream_type = PackageVersionsStream
    state_partitioning_keys = ("owner_login", "package_name")

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.forced_replication_method:
            self.forced_replication_method = INCREMENTAL

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        """Never called: `sync.SyncCore` emits these records."""
        return ()


class TagsStream(RegistryChildStream):
    """One record per tag; a moved tag is emitted again with its new digest, a removed one with `deleted_at`."""

    name = "tags"
    primary_keys = ("owner_login", "package_name", "tag")

    BUILT_TO_SCHEMA = True
    schema = th.PropertiesList(
        th.Property("owner_login", th.StringType, required=True),
        th.Property("package_name", th.StringType, required=True),
        th.Property("tag", th.StringType, required=True),
        th.Property("digest", th.StringType),
        th.Property("version_id", th.IntegerType),
        th.Property("deleted_at", DATETIME),
    ).to_dict()


def free_map(description: str) -> dict:
    """A string-to-string object with no declared properties: the SDK's flattener keeps it as one JSON string
    column (with an empty `properties` it would drop the column and spread the keys as `labels__*`)."""
    return {"type": ["object", "null"], "additionalProperties": {"type": ["string"]}, "description": description}


LAYER = th.ObjectType(
    th.Property("digest", th.StringType),
    th.Property("media_type", th.StringType),
    th.Property("size", th.IntegerType),
)


class ManifestsStream(RegistryChildStream):
    """Every manifest reachable from the package's new versions, read from the registry."""

    name = "manifests"
    primary_keys = ("owner_login", "package_name", "digest")

    BUILT_TO_SCHEMA = True
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
    ).to_dict()
    schema["properties"]["labels"] = free_map("The image config's `config.Labels`.")
    schema["properties"]["annotations"] = free_map("The manifest's own annotations.")


class AttestationsStream(RegistryChildStream):
    """One record per supply-chain document (attestation, signature, SBOM) the sync's manifests hold.

    Signatures are not verified: the signer fields say what the signing certificate claims.
    """

    name = "attestations"
    primary_keys = ATTESTATIONS_KEY
    schema = ATTESTATIONS_SCHEMA


class SbomPackagesStream(RegistryChildStream):
    """One record per package listed in an SBOM document (SPDX `packages[]`, CycloneDX `components[]`)."""

    name = "sbom_packages"
    primary_keys = SBOM_PACKAGES_KEY
    schema = SBOM_PACKAGES_SCHEMA
    # Every field is a string or null by construction (`attestations.sbom`), so the SDK's per-field type
    # conformance would change nothing at over half of an SBOM package's emission time.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    BUILT_TO_SCHEMA = True
