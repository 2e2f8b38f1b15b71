"""The update chapter of ``flowsafe demo`` (called by demo.py): the sample site becomes a
git clone with a newer version upstream, then ``update --dry-run`` and a safe update."""

from __future__ import annotations

from pathlib import Path

from flowsafe import render
from flowsafe.backup import ProgressFn
from flowsafe.config import load_config, save_config
from flowsafe.mariadb.instance import PrivateServer
from flowsafe.sample import SampleSite
from flowsafe.sample.upstream import make_updatable
from flowsafe.update.run import UpdateOptions, UpdateResult, run_update


def demo_update(config_file: Path, site_name: str, sample: SampleSite, server: PrivateServer,
                demo_folder: Path, progress: ProgressFn) -> UpdateResult:
    """Make ``sample`` updatable (its files then belong to www-data), show the dry run,
    update it. ITFlow's updater runs as the owner of the files, so the folders from
    ``demo_folder`` (which holds the site and the server) down to the site and to the
    server's socket are opened to www-data (mode 0755)."""
    for inside in (sample.path, Path(server.socket)):
        for folder in inside.parents:
            if folder == demo_folder or demo_folder in folder.parents:
                folder.chmod(0o755)
    make_updatable(sample, sample.path.parent / f"{sample.path.name}-upstream.git")
    config = load_config(config_file)
    site = config.sites[site_name]
    php = f"php -d mysqli.default_socket={server.socket} scripts/update_cli.php"
    update = site.update.model_copy(update={"commands": [f"{php} --update",
                                                         f"{php} --update_db"]})
    sites = {**config.sites, site_name: site.model_copy(update={"update": update})}
    save_config(config.model_copy(update={"sites": sites}), config_file)
    config = load_config(config_file)

    def say(line: str) -> None:
        render.out.print(line, markup=False)

    dry = run_update(config, site_name, UpdateOptions(dry_run=True),
                     confirm=lambda plan: False, say=say, progress=progress)
    render.show_update_plan(dry.plan)
    result = run_update(config, site_name, UpdateOptions(), confirm=lambda plan: True,
                        say=say, progress=progress)
    render.show_update(result)
    return result
