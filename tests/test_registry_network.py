"""The registry client against real servers: where credentials go, proxies, 407, bounded reads, blob streaming."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
import tracemalloc

import pytest
import requests

from tap_ghcr.inventory import RegistryFetcher
from tap_ghcr.registry import (
    DigestMismatchError,
    ManifestUnknownError,
    ProxyAuthenticationError,
    RegistryClient,
    RegistryError,
    RegistryUnauthorizedError,
    RegistryUnreachableError,
    ResponseTooLargeError,
)
from tap_ghcr.registry.retry import RetryPolicy
from tap_ghcr.registry.transport import proxy_wants_credentials
from tests.conftest import run_tap
from tests.emulator.registry import BLOB_HOST
from tests.emulator.servers import LoggedServer, QuietHandler
from tests.emulator.tls import self_signed

GITHUB_TOKEN = "ghp_confinedconfinedconfinedconfined0000"


def scripted(script, host: str = "127.0.0.1", server_class=LoggedServer, **kwargs):
    """A server answering from `script(handler)`; every request's headers are logged."""
    class Handler(QuietHandler):
        def do_GET(self):
            with self.server.log_lock:
                self.server.seen.append((self.path, dict(self.headers.items())))
            script(self)

        do_HEAD = do_CONNECT = do_GET

    server = server_class(Handler, host=host, **kwargs)
    server.seen = []
    return server.start()


def token_registry(realm: str | None = None, host: str = "127.0.0.1"):
    """A registry that wants a bearer token from `realm` (default: its own /token)."""
    def script(h):
        if h.path.startswith("/token"):
            h.send_body(200, json.dumps({"token": "registry-bearer-0001", "expires_in": 300}).encode())
        elif h.headers.get("Authorization") != "Bearer registry-bearer-0001":
            own = f"http://{host}:{h.server.server_address[1]}/token"
            h.send_body(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                        {"WWW-Authenticate": f'Bearer realm="{realm or own}",service="test"'})
        else:
            h.send_body(200, b'{"name":"o/r","tags":["x"]}')

    return scripted(script, host=host)


def credentials_seen(server) -> list[str]:
    return [h["Authorization"] for _, h in server.seen if h.get("Authorization", "").startswith("Basic")]


def test_a_second_registry_in_images_never_gets_the_github_token(world):
    other = token_registry()
    try:
        inventory = RegistryFetcher(world.registry.url, credentials=lambda: ("me", world.token), max_workers=2)
        assert inventory.client(other.url).list_tags("o/r") == ["x"]  # anonymous, and it works
        assert inventory.client().list_tags("acme/worker")  # the configured registry still gets it (private)
        inventory.close()
        assert credentials_seen(other) == []
        assert all(world.token not in json.dumps(h) for _, h in other.seen)
    finally:
        other.stop()


def test_a_token_realm_on_another_host_gets_no_credentials(caplog):
    realm = token_registry(host=BLOB_HOST)  # 127.0.0.2: another host (and a private address)
    registry = token_registry(realm=f"http://{BLOB_HOST}:{realm.server_address[1]}/token")
    try:
        client = RegistryClient(registry.url, credentials=lambda: ("me", GITHUB_TOKEN))
        with caplog.at_level(logging.WARNING, logger="tap-ghcr.registry"):
            assert client.list_tags("o/r") == ["x"]
            assert client.list_tags("o/r2") == ["x"]
        assert [p for p, _ in realm.seen if p.startswith("/token")], "the realm was asked, anonymously"
        assert credentials_seen(realm) == []
        warnings = [r.getMessage() for r in caplog.records if "token realm" in r.getMessage()]
        assert len(warnings) == 1 and BLOB_HOST in warnings[0]
    finally:
        realm.stop()
        registry.stop()


def _attacker(host: str = "127.0.0.4"):
    return scripted(lambda h: h.send_body(200, json.dumps({"token": "attacker-issued-0001"}).encode()), host=host)


def test_a_backslash_realm_is_refused_though_urlsplit_names_the_registry_host(caplog):
    """`http://127.0.0.4:P\\@127.0.0.1/token`: urlsplit says 127.0.0.1, urllib3 connects to 127.0.0.4."""
    evil = _attacker()
    registry = token_registry(realm=f"http://127.0.0.4:{evil.server_address[1]}\\@127.0.0.1/token")
    try:
        client = RegistryClient(registry.url, credentials=lambda: ("me", GITHUB_TOKEN))
        with caplog.at_level(logging.WARNING, logger="tap-ghcr.registry"), pytest.raises(RegistryError):
            client.list_tags("o/r")  # the attacker's token is refused by the registry
        assert credentials_seen(evil) == [] and credentials_seen(registry) == []
        assert any("token realm" in r.getMessage() and "without credentials" in r.getMessage()
                   for r in caplog.records)
    finally:
        evil.stop()
        registry.stop()


