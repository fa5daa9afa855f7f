"""The installed command: discovery with no config, about, and one-line errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from tests.conftest import run_tap, tap_executable

CONTRACT = {
    "packages": (["id"], "updated_at"),
    "package_versions": (["id"], "updated_at"),
    "tags": (["owner_login", "package_name", "tag"], None),
    "manifests": (["owner_login", "package_name", "digest"], None),
    "attestations": (["owner_login", "package_name", "manifest_digest", "layer_index"], None),
    "sbom_packages": (["owner_login", "package_name", "sbom_digest", "package_ref"], None),
}


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "Traceback" in line or line.startswith("tap-ghcr: error:")]
    assert "Traceback" not in stderr, stderr
    assert "An unhandled error occurred" not in stderr, "the SDK's crash line is noise for a handled error"
    assert len(lines) == 1, stderr
    return lines[0]


def test_discover_with_empty_config_lists_contract_streams(tmp_path):
    run = run_tap({}, tmp_path, args=["--discover"])
    assert run.returncode == 0, run.stderr
    catalog = json.loads(run.stdout)
    found = {s["tap_stream_id"]: (s["key_properties"], s.get("replication_key")) for s in catalog["streams"]}
    assert found == {k: (list(v[0]), v[1]) for k, v in CONTRACT.items()}


@pytest.mark.parametrize("token", [5, ["ghp_x"], {"a": 1}])
def test_a_token_of_the_wrong_type_is_a_settings_error_and_discovery_still_works(tmp_path, token):
    """Found by review: `--discover` (which only warns about settings) crashed registering it for redaction."""
    found = run_tap({"token": token}, tmp_path, args=["--discover"])
    assert found.returncode == 0, found.stderr
    assert "Traceback" not in found.stderr and json.loads(found.stdout)["streams"]
    run = run_tap({"token": token, "organizations": ["o"]}, tmp_path)
    assert run.returncode == 1
    assert "`token`" in _one_error_line(run.stderr)


def test_about_markdown_lists_every_setting(tmp_path):
    run = run_tap({}, tmp_path, args=["--about", "--format=markdown"])
    assert run.returncode == 0, run.stderr
    for setting in ("token", "username", "organizations", "users", "images", "package_patterns", "visibility",
                    "include_deleted_versions", "start_date", "api_url", "registry_url", "max_workers",
                    "max_rate_limit_wait", "max_document_mb"):
        assert f"| {setting}" in run.stdout or f"`{setting}`" in run.stdout or setting in run.stdout


def test_wrong_token_is_one_line_and_exit_1(world, tmp_path):
    secret = "ghp_wrongwrongwrongwrongwrong0000000000"
    run = run_tap(world.config(token=secret), tmp_path)
    assert run.returncode == 1
    line = _one_error_line(run.stderr)
    assert "401" in line and "token" in line
    assert secret not in run.stderr + run.stdout


def test_unknown_organization_is_one_line_and_exit_1(world, tmp_path):
    run = run_tap(world.config(organizations=["no-such-org"], users=[]), tmp_path)
    assert run.returncode == 1
    line = _one_error_line(run.stderr)
    assert "404" in line and "no-such-org" in line


def test_malformed_settings_are_one_line_and_exit_1(world, tmp_path):
    for bad in ({"max_workers": "abc"}, {"visibility": "secret"}, {"max_workers": 0}, {"api_url": "ftp://x"}):
        run = run_tap(world.config(**bad), tmp_path)
        assert run.returncode == 1, (bad, run.stderr)
        line = _one_error_line(run.stderr)
        assert next(iter(bad)) in line, (bad, line)


def test_unreachable_api_is_one_line_and_exit_1(world, tmp_path):
    from tests.emulator.registry import refused_port

    with refused_port() as port:
        run = run_tap(world.config(api_url=f"http://127.0.0.1:{port}"), tmp_path, timeout=300)
    assert run.returncode == 1
    line = _one_error_line(run.stderr)
    assert "could not connect" in line


@pytest.mark.parametrize("setting", ["api_url", "registry_url"])
def test_a_url_that_never_answers_is_one_line_within_45_s(world, tmp_path, setting):
    """With the production retry timing (no shortened waits): a host that never answered fails fast."""
    import time

    from tests.emulator.registry import refused_port

    with refused_port() as port:
        url = f"http://127.0.0.1:{port}"
        config = world.config(**{setting: url, "retry_base_seconds": None})
        if setting == "registry_url":
            config.update(organizations=[], users=[], images=["acme/web"])
        started = time.monotonic()
        run = run_tap(config, tmp_path, timeout=120)
        elapsed = time.monotonic() - started
    assert run.returncode == 1
    line = _one_error_line(run.stderr)
    assert line == f"tap-ghcr: error: could not connect to {url} ({setting}): connection refused"
    assert run.stderr.rstrip().splitlines()[-1] == line, "nothing is logged after the error line"
    assert elapsed < 45, f"took {elapsed:.0f} s"


def test_nothing_configured_without_token_is_one_line(tmp_path):
    run = run_tap({"api_url": "http://127.0.0.1:9"}, tmp_path)
    assert run.returncode == 1
    assert "nothing to extract" in _one_error_line(run.stderr)


def test_token_falls_back_to_github_token_env(world, tmp_path):
    config = world.config()
    token = config.pop("token")
    catalog = _rest_only_catalog(config, tmp_path)
    run = run_tap(config, tmp_path, catalog=catalog, env={"GITHUB_TOKEN": token})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.records("packages")
    assert token not in run.stdout + run.stderr


def _rest_only_catalog(config, tmp_path):
    from tests.conftest import catalog_selecting

    return catalog_selecting(config, tmp_path, {"packages", "package_versions"})


def test_settings_from_environment_with_config_env(world, tmp_path):
    import os
    import subprocess

    from tests.conftest import catalog_selecting, tap_executable

    config = world.config()
    catalog_file = tmp_path / "catalog.json"
    catalog_file.write_text(json.dumps(catalog_selecting(config, tmp_path, {"packages"})))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_GHCR_") and k != "GITHUB_TOKEN"}
    env.update({"TAP_GHCR_TOKEN": config["token"], "TAP_GHCR_API_URL": config["api_url"],
                "TAP_GHCR_ORGANIZATIONS": '["acme"]', "TAP_GHCR_REGISTRY_URL": config["registry_url"]})
    proc = subprocess.run([tap_executable(), "--config", "ENV", "--catalog", str(catalog_file)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {json.loads(line)["record"]["name"] for line in proc.stdout.splitlines()
             if json.loads(line)["type"] == "RECORD"}
    assert names == {"web", "tools/api", "worker"}


def test_readme_documents_every_setting_and_stream():
    from pathlib import Path

    from tap_ghcr.tap import SETTINGS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for setting in SETTINGS.to_dict()["properties"]:
        assert f"| `{setting}` |" in readme, setting
    for stream in CONTRACT:
        assert f"### {stream}\n" in readme, stream
    first_block = readme.split("```", 2)[1]
    assert "./scripts/demo" in first_block and "./scripts/test" in first_block
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "./scripts/test" in ci


def _echoing_registry():
    """A registry whose token endpoint answers 401 echoing the Authorization header it got."""
    from tests.emulator.servers import LoggedServer, QuietHandler

    class Handler(QuietHandler):
        def do_GET(self):
            if self.path.startswith("/token"):
                echoed = f"you sent {self.headers.get('Authorization', '')}"
                body = {"errors": [{"code": "DENIED", "message": "denied", "detail": echoed}]}
                self.send_body(401, json.dumps(body).encode())
            else:
                realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
                self.send_body(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                               {"WWW-Authenticate": f'Bearer realm="{realm}",service="x"'})

        do_HEAD = do_GET

    return LoggedServer(Handler).start()


@pytest.mark.parametrize("username", ["alice", None])
def test_an_echoed_basic_header_is_masked_in_warnings_and_the_error_line(tmp_path, username):
    import base64

    token = "ghp_echoechoechoechoechoechoecho00000000"
    registry = _echoing_registry()
    try:
        config = {"token": token, "api_url": "http://127.0.0.1:9", "registry_url": registry.url, "images": ["o/n"],
                  **({"username": username} if username else {})}
        run = run_tap(config, tmp_path, timeout=60)
    finally:
        registry.stop()
    output = run.stdout + run.stderr
    assert "you sent Basic ***" in output, output  # the echo reached a log line, masked
    for user in ("alice", "tap-ghcr", "x-access-token", ""):
        assert base64.b64encode(f"{user}:{token}".encode()).decode() not in output


def _github(script, tls_context=None):
    """An `api_url` answering every GET from `script(handler)`."""
    from tests.emulator.servers import LoggedServer, QuietHandler

    class Handler(QuietHandler):
        def do_GET(self):
            script(self)

    server = LoggedServer(Handler)
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
    return server.start()


def _endless(h):
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    try:
        for _ in range(100_000):  # 6.5 GB if nobody stops reading
            h.wfile.write(b"%x\r\n%s\r\n" % (65536, b" " * 65536))
    except OSError:
        pass


GITHUB_SIDE = {"token": "ghp_githubsidegithubsidegithubside000000", "username": "me", "organizations": ["o"]}


def test_an_endless_github_answer_is_one_line_naming_api_url(tmp_path):
    api = _github(_endless)
    try:
        run = run_tap({**GITHUB_SIDE, "api_url": api.url}, tmp_path, timeout=60)
    finally:
        api.stop()
    assert run.returncode == 1
    line = _one_error_line(run.stderr)
    assert f"{api.url} (api_url) sent an answer over 16777216 bytes" in line, line


def test_the_github_side_waits_10_s_to_connect_like_the_registry_side():
    from tap_ghcr.client import GitHubStream

    assert GitHubStream.timeout.fget(None) == (10.0, 60.0)


def test_the_github_side_trusts_the_ca_bundle_from_the_environment(tmp_path):
    from tests.emulator.tls import self_signed

    cert, context = self_signed(tmp_path, verifiable=True)
    api = _github(lambda h: h.send_body(200, b"[]"), tls_context=context)
    try:
        url = f"https://127.0.0.1:{api.server_address[1]}"
        for variable in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
            env = {"REQUESTS_CA_BUNDLE": "", "SSL_CERT_FILE": "", "CURL_CA_BUNDLE": "", variable: str(cert)}
            run = run_tap({**GITHUB_SIDE, "api_url": url}, tmp_path, env=env, timeout=60)
            assert run.returncode == 0, run.stderr
    finally:
        api.stop()


@pytest.mark.parametrize("kind", ["missing", "garbage"])
def test_a_bad_ca_bundle_is_one_line_naming_the_file(tmp_path, kind):
    bundle = tmp_path / "ca.pem"
    if kind == "garbage":
        bundle.write_text("not a certificate\n")
    api = _github(lambda h: h.send_body(200, b"[]"))
    try:
        run = run_tap({**GITHUB_SIDE, "api_url": api.url}, tmp_path, env={"REQUESTS_CA_BUNDLE": str(bundle)},
                      timeout=60)
    finally:
        api.stop()
    assert run.returncode == 1
    line = _one_error_line(run.stderr)
    assert f"CA bundle {bundle} (REQUESTS_CA_BUNDLE)" in line, line


@pytest.mark.parametrize(("proxy", "expected"), [
    ("http://127.0.0.1:{port}", "connection refused (via proxy http://127.0.0.1:{port})"),
    ("u:pw@127.0.0.1:{port}", "connection refused (via proxy http://127.0.0.1:{port})"),  # no scheme: http
    ("socks5://127.0.0.1:{port}", "the proxy socks5://127.0.0.1:{port} is a SOCKS proxy: install PySocks"),
])
def test_a_proxy_problem_on_the_github_side_names_the_proxy(tmp_path, proxy, expected):
    from tests.emulator.registry import refused_port

    config = {**GITHUB_SIDE, "api_url": "http://127.0.0.1:9"}
    with refused_port() as port:
        env = {"HTTP_PROXY": proxy.format(port=port), "HTTPS_PROXY": proxy.format(port=port), "NO_PROXY": ""}
        run = run_tap(config, tmp_path, env=env, timeout=60)
    assert run.returncode == 1
    line = _one_error_line(run.stderr)
    assert expected.format(port=port) in line, line
    assert "pw" not in line


def test_an_untrusted_github_certificate_is_not_retried(tmp_path):
    from tests.emulator.tls import self_signed

    _, context = self_signed(tmp_path, verifiable=False)
    api = _github(lambda h: h.send_body(200, b"[]"), tls_context=context)
    try:
        run = run_tap({**GITHUB_SIDE, "api_url": f"https://127.0.0.1:{api.server_address[1]}"}, tmp_path,
                      timeout=60)
    finally:
        api.stop()
    assert run.returncode == 1
    assert "TLS certificate did not verify" in _one_error_line(run.stderr)
    assert "retry" not in run.stderr


# Run as the console script does, with a stop sent as soon as a third-party package is imported.
_STOP_WHILE_IMPORTING = """
import builtins, os, signal, sys
real_import = builtins.__import__
def stopping_import(name, *args, **kwargs):
    if name.split(".")[0] in ("requests", "singer_sdk", "urllib3"):
        builtins.__import__ = real_import
        print("stopped while importing", name, "from", sys._getframe(1).f_code.co_name, flush=True)
        os.kill(os.getpid(), signal.SIGNUM)
    return real_import(name, *args, **kwargs)
