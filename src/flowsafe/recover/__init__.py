"""``flowsafe recover``: a dead site back on a new server in one command.

``prerequisites`` checks the machine (restic, MariaDB answering root over its socket,
PHP with mysqli), ``choice`` picks the site and snapshot the repository holds,
``progress`` keeps the state of a recover that was interrupted, ``handover`` says
what is left by hand, and ``run`` puts the steps in order on top of the checked
restore-elsewhere path (``restore/run.py``).
"""
