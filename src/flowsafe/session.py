"""Opens a site under its lock and repairs what a crashed run left behind.

Every command that changes a site (backup, prune, restore, undo) goes through
``locked_site``: after ``kill -9`` of an earlier run it removes restic's stale
locks and the stale staging folder, and puts back a half-done restore swap; a run that
fails removes the stale lock a restic child it stopped may have left.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from flowsafe.config import Config, select_site
from flowsafe.errors import FlowsafeError
from flowsafe.lock import site_lock
from flowsafe.sites import Site, open_site
from flowsafe.swap import journal

log = logging.getLogger(__name__)


@contextmanager
def locked_site(config: Config, name: str | None, action: str) -> Iterator[Site]:
    """The site, held exclusively for ``action``, with any crash leftovers repaired."""
    site_name, _ = select_site(config, name)
    with site_lock(config.state_dir, site_name, action) as held:
        journal.recover(config.state_dir, site_name,
                        lambda: open_site(config, site_name).admin())
        site = open_site(config, site_name)
        if held.previous_crashed:
            log.warning("the previous flowsafe %s of '%s' did not finish; cleaning up",
                        held.previous.get("action", "run"), site.name)
            site.restic.unlock()
            shutil.rmtree(site.staging, ignore_errors=True)
        try:
            yield site
        except BaseException:
            with suppress(FlowsafeError):  # a restic child stopped mid-run leaves its lock
                site.restic.unlock()
            raise
