"""Checks on what the user gives the tap: files on the command line and settings.

Pure functions, so each rule has a table test. They run before any request: a
mistake in a file or a setting is one line naming it and what to do, not a
traceback or a failure half-way through a sync (see `__main__` and `tap.py`).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import typing as t
from decimal import Decimal
from pathlib import Path

from tap_ghcr.errors import ConfigError
from tap_ghcr.models import parse_image
from tap_ghcr.redact import redact

try:  # the parser the SDK reads `start_date` with: what passes here passes the sync
    from singer_sdk.helpers._compat import datetime_fromisoformat
except ImportError:  # pragma: no cover - an SDK without the helper
    import datetime as _dt

    datetime_fromisoformat = _dt.datetime.fromisoformat

#: Options of `tap-ghcr` that name a file (`--catalog`, `--state`) or files (`--config`, repeated).
FILE_OPTIONS = ("--config", "--state", "--catalog")


def file_arguments(argv: t.Sequence[str]) -> list[tuple[str, str]]:
    """The `(option, value)` pairs of FILE_OPTIONS in `argv`, as click reads them."""
    found: list[tuple[str, str]] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            break
        for option in FILE_OPTIONS:
            if arg == option and i + 1 < len(args):
                found.append((option, args[i + 1]))
                i += 1
            elif arg.startswith(option + "="):
                found.append((option, arg[len(option) + 1:]))
        i += 1
    return found


def read_json_object(path: str, what: str, fix: str) -> dict:
    """The JSON object in file `path`, else ConfigError naming the file, `what` it is and the `fix`."""
    file = Path(path)
    if not file.is_file():
        reason = "is a directory" if file.is_dir() else "does not exist"
        raise ConfigError(f"{what} {path} {reason}: {fix}")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {path} cannot be read ({exc.__class__.__name__}): {fix}") from None
    if not text.strip():
        raise ConfigError(f"{what} {path} is empty: {fix}")
    try:
        value = json.loads(text, parse_constant=_not_json)  # NaN/Infinity: Python reads them, the SDK does not
    except ValueError as exc:
        raise ConfigError(f"{what} {path} is not valid JSON ({exc}): {fix}") from None
    if not isinstance(value, dict):
        kind = "a list" if isinstance(value, list) else f"a JSON {type(value).__name__}"
        raise ConfigError(f"{what} {path} holds {kind}, not a JSON object: {fix}")
    return value


def _not_json(constant: str) -> t.NoReturn:
    raise ValueError(f"{constant} is not a JSON value")


CONFIG_FIX = 'write the settings as one JSON object, e.g. {"organizations": ["my-org"]}'
STATE_FIX = "pass the last STATE message's value, or leave --state out for a full sync"
CATALOG_FIX = "run `tap-ghcr --config CONFIG --discover > catalog.json` and select streams in that file"


def check_state(state: dict, path: str) -> None:
    """A state must be `{"bookmarks": {stream: {...}}}` (the SDK iterates it without checking)."""
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        raise ConfigError(f"state file {path}: `bookmarks` must be an object, not {json.dumps(bookmarks)}: "
                          f"{STATE_FIX}")
    for stream, value in bookmarks.items():
        if not isinstance(value, dict):
            raise ConfigError(f"state file {path}: `bookmarks.{stream}` must be an object: {STATE_FIX}")
        partitions = value.get("partitions", [])
        if not isinstance(partitions, list) or not all(
                isinstance(p, dict) and isinstance(p.get("context"), dict) for p in partitions):
            raise ConfigError(f"state file {path}: `bookmarks.{stream}.partitions` must be a list of objects, each "
                              f"with a `context` object: {STATE_FIX}")


#: The tap's streams (`tests/test_settings.py` checks this against the tap).
TAP_STREAMS = frozenset({"packages", "package_versions", "tags", "manifests", "attestations", "sbom_packages"})


def _selected(entry: dict) -> bool:
    """Whether a catalog entry selects its stream (the stream's own metadata, or the older top-level key)."""
    for meta in entry.get("metadata") or []:
        if isinstance(meta, dict) and meta.get("breadcrumb") == [] and isinstance(meta.get("metadata"), dict):
            return bool(meta["metadata"].get("selected", meta["metadata"].get("selected-by-default", False)))
    return bool(entry.get("selected"))


def check_catalog(catalog: dict, path: str) -> None:
    """The catalog must list `packages`: every other stream is read through it (its children)."""
    entries = catalog.get("streams")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"catalog {path} has no `streams` list: {CATALOG_FIX}")
    for entry in entries:  # the SDK's stream maps look streams up by `stream`, and would fail on the edit
        stream, stream_id = entry.get("stream"), entry.get("tap_stream_id")
        if not isinstance(stream_id or stream, str) or not isinstance(stream or "", str):
            bad = stream_id if not isinstance(stream_id or stream, str) else stream
            raise ConfigError(f"catalog {path}: an entry's `tap_stream_id` and `stream` must be names (strings), "
                              f"not {_shown_value(bad)}: {CATALOG_FIX}")
        schema = entry.get("schema", {"properties": {}})
        if (stream_id or stream) in TAP_STREAMS and (stream_id == "packages" or _selected(entry)) and (
                not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict)):
            raise ConfigError(f"catalog {path}: the entry `{_one_line(stream_id or stream)}` has no schema "
                              f"`properties` object: {CATALOG_FIX}")
        if stream and stream_id and stream != stream_id:
            raise ConfigError(f"catalog {path}: the entry `{_one_line(stream_id)}` names its stream "
                              f"`{_one_line(stream)}`; this tap's streams keep their names: rename them with "
                              "`stream_maps` (an alias) instead")
    names = {e.get("tap_stream_id") or e.get("stream") for e in entries}
    if "packages" not in names:
        raise ConfigError(
            f"catalog {path} has no `packages` stream; the tap needs its entry even when it is not "
            f"selected, since the other streams are read through it: {CATALOG_FIX}"
        )


