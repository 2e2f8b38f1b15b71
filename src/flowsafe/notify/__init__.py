"""Speaking up: notifications through apprise, the per-site dead-man's switch ping,
Prometheus textfile metrics, and run records in the repository, all fired by
``announce.before_run`` / ``announce.after_run`` when a command starts or finishes for a site.
Nothing here ever changes a command's own result or exit code."""
