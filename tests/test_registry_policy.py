"""Decision code of the registry client, in-process, one rule per row: retry policy, Retry-After,
`temporary`, where credentials may go, what a redirect may carry. Nothing here sleeps."""

from __future__ import annotations

import email.utils
import threading
import typing as t
from decimal import Decimal

import pytest

from tap_ghcr.registry.errors import (
    DigestMismatchError,
    ManifestUnknownError,
    ProxyAuthenticationError,
    RegistryError,
    RegistryUnauthorizedError,
    RegistryUnreachableError,
    ResponseTooLargeError,
)
from tap_ghcr.registry.realm import realm_refusal, same_registry
from tap_ghcr.registry.redirect import headers_for, keeps_credentials
from tap_ghcr.registry.retry import RetryPolicy, retry_after_seconds
from tap_ghcr.registry.transport import CertificateError


class Flaky(Exception):
    """A failure worth a retry; `retry_after` as a server would give it."""

    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("flaky")
        self.retry_after = retry_after


class Fake:
    """Fails `failures` times, then answers; counts the calls."""

    def __init__(self, failures: int, exc: BaseException | None = None) -> None:
        self.failures, self.calls, self.exc = failures, 0, exc

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc or Flaky()
        return "ok"


def policy(**kwargs) -> tuple[RetryPolicy, list[float]]:
    slept: list[float] = []
    return RetryPolicy(sleep=slept.append, jitter=lambda w: w, **kwargs), slept


@pytest.mark.parametrize(("failures", "max_tries", "calls", "ok"), [
    (0, 6, 1, True),
    (5, 6, 6, True),
    (6, 6, 6, False),
    (9, 3, 3, False),
])
def test_the_policy_tries_max_tries_times(failures, max_tries, calls, ok):
    p, slept = policy(base=0.25, cap=20.0, max_tries=max_tries)
    fake = Fake(failures)
    if ok:
        assert p.wrap(fake, (Flaky,))() == "ok"
    else:
        with pytest.raises(Flaky):
            p.wrap(fake, (Flaky,))()
    assert fake.calls == calls
    assert len(slept) == calls - 1


@pytest.mark.parametrize("failures", [0, 1, 5, 6, 9])
def test_call_counts_tries_like_wrap(failures):
    p, slept = policy(base=0.25, cap=20.0, max_tries=6)
    fake = Fake(failures)
    if failures < 6:
        assert p.call(fake, (Flaky,)) == "ok"
    else:
        with pytest.raises(Flaky):
            p.call(fake, (Flaky,))
    assert fake.calls == min(failures + 1, 6) and len(slept) == fake.calls - 1


def test_waits_double_up_to_the_cap_and_a_server_wait_wins():
    p, slept = policy(base=0.25, cap=1.0, max_tries=6)
    assert p.wrap(Fake(5), (Flaky,))() == "ok"
    assert slept == [0.25, 0.5, 1.0, 1.0, 1.0]
    p, slept = policy(base=0.25, cap=1.0, max_tries=3)
    assert p.wrap(Fake(2, Flaky(retry_after=7.0)), (Flaky,))() == "ok"
    assert slept == [7.0, 7.0]


def test_a_host_that_never_answered_gets_a_few_short_tries():
    p, slept = policy(base=0.5, cap=30.0, max_tries=8, first_contact_tries=3, first_contact_cap=2.0)
    fake = Fake(100)
    with pytest.raises(Flaky):
        p.wrap(fake, (Flaky,), first_contact=lambda exc: True)()
    assert fake.calls == 3 and sum(slept) <= 4.0


def test_other_exceptions_and_giveup_are_not_retried():
    p, slept = policy()
    fake = Fake(3, ValueError("final"))
    with pytest.raises(ValueError):
        p.wrap(fake, (Flaky,))()
    fake = Fake(3)
    with pytest.raises(Flaky):
        p.wrap(fake, (Flaky,), giveup=lambda exc: True)()
    assert fake.calls == 1 and slept == []


def test_a_stopped_sync_stops_retrying():
    p, _ = policy(max_tries=8)
    stop = threading.Event()
    stop.set()
    fake = Fake(100)
    with pytest.raises(Flaky):
        p.wrap(fake, (Flaky,), stop=stop)()
    assert fake.calls == 1


def test_each_retry_is_reported_before_its_wait():
    p, _ = policy(base=0.1, cap=1.0, max_tries=3)
    seen = []
    p.wrap(Fake(2), (Flaky,), on_retry=lambda exc, tries, wait: seen.append((tries, wait)))()
    assert seen == [(1, 0.1), (2, 0.2)]


def test_scaled_policy_keeps_the_shape():
    p = RetryPolicy(base=0.5, cap=30.0, first_contact_cap=2.0).scaled(0.05)
    assert (p.base, p.cap, p.first_contact_cap, p.max_tries) == (0.05, pytest.approx(3.0), pytest.approx(0.2), 8)