builtins.__import__ = stopping_import
from tap_ghcr import __main__ as entry
sys.argv = ["tap-ghcr", "--about"]
entry.run()
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_while_the_sdk_is_imported_is_one_line(signum):
    """The SDK takes half a second to import: the console script takes signals before that (only the
    standard library is imported until `main` has set its handlers)."""
    code = _STOP_WHILE_IMPORTING.replace("SIGNUM", signal.Signals(signum).name)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 128 + signum, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert proc.stdout.startswith("stopped while importing requests from main"), proc.stdout
    assert proc.stderr.strip() == f"tap-ghcr: error: interrupted by {signal.Signals(signum).name} while starting"


@pytest.mark.parametrize("args", [["--about"], ["--discover"]])
def test_a_reader_that_closes_stdout_at_once_gets_one_line(tmp_path, args):
    """`tap-ghcr --discover | true`: Python's own "Exception ignored ... BrokenPipeError" and exit 120 before."""
    config = tmp_path / "config.json"
    config.write_text("{}")
    proc = subprocess.Popen([tap_executable(), "--config", str(config), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 1, stderr
    assert [line for line in stderr.splitlines() if " | INFO " not in line] == [
        "tap-ghcr: error: the reader of stdout closed it before the output ended"], stderr


def _secret_pieces(token: str) -> list[str]:
    """The forms a token could be printed in: as it is, escaped as Python shows it, and each line of it."""
    return [token, token.strip(), repr(token)[1:-1], *(p for p in token.split() if len(p) > 6)]


@pytest.mark.parametrize("where", ["config", "GITHUB_TOKEN", "TAP_GHCR_TOKEN"])
@pytest.mark.parametrize("padding", ["\n", " \t\r\n"])
def test_a_token_read_from_a_file_with_its_newline_still_works(world, tmp_path, where, padding):
    """Found by review: a secret file mounted into a container usually ends in a newline. Its token went
    into the header as it was, and the HTTP library's error printed it in full, with a traceback."""
    import os

    config = world.config()
    token = config.pop("token") + padding
    catalog = _rest_only_catalog(config, tmp_path)
    if where == "config":
        run = run_tap({**config, "token": token}, tmp_path, catalog=catalog)
        stdout, stderr, code = run.stdout, run.stderr, run.returncode
    elif where == "GITHUB_TOKEN":
        run = run_tap(config, tmp_path, catalog=catalog, env={"GITHUB_TOKEN": token})
        stdout, stderr, code = run.stdout, run.stderr, run.returncode
    else:
        catalog_file = tmp_path / "catalog.json"
        catalog_file.write_text(json.dumps(catalog))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_GHCR_") and k != "GITHUB_TOKEN"}
        env.update({"TAP_GHCR_TOKEN": token, "TAP_GHCR_API_URL": config["api_url"],
                    "TAP_GHCR_ORGANIZATIONS": '["acme"]', "TAP_GHCR_REGISTRY_URL": config["registry_url"],
                    "TAP_GHCR_RETRY_BASE_SECONDS": "0.02"})
        proc = subprocess.run([tap_executable(), "--config", "ENV", "--catalog", str(catalog_file)],
                              capture_output=True, text=True, env=env, timeout=120, check=False)
        stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
    assert code == 0, stderr[-3000:]
    assert any(json.loads(line)["type"] == "RECORD" for line in stdout.splitlines())
    for piece in _secret_pieces(token):
        assert piece not in stdout + stderr, "the token was printed"


@pytest.mark.parametrize("token", ["ghp_inside\nnewline0000000000000000000000000", "ghp_tab\tinside00000000000000000",
                                   "ghp_nul\x00inside000000000000000000000", "ghp_del\x7finside000000000000000000000",
                                   "ghp_space inside00000000000000000000000", "ghp_wide\u2028break000000000000000000"])
def test_a_token_with_a_break_inside_is_one_line_that_does_not_print_it(world, tmp_path, token):
    """A line break, control character or space inside a token (two lines pasted, a stray keystroke) is no
    token GitHub issues: one settings line, before any request, and the token is not printed."""
    run = run_tap(world.config(token=token), tmp_path)
    assert run.returncode == 1
    line = _one_error_line(run.stderr)
    assert line.startswith("tap-ghcr: error: invalid settings: `token`"), line
    assert not run.stdout.strip(), "nothing was extracted with it"
    for piece in _secret_pieces(token):
        assert piece not in run.stdout + run.stderr, "the token was printed"


def test_a_github_token_variable_with_a_break_inside_is_one_line_that_does_not_print_it(world, tmp_path):
    config = world.config()
    token = config.pop("token")[:20] + "\n" + "0" * 20
    run = run_tap(config, tmp_path, env={"GITHUB_TOKEN": token})
    assert run.returncode == 1
    assert _one_error_line(run.stderr).startswith("tap-ghcr: error: invalid settings: GITHUB_TOKEN holds")
    for piece in _secret_pieces(token):
        assert piece not in run.stdout + run.stderr, "the token was printed"


def test_a_catalog_stream_the_tap_does_not_know_is_named_in_a_warning(world, tmp_path):
    """Found by review: a catalog whose `tags` entry was renamed `tagz` synced no tags and said nothing."""
    config = world.config()
    catalog = _rest_only_catalog(config, tmp_path)
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == "package_versions":
            entry["tap_stream_id"] = entry["stream"] = "package_version"
    run = run_tap(config, tmp_path, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    assert ("the catalog's stream `package_version` is not one of this tap's, and is ignored; did you mean "
            "`package_versions`?") in run.stderr
    assert run.records("packages") and not run.records("package_versions")


def test_a_bad_images_entry_is_a_settings_line_before_any_output(world, tmp_path):
    """Found by review: it was named only when the sync reached it, after SCHEMA and STATE lines, and
    without the `invalid settings:` prefix."""
    run = run_tap(world.config(images=["acme/web", "not a reference!"]), tmp_path)
    assert run.returncode == 1
    line = _one_error_line(run.stderr)
    assert line.startswith("tap-ghcr: error: invalid settings: `images` entry 'not a reference!'"), line
    assert not run.stdout.strip()


def test_discovery_names_every_settings_problem_a_sync_would_stop_on(tmp_path):
    """Found by review: `--discover` failed on a GITHUB_TOKEN with a break inside, and said nothing of the
    tap's own settings problems (the SDK drops what validation returns there)."""
    secret = "secretenv" + "1" * 20
    run = run_tap({"token": "x y " + secret, "organisations": ["acme"], "max_workers": "8"}, tmp_path,
                  args=["--discover"])
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout)["streams"]
    warned = [line.split("invalid settings (a sync would stop here): ", 1)[1] for line in run.stderr.splitlines()
              if "invalid settings (a sync would stop here): " in line]
    assert [w.split(" ", 2)[:2] for w in warned] == [["`max_workers`", "must"], ["`token`", "holds"],
                                                     ["unknown", "setting"]], run.stderr
    assert "`organisations` is ignored" not in run.stderr, "not both a warning that it is ignored and an error"
    assert secret not in run.stdout + run.stderr
    run = run_tap({"organizations": ["acme"]}, tmp_path, args=["--discover"],
                  env={"GITHUB_TOKEN": secret[:10] + "\n" + secret[10:]})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "invalid settings (a sync would stop here): GITHUB_TOKEN holds" in run.stderr
    assert secret[10:] not in run.stdout + run.stderr


def test_a_password_before_an_images_host_is_not_printed(tmp_path):
    """Found by review: `bob:password@ghcr.io/a/b` was printed in full, under a hint about tags."""
    run = run_tap({"images": ["bob:hunter2secret@ghcr.io/a/b"]}, tmp_path)
    assert run.returncode == 1
    line = _one_error_line(run.stderr)
    assert "credentials do not go in `images`" in line and "***@ghcr.io/a/b" in line, line
    assert "hunter2secret" not in run.stdout + run.stderr


def test_a_catalog_entry_whose_stream_name_was_edited_is_one_line(world, tmp_path):
    """Found by review: an entry with `tap_stream_id` `tags` and `stream` `tagz` crashed the sync (KeyError)."""
    from tests.conftest import catalog_selecting

    config = world.config()
    catalog = catalog_selecting(config, tmp_path, {"packages", "package_versions", "tags"})
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == "tags":
            entry["stream"] = "tagz"
    run = run_tap(config, tmp_path, catalog=catalog)
    assert run.returncode == 1
    line = _one_error_line(run.stderr)
    assert "`tags`" in line and "`tagz`" in line and "stream_maps" in line, line
    assert not run.stdout.strip()


def test_discovery_warnings_mask_credentials_in_urls(tmp_path):
    """Found by the third review: the settings warnings of `--discover` were logged before the log handlers'
    redaction was installed."""
    run = run_tap({"organizations": ["acme"], "registry_url": "ftp://bob:hunter2secret@reg.example.com/v2",
                   "organisatons_x": 1}, tmp_path, args=["--discover"])
    assert run.returncode == 0, run.stderr[-2000:]
    assert "`registry_url` must match ^https?://, not \"ftp://***@reg.example.com/v2\"" in run.stderr
    assert "hunter2secret" not in run.stderr + run.stdout


def test_a_bad_sdk_setting_in_the_environment_is_one_line(tmp_path):
    """Found by the third review: TAP_GHCR_STREAM_MAPS that is not JSON crashed (JSONDecodeError); only the tap's
    own settings were checked."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_GHCR_")}
    env.update({"TAP_GHCR_STREAM_MAPS": "{bad", "TAP_GHCR_ORGANIZATIONS": '["acme"]'})
    proc = subprocess.run([tap_executable(), "--config", "ENV", "--discover"], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert proc.returncode == 1
    assert "TAP_GHCR_STREAM_MAPS" in _one_error_line(proc.stderr)


def test_upper_case_url_schemes_and_whole_number_floats_are_accepted(world, tmp_path):
    """Found by the third review: `HTTPS://` and `8.0` were refused, though both are what the user meant."""
    config = world.config(max_workers=4.0)
    config["api_url"] = config["api_url"].replace("http://", "HTTP://")
    run = run_tap(config, tmp_path, catalog=_rest_only_catalog(world.config(), tmp_path))
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.records("packages")