def check_command_line(argv: t.Sequence[str]) -> dict:
    """Check the files named on the command line; return the merged config files' settings."""
    config: dict = {}
    for option, value in file_arguments(argv):
        if value == "-":
            continue  # stdin: left to the SDK
        if option == "--config":
            if value != "ENV":
                config.update(read_json_object(value, "config file", CONFIG_FIX))
        elif option == "--state":
            check_state(read_json_object(value, "state file", STATE_FIX), value)
        else:
            check_catalog(read_json_object(value, "catalog", CATALOG_FIX), value)
    return config


def check_environment(schema: dict, prefix: str) -> None:
    """Each `TAP_GHCR_<KEY>` parses as its setting's type (the SDK's parser, one key at a time)."""
    from singer_sdk.configuration._dict_config import parse_environment_config

    for key, prop in schema.get("properties", {}).items():
        name = prefix + key.upper().replace("-", "_")
        if name not in os.environ:
            continue
        try:
            parse_environment_config({"properties": {key: prop}}, prefix)
        except (ValueError, TypeError) as exc:
            kind = prop.get("type")
            kind = next((k for k in kind if k != "null"), kind) if isinstance(kind, list) else kind
            shown = "" if kind in ("object", "array") or key in SECRET_SETTINGS \
                else f", not {_shown_value(os.environ[name])}"  # (an object may hold a stream map's hash seed)
            raise ConfigError(
                f"invalid settings: environment variable {name} (setting `{key}`) must be "
                f"{_TYPE_WORDS.get(str(kind), str(kind))}{shown} ({exc.__class__.__name__})"
            ) from None


_TYPE_WORDS = {
    "integer": "a whole number, e.g. 8",
    "number": "a number",
    "object": "a JSON object",
    "array": 'a JSON list, e.g. ["a", "b"]',
}


#: Settings the tap reads but does not advertise: `retry_base_seconds` scales every retry wait (the tests
#: use it to run the production retry paths quickly).
HIDDEN_SETTINGS = frozenset({"retry_base_seconds"})


def unknown_settings(config: t.Mapping[str, t.Any], known: t.Iterable[str]) -> list[str]:
    """A warning for each setting the tap does not know, with the closest known name."""
    known = sorted(known)
    return [f"unknown setting `{_one_line(key)}` is ignored{_hint(key, known, 'settings')}"
            for key in sorted(config) if key not in known and key not in HIDDEN_SETTINGS]


def unknown_catalog_streams(names: t.Iterable[str], known: t.Iterable[str]) -> list[str]:
    """A warning for each catalog entry that is none of the tap's streams (a catalog from another tap or
    version, an id edited by hand): the SDK skips it without a word, and a renamed `tags` is not synced."""
    known = sorted(known)
    return [f"the catalog's stream `{_one_line(name)}` is not one of this tap's, and is ignored"
            f"{_hint(name, known, 'streams')}" for name in sorted(set(names)) if name not in known]


def _one_line(name: str) -> str:
    """A name from a user's file as one line of a log: a line break in it would forge a log line."""
    return name if name.isprintable() else json.dumps(name)[1:-1]