@pytest.mark.parametrize(("setting", "first_wait"), [
    (0.02, 0.02), (Decimal("0.02"), 0.02), (0, 0.0), (Decimal("0"), 0.0),  # a config file's numbers are Decimals
    (None, None), (-1, None), (Decimal("-0.1"), None), (True, None), ("0.02", None), (float("inf"), None),
    (float("nan"), None), (Decimal("NaN"), None), (Decimal("sNaN"), None), (Decimal("Infinity"), None),
    (Decimal("60"), 60.0), (Decimal("60.5"), None), (1e308, None),  # 1e308 once made infinite and NaN waits
])
def test_the_hidden_retry_base_setting_scales_the_policies_or_is_ignored(setting: t.Any, first_wait: float | None,
                                                                         ) -> None:
    from tap_ghcr.registry.retry import GITHUB_POLICY, REGISTRY_POLICY
    from tests.test_streams_records import make_tap

    tap = make_tap(retry_base_seconds=setting)
    if first_wait is None:  # the production timing
        assert (tap.retry_policy, tap.registry_retry_policy) == (GITHUB_POLICY, REGISTRY_POLICY)
    else:
        assert (tap.retry_policy.base, tap.registry_retry_policy.base) == (first_wait, first_wait)


@pytest.mark.parametrize(("value", "expected"), [
    (None, None),
    ("3", 3.0),
    ("0", 0.0),
    ("-4", 0.0),
    ("1.5", 1.5),
    (email.utils.formatdate(1_000_030, usegmt=True), 30.0),
    (email.utils.formatdate(999_000, usegmt=True), 0.0),  # a date in the past: no wait
    ("soon", None),
    ("nan", None),
    ("inf", None),
])
def test_retry_after_seconds_and_http_date(value, expected):
    assert retry_after_seconds(value, now=1_000_000) == expected


@pytest.mark.parametrize(("error", "temporary"), [
    (RegistryError("x", 500), True),
    (RegistryError("x", 503), True),
    (RegistryError("x", 429), True),
    (RegistryError("x", 400, "TOOMANYREQUESTS"), True),
    (RegistryError("x", 400), False),
    (RegistryError("x", 404), False),
    (RegistryUnreachableError("x"), True),
    (ManifestUnknownError("x", 404), False),
    (RegistryUnauthorizedError("x", 401), False),
    (RegistryUnauthorizedError("x", 403), False),
    (DigestMismatchError("x"), False),
    (ResponseTooLargeError("x"), False),
    (ProxyAuthenticationError("x"), False),
    (CertificateError("x"), False),
])
def test_temporary_or_final(error, temporary):
    assert error.temporary is temporary


@pytest.mark.parametrize(("realm", "registry", "allowed"), [
    ("https://ghcr.io/token", "https://ghcr.io", True),
    ("https://ghcr.io:8443/token", "https://ghcr.io", True),  # same host name, another port
    ("http://ghcr.io/token", "https://ghcr.io", False),  # a downgrade to clear text
    ("http://127.0.0.1:5001/token", "http://127.0.0.1:5000", True),  # a local registry's own realm
    ("https://auth.example.com/token", "https://ghcr.io", False),  # another host
    ("http://169.254.169.254/latest", "https://ghcr.io", False),  # link-local (cloud metadata)
    ("https://10.0.0.8/token", "https://registry.example", False),  # private, not the registry host
    ("https://localhost/token", "https://ghcr.io", False),
    ("ftp://ghcr.io/token", "https://ghcr.io", False),
    # urllib3 connects to what precedes a backslash; urlsplit reads the host after the last `@`
    ("http://127.0.0.4:5000\\@127.0.0.1/token", "http://127.0.0.1:5000", False),
    ("https://evil.example\\@ghcr.io/token", "https://ghcr.io", False),
    ("https://x-access-token:t@ghcr.io/token", "https://ghcr.io", False),  # user-info
    ("gopher://ghcr.io/token", "https://ghcr.io", False),
    ("https://ghcr.io:99999/token", "https://ghcr.io", False),  # a bad port
    ("http:///token", "http://127.0.0.1:5000", False),  # no host
    ("http://[::1/token", "http://127.0.0.1:5000", False),  # a broken IPv6 literal
])
def test_where_credentials_may_go(realm, registry, allowed):
    assert (realm_refusal(realm, registry) is None) is allowed


@pytest.mark.parametrize(("url", "credentials_host", "same"), [
    ("https://ghcr.io", "https://ghcr.io", True),
    ("https://ghcr.io", "ghcr.io", True),
    ("https://GHCR.io/", "https://ghcr.io:443", True),
    ("http://127.0.0.1:5001", "http://127.0.0.1:5000", False),  # another registry on the same host
    ("https://registry.example", "https://ghcr.io", False),
])
def test_the_registry_is_compared_by_host_and_port(url, credentials_host, same):
    assert same_registry(url, credentials_host) is same


