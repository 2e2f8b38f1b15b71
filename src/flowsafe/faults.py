"""Fault injection for the crash tests: ``FLOWSAFE_FAULT=<step>`` kills flowsafe
(SIGKILL, as ``kill -9`` would) when it reaches that named step.

Steps are named where they are declared with ``checkpoint("...")``; the README's
restore runbook lists them. Unset, a checkpoint does nothing.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "FLOWSAFE_FAULT"


def checkpoint(step: str) -> None:
    """Die here, now, by SIGKILL, if the environment asks for a fault at ``step``."""
    if os.environ.get(FAULT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
