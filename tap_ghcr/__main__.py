"""Console entry point: the SDK's CLI, with every failure ending in one `tap-ghcr: error:` line.

A failure the user can fix (a file, a setting, the token, the network) is that
one line and exit 1, no traceback. A bug in the tap prints its traceback first
(secrets replaced), so it can be reported, then the same one line.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
import typing as t

if t.TYPE_CHECKING:
    import requests

# The standard library only, up to `main`: it takes SIGINT / SIGTERM before the SDK is imported (half a
# second), so a stop while starting is one line too.

DEFAULT_API_URL = "https://api.github.com"


def _early_signal(signum: int, frame: t.Any) -> None:
    """SIGINT / SIGTERM before the tap is built (it installs its own handler): nothing to save yet."""
    print(f"tap-ghcr: error: interrupted by {signal.Signals(signum).name} while starting", file=sys.stderr,
          flush=True)
    os._exit(128 + signum)


def main() -> None:
    """Run the tap; turn failures into `tap-ghcr: error: ...` and exit code 1."""
    signal.signal(signal.SIGINT, _early_signal)
    signal.signal(signal.SIGTERM, _early_signal)
    import requests
    from singer_sdk.exceptions import FatalAPIError, MappingError, RetriableAPIError

    from tap_ghcr.errors import GitHubNotFoundError, TapGHCRError
    from tap_ghcr.redact import redact
    from tap_ghcr.settings import check_command_line

    try:
        # Files first: a bad --config/--state/--catalog is named before any request.
        file_config = check_command_line(sys.argv[1:])
    except TapGHCRError as exc:
        _fail(str(exc))
    api_url = _api_url(file_config)

    from tap_ghcr.tap import TapGHCR  # imported late so `--help` stays fast

    try:
        TapGHCR.cli()
    except GitHubNotFoundError as exc:
        _fail(_not_github(api_url) or str(exc))
    except (TapGHCRError, FatalAPIError) as exc:
        _fail(str(exc))
    except RetriableAPIError as exc:  # a 5xx (or 429) that lasted through every retry
        _fail(f"{exc}, even after retries: GitHub at `api_url` {api_url} is failing; try again later")
    except requests.exceptions.ConnectionError as exc:  # refused, unresolvable, connect timeout
        where = _server(exc) or "the server"
        _fail(f"could not connect to {where}: check `api_url` / `registry_url` and the network")
    except requests.exceptions.Timeout as exc:  # connected, then no answer
        _fail(f"{_server(exc) or api_url} did not answer in time, even after retries: "
              f"check `api_url` ({api_url}) and the network")
    except requests.exceptions.RequestException as exc:  # chunked encoding, content decoding...
        _fail(f"the connection to {_server(exc) or api_url} broke off ({exc.__class__.__name__}), even after "
              f"retries: check `api_url` ({api_url}) and the network")
    except MappingError as exc:  # the user's stream_maps, not a bug of the tap
        _fail(f"`stream_maps`: {exc}")
    except KeyboardInterrupt:
        _fail("interrupted")
    except Exception as exc:  # a bug: keep its traceback for the report
        sys.stdout.flush()
        print(redact(traceback.format_exc()).rstrip(), file=sys.stderr)
        message = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
        _fail(f"internal error: {message}; please report it with the lines above")


def _api_url(file_config: dict) -> str:
    """`api_url` as the tap will read it: from the config files, else TAP_GHCR_API_URL with ENV."""
    value = file_config.get("api_url")
    if not value and ("ENV" in sys.argv or "--config=ENV" in sys.argv):
        value = os.environ.get("TAP_GHCR_API_URL")
    return str(value or DEFAULT_API_URL).rstrip("/")


def _server(exc: requests.exceptions.RequestException) -> str:
    url = getattr(exc.request, "url", None) or ""
    return "/".join(url.split("/")[:3])


def _not_github(api_url: str) -> str | None:
    """After a 404 on an owner: the message blaming `api_url` if it is not GitHub's REST API.

    GitHub (and GitHub Enterprise Server's /api/v3) answer `GET {api_url}/` with a JSON
    object, without a token; a wrong path answers 404, or a web page. A probe that does
    not get through at all says nothing, and the owner's 404 stands.
    """
    import requests

    try:
        response = requests.get(f"{api_url}/", headers={"Accept": "application/vnd.github+json"}, timeout=15)
    except requests.RequestException:
        return None
    try:
        looks_like_github = response.ok and isinstance(response.json(), dict)
    except ValueError:
        looks_like_github = False
    if looks_like_github:
        return None
    return (f"`api_url` {api_url} is not GitHub's REST API (GET {api_url}/ answered {response.status_code}"
            f"{'' if response.ok else ' ' + response.reason}): use https://api.github.com, or "
            "https://HOST/api/v3 for GitHub Enterprise Server")


def _fail(message: str) -> t.NoReturn:
    """The one error line, then exit. A registry worker may sit in a slow read, and the interpreter
    waits for worker threads at exit: with any still running, the process ends at once instead."""
    from tap_ghcr.redact import redact

    _flushed()
    print(f"tap-ghcr: error: {redact(message)}", file=sys.stderr, flush=True)
    sys.exit(1)


#: Singer messages leave in writes of up to this size (a pipe's capacity on Linux). Each write lets go
#: of the GIL, and taking it back from eight busy registry workers cost more than the write: with
#: Python's 8 KiB, a sync with SBOMs spent a fifth of its CPU there (`scripts/bench.py --documents`).
#: Every message but RECORD still flushes, and a signal's STATE waits for the records before it.
STDOUT_BUFFER = 64 * 1024


def _buffer_stdout() -> None:
    """Give stdout a STDOUT_BUFFER buffer when it is a pipe or a file (a terminal keeps its own).

    Also under PYTHONUNBUFFERED, which container images often set for their logs: stdout is the
    tap's data, it flushes every message but RECORD itself, and unbuffered it made each record a
    write of its own."""
    if sys.stdout is None or sys.stdout.isatty():
        return
    sys.stdout.flush()
    sys.stdout = open(
        sys.stdout.fileno(), "w", buffering=STDOUT_BUFFER, encoding="utf-8", closefd=False
    )


def run() -> None:
    """The console script: `main`, an error line if stdout's reader left before the output ended, and
    an exit that does not wait for registry workers.

    The interpreter joins worker threads at exit; one sitting in a slow read kept the process alive
    long after its error line. (Tests call `main` in-process and get a plain SystemExit.)
    """
    _buffer_stdout()
    try:
        main()
        code: t.Any = 0
    except SystemExit as exc:
        code = exc.code
    if not _flushed():  # what `--discover` or `--about` left in the buffer (a sync says so itself)
        print("tap-ghcr: error: the reader of stdout closed it before the output ended", file=sys.stderr)
        code = 1
    if any(thread.name.startswith("registry") and thread.is_alive() for thread in threading.enumerate()):
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 1)
    sys.exit(code)


def _flushed() -> bool:
    """Flush stdout; False if its reader has gone, and then what is left goes nowhere, quietly, at exit too."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return False
    return True


if __name__ == "__main__":
    run()