@pytest.mark.parametrize(("source", "target", "keeps"), [
    ("https://ghcr.io/v2/a/blobs/x", "https://ghcr.io/v2/b/blobs/x", True),
    ("https://ghcr.io/v2/a/blobs/x", "http://ghcr.io/v2/a/blobs/x", False),  # https -> http
    ("https://ghcr.io/v2/a/blobs/x", "https://pkg-containers.githubusercontent.com/x", False),
    ("http://127.0.0.1:5000/v2/a", "http://127.0.0.1:5001/v2/a", False),
    ("http://127.0.0.1:5000/v2/a", "https://127.0.0.1:5000/v2/a", True),  # an upgrade, same host and port
    ("https://ghcr.io/v2/a/blobs/x", "https://evil.example\\@ghcr.io/x", False),  # urllib3 connects to evil
    ("https://ghcr.io/v2/a/blobs/x", "https://u:p@ghcr.io/x", False),
    ("https://ghcr.io/v2/a/blobs/x", "https://ghcr.io:99999/x", False),
])
def test_what_a_redirect_may_carry(source, target, keeps):
    assert keeps_credentials(source, target) is keeps
    sent = headers_for(source, target, {"Authorization": "Bearer t", "Accept": "x"})
    assert ("Authorization" in sent) is keeps and sent["Accept"] == "x"


def _read(parse: t.Callable[[str], t.Any], url: str) -> object:
    """What decides where a request goes (scheme, user-info, host, port), or the error raised."""
    try:
        parts = parse(url)
    except Exception as exc:
        return type(exc)
    return None if parts is None else (parts.scheme, parts.auth, parts.host, parts.port)


def _urls() -> list[str]:
    schemes = ["http", "https", "HTTPS", "ftp", ""]
    separators = ["://", ":/", ":\\\\", ":"]
    users = ["", "u@", "u:p@", "evil\\@", "@", "a%40b@"]
    hosts = ["ghcr.io", "GHCR.IO", "127.0.0.1", "[::1]", "[::1", "bücher.example", "", "a b", "host%41", "h\x00"]
    ports = ["", ":443", ":80", ":5000", ":99999", ":abc", ":"]
    rests = ["", "/", "/v2/a?x=1#f", "?q@evil.com/x", "#frag@x", "\\path", "/p\\q", "/%2e%2e/../x", "/\t/", "?\n#\nx",
             "/" + "b" * 300 + "?X-Amz-Signature=" + "c" * 64]
    return [f"{s}{sep}{u}{h}{p}{r}" for s in schemes for sep in separators for u in users for h in hosts
            for p in ports for r in rests]


def test_a_redirect_is_judged_by_its_authority_exactly_as_by_the_whole_url() -> None:
    """`parse_authority` parses only the text up to the authority's end (and caches it): scheme, user-info,
    host and port, or the error, must be those urllib3 reads from the whole URL, on every odd form."""
    from tap_ghcr.registry.realm import parse_authority, parse_or_none

    urls = _urls()
    assert len(urls) > 90_000
    differ = [u for u in urls if _read(parse_or_none, u) != _read(parse_authority, u)]
    assert differ == []


def test_keeps_credentials_decides_as_the_whole_url_parse_did() -> None:
    import random

    from tap_ghcr.registry.realm import parse_or_none

    def reference(source: str, target: str) -> bool:  # the code before `parse_authority`, on whole URLs
        def host_port(url: str) -> tuple[str, int] | None:
            parts = parse_or_none(url)
            if parts is None or "\\" in url or parts.auth is not None or not parts.host:
                return None
            return parts.host.lower(), parts.port or (443 if parts.scheme == "https" else 80)

        a, b = parse_or_none(source), parse_or_none(target)
        if a is None or b is None:
            return False
        if (a.scheme or "").lower() == "https" and (b.scheme or "").lower() != "https":
            return False
        here = host_port(source)
        return here is not None and here == host_port(target)

    urls = _urls()
    rng = random.Random(7)
    pairs = [(rng.choice(urls), rng.choice(urls)) for _ in range(20_000)]
    pairs += [("https://ghcr.io/v2/a/blobs/x", u) for u in urls[::7]]
    pairs += [(u, u.replace("/v2/a", "/v2/b")) for u in urls[::5]]  # the same authority: mostly kept
    assert [keeps_credentials(a, b) for a, b in pairs] == [reference(a, b) for a, b in pairs]
    assert sum(keeps_credentials(a, b) for a, b in pairs) > 200  # both answers are exercised


def test_the_authority_cache_keeps_only_short_http_authorities() -> None:
    """A hostile Location (64 KiB a header line) must not be kept: only http(s) authorities of real length are."""
    from tap_ghcr.registry.realm import _parse_prefix, parse_authority

    _parse_prefix.cache_clear()
    parse_authority("HTTP:/" + "\xfc" * 65_000)
    parse_authority("https://" + "a" * 1_000 + "/x")
    parse_authority("ftp://ghcr.io/x")
    assert _parse_prefix.cache_info().currsize == 0
    parse_authority("https://ghcr.io/v2/x?" + "q" * 60_000)
    assert _parse_prefix.cache_info().currsize == 1