def _hint(name: str, known: list[str], what: str) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else f"; known {what}: {', '.join(known)}"


#: The settings that say whose packages to read; with none of them, the token's own are read.
SCOPE_SETTINGS = ("organizations", "users", "images")


#: Names people give a scope setting that are no misspelling of it.
SCOPE_ALIASES = {"org": "organizations", "orgs": "organizations", "owner": "organizations", "owners": "organizations",
                 "user": "users", "image": "images", "repositories": "images", "repos": "images"}


def misspelled_scope(config: t.Mapping[str, t.Any], known: t.Iterable[str]) -> tuple[str, str] | None:
    """`(key, problem)` when no scope setting is given but an unknown setting means one: a misspelling
    (`organisations`: at most two letters away, same first letter, five letters or more) or a common
    other name (`orgs`, `owners`). The tap would read the token's own packages instead, and the
    warehouse get the wrong owner's inventory from a run that succeeds. `usage`, `pages` or
    `users_file` (a runner's own keys) are only warned about, as other unknown settings are."""
    if any(config.get(key) for key in SCOPE_SETTINGS):
        return None
    known = set(known)
    for key in sorted(config):
        if key in known or key in HIDDEN_SETTINGS:
            continue
        name = key.lower().replace("-", "_")
        scope = SCOPE_ALIASES.get(name)
        if scope is None and 5 <= len(name) <= 40:
            near = [s for s in SCOPE_SETTINGS if s[0] == name[0] and _edits(name, s) <= 2]
            scope = near[0] if near else None
        if scope is not None:
            return key, (f"unknown setting `{_one_line(key)}`: did you mean `{scope}`? With no `organizations`, "
                         "`users` or `images` the tap would read the token's own packages instead")
    return None


def _edits(a: str, b: str) -> int:
    """Levenshtein distance: letters to insert, delete or replace to turn `a` into `b`."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def clean_token(value: object, source: str = "`token`") -> tuple[object, str | None]:
    """The token without the whitespace around it (a secret file or `echo` leaves a newline: the header
    would carry it, and the HTTP library refuse it), and why what is left is no token, if it is not.

    GitHub's tokens are visible ASCII; a space, line break, control or other character inside one is
    a paste gone wrong, and a header the HTTP library would refuse, printing it. The problem never
    quotes the value."""
    if not isinstance(value, str):
        return value, None
    token = value.strip().strip("\ufeff").strip()  # (a byte-order mark: a file saved by Notepad)
    if all("!" <= c <= "~" for c in token):
        return token, None
    return token, (f"{source} holds a space, line break, control or non-ASCII character inside it: give the "
                   "token alone, as GitHub showed it")


def refused_token_note(token: str | None) -> str | None:
    """What a refused token's prefix says: GitHub Packages does not accept fine-grained tokens, which
    GitHub otherwise answers like a token without the scope."""
    if token and token.startswith("github_pat_"):
        return ("this is a fine-grained token (github_pat_...), which GitHub Packages does not accept: use a "
                "classic personal access token (ghp_...) with read:packages, or a workflow's GITHUB_TOKEN")
    return None


#: Settings whose values are never shown in a problem.
SECRET_SETTINGS = frozenset({"token"})

_BOUNDS = {"minimum": "at least", "exclusiveMinimum": "over", "maximum": "at most", "exclusiveMaximum": "under"}
_ARTICLES = {"integer": "an integer", "array": "an array", "object": "an object"}


def schema_problems(config: t.Mapping[str, t.Any], schema: dict) -> list[str]:
    """The settings schema's errors as a user reads them (the setting, what it must be, what it is), instead of
    the validator's `'8' is not of type 'integer', 'null' in config['max_workers']`. Secrets are not shown."""
    from jsonschema.validators import validator_for

    errors = validator_for(schema)(schema).iter_errors(dict(config))
    return list(dict.fromkeys(_schema_problem(e) for e in sorted(errors, key=lambda e: [str(p) for p in e.path])))


def _schema_problem(error: t.Any) -> str:
    path = list(error.absolute_path)
    key = str(path[0]) if path else ""
    where = (f"`{key}`" + (f" entry {path[1]}" if len(path) > 1 else "")) if key else "the settings"
    shown = "" if key in SECRET_SETTINGS else f", not {_shown_value(error.instance)}"
    kind, value = error.validator, error.validator_value
    if kind == "type":
        types = [v for v in (value if isinstance(value, list) else [value]) if v != "null"]
        return f"{where} must be {' or '.join(_ARTICLES.get(v, f'a {v}') for v in types)}{shown}"
    if kind in _BOUNDS:
        return f"{where} must be {_BOUNDS[kind]} {value}{shown}"
    if kind == "enum":
        return f"{where} must be one of {', '.join(str(v) for v in value if v is not None)}{shown}"
    if kind == "pattern":
        return f"{where} must match {value}{shown}"
    return f"{where} is not valid" if key in SECRET_SETTINGS else f"{where}: {error.message}"


def normalize_settings(config: dict, schema: dict) -> None:
    """Spellings that mean a valid value, made that value: a URL setting's scheme in lower case
    (`HTTPS://`), and a whole number written `8.0` for an integer setting (an integer in JSON Schema;
    the SDK reads it as a Decimal and would refuse it)."""
    for key, prop in (schema.get("properties") or {}).items():
        value = config.get(key)
        types = prop.get("type") if isinstance(prop.get("type"), list) else [prop.get("type")]
        if isinstance(value, str) and "pattern" in prop and re.match(r"(?i)https?://", value):
            scheme, rest = value.split("://", 1)
            config[key] = f"{scheme.lower()}://{rest}"
        elif "integer" in types and isinstance(value, (Decimal, float)) and _whole(value):
            config[key] = int(value)


def _whole(value: Decimal | float) -> bool:
    try:
        number = int(value)
    except (ValueError, OverflowError):  # NaN, infinity
        return False
    return number == value and abs(number) < 2**63  # (1e400 stays the Decimal the schema refuses)


def _shown_value(value: object) -> str:
    """A setting's value in a problem: JSON (a Decimal as the number it is), credentials masked before it is
    cut to 80 characters (cut first, a long password would lose the `@` the mask looks for)."""
    text = str(value) if isinstance(value, Decimal) else json.dumps(value, default=str)
    text = redact(text)
    return text if len(text) <= 80 else text[:77] + "..."


def setting_problems(config: t.Mapping[str, t.Any]) -> list[str]:
    """What the JSON schema cannot say about the settings: each problem names its setting."""
    problems: list[str] = []
    start = config.get("start_date")
    if isinstance(start, str):
        try:
            datetime_fromisoformat(start)
        except ValueError as exc:
            problems.append(f"`start_date` {start!r} is not a date-time ({exc}); write e.g. 2024-01-31T00:00:00Z")
    for key in ("organizations", "users"):
        names = config.get(key)
        if isinstance(names, list):
            for name in names:
                if isinstance(name, str) and (not name.strip() or "/" in name or name != name.strip()):
                    problems.append(f"`{key}` entry {name!r} is no GitHub login: give names like \"my-org\"")
    patterns = config.get("package_patterns")
    if isinstance(patterns, list) and not patterns:
        problems.append('`package_patterns` is empty, so nothing would match: use ["*"] for every package, '
                        "or leave the setting out")
    username = config.get("username")
    if isinstance(username, str) and (":" in username or not username.isprintable()):
        problems.append("`username` holds a `:` or a control character, which the registry's Basic "
                        "authentication cannot carry: give the GitHub login alone")
    registry = config.get("registry_url")
    if isinstance(registry, str) and registry.rstrip("/").endswith("/v2"):
        problems.append(f"`registry_url` {registry!r} ends in /v2: give the registry's base URL, e.g. https://ghcr.io")
    images = config.get("images")
    if isinstance(images, list):
        base = registry if isinstance(registry, str) else "https://ghcr.io"
        for entry in images:
            if isinstance(entry, str) and not entry.strip():
                problems.append('`images` holds an empty entry: give "owner/name" or "host/owner/name"')
            elif isinstance(entry, str):
                try:  # here, not when the sync reaches the entry: after SCHEMA lines, without this line's prefix
                    parse_image(entry, base)
                except ConfigError as exc:
                    problems.append(str(exc))
    return problems


def _has_host(first: str) -> bool:
    """Docker's rule: the first part of a reference is a registry host if it looks like one."""
    return "." in first or ":" in first or first == "localhost"


def lower_case_image(entry: str) -> str:
    """Lower-case the repository (owner and name) of an `images` entry; the host stays as given.

    Registry repository names are lower case (distribution-spec), and ghcr.io lower-cases
    `ACME/Web` when it stores it: `ACME/WEB` would ask for a repository that cannot exist.
    """
    value = entry.strip()
    if not value.isascii():  # `\u212a` (Kelvin) lower-cases to `k`: left for the name check to refuse
        return value
    parts = value.split("/")
    if len(parts) > 2 and _has_host(parts[0]):
        return "/".join([parts[0], *(p.lower() for p in parts[1:])])
    return value.lower()
