"""The off-site copy (3-2-1): a site's snapshots copied with ``restic copy`` into the
repositories its ``copy_to`` names, each repository keeping its own password."""
