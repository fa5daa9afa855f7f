"""Every failure ends with one `tap-ghcr: error:` line; user mistakes have no traceback and send no request."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import typing as t

import pytest
import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_ghcr.registry.retry import GITHUB_POLICY
from tests.conftest import FAST_RETRY_BASE, run_tap, tap_executable


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("tap-ghcr: error:")]


def one_clean_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr
    assert stderr.rstrip().splitlines()[-1] == lines[0], "the error line is the last line"
    return lines[0]


@pytest.fixture
def tripwire() -> t.Iterator[str]:
    """A URL nothing may connect to: any connection attempt is queued and found at the end."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.setblocking(False)
    try:
        server.accept()
    except BlockingIOError:
        pass
    else:
        pytest.fail("a request was sent before the error")
    finally:
        server.close()


def run_args(args: list[str], tmp_path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TAP_GHCR_") and k != "GITHUB_TOKEN"}
    full.update(env or {})
    return subprocess.run([tap_executable(), *args], capture_output=True, text=True, timeout=120, env=full,
                          cwd=tmp_path, check=False)


def config_for(url: str, **settings: t.Any) -> dict:
    return {"token": "ghp_" + "x" * 36, "organizations": ["acme"], "api_url": url, "registry_url": url, **settings}


@pytest.mark.parametrize(("files", "args", "fragment"), [
    ({"c.json": "nope{"}, ["--config", "c.json"], "config file c.json is not valid JSON"),
    ({"c.json": '{"organizations": ["acme"], "max_workers": NaN}'}, ["--config", "c.json"],
     "config file c.json is not valid JSON (NaN is not a JSON value)"),  # Python's json reads NaN; the SDK not
    ({"c.json": "CONFIG", "s.json": '{"bookmarks": {"packages": -Infinity}}'}, ["--config", "c.json", "--state",
     "s.json"], "state file s.json is not valid JSON (-Infinity is not a JSON value)"),
    ({}, ["--config", "missing.json"], "config file missing.json does not exist"),
    ({"c.json": "[]"}, ["--config", "c.json"], "config file c.json holds a list, not a JSON object"),
    ({"c.json": "CONFIG", "s.json": ""}, ["--config", "c.json", "--state", "s.json"], "state file s.json is empty"),
    ({"c.json": "CONFIG", "s.json": "{bookmarks"}, ["--config", "c.json", "--state", "s.json"],
     "state file s.json is not valid JSON"),
    ({"c.json": "CONFIG", "s.json": '{"bookmarks": null}'}, ["--config", "c.json", "--state", "s.json"],
     "state file s.json: `bookmarks` must be an object, not null"),
    ({"c.json": "CONFIG", "k.json": '{"streams": [{"tap_stream_id": "tags"}]}'},
     ["--config", "c.json", "--catalog", "k.json"], "catalog k.json has no `packages` stream"),
])
def test_bad_files_are_one_line_before_any_request(tmp_path, tripwire, files, args, fragment):
    for name, content in files.items():
        (tmp_path / name).write_text(json.dumps(config_for(tripwire)) if content == "CONFIG" else content)
    run = run_args(args, tmp_path)
    assert run.returncode == 1, run.stderr
    line = one_clean_error_line(run.stderr)
    assert fragment in line, line
    assert ": " in line.split(fragment, 1)[1], "it says what to do"


def test_a_malformed_environment_setting_is_one_line(tmp_path, tripwire):
    env = {"TAP_GHCR_MAX_WORKERS": "eight", "TAP_GHCR_API_URL": tripwire, "TAP_GHCR_REGISTRY_URL": tripwire,
           "TAP_GHCR_ORGANIZATIONS": '["acme"]', "TAP_GHCR_TOKEN": "ghp_" + "x" * 36}
    run = run_args(["--config", "ENV"], tmp_path, env)
    assert run.returncode == 1
    line = one_clean_error_line(run.stderr)
    assert "TAP_GHCR_MAX_WORKERS" in line and "`max_workers`" in line and "whole number" in line


@pytest.mark.parametrize(("bad", "fragment"), [
    ({"start_date": "2024-13-01"}, "`start_date` '2024-13-01' is not a date-time"),
    ({"organizations": [""]}, "`organizations` entry '' is no GitHub login"),
    ({"organizations": [], "users": [""]}, "`users` entry '' is no GitHub login"),
    ({"package_patterns": []}, "`package_patterns` is empty"),
])
def test_settings_that_would_fail_late_fail_up_front(tmp_path, tripwire, bad, fragment):
    run = run_tap(config_for(tripwire, **bad), tmp_path)
    assert run.returncode == 1
    line = one_clean_error_line(run.stderr)
    assert line.startswith("tap-ghcr: error: invalid settings: ") and fragment in line, line


def test_a_misspelled_setting_is_named_with_the_closest_known_one(tmp_path):
    run = run_tap({"organisations": ["acme"]}, tmp_path, args=["--discover"])
    assert run.returncode == 0, run.stderr
    assert "unknown setting `organisations`: did you mean `organizations`?" in run.stderr  # a sync stops on it
    run = run_tap({"organizations": ["acme"], "package_pattern": ["a*"]}, tmp_path, args=["--discover"])
    assert run.returncode == 0, run.stderr
    assert "unknown setting `package_pattern` is ignored; did you mean `package_patterns`?" in run.stderr


def test_an_api_url_with_a_wrong_path_is_blamed_on_api_url(world, tmp_path):
    wrong = world.github.url + "/wrong"
    run = run_tap(world.config(api_url=wrong), tmp_path)
    assert run.returncode == 1
    line = one_clean_error_line(run.stderr)
    assert f"`api_url` {wrong} is not GitHub's REST API" in line, line
    assert "acme" not in line, "the organization is not to blame"


def test_github_5xx_after_every_retry_is_one_line_naming_api_url(world, tmp_path, fault_proxy):
    from tests.emulator.proxy import Faults

    proxy = fault_proxy(world.github.url, Faults(error_rate=1.0))
    run = run_tap(world.config(api_url=proxy.url), tmp_path)
    assert run.returncode == 1
    line = one_clean_error_line(run.stderr)
    assert "GitHub answered 502" in line and "even after retries" in line and f"`api_url` {proxy.url}" in line
    # The production retry path, every try of it, at the hidden `retry_base_seconds` the tests run with:
    # read from a config file, it is a Decimal, and it was once ignored (seven waits of 0.5 to 30 s).
    waits = [float(w) for w in re.findall(r"GitHub request failed \(502\); retry \d+ in ([\d.]+) s", run.stderr)]
    assert len(waits) == 7 and max(waits) <= GITHUB_POLICY.scaled(FAST_RETRY_BASE).cap, waits


def test_an_unknown_organization_is_still_blamed_on_the_organization(world, tmp_path):
    run = run_tap(world.config(organizations=["no-such-org"], users=[]), tmp_path)
    line = one_clean_error_line(run.stderr)
    assert "no-such-org" in line and "api_url" not in line


# Failures of a running sync, raised where the SDK would raise them -------------------------


SECRET = "ghp_internalinternalinternalinternal00"


def run_main(monkeypatch, capsys, exc: BaseException) -> tuple[int, str]:
    """`tap-ghcr` (the console entry point) in-process, with the sync raising `exc`."""
    from tap_ghcr import __main__ as entry
    from tap_ghcr.redact import register_secret
    from tap_ghcr.tap import TapGHCR

    register_secret(SECRET)

    def crash() -> None:
        raise exc

    monkeypatch.setattr(TapGHCR, "cli", crash)
    monkeypatch.setattr(sys, "argv", ["tap-ghcr", "--config", "ENV"])
    monkeypatch.setenv("TAP_GHCR_API_URL", "http://127.0.0.1:9/api/v3")
    with pytest.raises(SystemExit) as exited:
        entry.main()
    return int(exited.value.code or 0), capsys.readouterr().err


def test_a_bug_prints_its_redacted_traceback_then_one_line(monkeypatch, capsys):
    code, err = run_main(monkeypatch, capsys, KeyError(f"token {SECRET}"))
    assert code == 1
    assert "Traceback (most recent call last)" in err and "in crash" in err
    assert SECRET not in err
    lines = error_lines(err)
    assert lines == ["tap-ghcr: error: internal error: KeyError: 'token ***'; please report it with the lines above"]
    assert err.rstrip().splitlines()[-1] == lines[0]


def _response(status: int) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.url = "http://127.0.0.1:9/api/v3/orgs/acme/packages"
    return response


@pytest.mark.parametrize(("exc", "fragment"), [
    (RetriableAPIError("GitHub answered 502 for /api/v3/orgs/acme/packages", _response(502)),
     "GitHub answered 502 for /api/v3/orgs/acme/packages, even after retries"),
    (requests.exceptions.ReadTimeout("read timed out", request=requests.Request("GET", "http://127.0.0.1:9/x")),
     "http://127.0.0.1:9 did not answer in time, even after retries"),
    (requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead"),
     "the connection to http://127.0.0.1:9/api/v3 broke off (ChunkedEncodingError)"),
])
def test_network_failures_after_retries_are_one_line_naming_api_url(monkeypatch, capsys, exc, fragment):
    code, err = run_main(monkeypatch, capsys, exc)
    assert code == 1
    line = one_clean_error_line(err)
    assert fragment in line and "api_url" in line, line


def test_log_records_keep_their_traceback_with_secrets_replaced():
    from tap_ghcr.redact import register_secret

    register_secret(SECRET)
    with _filtered_logger("tap-ghcr.test-redaction") as (logger, stream):
        try:
            raise ValueError(f"bad {SECRET}")
        except ValueError:
            logger.exception("failed with %s", SECRET)
    text = stream.getvalue()
    assert "Traceback (most recent call last)" in text and "ValueError: bad ***" in text
    assert text.startswith("failed with ***") and SECRET not in text


@pytest.mark.parametrize("secret", ["ghp_line\nbreak0000", "ghp_tail00000000\n", "ghp_ctl\x01\x7f000",
                                    "ghp_wide\u00e9\u2028x000", "ghp_q\"u\\o't%e+/=x9"])
def test_a_secret_is_masked_in_the_escaped_form_python_prints_it_in(secret):
    """An exception's text shows a header as `repr` shows it: `\\n` as two characters, non-ASCII as `\\xNN`
    bytes. Found by review: `Invalid header value b'Bearer ghp_...\\n'` printed the token."""
    from tap_ghcr.redact import redact, register_secret

    register_secret(secret)
    from urllib.parse import quote, quote_plus

    for shown in (repr(secret), repr(f"Bearer {secret}".encode()), f"Bearer {secret}", str([secret]),
                  quote(f"Bearer {secret}", safe=""), quote_plus(secret), json.dumps(secret)):
        masked = redact(f"Invalid header value {shown}")
        assert "ghp_" not in masked, masked


def test_a_misspelled_scope_with_no_scope_given_fails_before_reading_the_tokens_own_packages(world, tmp_path):
    """Found by review: `organisations` only warned, then the tap read the token's own packages and exited 0."""
    config = world.config()
    config["organisations"] = config.pop("organizations")
    config.pop("users", None)
    requests_before = len(world.github.log)
    run = run_tap(config, tmp_path)
    assert run.returncode == 1
    line = one_clean_error_line(run.stderr)
    assert line.startswith("tap-ghcr: error: invalid settings: unknown setting `organisations`: did you mean "
                           "`organizations`?"), line
    assert not run.stdout.strip()
    assert len(world.github.log) == requests_before, "GitHub was asked (the token's own packages)"


def test_a_log_record_is_one_line_whatever_a_user_file_put_in_it():
    """Found by the third review: a stream map's key or a catalog stream name holding a line break forged a
    second log line. The traceback keeps its lines."""
    with _filtered_logger("tap-ghcr.test-one-line") as (logger, stream):
        logger.warning("stream %s", "tags\nFAKE | ERROR | forged\r")
        try:
            raise ValueError("two\nlines")
        except ValueError:
            logger.exception("failed")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "stream tags\\nFAKE | ERROR | forged\\r"
    assert lines[1] == "failed" and lines[2] == "Traceback (most recent call last):"


@pytest.mark.parametrize("text", ["https://bob:abc/defhunter2@reg.example.com/v2", "http://:hunter2@host",
                                  "https://bob:hunter2@host:5000/x", "https://bot:p@sshunter2@registry.example/v2"])
def test_url_credentials_are_masked_even_with_a_slash_or_at_in_the_password(text):
    from tap_ghcr.redact import redact

    masked = redact(f"could not reach {text}")
    assert "hunter2" not in masked and "***@" in masked, masked


@pytest.mark.parametrize("text", ["https://npm.pkg.github.com:443/@octo/pkg failed", "http://[::1]:5000/v2/o/n/blobs/x@y",
                                  '["https://h:1/a","mail@x.org"]', "https://ghcr.io/v2/acme/web@sha256:abc",
                                  "docker-image://docker.io/library/alpine@sha256:abc"])
def test_urls_without_credentials_are_left_as_they_are(text):
    """Found by the fourth review: a port before an `@` in the path masked the host and path."""
    from tap_ghcr.redact import redact

    assert redact(text) == text


@contextlib.contextmanager
def _filtered_logger(name: str) -> t.Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose one handler has the tap's RedactingFilter, writing to the yielded StringIO."""
    from tap_ghcr.redact import RedactingFilter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
