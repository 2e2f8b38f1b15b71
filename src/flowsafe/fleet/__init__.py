"""What repositories hold, per site: backups, drill, key and run records from one snapshot
listing per repository, and every site found there (the fleet view of ``status --all`` and
``report --all``)."""