@pytest.mark.parametrize("backslash", [False, True])
def test_a_challenge_from_the_blob_storage_host_is_never_taken(backslash):
    """A 401 from the host a blob redirect led to names a realm: nobody is asked for a token."""
    evil = _attacker()
    realm = f"http://127.0.0.4:{evil.server_address[1]}" + ("\\@127.0.0.1" if backslash else "") + "/token"
    storage = scripted(lambda h: h.send_body(401, b"{}", {"WWW-Authenticate": f'Bearer realm="{realm}"'}),
                       host=BLOB_HOST)

    def script(h):
        h.send_body(307, b"", {"Location": f"{storage.url}/data{h.path}"})

    registry = scripted(script)
    try:
        client = RegistryClient(registry.url, credentials=lambda: ("me", GITHUB_TOKEN))
        with pytest.raises(RegistryError, match="registry answered 401"):
            client.get_blob("o/r", "sha256:" + "0" * 64)
        assert evil.seen == [], "the storage host's realm was never asked"
    finally:
        for server in (evil, storage, registry):
            server.stop()


def test_a_token_realm_on_the_registry_host_gets_the_credentials():
    registry = token_registry()
    try:
        assert RegistryClient(registry.url, credentials=lambda: ("me", GITHUB_TOKEN)).list_tags("o/r") == ["x"]
        assert len(credentials_seen(registry)) == 1
    finally:
        registry.stop()


class TLSOrPlainServer(LoggedServer):
    """https and http on one port (a TLS ClientHello starts with 0x16): an https -> http redirect that keeps
    host and port, the case a host-only check misses."""

    def __init__(self, handler, host="127.0.0.1", context=None):
        super().__init__(handler, host)
        self.tls = context

    def get_request(self):
        sock, address = self.socket.accept()
        if sock.recv(1, socket.MSG_PEEK) == b"\x16":
            sock = self.tls.wrap_socket(sock, server_side=True)
        return sock, address


def test_an_https_to_http_redirect_drops_the_authorization_header(tmp_path, monkeypatch):
    cert, context = self_signed(tmp_path, verifiable=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    blob = b'{"architecture":"amd64"}'
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()

    def script(h):
        port = h.server.server_address[1]
        if h.path.startswith("/token"):
            h.send_body(200, b'{"token":"registry-bearer-0002"}')
        elif h.path.startswith("/plain/"):
            h.send_body(200, blob, content_type="application/octet-stream")
        elif h.headers.get("Authorization") != "Bearer registry-bearer-0002":
            h.send_body(401, b"{}", {"WWW-Authenticate": f'Bearer realm="https://127.0.0.1:{port}/token"'})
        else:
            h.send_body(307, b"", {"Location": f"http://127.0.0.1:{port}/plain/{digest}"})

    server = scripted(script, server_class=TLSOrPlainServer, context=context)
    try:
        client = RegistryClient(f"https://127.0.0.1:{server.server_address[1]}")
        assert client.get_blob("o/r", digest) == blob
        plain = [h for p, h in server.seen if p.startswith("/plain/")]
        assert plain and all("Authorization" not in h for h in plain)
    finally:
        server.stop()


def forwarding_proxy():
    """A plain HTTP proxy (absolute-URL requests) that forwards and logs what it was asked for."""
    local = threading.local()

    def script(h):
        if h.command == "CONNECT":
            h.send_body(501, b"no tunnels here", content_type="text/plain")
            return
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.trust_env = False  # the proxy itself goes direct
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "proxy-connection", "connection")}
        upstream = session.request(h.command, h.path, headers=headers, allow_redirects=False, timeout=30)
        out = {k: v for k, v in upstream.headers.items()
               if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length",
                                    "content-encoding", "content-type")}
        h.send_body(upstream.status_code, upstream.content, out,
                    content_type=upstream.headers.get("Content-Type", "application/octet-stream"))

    return scripted(script)


def _no_proxy_env(monkeypatch, proxy_url: str, no_proxy: str) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("NO_PROXY", no_proxy)


