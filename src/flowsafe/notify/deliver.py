"""Sending a notification to every apprise URL of ``[notify] urls``.

apprise bounds each delivery with its own socket timeouts (4 s to connect, 4 s to read,
unless a URL sets ``cto``/``rto``). A URL that does not take the message gives one line
naming it with its password hidden (apprise's privacy form) and apprise's reason; apprise's
own log lines are kept from flowsafe's log, since they may quote a URL.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

log = logging.getLogger(__name__)


@contextmanager
def _apprise_log() -> Iterator[io.StringIO]:
    """apprise's warnings, captured instead of reaching flowsafe's log."""
    logger = logging.getLogger("apprise")
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(message)s"))
    propagate, level = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    try:
        yield captured
    finally:
        logger.removeHandler(handler)
        logger.propagate, logger.level = propagate, level


def _scrub(text: str, url: str) -> str:
    """``text`` without the URL's user-info (user:password@), wherever apprise quoted it."""
    found = re.match(r"^[^:]+://([^@/]+)@", url)
    if found:
        text = text.replace(found.group(1), "***")
    return text.replace(url, "***")


def send(urls: Sequence[str], title: str, body: str) -> list[str]:
    """Deliver to every URL; returns one line per URL that did not take it."""
    import apprise

    failures = []
    for url in urls:
        with _apprise_log() as captured:
            plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
            shown = "an apprise URL"
            if plugin is not None:
                shown = str(plugin.url(privacy=True)).split("?", 1)[0]  # type: ignore[no-untyped-call]
            try:
                delivered = plugin is not None and bool(plugin.notify(body=body, title=title))
            except Exception as exc:  # a plugin bug must not break the command
                captured.write(f"{type(exc).__name__}: {exc}\n")
                delivered = False
        if not delivered:
            reasons = [line for line in captured.getvalue().splitlines() if line.strip()]
            reason = _scrub(" | ".join(reasons[-2:]) or "apprise gave no reason", url)
            failures.append(f"notification to {shown} failed: {reason}")
            log.warning("%s", failures[-1])
    return failures
