"""``flowsafe update``: ITFlow's own updater between a pre-update and a post-update backup,
with its outcome checked by flowsafe (git.py: the clone; steps.py: the commands;
checks.py: the outcome; run.py: the order, the failure message and the rollback)."""
