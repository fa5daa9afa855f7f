"""The tap: settings, stream list, and the one-line error contract."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import typing as t
from decimal import Decimal
from functools import cached_property

import requests
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter, serialize_jsonl
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers._util import utc_now
from singer_sdk.helpers.capabilities import PluginCapabilities, TapCapabilities
from singer_sdk.singerlib import RecordMessage
from singer_sdk.streams import RESTStream

from tap_ghcr import streams
from tap_ghcr.errors import ConfigError, OutputClosedError, RegistryConnectionError
from tap_ghcr.inventory import RegistryFetcher, unreachable
from tap_ghcr.logs import quiet_sdk
from tap_ghcr.models import ImageRef, parse_image
from tap_ghcr.progress import Progress
from tap_ghcr.redact import install_log_redaction, redact, register_secret
from tap_ghcr.registry import RegistryError, RegistryUnreachableError
from tap_ghcr.registry.retry import GITHUB_POLICY, REGISTRY_POLICY, RetryPolicy
from tap_ghcr.settings import (
    check_environment,
    clean_token,
    lower_case_image,
    misspelled_scope,
    normalize_settings,
    schema_problems,
    setting_problems,
    unknown_catalog_streams,
    unknown_settings,
)
from tap_ghcr.sync import SyncCore

quiet_sdk("tap-ghcr", [])  # before the SDK's first lines, logged while the tap is built

if t.TYPE_CHECKING:
    from types import FrameType

    from singer_sdk.streams import Stream

SETTINGS = th.PropertiesList(
    th.Property(
        "token",
        th.StringType,
        secret=True,
        description=(
            "GitHub token with `read:packages`: a classic personal access token, or the "
            "GITHUB_TOKEN of a GitHub Actions workflow (GitHub Packages refuses fine-grained "
            "tokens and GitHub App installation tokens). Defaults to the GITHUB_TOKEN "
            "environment variable. Needed for `packages` and `package_versions`; public "
            "`images` need none."
        ),
    ),
    th.Property(
        "username",
        th.StringType,
        description=(
            "User name sent with the token to the registry's token endpoint. "
            "Defaults to the token's login (GET /user)."
        ),
    ),
    th.Property(
        "organizations",
        th.ArrayType(th.StringType),
        default=[],
        description="Organizations whose container packages are extracted.",
    ),
    th.Property(
        "users",
        th.ArrayType(th.StringType),
        default=[],
        description="Users whose container packages are extracted.",
    ),
    th.Property(
        "images",
        th.ArrayType(th.StringType),
        default=[],
        description=(
            "Registry repositories (`owner/name`, optionally prefixed by the registry host) "
            "read straight from the registry: `tags` and `manifests` only, anonymous for "
            "public images."
        ),
    ),
    th.Property(
        "package_patterns",
        th.ArrayType(th.StringType),
        default=["*"],
        description="Glob patterns; only packages whose name matches one are extracted.",
    ),
    th.Property(
        "visibility",
        th.StringType,
        allowed_values=["public", "private", "internal"],
        description="Only packages of this visibility (default: all).",
    ),
    th.Property(
        "include_deleted_versions",
        th.BooleanType,
        default=False,
        description="Also list deleted versions (their records carry `deleted_at`).",
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        description="On the first sync, versions updated before this are not emitted.",
    ),
    th.Property(
        "api_url",
        th.StringType(pattern=r"^https?://"),
        default="https://api.github.com",
        description="GitHub REST base URL (GitHub Enterprise Server: https://HOST/api/v3).",
    ),
    th.Property(
        "registry_url",
        th.StringType(pattern=r"^https?://"),
        default="https://ghcr.io",
        description="OCI registry base URL; http:// is allowed for local registries.",
    ),
    th.Property(
        "max_workers",
        th.IntegerType(minimum=1),
        default=8,
        description="Concurrent registry requests. GitHub REST requests stay serial.",
    ),
    th.Property(
        "state_interval",
        th.IntegerType(minimum=0),
        default=30,
        description=(
            "Seconds between STATE messages during a sync (each holds every package's bookmark, "
            "so one per package would grow as packages squared); the final state is always written."
        ),
    ),
    th.Property(
        "max_rate_limit_wait",
        th.IntegerType(minimum=0),
        default=900,
        description="Longest wait, in seconds, for a rate-limit reset before failing.",
    ),
    th.Property(
        "max_document_mb",
        th.NumberType(exclusive_minimum=0),
        default=64,
        description=(
            "Largest attestation, signature or SBOM document downloaded, in MiB (1,048,576 bytes), judged by its "
            "descriptor's size; a larger one is not downloaded: a warning names it, and its record carries what "
            "the registry says (BuildKit caps each attestation file at 40 MiB). Documents are read, not verified: "
            "signer fields say what the signing certificate claims; no signature is checked."
        ),
    ),
)


class LineWriter(MsgSpecWriter):
    """The SDK's msgspec writer, less its flush after every RECORD: a syscall (and a wake-up of the
    target reading the pipe) per record was a tenth of a record's cost. Other messages still flush, so
    a STATE line never waits in the buffer, and every record it covers went out before it.

    Every message but RECORD is written under `marking` (the tap's `writing`): the SDK writes STATE
    itself, and a signal arriving while that write waited on a full pipe wrote a second STATE into
    the middle of the first. Records are marked by the streams that write them, a batch at a time.
    """

    marking: t.Callable[[], t.ContextManager[None]] = contextlib.nullcontext

    def write_message(self, message: t.Any) -> None:
        try:
            if isinstance(message, RecordMessage):
                sys.stdout.buffer.write(self.format_message(message))
                return
            with self.marking():
                sys.stdout.buffer.write(self.format_message(message))
                sys.stdout.flush()
        except BrokenPipeError:
            raise _output_closed() from None

    @property
    def writes_records_directly(self) -> bool:
        """`write_record` writes what `write_message` would: not for a subclass that writes or encodes
        messages its own way (one that captures them in process, say), which gets every RecordMessage."""
        cls = type(self)
        return (cls.write_message is LineWriter.write_message and cls.format_message is LineWriter.format_message
                and cls.serialize_message is LineWriter.serialize_message)

    def write_record(self, stream: str, record: dict, version: int | None) -> None:
        """The line `write_message` writes for the SDK's RecordMessage (its `to_dict`, this writer's
        encoder), byte for byte, without making the message: 4 us a record instead of 9."""
        message: dict[str, t.Any] = {"type": "RECORD", "stream": stream, "record": record}
        if version is not None:
            message["version"] = version
        message["time_extracted"] = utc_now()
        try:
            sys.stdout.buffer.write(serialize_jsonl(message))
        except BrokenPipeError:
            raise _output_closed() from None


def _environment_token() -> tuple[object, str | None]:
    """GITHUB_TOKEN, registered for redaction in every form, as `clean_token` reads it: (token, problem)."""
    register_secret(os.environ.get("GITHUB_TOKEN"))
    return clean_token(os.environ.get("GITHUB_TOKEN"), "GITHUB_TOKEN")


def _output_closed() -> OutputClosedError:
    return OutputClosedError(
        "the reader of stdout closed it (did the target stop?); the sync stopped there, and the next one "
        "resumes from the last STATE the target kept")


class TapGHCR(Tap):
    """Singer tap for GitHub Container Registry."""

    name = "tap-ghcr"
    config_jsonschema = SETTINGS.to_dict()
    #: The SDK's msgspec writer (JSON encoding was about a tenth of the tap's CPU with the default one),
    #: flushing at every message but RECORD.
    message_writer_class = LineWriter

    #: The SDK's, less BATCH (the sync core emits per package, not batch files) and ACTIVATE_VERSION
    #: (every stream is incremental: a version message would tell a target to drop what this sync did not
    #: re-emit).
    capabilities: t.ClassVar[list] = [
        c for c in Tap.capabilities if c not in (PluginCapabilities.BATCH, TapCapabilities.ACTIVATE_VERSION)
    ]

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Schema errors and settings.setting_problems become one `invalid settings` line.

        Secrets are never echoed. Unknown settings are only warned about (Meltano and
        other runners may pass extras), with the closest known name; but one that looks like a
        scope setting when none is given (`organisations`) is an error, since the run would
        otherwise read the token's own packages and succeed.
        """
        token_problem = None
        if "token" in self._config:
            register_secret(self._config["token"])
            self._config["token"], token_problem = clean_token(self._config["token"])
        if not self._config.get("token"):  # the token falls back to GITHUB_TOKEN
            _, token_problem = _environment_token()
        images = self._config.get("images")
        if isinstance(images, list):
            self._config["images"] = [lower_case_image(e) if isinstance(e, str) else e for e in images]
        known = self.settings_schema()
        normalize_settings(self._config, known)
        typo_key, typo = misspelled_scope(self._config, known["properties"]) or (None, None)
        for warning in unknown_settings({k: v for k, v in self._config.items() if k != typo_key},
                                        known["properties"]):
            self.logger.warning(redact(warning))  # (logged before the handlers' redaction is installed)
        try:
            sdk_errors = super()._validate_config(raise_errors=raise_errors)
        except ConfigValidationError as exc:
            raise ConfigError("invalid settings: " + "; ".join(self._schema_words(known, exc.errors))) from None
        problems = [*(self._schema_words(known, sdk_errors) if sdk_errors else []),
                    *(p for p in (token_problem, typo) if p), *setting_problems(self._config)]
        if problems and raise_errors:
            raise ConfigError("invalid settings: " + "; ".join(problems))
        for problem in problems:  # `--discover` goes on: say what a sync would stop on
            self.logger.warning("invalid settings (a sync would stop here): %s", redact(problem))
        return problems

    @classmethod
    def settings_schema(cls) -> dict:
        """The settings' JSON schema with the SDK's own (stream_maps, flattening...), as the SDK validates
        them, built on a copy."""
        schema = {**cls.config_jsonschema, "properties": dict(cls.config_jsonschema.get("properties") or {})}
        cls.append_builtin_config(schema)
        return schema

    def _schema_words(self, schema: dict, sdk_errors: list[str]) -> list[str]:
        """The schema's errors in our words (`schema_problems`); the SDK's, secrets named only, should ours find
        none."""
        return schema_problems(self._config, schema) or [
            "`token` must be a string" if "config['token']" in e else e for e in sdk_errors
        ]

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self._writing = 0
        self._pending_signal: int | None = None
        if kwargs.get("parse_env_config"):  # the SDK's parser raises a bare ValueError
            check_environment(self.settings_schema(), type(self)._env_var_prefix)  # the SDK's settings too
        super().__init__(*args, **kwargs)
        if isinstance(self.message_writer, LineWriter):
            self.message_writer.marking = self.writing
        if self.input_catalog is not None:
            for warning in unknown_catalog_streams(self.input_catalog.keys(), self.streams):
                self.logger.warning(warning)
        _ = self.token  # registers GITHUB_TOKEN for redaction too
        install_log_redaction()  # after the SDK set up its handlers

    @cached_property
    def token(self) -> str | None:
        """The configured token, else GITHUB_TOKEN, registered for redaction."""
        value = self.config.get("token")
        if not value:  # (a GITHUB_TOKEN with a break inside stopped a sync in `_validate_config`)
            value, _ = _environment_token()
        return value or None

    @cached_property
    def images(self) -> dict[str, ImageRef]:
        """The `images` setting, parsed once, by repository."""
        refs = [parse_image(e, self.registry_url) for e in self.config.get("images") or []]
        return {ref.repository: ref for ref in refs}

    @property
    def registry_url(self) -> str:
        return str(self.config.get("registry_url") or "https://ghcr.io").rstrip("/")

    @cached_property
    def fetcher(self) -> RegistryFetcher:
        """The registry side, created on first use (discovery and REST-only syncs never need it)."""
        return RegistryFetcher(
            self.registry_url,
            credentials=self._registry_credentials,
            max_workers=int(self.config.get("max_workers") or 8),
            policy=self.registry_retry_policy,
        )

    @cached_property
    def retry_policy(self) -> RetryPolicy:
        """GitHub's retry timing. The undocumented `retry_base_seconds` setting shortens every wait
        (the tests' subprocess runs use it), instead of an environment variable read at import."""
        return self._scaled(GITHUB_POLICY)

    @cached_property
    def registry_retry_policy(self) -> RetryPolicy:
        return self._scaled(REGISTRY_POLICY)

    def _scaled(self, policy: RetryPolicy) -> RetryPolicy:
        base = self.config.get("retry_base_seconds")  # a Decimal when read from a config file (the SDK's JSON)
        if not isinstance(base, (int, float, Decimal)) or isinstance(base, bool):
            return policy
        try:
            seconds = float(base)
        except (ValueError, OverflowError):  # Decimal('sNaN')
            return policy
        return policy.scaled(seconds) if 0 <= seconds <= 60 else policy  # (NaN is neither; 1e308 made inf waits)

    def _registry_credentials(self) -> tuple[str, str] | None:
        if not self.token:
            return None
        return (self.registry_username, self.token)

    @cached_property
    def registry_username(self) -> str:
        """`username`, else the token's login from GET /user (any name works on ghcr.io)."""
        if self.config.get("username"):
            return str(self.config["username"])
        api = str(self.config.get("api_url") or "https://api.github.com").rstrip("/")
        try:
            response = requests.get(
                f"{api}/user",
                headers={"Authorization": f"Bearer {self.token}", "Accept": "application/vnd.github+json"},
                timeout=30,
            )
            if response.ok:
                return str(response.json().get("login") or "tap-ghcr")
        except (requests.RequestException, ValueError):
            pass
        self.logger.info("could not read the token's login; sending `tap-ghcr` as registry user name")
        return "tap-ghcr"

    @cached_property
    def progress(self) -> Progress:
        return Progress(self.logger, lambda: self.fetcher.requests_made if "fetcher" in self.__dict__ else 0)

    def owners(self) -> list[dict]:
        """The package lists to read: one per organization and user (or the token's own)."""
        config = self.config
        orgs = dict.fromkeys(config.get("organizations") or [])  # each owner once, in the order given
        users = dict.fromkeys(config.get("users") or [])
        parts: list[dict] = [{"owner_scope": "orgs", "owner": o} for o in orgs]
        parts += [{"owner_scope": "users", "owner": u} for u in users]
        if not parts and not self.images:
            if not self.token:
                raise ConfigError(
                    "nothing to extract: set `organizations`, `users` or `images`, "
                    "or a `token` (GITHUB_TOKEN) to read your own packages"
                )
            parts = [{"owner_scope": "user", "owner": ""}]
        if parts and not self.token:
            raise ConfigError(
                "`organizations` and `users` need a GitHub `token` with read:packages "
                "(or set GITHUB_TOKEN); only `images` can be read anonymously"
            )
        return parts

    def run_connection_test(self) -> bool:
        """`--test`: one GitHub list page per owner and the registry's auth for one repository; no records."""
        packages = self.streams["packages"]
        repositories = [image.repository for image in self.images.values()]
        for owner in self.owners():
            page = next(iter(packages.iter_pages(owner, [])))  # type: ignore[attr-defined]
            repositories += [f"{(row.get('owner') or {}).get('login', owner['owner']).lower()}/{row['name']}"
                             for row in (page.rows or [])[:1]]
            self.logger.info("GitHub: %s answered", packages.get_path(owner))  # type: ignore[attr-defined]
        if repositories:
            image = next((i for i in self.images.values() if i.repository == repositories[0]), None)
            client = self.fetcher.client(image.base_url if image else None)
            try:
                client.list_tags(repositories[0])
            except RegistryUnreachableError as exc:
                raise unreachable(exc) from None
            except RegistryError as exc:
                raise RegistryConnectionError(f"the registry refused the connection test: {exc}") from None
            self.logger.info("registry: %s answered with a token for %s", client.base_url, repositories[0])
        return True

    def run_sync_core(self) -> None:
        """The whole sync, entered from the SDK's sync of the top stream (see `PackagesStream.get_records`)."""
        SyncCore(self, lambda: self.fetcher).run(self.owners(), list(self.images.values()))

    @property
    def stop_requested(self) -> bool:
        """A signal arrived while a message was being written: finish it, start no other."""
        return self._pending_signal is not None

    @contextlib.contextmanager
    def writing(self) -> t.Iterator[None]:
        """Marks a Singer message being written: a signal then waits for the message to be whole
        (writing STATE into the middle of one broke the writer's buffer, and the line)."""
        self._writing += 1
        try:
            yield
        finally:
            self._writing -= 1
            if not self._writing and self._pending_signal is not None:
                self._stop(self._pending_signal)

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """SIGINT / SIGTERM: the last committed state, one error line, exit 128 + signal, at once."""
        del frame
        if self._writing:
            self._pending_signal = signum  # stopped as soon as the message being written is whole
            return
        self._stop(signum)

    def _stop(self, signum: int) -> None:
        """The state holds only committed packages, so writing it now loses and invents nothing.
        Registry workers may sit in a network read or a retry wait; waiting for them made exit
        take longer than an orchestrator's grace period, so the process ends without them."""
        self._writing += 1  # no second stop from a signal arriving meanwhile
        self.state_writer.write_state(self.state)
        name = signal.Signals(signum).name
        sys.stdout.flush()
        print(f"tap-ghcr: error: interrupted by {name}; the state of every completed package was written",
              file=sys.stderr, flush=True)
        os._exit(128 + signum)

    def sync_all(self) -> None:
        """The SDK's sync, then a summary; the state written at the end (also after an error) holds only
        what `SyncCore` committed."""
        try:
            super().sync_all()
            self.progress.summary()
        finally:
            self.state_writer.write_state(self.state)  # marked by LineWriter
            if "fetcher" in self.__dict__:
                self.fetcher.close()
            for stream in self.streams.values():
                if isinstance(stream, RESTStream):
                    stream.requests_session.close()

    def discover_streams(self) -> list[Stream]:
        """Return the stream instances; discovery makes no network call."""
        found = [
            streams.PackagesStream(self),
            streams.PackageVersionsStream(self),
            streams.TagsStream(self),
            streams.ManifestsStream(self),
            streams.AttestationsStream(self),
            streams.SbomPackagesStream(self),
        ]
        quiet_sdk(self.name, [stream.name for stream in found])
        return found
