"""The dead-man's switch: pings to a site's ``ping_url`` (healthchecks.io, Uptime Kuma,
Cronitor style): ``<url>/start`` when a backup starts, ``<url>`` when it succeeded,
``<url>/fail`` when it failed, each a POST with the run's summary as body.

Every ping is bounded by ``TIMEOUT`` seconds and goes out once; a ping that fails is
reported in one line (the URL's path, which may hold the check's key, is not shown).
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Literal

from flowsafe import __version__

log = logging.getLogger(__name__)

TIMEOUT = 10.0
Kind = Literal["start", "success", "fail"]


def ping_target(url: str, kind: Kind) -> str:
    """The URL to call for ``kind``."""
    return url if kind == "success" else f"{url}/{kind}"


def send(url: str, kind: Kind, body: str, timeout: float = TIMEOUT) -> str | None:
    """POST the ping; None when it was taken, else one line saying why not."""
    target = ping_target(url, kind)
    host = urllib.parse.urlsplit(url).netloc.rsplit("@", 1)[-1]
    request = urllib.request.Request(
        target, data=body.encode("utf-8")[:10_000], method="POST",
        headers={"Content-Type": "text/plain; charset=utf-8",
                 "User-Agent": f"flowsafe/{__version__}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read(1024)
    except urllib.error.HTTPError as exc:
        problem = f"answered HTTP {exc.code}"
    except TimeoutError:
        problem = f"did not answer within {timeout:g} s"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        problem = (f"did not answer within {timeout:g} s" if isinstance(reason, TimeoutError)
                   else f"unreachable ({reason})")
    else:
        return None
    line = f"{kind} ping to {host} {problem}"
    log.warning("%s", line)
    return line
