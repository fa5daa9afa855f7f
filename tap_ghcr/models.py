"""Plain data handed between the listing, the registry work and the streams. Imports nothing of the tap but
its errors and its redaction."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tap_ghcr.errors import ConfigError
from tap_ghcr.redact import redact

#: A path component of a repository name, and a registry host, in the OCI distribution spec's grammar.
_NAME_PART = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                   r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?\Z")


def _masked(entry: str) -> str:
    """An `images` entry as an error may show it: any `user:password@` before the host masked."""
    if "://" in entry:
        return redact(entry)  # the log lines' URL mask
    at = [i for i, c in enumerate(entry) if c == "@" and "/" in entry[i + 1:]]
    return f"***@{entry[at[-1] + 1:]}" if at else entry  # an `@` with a path after it: credentials


@dataclass(frozen=True)
class FetchJob:
    """One top-level manifest to read: a version's digest (or an image tag's), with what points at it."""

    digest: str
    tags: tuple[str, ...] = ()
    #: A deleted version's manifest may be gone: a 404 is then a final answer, not a failure.
    deleted: bool = False


@dataclass(frozen=True)
class ImageRef:
    """An `images` entry: `[host/]owner/name` split into its parts."""

    base_url: str
    owner: str
    name: str

    @property
    def repository(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def registry(self) -> str:
        """`base_url` without any `user:token@`: what may be written to the state."""
        parts = urlsplit(self.base_url)
        return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def parse_image(entry: str, registry_url: str) -> ImageRef:
    """`owner/name`, `ghcr.io/owner/name`, or `localhost:5000/owner/name`."""
    value = entry.strip().strip("/")
    shown = _masked(entry)
    if "://" in value:
        raise ConfigError(f"`images` entry {shown!r}: give `[host/]owner/name`, not a URL")
    if shown != entry:
        raise ConfigError(f"`images` entry {shown!r}: credentials do not go in `images` (set `token` and "
                          "`username`, or the registry's own in `registry_url`)")
    if "@" in value or (":" in value.rsplit("/", 1)[-1]):
        raise ConfigError(f"`images` entry {shown!r}: give a repository, without tag or digest")
    parts = value.split("/")
    base = registry_url.rstrip("/")
    first = parts[0]
    has_host = len(parts) > 2 and ("." in first or ":" in first or first == "localhost")
    if has_host:
        parts = parts[1:]
        if first != urlsplit(base).netloc:
            base = f"https://{first}"
    if len(parts) < 2 or not all(parts):
        raise ConfigError(f"`images` entry {shown!r}: expected `owner/name`")
    if len(parts) == 2 and not has_host and (":" in first or first == "localhost"):  # (not `team.a/app`: Harbor)
        raise ConfigError(f"`images` entry {shown!r}: give `{first}/owner/name`: a repository of one part has no "
                          "owner for the records to name")
    if has_host and not _HOST.match(first):
        raise ConfigError(f"`images` entry {shown!r}: {first!r} is no registry host (name[:port] or [IPv6]:port)")
    bad = next((p for p in parts if not (p.isascii() and _NAME_PART.match(p.lower()))), None)
    if bad is not None:  # the registry would answer NAME_INVALID, or the URL not be one
        raise ConfigError(f"`images` entry {shown!r}: {bad!r} is no repository name part (letters and digits, "
                          "joined by `.`, `_`, `__` or dashes)")
    return ImageRef(base, parts[0].lower(), "/".join(parts[1:]))


@dataclass
class PackagePlan:
    """Everything one package's listing decided: the records to emit, the registry work, and the
    state to commit if (and only if) that work ends in final answers."""

    owner_login: str
    package_name: str
    repository: str
    base_url: str | None
    version_records: list[dict] = field(default_factory=list)
    tag_records: list[dict] = field(default_factory=list)
    jobs: list[FetchJob] = field(default_factory=list)
    #: The state partition to update, and the values to write into it on commit.
    partition: dict = field(default_factory=dict)
    commit: dict = field(default_factory=dict)

    @property
    def uses_registry(self) -> bool:
        """Manifests to fetch, or an `images` entry (listed from the registry itself)."""
        return bool(self.jobs) or self.base_url is not None


def version_tags(row: dict) -> list[str]:
    """A GitHub package version's container tags (`metadata.container.tags`), strings only: GitHub's
    answer decides what is listed, but a malformed one must not stop the sync."""
    metadata = row.get("metadata")
    container = metadata.get("container") if isinstance(metadata, dict) else None
    tags = container.get("tags") if isinstance(container, dict) else None
    return [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []
