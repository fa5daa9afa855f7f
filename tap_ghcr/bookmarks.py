"""The state rules of one package, as pure functions: no I/O, no SDK.

A package's state is committed whole or not at all (see `sync.PackageCommit`),
so each rule here may assume that what a stored state says was really emitted:
- `is_new` / `advance`: the bookmark of a versions list, with the ids emitted at
  the bookmark's exact second, so ties are neither skipped nor emitted twice;
- `usable_state` / `etags_usable`: whether the stored state (and its ETags, which
  make unchanged pages free 304s) proves the rows now asked for were emitted;
- `needs_manifests` / `widen_window`: whether a version's manifests were fetched
  in an earlier sync (manifests are immutable by digest, so a retagged version is
  not fetched again).

GitHub documents no order for versions, so a list is always read to its end.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import datetime


def parse_time(value: str | None) -> datetime | None:
    """GitHub's `2024-01-01T00:00:00Z` (or any ISO 8601 with an offset) as an aware datetime."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def format_time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class Mark:
    """A list's bookmark: the newest timestamp emitted, and the ids emitted at exactly that second."""

    at: datetime | None = None
    ids: frozenset[int] = frozenset()

    @classmethod
    def load(cls, at: str | None, ids: t.Iterable[int] | None) -> Mark:
        when = parse_time(at)
        return cls(when, frozenset(ids or ()) if when is not None else frozenset())

    def dump(self) -> tuple[str | None, list[int]]:
        return format_time(self.at), sorted(self.ids)


def is_new(when: datetime, version_id: int, mark: Mark, start: datetime | None) -> bool:
    """Emit a version stamped `when` unless the bookmark already covers it.

    Without a bookmark (first sync, or a bookmark removed by hand) `start_date`
    decides, inclusively.
    """
    if mark.at is None:
        return start is None or when >= start
    return when > mark.at or (when == mark.at and version_id not in mark.ids)


def advance(mark: Mark, emitted: t.Iterable[tuple[datetime, int]]) -> Mark:
    """The bookmark after a complete listing: the newest timestamp emitted and every id at that second."""
    at, ids = mark.at, set(mark.ids)
    for when, version_id in emitted:
        if at is None or when > at:
            at, ids = when, {version_id}
        elif when == at:
            ids.add(version_id)
    return Mark(at, frozenset(ids))


def usable_state(stored_scope: t.Mapping[str, t.Any] | None, scope: t.Mapping[str, t.Any]) -> bool:
    """Whether a stored state proves what this sync asks: the same settings, and no stream
    selected now that was not selected then (its rows were never emitted)."""
    if not stored_scope or not isinstance(stored_scope, t.Mapping):
        return False
    if not set(scope.get("streams", ())) <= set(stored_scope.get("streams", ())):
        return False
    return all(stored_scope.get(key) == value for key, value in scope.items() if key != "streams")


def etags_usable(etag_mark: str | None, mark: Mark) -> bool:
    """ETags short-cut pages only while the bookmark is at least where it was when they were stored.

    A bookmark rewound (or removed) by hand asks for rows the 304s would hide.
    """
    stored = parse_time(etag_mark)
    if stored is None:
        return mark.at is None and etag_mark is None
    return mark.at is not None and mark.at >= stored


@dataclass(frozen=True)
class Window:
    """Versions created in [since, through] had their manifests fetched in a committed sync.

    `since` is the `start_date` of the first sync (None: from the beginning). A
    version created earlier but updated after it was fetched too; it is simply
    not covered, and fetched again if it is re-listed.
    """

    since: datetime | None
    through: datetime

    @classmethod
    def load(cls, stored: t.Mapping[str, t.Any] | None) -> Window | None:
        through = parse_time((stored or {}).get("through"))
        if through is None:
            return None
        return cls(parse_time((stored or {}).get("since")), through)

    def dump(self) -> dict[str, str | None]:
        return {"since": format_time(self.since), "through": format_time(self.through)}


def needs_manifests(created: datetime, window: Window | None, mark: Mark) -> bool:
    """Fetch a listed version's manifests unless an earlier sync did.

    The window is trusted only up to the current bookmark, so a bookmark rewound
    by hand re-fetches what it asks for.
    """
    if window is None or mark.at is None:
        return True
    # Strictly before the window's last second: a version created in that same second may be one the
    # committed sync never listed (GitHub lists in no order; a push spans a second).
    through = min(window.through, mark.at)
    return not ((window.since is None or created >= window.since) and created < through)


def widen_window(window: Window | None, start: datetime | None, fetched: t.Iterable[datetime]) -> Window | None:
    """The window after a committed sync that fetched versions created at `fetched`."""
    newest = max(fetched, default=None)
    if newest is None:
        return window
    if window is None:
        return Window(start, newest)
    return Window(window.since, max(window.through, newest))
