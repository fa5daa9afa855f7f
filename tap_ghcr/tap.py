"""The tap: settings, stream list, and the one-line error contract."""

from __future__ import annotations

import logging
import os
import typing as t
from functools import cached_property

import requests
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import PluginCapabilities

from tap_ghcr import streams
from tap_ghcr.errors import ConfigError
from tap_ghcr.inventory import ImageRef, RegistryInventory, parse_image
from tap_ghcr.progress import Progress
from tap_ghcr.redact import install_log_redaction, register_secret
from tap_ghcr.settings import check_environment, lower_case_image, setting_problems, unknown_settings

if t.TYPE_CHECKING:
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
)


class DropSDKCrashNoise(logging.Filter):
    """The SDK logs 'An unhandled error occurred' before a handled user error surfaces as one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("An unhandled error occurred while syncing")


class TapGHCR(Tap):
    """Singer tap for GitHub Container Registry."""

    name = "tap-ghcr"
    config_jsonschema = SETTINGS.to_dict()
    #: The SDK's msgspec writer: JSON encoding was about a tenth of the tap's CPU with the default one.
    message_writer_class = MsgSpecWriter

    #: The SDK's, less BATCH: the registry streams are built around per-package syncs, not batch files.
    capabilities: t.ClassVar[list] = [c for c in Tap.capabilities if c != PluginCapabilities.BATCH]

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Schema errors and settings.setting_problems become one `invalid settings` line.

        Secrets are never echoed. Unknown settings are only warned about (Meltano and
        other runners may pass extras), with the closest known name, since a misspelled
        `organisations` would otherwise silently extract the wrong scope.
        """
        token = self._config.get("token")
        register_secret(token if isinstance(token, str) else None)
        images = self._config.get("images")
        if isinstance(images, list):
            self._config["images"] = [lower_case_image(e) if isinstance(e, str) else e for e in images]
        known = dict(self.config_jsonschema)
        known["properties"] = dict(known.get("properties") or {})
        type(self).append_builtin_config(known)
        for warning in unknown_settings(self._config, known["properties"]):
            self.logger.warning(warning)
        try:
            warnings = super()._validate_config(raise_errors=raise_errors)
        except ConfigValidationError as exc:
            problems = [
                "`token` must be a string" if "config['token']" in e else e for e in exc.errors
            ]
            raise ConfigError("invalid settings: " + "; ".join(problems)) from None
        problems = setting_problems(self._config)
        if problems and raise_errors:
            raise ConfigError("invalid settings: " + "; ".join(problems))
        return [*warnings, *problems]

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        #: When a per-package stream last wrote STATE (see streams.ThrottledStateMixin).
        self.last_state_write = 0.0
        if kwargs.get("parse_env_config"):  # the SDK's parser raises a bare ValueError
            check_environment(type(self).config_jsonschema, type(self)._env_var_prefix)
        super().__init__(*args, **kwargs)
        _ = self.token  # registers GITHUB_TOKEN for redaction too
        install_log_redaction()  # after the SDK set up its handlers

    @cached_property
    def token(self) -> str | None:
        """The configured token, else GITHUB_TOKEN, registered for redaction."""
        value = self.config.get("token") or os.environ.get("GITHUB_TOKEN") or None
        register_secret(value)
        return value

    @cached_property
    def images(self) -> dict[str, ImageRef]:
        """The `images` setting, parsed once, by repository."""
        refs = [parse_image(e, self.registry_url) for e in self.config.get("images") or []]
        return {ref.repository: ref for ref in refs}

    @property
    def registry_url(self) -> str:
        return str(self.config.get("registry_url") or "https://ghcr.io").rstrip("/")

    @cached_property
    def inventory(self) -> RegistryInventory:
        """The registry client side, created on first use (discovery never needs it)."""
        return RegistryInventory(
            self.registry_url,
            credentials=self._registry_credentials,
            max_workers=int(self.config.get("max_workers") or 8),
        )

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
        return Progress(self.logger, lambda: self.inventory.requests_made if "inventory" in self.__dict__ else 0)

    def sync_all(self) -> None:
        """The SDK's sync, then a summary line; the registry pool is closed either way."""
        try:
            super().sync_all()
            self._state_writer.write_state(self.state)  # the final state, whatever was throttled
            self.progress.summary()
        finally:
            if "inventory" in self.__dict__:
                self.inventory.close()

    def discover_streams(self) -> list[Stream]:
        """Return the stream instances; discovery makes no network call."""
        found = [
            streams.PackagesStream(self),
            streams.PackageVersionsStream(self),
            streams.TagsStream(self),
            streams.ManifestsStream(self),
        ]
        for stream in found:  # a logger's filters do not see its children's records
            stream.logger.addFilter(DropSDKCrashNoise())
        return found
