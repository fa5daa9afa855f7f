"""What a sync says at the default level: progress lines, the summary, and warnings that mean something.

The SDK's own INFO chatter (one line per stream start, per child stream, per
request as a METRIC) would bury them; it is dropped here, and the METRIC lines
come back with `TAP_GHCR_METRICS=1` (or the SDK's `SINGER_SDK_LOG_CONFIG`).
"""

from __future__ import annotations

import logging
import os

from singer_sdk.metrics import get_metrics_logger

#: Messages of the SDK's that say nothing a user acts on, by their start.
SDK_CHATTER = (
    "Skipping parse of env var settings",
    "Parsing env var for settings config",
    "Parsing '",  # "... config from env variable", once per setting
    "Added '",  # "... as child stream to ..."
    "Beginning sync of '",
    "Starting incremental sync of '",
    "Starting full table sync of '",
    "Skipping deselected stream",
    # Logged on a stream's logger before a handled error surfaces as the one `tap-ghcr: error:` line.
    "An unhandled error occurred while syncing",
)


class DropSDKChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(SDK_CHATTER)


def quiet_sdk(tap_name: str, stream_names: list[str]) -> None:
    """Filter the chatter on the tap's and each stream's logger (a logger's filters do not see its children's
    records); keep METRIC lines only when asked for."""
    chatter = DropSDKChatter()
    for name in [tap_name, *(f"{tap_name}.{stream}" for stream in stream_names)]:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropSDKChatter) for f in logger.filters):
            logger.addFilter(chatter)
    if not os.environ.get("TAP_GHCR_METRICS"):
        get_metrics_logger().setLevel(logging.WARNING)
