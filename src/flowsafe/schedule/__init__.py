"""``flowsafe schedule install|show|remove``: flowsafe runs by itself.

On a machine whose init is systemd, ``flowsafe-backup.service`` + ``.timer`` (backup,
then prune, of every site, nightly) and ``flowsafe-drill.service`` + ``.timer``; else
``/etc/cron.d/flowsafe`` with a logrotate file. jobs.py says what runs when; systemd.py
and cron.py write and read their files; run.py picks one and installs, shows, removes.

For tests, ``FLOWSAFE_SCHEDULE_ROOT=DIR`` makes DIR stand for ``/``: files go below it
(``DIR/etc/systemd/system``, ``DIR/etc/cron.d``, ``DIR/etc/logrotate.d``,
``DIR/var/log/flowsafe``), systemd counts as running when ``DIR/run/systemd/system``
exists, and ``systemctl --root=DIR`` enables the timers (nothing is started).
"""
