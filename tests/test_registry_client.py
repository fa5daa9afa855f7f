"""The OCI client on its own: challenge, token dance, retries, errors, redirects, tag paging."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time

import pytest

from tap_ghcr.registry import (
    ManifestUnknownError,
    RegistryClient,
    RegistryError,
    RegistryUnauthorizedError,
    RegistryUnreachableError,
)
from tap_ghcr.registry.challenge import parse_challenge
from tap_ghcr.registry.errors import describe_errors
from tap_ghcr.registry.retry import RetryPolicy
from tap_ghcr.registry.transport import ProxyNotSupportedError
from tests.emulator.servers import LoggedServer, QuietHandler
from tests.emulator.tls import self_signed


def test_parse_challenge_quoted_and_bare():
    c = parse_challenge('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull"')
    assert (c.scheme, c.realm, c.service, c.scope) == ("bearer", "https://ghcr.io/token", "ghcr.io",
                                                        "repository:a/b:pull")
    c = parse_challenge('Bearer realm=https://x/token, service=x, scope="repository:a/b:pull,push"')
    assert c.realm == "https://x/token" and c.scope == "repository:a/b:pull,push"
    assert parse_challenge('Basic realm="Registry"').scheme == "basic"
    assert parse_challenge("") is None


def test_oci_error_body_is_readable():
    code, text = describe_errors(json.dumps({"errors": [
        {"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": "sha256:abc"},
        {"code": "DENIED", "message": "requested access to the resource is denied"}]}))
    assert code == "MANIFEST_UNKNOWN"
    assert text == "MANIFEST_UNKNOWN: manifest unknown (sha256:abc); DENIED: requested access to the resource is denied"
    assert describe_errors(b"<html>oops</html>") == (None, "")


def test_tokens_are_reused_per_scope(world):
    client = RegistryClient(world.registry.url, credentials=lambda: ("u", world.token))
    web = world.dataset.find("acme", "web")
    before = world.authority.issued
    for pushed in list(web.manifests.values())[:6]:
        assert client.get_manifest(web.registry_repository, pushed.digest).body == pushed.body
    assert world.authority.issued - before == 1


def test_expired_and_revoked_tokens_are_renewed(fresh_world):
    w = fresh_world(token_expires_in=2)
    client = RegistryClient(w.registry.url)
    web = w.dataset.find("acme", "web")
    digest = next(iter(web.manifests))
    client.get_manifest(web.registry_repository, digest)
    issued = w.authority.issued
    time.sleep(2.5)  # past expires_in: the cached token must not be sent again
    client.get_manifest(web.registry_repository, digest)
    assert w.authority.issued == issued + 1
    for token in client.tokens._tokens.values():
        token.value = "revoked." + token.value  # the registry now refuses it
    assert client.get_manifest(web.registry_repository, digest).digest == digest
    assert w.authority.issued == issued + 2


def test_private_repository_needs_the_token(world):
    worker = world.dataset.find("acme", "worker")
    digest = next(v.digest for v in worker.versions if v.state == "active")
    with pytest.raises(RegistryUnauthorizedError):
        RegistryClient(world.registry.url).get_manifest(worker.registry_repository, digest)
    found = RegistryClient(world.registry.url, credentials=lambda: ("anyone", world.token))
    assert found.get_manifest(worker.registry_repository, digest).digest == digest


def test_unknown_manifest_error_names_it(world):
    missing = "sha256:" + "0" * 64
    with pytest.raises(ManifestUnknownError) as caught:
        RegistryClient(world.registry.url).get_manifest("acme/web", missing)
    assert "acme/web@" + missing in str(caught.value) and "MANIFEST_UNKNOWN" in str(caught.value)


def test_blob_redirect_drops_the_authorization_header(world):
    web = world.dataset.find("acme", "web")
    config_digest = json.loads(next(p for p in web.manifests.values() if p.expected["kind"] == "image").body)[
        "config"]["digest"]
    start = len(world.registry.blob_host.log)
    client = RegistryClient(world.registry.url, credentials=lambda: ("u", world.token))
    assert client.get_blob(web.registry_repository, config_digest) == web.blobs[config_digest]
    hits = world.registry.blob_host.log[start:]
    assert hits, "the registry must have redirected the blob to the blob host"
    assert all("Authorization" not in h["headers"] for h in hits)


def _scripted_server(script):
    """A server answering from `script(handler, count)`; returns (server, counter)."""
    calls = {"n": 0}
    lock = threading.Lock()

    class Handler(QuietHandler):
        def do_GET(self):
            with lock:
                calls["n"] += 1
                n = calls["n"]
            script(self, n)

        do_HEAD = do_GET

    return LoggedServer(Handler).start(), calls


def test_tags_follow_link_pages():
    pages = [["a", "b"], ["c", "d"], ["e"]]

    def script(h, n):
        page = 0 if "last=" not in h.path else {"b": 1, "d": 2}[h.path.split("last=")[1].split("&")[0]]
        body = json.dumps({"name": "o/r", "tags": pages[page]}).encode()
        link = {} if page == 2 else {"Link": f'</v2/o/r/tags/list?n=2&last={pages[page][-1]}>; rel="next"'}
        h.send_body(200, body, link)

    server, _ = _scripted_server(script)
    try:
        assert RegistryClient(server.url).list_tags("o/r", page_size=2) == ["a", "b", "c", "d", "e"]
    finally:
        server.stop()


@pytest.mark.parametrize(("link", "message"), [
    (lambda n: "</v2/o/r/tags/list?n=2&last=a>", "links back to a page it already sent"),  # the same page
    (lambda n: "</v2/o/r/tags/list?n=100>", "links back to a page it already sent"),  # back to the first
    (lambda n: f"</v2/o/r/tags/list?n=2&last=t{n}>", "more than 5 pages of tags"),  # always a new one
])
def test_a_tags_list_that_never_ends_is_an_error(monkeypatch, link, message):
    monkeypatch.setattr("tap_ghcr.registry.client.MAX_TAG_PAGES", 5)

    def script(h, n):
        h.send_body(200, json.dumps({"name": "o/r", "tags": [f"t{n}"]}).encode(), {"Link": f'{link(n)}; rel="next"'})

    server, calls = _scripted_server(script)
    try:
        with pytest.raises(RegistryError, match=f"o/r tags: .*{message}"):
            RegistryClient(server.url).list_tags("o/r")
        assert calls["n"] <= 5
    finally:
        server.stop()


@pytest.mark.parametrize("body", [
    b'{"name":"o/r","tags":"v1"}',
    b'{"name":"o/r","tags":[{"name":"v1"}]}',
    b'{"name":"o/r","tags":["v1",null]}',
    b'["v1","v2"]',
    b"<html>captive portal</html>",
])
def test_a_tags_list_that_is_not_a_list_of_strings_is_an_error_naming_the_repository(body):
    server, _ = _scripted_server(lambda h, n: h.send_body(200, body))
    try:
        with pytest.raises(RegistryError, match=r"^o/r tags: "):
            RegistryClient(server.url).list_tags("o/r")
    finally:
        server.stop()


def test_429_waits_retry_after_and_5xx_is_retried():
    def script(h, n):
        if n == 1:
            h.send_body(429, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}', {"Retry-After": "1"})
        elif n == 2:
            h.send_body(503, b"busy", content_type="text/plain")
        else:
            h.send_body(200, b'{"name":"o/r","tags":["x"]}')

    server, calls = _scripted_server(script)
    try:
        started = time.monotonic()
        assert RegistryClient(server.url).list_tags("o/r") == ["x"]
        assert calls["n"] == 3
        assert time.monotonic() - started >= 0.95, "Retry-After: 1 must be honoured"
    finally:
        server.stop()


def _token_registry(delay_token: float = 0.0, slow_scope: str = ""):
    """A registry wanting a bearer token (any non-empty one) and its token endpoint; answers are logged."""
    def script(h, n):
        if h.path.startswith("/token"):
            if slow_scope and slow_scope in h.path:
                time.sleep(delay_token)
            h.send_body(200, json.dumps({"token": "t-" + h.path.split("scope=")[1]}).encode())
        elif not h.headers.get("Authorization", "").startswith("Bearer t-"):
            realm = f"http://127.0.0.1:{h.server.server_address[1]}/token"
            h.send_body(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                        {"WWW-Authenticate": f'Bearer realm="{realm}",service="test"'})
        else:
            h.send_body(200, b'{"name":"o/r","tags":["x"]}')

    return _scripted_server(script)


def test_workers_starting_together_learn_the_challenge_once():
    server, _ = _token_registry()
    try:
        client = RegistryClient(server.url, max_workers=8)
        threads = [threading.Thread(target=client.list_tags, args=(f"o/r{i % 2}",)) for i in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        statuses = [(e["path"].split("?")[0], e["status"]) for e in server.log]
        assert statuses.count(("/v2/o/r0/tags/list", 401)) + statuses.count(("/v2/o/r1/tags/list", 401)) == 1
        assert sum(1 for p, _ in statuses if p == "/token") == 2  # one per repository
        assert sum(1 for _, s in statuses if s == 200) == 8 + 2
    finally:
        server.stop()


def test_a_token_fetch_does_not_hold_up_other_repositories():
    server, _ = _token_registry(delay_token=1.5, slow_scope="slow")
    try:
        client = RegistryClient(server.url, max_workers=4)
        client.list_tags("o/fast")  # token for o/fast cached
        slow = threading.Thread(target=client.list_tags, args=("o/slow",))
        slow.start()
        time.sleep(0.2)  # the o/slow token fetch is under way
        started = time.monotonic()
        client.list_tags("o/fast")
        assert time.monotonic() - started < 1.0, "a cached token must not wait for another scope's fetch"
        slow.join()
    finally:
        server.stop()


def test_a_keep_alive_connection_the_server_dropped_is_replaced_at_once():
    connections = set()

    def script(h, n):
        connections.add(h.client_address)
        h.send_body(200, b'{"name":"o/r","tags":["x"]}')
        h.close_connection = True  # closes without saying so, as idle keep-alive connections get closed

    server, calls = _scripted_server(script)
    try:
        client = RegistryClient(server.url)
        started = time.monotonic()
        for _ in range(3):
            assert client.list_tags("o/r") == ["x"]
        assert calls["n"] == 3 and len(connections) == 3
        assert time.monotonic() - started < 0.2, "a dropped idle connection is not worth a backoff wait"
    finally:
        server.stop()


def test_a_plain_http_proxy_from_the_environment_gets_absolute_urls(monkeypatch):
    seen = []

    def script(h, n):
        seen.append((h.path, h.headers.get("Proxy-Authorization")))
        h.send_body(200, b'{"name":"o/r","tags":["x"]}')

    proxy, _ = _scripted_server(script)
    monkeypatch.setenv("HTTP_PROXY", f"http://me:s%40cret@127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        assert RegistryClient("http://registry.example:5000").list_tags("o/r") == ["x"]
        assert seen == [("http://registry.example:5000/v2/o/r/tags/list?n=100",
                         "Basic " + base64.b64encode(b"me:s@cret").decode())]
    finally:
        proxy.stop()


def test_a_certificate_that_does_not_verify_is_one_clear_error_without_retries(tmp_path):
    _, context = self_signed(tmp_path, verifiable=False)
    server, calls = _scripted_server(lambda h, n: h.send_body(200, b"{}"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    try:
        started = time.monotonic()
        with pytest.raises(RegistryUnreachableError, match=r"TLS certificate of 127\.0\.0\.1 did not verify"):
            RegistryClient(f"https://127.0.0.1:{server.server_address[1]}").list_tags("o/r")
        assert time.monotonic() - started < 1.0, "a bad certificate is not retried"
        assert calls["n"] == 0
    finally:
        server.stop()


def test_a_proxy_it_cannot_speak_to_is_named_up_front(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "ftp://proxy.example:3129")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(ProxyNotSupportedError, match=r"proxy ftp://proxy\.example:3129 is a ftp:// URL"):
        RegistryClient("https://ghcr.io")


@pytest.mark.parametrize(("retry_after", "calls", "waited"), [
    ("86400", 1, []),  # a day: given up at once, with what it asked for
    ("21", 1, []),  # just over the policy's 20 s cap
    ("2", 2, [2.0]),  # within the cap: waited, then tried again
])
def test_a_retry_after_longer_than_the_cap_gives_up_at_once(retry_after, calls, waited):
    def script(h, n):
        if n == 1:
            h.send_body(429, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
                        {"Retry-After": retry_after})
        else:
            h.send_body(200, b'{"name":"o/r","tags":["x"]}')

    server, counter = _scripted_server(script)
    slept: list[float] = []
    client = RegistryClient(server.url, policy=RetryPolicy(base=0.25, cap=20.0, max_tries=6, sleep=slept.append))
    try:
        if calls == 1:
            with pytest.raises(RegistryError, match=f"429 .*asked to wait {retry_after} s") as caught:
                client.list_tags("o/r")
            assert caught.value.temporary
        else:
            assert client.list_tags("o/r") == ["x"]
        assert counter["n"] == calls and slept == waited
    finally:
        server.stop()


def test_urllib3s_own_stale_connection_retry_logs_nothing(caplog):
    """A connection dropped without an answer is tried again once by urllib3: no raw `Retrying (Retry(...` line."""
    def script(h, n):
        if n == 1:
            h.close_connection = True  # no answer at all: what a stale keep-alive connection looks like
        else:
            h.send_body(200, b'{"name":"o/r","tags":["x"]}')

    server, calls = _scripted_server(script)
    try:
        with caplog.at_level(logging.DEBUG):
            assert RegistryClient(server.url).list_tags("o/r") == ["x"]
        assert calls["n"] == 2
        assert not [r for r in caplog.records if r.getMessage().startswith("Retrying")]
    finally:
        server.stop()


def test_https_on_an_http_port_is_a_first_contact_failure_three_quick_tries():
    server, _ = _scripted_server(lambda h, n: h.send_body(200, b'{"tags":[]}'))
    slept: list[float] = []
    try:
        with pytest.raises(RegistryUnreachableError, match="TLS handshake failed"):
            RegistryClient(f"https://127.0.0.1:{server.server_address[1]}",
                           policy=RetryPolicy(base=0.25, cap=20.0, max_tries=6, sleep=slept.append)).list_tags("o/r")
        assert len(slept) == 2, "three tries, as for any host that never answered"
    finally:
        server.stop()