def _config_digest(world) -> tuple[str, str]:
    web = world.dataset.find("acme", "web")
    image = next(p for p in web.manifests.values() if p.expected["kind"] == "image")
    return web.registry_repository, json.loads(image.body)["config"]["digest"]


@pytest.mark.parametrize("no_proxy", ["host", "cidr"])  # (requests matches `host:port` for names, not IPs)
def test_no_proxy_sends_the_blob_host_direct_and_the_rest_through_the_proxy(world, monkeypatch, no_proxy):
    proxy = forwarding_proxy()
    entry = {"host": BLOB_HOST, "cidr": f"{BLOB_HOST}/32"}[no_proxy]
    _no_proxy_env(monkeypatch, proxy.url, f"example.invalid, {entry}")
    try:
        repository, digest = _config_digest(world)
        blobs_before = len(world.registry.blob_host.log)
        client = RegistryClient(world.registry.url, credentials=lambda: ("u", world.token))
        assert hashlib.sha256(client.get_blob(repository, digest)).hexdigest() == digest.split(":")[1]
        asked = [p for p, _ in proxy.seen]
        assert any(p.startswith(f"{world.registry.url}/v2/") for p in asked), asked
        assert any(p.startswith(f"{world.token_server.url}/") for p in asked), "the token realm goes through it too"
        assert not any(BLOB_HOST in p for p in asked), "NO_PROXY names the blob host"
        assert len(world.registry.blob_host.log) > blobs_before, "the blob host was reached directly"
    finally:
        proxy.stop()


def test_no_proxy_is_the_same_rule_for_the_whole_tap(world, tmp_path):
    """GitHub (requests) and the registry (urllib3) both through HTTP_PROXY; the NO_PROXY blob host direct."""
    proxy = forwarding_proxy()
    try:
        blobs_before = len(world.registry.blob_host.log)
        env = {"HTTP_PROXY": proxy.url, "http_proxy": proxy.url, "NO_PROXY": BLOB_HOST, "no_proxy": BLOB_HOST}
        run = run_tap(world.config(username="bot"), tmp_path, env=env)
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.records("manifests")
        asked = [p for p, _ in proxy.seen]
        assert any(p.startswith(f"{world.github.url}/") for p in asked), "GitHub through the proxy"
        assert any(p.startswith(f"{world.registry.url}/v2/") for p in asked), "the registry through the proxy"
        assert not any(BLOB_HOST in p for p in asked)
        assert len(world.registry.blob_host.log) > blobs_before
    finally:
        proxy.stop()


def _proxy_wanting_credentials():
    return scripted(lambda h: h.send_body(407, b"", {"Proxy-Authenticate": 'Basic realm="corp"'}))


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_407_is_one_final_error_naming_the_proxy(monkeypatch, scheme):
    proxy = _proxy_wanting_credentials()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv(f"{scheme.upper()}_PROXY", proxy.url)
    try:
        started = time.monotonic()
        with pytest.raises(ProxyAuthenticationError, match=rf"proxy {proxy.url} asked for credentials \(407\)"):
            RegistryClient(f"{scheme}://registry.example").list_tags("o/r")
        assert len(proxy.seen) == 1, "a 407 is not retried"
        assert time.monotonic() - started < 1.0
    finally:
        proxy.stop()


def _refused_port_with_407_in_it() -> socket.socket:
    """A socket bound (never listening) to a port whose number holds "407": 40700-40799, 4070-4079..."""
    for port in [*range(40700, 40800), *range(14070, 14080), *range(24070, 24080), *range(34070, 34080)]:
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
            return sock
        except OSError:
            sock.close()
    pytest.skip("no port holding 407 is free on this machine")


