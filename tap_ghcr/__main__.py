"""Console entry point: the SDK's CLI, with user errors as one line and exit 1."""

from __future__ import annotations

import sys

import requests
from singer_sdk.exceptions import FatalAPIError

from tap_ghcr.errors import TapGHCRError
from tap_ghcr.redact import redact


def main() -> None:
    """Run the tap; turn known failures into `tap-ghcr: error: ...` and exit code 1."""
    from tap_ghcr.tap import TapGHCR  # imported late so `--help` stays fast

    try:
        TapGHCR.cli()
    except (TapGHCRError, FatalAPIError) as exc:
        _fail(str(exc))
    except requests.exceptions.ConnectionError as exc:
        url = getattr(exc.request, "url", None) or ""
        where = "/".join(url.split("/")[:3]) or "the server"
        _fail(f"could not connect to {where}: check `api_url` / `registry_url` and the network")
    except KeyboardInterrupt:
        _fail("interrupted")


def _fail(message: str) -> None:
    sys.stdout.flush()
    print(f"tap-ghcr: error: {redact(message)}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()
