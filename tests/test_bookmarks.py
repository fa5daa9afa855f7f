"""The state rules as tables: literal states before and after, no servers."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tap_ghcr.bookmarks import (
    Mark,
    Window,
    advance,
    etags_usable,
    is_new,
    needs_manifests,
    usable_state,
    widen_window,
)
from tap_ghcr.sync import must_complete_oldest


def at(minute: int, second: int = 0) -> datetime:
    return datetime(2024, 1, 1, 0, minute, second, tzinfo=timezone.utc)


T10 = "2024-01-01T00:10:00+00:00"


@pytest.mark.parametrize(("when", "version_id", "mark", "start", "new"), [
    # first sync, no start_date: everything
    (at(1), 1, Mark(), None, True),
    # first sync: start_date is inclusive
    (at(5), 1, Mark(), at(5), True),
    (at(4, 59), 1, Mark(), at(5), False),
    # after a bookmark, start_date no longer matters
    (at(4), 1, Mark(at(3), frozenset({9})), at(5), True),
    # strictly newer than the bookmark
    (at(11), 1, Mark(at(10), frozenset({7})), None, True),
    (at(9), 1, Mark(at(10), frozenset({7})), None, False),
    # the bookmark second: only ids not emitted at that second
    (at(10), 7, Mark(at(10), frozenset({7})), None, False),
    (at(10), 8, Mark(at(10), frozenset({7})), None, True),
])
def test_is_new(when, version_id, mark, start, new):
    assert is_new(when, version_id, mark, start) is new


@pytest.mark.parametrize(("mark", "emitted", "after"), [
    (Mark(), [], Mark()),
    (Mark(), [(at(3), 1), (at(5), 2), (at(5), 3), (at(4), 4)], Mark(at(5), frozenset({2, 3}))),
    # a tie with the old bookmark second keeps the ids emitted before
    (Mark(at(5), frozenset({2})), [(at(5), 3)], Mark(at(5), frozenset({2, 3}))),
    # a newer second replaces them
    (Mark(at(5), frozenset({2})), [(at(6), 9), (at(5), 3)], Mark(at(6), frozenset({9}))),
    # nothing new: unchanged
    (Mark(at(5), frozenset({2})), [], Mark(at(5), frozenset({2}))),
])
def test_advance(mark, emitted, after):
    assert advance(mark, emitted) == after


def test_mark_round_trips_through_state():
    mark = Mark(at(10), frozenset({3, 1}))
    assert mark.dump() == (T10, [1, 3])
    assert Mark.load(*mark.dump()) == mark
    assert Mark.load(None, [1, 2]) == Mark()
    assert Mark.load("2024-01-01T00:10:00Z", None) == Mark(at(10))


SCOPE = {"streams": ["manifests", "package_versions", "tags"], "start_date": None, "include_deleted_versions": False}


@pytest.mark.parametrize(("stored", "now", "usable"), [
    (None, SCOPE, False),  # a state from before scopes were kept: read everything once
    (SCOPE, SCOPE, True),
    # fewer streams now: what was emitted then covers them
    (SCOPE, {**SCOPE, "streams": ["tags"]}, True),
    # a stream selected now that was not then: its rows were never emitted
    ({**SCOPE, "streams": ["manifests"]}, SCOPE, False),
    ({**SCOPE, "streams": ["tags"]}, {**SCOPE, "streams": ["tags", "package_versions"]}, False),
    # a lowered (or raised) start_date, or deleted versions now asked for
    (SCOPE, {**SCOPE, "start_date": "2023-01-01T00:00:00Z"}, False),
    ({**SCOPE, "start_date": "2024-06-01"}, SCOPE, False),
    (SCOPE, {**SCOPE, "include_deleted_versions": True}, False),
    # a stream map's filter removed or changed: what it dropped was never emitted
    ({**SCOPE, "stream_maps": {"tags": {"__filter__": "False"}}}, {**SCOPE, "stream_maps": None}, False),
    # owner lists: wider patterns
    ({"streams": ["packages"], "package_patterns": ["web*"]}, {"streams": ["packages"], "package_patterns": ["*"]},
     False),
])
def test_usable_state(stored, now, usable):
    assert usable_state(stored, now) is usable


@pytest.mark.parametrize(("etag_mark", "mark", "usable"), [
    (T10, Mark(at(10)), True),
    (T10, Mark(at(11)), True),
    (T10, Mark(at(9)), False),  # rewound by hand: re-read
    (T10, Mark(), False),  # removed by hand
    (None, Mark(), True),  # a list that was empty when its ETag was stored
    (None, Mark(at(9)), False),
])
def test_etags_usable(etag_mark, mark, usable):
    assert etags_usable(etag_mark, mark) is usable


@pytest.mark.parametrize(("created", "window", "mark", "needed"), [
    (at(5), None, Mark(at(20)), True),  # nothing fetched yet
    (at(5), Window(None, at(10)), Mark(at(20)), False),  # fetched: a retag does not fetch again
    (at(11), Window(None, at(10)), Mark(at(20)), True),
    (at(5), Window(at(6), at(10)), Mark(at(20)), True),  # created before the first sync's start_date
    (at(5), Window(None, at(10)), Mark(at(4)), True),  # bookmark rewound below it: honoured
    (at(5), Window(None, at(10)), Mark(), True),  # bookmark removed
    # the window's last second is not trusted: a version created then may never have been listed
    (at(10), Window(None, at(10)), Mark(at(20)), True),
    (at(9, 59), Window(None, at(10)), Mark(at(20)), False),
    (at(10), Window(None, at(12)), Mark(at(10)), True),
])
def test_needs_manifests(created, window, mark, needed):
    assert needs_manifests(created, window, mark) is needed


@pytest.mark.parametrize(("window", "start", "fetched", "after"), [
    (None, None, [], None),
    (None, at(2), [at(5), at(3)], Window(at(2), at(5))),
    (Window(at(2), at(5)), None, [at(4)], Window(at(2), at(5))),
    (Window(None, at(5)), None, [at(7)], Window(None, at(7))),
])
def test_widen_window(window, start, fetched, after):
    assert widen_window(window, start, fetched) == after


def test_window_round_trips_through_state():
    window = Window(None, at(10))
    assert window.dump() == {"since": None, "through": T10}
    assert Window.load(window.dump()) == window
    assert Window.load(None) is None


@pytest.mark.parametrize(
    ("versions_queued", "wait"),
    [
        ([245], False),  # only the oldest: list the next package while it fetches
        ([245, 245], True),  # a large package behind it is enough to keep the pool busy
        ([245, 100], False),  # fewer than 128 versions behind: keep listing
        ([245, 100, 28], True),
        ([3, 10, 10, 10], False),  # small packages: up to 4 behind the oldest
        ([3, 10, 10, 10, 10], True),
        ([0, 0, 0, 0, 0], True),  # packages with nothing to fetch still count
    ],
)
def test_listing_waits_for_the_oldest_package_when_enough_work_is_queued(versions_queued: list, wait: bool) -> None:
    assert must_complete_oldest(versions_queued) is wait