def test_an_error_text_holding_407_is_no_proxy_asking_for_credentials(monkeypatch):
    """A refused connection to port 40712 once read as "the proxy asked for credentials (407)": only a
    tunnel refused with 407 is that. Checked on a real refused connection and on the texts."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    with _refused_port_with_407_in_it() as sock:
        port = sock.getsockname()[1]
        client = RegistryClient(f"http://127.0.0.1:{port}", policy=RetryPolicy(base=0, cap=0, max_tries=2))
        with pytest.raises(RegistryUnreachableError) as caught:
            client.list_tags("o/r")
    assert "connection refused" in str(caught.value) and "407" not in str(caught.value).replace(str(port), ""), \
        caught.value
    assert proxy_wants_credentials("Tunnel connection failed: 407 Proxy Authentication Required")
    for text in (f"HTTPConnectionPool(host='127.0.0.1', port={port}): Max retries exceeded (Connection refused)",
                 "Unable to connect to proxy http://proxy407.corp:3128", "Tunnel connection failed: 403 Forbidden"):
        assert not proxy_wants_credentials(text), text


def test_a_407_ends_the_sync_in_one_line(world, tmp_path):
    proxy = _proxy_wanting_credentials()
    try:
        env = {"HTTP_PROXY": proxy.url, "http_proxy": proxy.url}
        for config in (world.config(), {"images": ["acme/web"], "registry_url": world.registry.url}):
            run = run_tap(config, tmp_path, env=env)
            assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
            lines = [x for x in run.stderr.splitlines() if x.startswith("tap-ghcr: error:")]
            assert len(lines) == 1 and "asked for credentials (407)" in lines[0] and "proxy" in lines[0], lines
            assert run.stderr.rstrip().splitlines()[-1] == lines[0], "nothing is logged after the error line"
    finally:
        proxy.stop()


def blob_server(body_of):
    """A registry without auth serving `body_of(path)` (bytes, or a generator of chunks sent chunked)."""
    def script(h):
        body = body_of(h.path)
        if isinstance(body, bytes):
            h.send_body(200, body, content_type="application/vnd.oci.image.manifest.v1+json")
            return
        h.server.record(h.command, h.path, {}, 200)
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for chunk in body:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        h.wfile.write(b"0\r\n\r\n")

    return scripted(script)


def test_an_oversized_manifest_is_refused_naming_it():
    huge = b'{"schemaVersion":2,"annotations":{"x":"' + b"a" * (5 * 1024 * 1024) + b'"}}'
    digest = "sha256:" + hashlib.sha256(huge).hexdigest()
    server = blob_server(lambda path: huge)
    try:
        with pytest.raises(ResponseTooLargeError, match=rf"manifest o/r@{digest}: .*over the 4194304-byte bound"):
            RegistryClient(server.url).get_manifest("o/r", digest)
        assert len(server.seen) == 1, "a too-large answer is final, not retried"
    finally:
        server.stop()


def test_an_oversized_chunked_manifest_is_refused_too():
    server = blob_server(lambda path: (b"x" * 65536 for _ in range(100)))  # 6.4 MB, no Content-Length
    try:
        with pytest.raises(ResponseTooLargeError, match="manifest o/r:big"):
            RegistryClient(server.url).get_manifest("o/r", "big")
    finally:
        server.stop()


def test_download_blob_streams_checks_and_bounds(tmp_path):
    chunk = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB
    count = 320  # 20 MiB, sent chunked: nothing announces the size
    digest = "sha256:" + hashlib.sha256(chunk * count).hexdigest()
    server = blob_server(lambda path: (chunk for _ in range(count)))
    try:
        client = RegistryClient(server.url)
        tracemalloc.start()
        with client.download_blob("o/r", digest, max_bytes=64 * 1024 * 1024) as found:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert found.tell() == 0
            assert hashlib.sha256(found.read()).hexdigest() == digest.split(":")[1]
        assert peak < 8 * 1024 * 1024, f"memory must not grow with the blob ({peak} bytes at peak)"
        with pytest.raises(ResponseTooLargeError, match=rf"blob o/r@{digest}: .*over the 1048576-byte bound"):
            client.download_blob("o/r", digest, max_bytes=1024 * 1024)
        with pytest.raises(DigestMismatchError, match="blob o/r@sha256:0000"):
            client.download_blob("o/r", "sha256:" + "0" * 64, max_bytes=64 * 1024 * 1024)
        assert client.list_tags  # the pool survived the refused downloads
    finally:
        server.stop()


def test_download_blob_follows_the_storage_redirect_without_credentials(world):
    repository, digest = _config_digest(world)
    start = len(world.registry.blob_host.log)
    client = RegistryClient(world.registry.url, credentials=lambda: ("u", world.token))
    with client.download_blob(repository, digest, max_bytes=1024 * 1024) as found:
        assert "sha256:" + hashlib.sha256(found.read()).hexdigest() == digest
    hits = world.registry.blob_host.log[start:]
    assert hits and all("Authorization" not in h["headers"] for h in hits)


def test_head_answers_return_their_connection_and_are_not_bounded():
    manifest = b"{" + b" " * (200 * 1024) + b"}"  # bigger than the small-body bound
    connections = set()

    def script(h):
        connections.add(h.client_address)
        h.send_body(200, manifest, {"Docker-Content-Digest": "sha256:" + hashlib.sha256(manifest).hexdigest()})

    server = scripted(script)
    try:
        client = RegistryClient(server.url, max_workers=1)
        for _ in range(5):
            assert client.head_manifest("o/r", "latest").startswith("sha256:")
        assert len(connections) == 1, "one keep-alive connection for every HEAD"
    finally:
        server.stop()


def test_a_token_request_redirected_to_another_host_loses_the_credentials(caplog):
    elsewhere = token_registry(host=BLOB_HOST)

    def script(h):
        if h.path.startswith("/token"):
            h.send_body(302, b"", {"Location": f"http://{BLOB_HOST}:{elsewhere.server_address[1]}{h.path}"})
        elif h.headers.get("Authorization") != "Bearer registry-bearer-0001":
            realm = f"http://127.0.0.1:{h.server.server_address[1]}/token"
            h.send_body(401, b"{}", {"WWW-Authenticate": f'Bearer realm="{realm}",service="test"'})
        else:
            h.send_body(200, b'{"name":"o/r","tags":["x"]}')

    registry = scripted(script)
    try:
        client = RegistryClient(registry.url, credentials=lambda: ("me", GITHUB_TOKEN))
        with caplog.at_level(logging.WARNING, logger="tap-ghcr.registry"):
            assert client.list_tags("o/r") == ["x"]
        assert len(credentials_seen(registry)) == 1, "the realm on the registry host got them"
        assert [p for p, _ in elsewhere.seen if p.startswith("/token")] and credentials_seen(elsewhere) == []
        assert any("redirected" in r.getMessage() and BLOB_HOST in r.getMessage() for r in caplog.records)
    finally:
        registry.stop()
        elsewhere.stop()


def test_only_a_host_that_never_answered_counts_as_first_contact():
    from tap_ghcr.registry.transport import NetworkError, Transport
    from tests.emulator.registry import refused_port

    def script(h):
        h.send_body(200, b"{}")
        h.close_connection = True

    server = scripted(script)
    transport = Transport(2, "test")
    url = f"{server.url}/v2/"
    assert transport.request("GET", url).status_code == 200
    server.stop()  # it answered once, then went away: a drop, worth the full retry policy
    with pytest.raises(NetworkError) as dropped:
        transport.request("GET", url)
    assert dropped.value.first_contact is False
    with refused_port() as port, pytest.raises(NetworkError) as never:
        transport.request("GET", f"http://127.0.0.1:{port}/v2/")
    assert never.value.first_contact is True and never.value.reason == "connection refused"


def test_a_socks_proxy_without_pysocks_is_named_up_front(monkeypatch):
    try:
        import socks  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("PySocks is installed: SOCKS proxies work")
    from tap_ghcr.registry.transport import ProxyNotSupportedError

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("ALL_PROXY", "socks5h://proxy.example:1080")
    with pytest.raises(ProxyNotSupportedError, match="PySocks"):
        RegistryClient("https://ghcr.io")


def _trickle(h, status: int = 200, total: int = 1000, every: float = 0.05) -> None:
    """Headers at once, then the body one byte at a time (a client without a total deadline waits forever)."""
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(total))
    h.end_headers()
    try:
        for _ in range(min(total, int(5 / every))):
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(every)
    except OSError:
        pass  # the client gave up: what the test wants


@pytest.mark.parametrize("kind", ["manifest", "token", "blob", "config"])
def test_a_trickling_answer_is_given_up_at_its_deadline(monkeypatch, kind):
    monkeypatch.setattr("tap_ghcr.registry.transport.BODY_DEADLINE", 0.5)
    monkeypatch.setattr("tap_ghcr.registry.transport.BLOB_DEADLINE", 0.5)

    def script(h):
        if kind == "token" and "/token" not in h.path:
            realm = f"http://127.0.0.1:{h.server.server_address[1]}/token"
            h.send_body(401, b"{}", {"WWW-Authenticate": f'Bearer realm="{realm}"'})
        else:
            _trickle(h)

    server = scripted(script)
    client = RegistryClient(server.url)
    started = time.monotonic()
    try:
        with pytest.raises(RegistryError, match="took over") as caught:
            if kind in ("manifest", "token"):
                client.get_manifest("o/r", "latest")
            elif kind == "blob":
                client.download_blob("o/r", "sha256:" + "0" * 64, max_bytes=1 << 20)
            else:
                client.get_blob("o/r", "sha256:" + "0" * 64)
        assert caught.value.temporary, "a slow server is tried again next sync"
        assert time.monotonic() - started < 3.0
    finally:
        server.stop()


def _error_page(status: int, endless: bool):
    def script(h):
        if not endless:
            h.send_body(status, b"<html>" + b"x" * (70 * 1024) + b"</html>", content_type="text/html")
            return
        h.send_response(status)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        try:
            for _ in range(10_000):
                h.wfile.write(b"%x\r\n%s\r\n" % (65536, b"x" * 65536))
        except OSError:
            pass

    return scripted(script)


@pytest.mark.parametrize(("status", "endless", "error", "temporary"), [
    (503, False, RegistryError, True),
    (500, True, RegistryError, True),
    (429, False, RegistryError, True),
    (404, False, ManifestUnknownError, False),
    (401, True, RegistryUnauthorizedError, False),
])
def test_an_error_page_over_the_bound_is_judged_by_its_status(status, endless, error, temporary):
    server = _error_page(status, endless)
    client = RegistryClient(server.url, policy=RetryPolicy(max_tries=2, sleep=lambda s: None))
    try:
        with pytest.raises(error) as caught:
            client.get_manifest("o/r", "latest")
        assert type(caught.value) is error and caught.value.status == status
        assert caught.value.temporary is temporary
    finally:
        server.stop()


@pytest.mark.parametrize(("kind", "message"), [
    ("manifest", "registry answered 307 .*a redirect not followed"),
    ("config", "more than 5 redirects"),
    ("blob", "more than 5 redirects"),
])
def test_a_redirect_not_followed_is_a_temporary_error_not_a_digest_mismatch(kind, message):
    """A manifest 307 (not followed) and a blob redirect loop used to be 'failed its digest check' (final)."""
    def script(h):
        h.send_body(307, b"", {"Location": f"/loop/{len(h.server.seen)}{h.path}"})

    server = scripted(script)
    client = RegistryClient(server.url)
    digest = "sha256:" + "0" * 64
    try:
        with pytest.raises(RegistryError, match=message) as caught:
            if kind == "manifest":
                client.get_manifest("o/r", digest)
            elif kind == "config":
                client.get_blob("o/r", digest)
            else:
                client.download_blob("o/r", digest, max_bytes=1 << 20)
        assert not isinstance(caught.value, DigestMismatchError) and caught.value.temporary
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["missing", "garbage"])
def test_a_bad_ca_bundle_is_named_up_front_on_the_registry_side(tmp_path, monkeypatch, kind):
    bundle = tmp_path / "ca.pem"
    if kind == "garbage":
        bundle.write_text("not a certificate\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    with pytest.raises(RegistryError, match=f"the CA bundle {bundle} \\(REQUESTS_CA_BUNDLE\\)") as caught:
        RegistryClient("https://127.0.0.1:9")
    assert not caught.value.temporary


@pytest.mark.parametrize(("kind", "message"), [
    ("blob", r"a redirect to 'http://\[::1/x', which is not a URL"),
    ("token-redirect", r"a redirect to 'http://\[::1/x', which is not a URL"),
    ("expires", None),  # expires_in 1e400: read as the longest lifetime, not an OverflowError
])
def test_malformed_registry_answers_are_errors_not_crashes(kind, message):
    def script(h):
        if h.path.startswith("/token"):
            if kind == "token-redirect":
                h.send_body(307, b"", {"Location": "http://[::1/x"})
            else:
                h.send_body(200, b'{"token": "registry-bearer-0001", "expires_in": 1e400}')
        elif kind == "blob":
            h.send_body(307, b"", {"Location": "http://[::1/x"})
        elif h.headers.get("Authorization") != "Bearer registry-bearer-0001":
            realm = f"http://127.0.0.1:{h.server.server_address[1]}/token"
            h.send_body(401, b"{}", {"WWW-Authenticate": f'Bearer realm="{realm}"'})
        else:
            h.send_body(200, b'{"name":"o/r","tags":["x"]}')

    server = scripted(script)
    client = RegistryClient(server.url)
    try:
        if message is None:
            assert client.list_tags("o/r") == ["x"]
        else:
            with pytest.raises(RegistryError, match=message):
                client.get_blob("o/r", "sha256:" + "0" * 64)
    finally:
        server.stop()
