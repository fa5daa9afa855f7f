"""Keep secrets out of every message the tap writes.

A token can surface in places nobody planned for (an exception text, a URL a
user pasted with credentials in it), so log records are scrubbed at the
handler, not at each call site.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import quote, quote_plus

#: `user:password@` after a scheme: up to the authority's last `@` (a password may hold `@`), or, after
#: `user:` and no port, up to the next `@` (a password that holds `/` is no URL, but still a password).
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^/?#\s]*@|[^/@\s:\[\]]*:(?![0-9]*(?:[/?#\s]|$))[^@\s]*@)")
_secrets: set[str] = set()


def register_secret(value: object) -> None:
    """Remember a value that must never be printed, in each form an error text may show it in: as it is,
    stripped, escaped as `repr` shows a str or its UTF-8 bytes (an HTTP library's "Invalid header value
    b'Bearer ...\\n'"), as JSON escapes it, and percent-encoded."""
    if not isinstance(value, str):  # a wrong type is refused by the settings check, later
        return
    forms = {value, value.strip(), repr(value)[1:-1], repr(value.encode("utf-8", "surrogatepass"))[2:-1],
             json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    forms |= {quote(value, safe=""), quote(value), quote_plus(value)}  # as a URL or a form body would carry it
    _secrets.update(form for form in forms if len(form) >= 4)


def redact(text: str) -> str:
    """Replace every registered secret, and URL user-info, with `***`."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)


class RedactingFilter(logging.Filter):
    """Scrub the fully formatted message of every log record, and its traceback.

    The traceback is kept (a bug must stay reportable) but formatted here, scrubbed,
    into `exc_text`, which formatters print as it is; `exc_info` is dropped so that no
    formatter can print the raw exception text again.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        # One record, one line: a line break from a user's file (a stream name, a map's key) would forge one.
        record.msg, record.args = redact(record.getMessage()).replace("\r", "\\r").replace("\n", "\\n"), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(record.exc_text or _FORMATTER.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FORMATTER = logging.Formatter()


def install_log_redaction() -> None:
    """Attach the filter to every handler that exists now (the SDK's included)."""
    flt = RedactingFilter()
    loggers = [logging.getLogger(), *(
        logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
    )]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(flt)
