"""Fault injection for crash tests, off unless an environment variable asks.

With RXCAST_TRAINER_CRASH_AT=<point>, the process kills itself (SIGKILL: no
cleanup, no flushing, like a power cut) when it reaches that point. The
points, in the order a publish passes them:

- publish:model_staged     the model file is written to the staging area
- publish:manifest_staged  the manifest is written too, not yet committed
- publish:committed        the version is committed, no alias moved yet
- alias:recorded           an alias move is in the history, the pointer not yet updated
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "RXCAST_TRAINER_CRASH_AT"
POINTS = ("publish:model_staged", "publish:manifest_staged", "publish:committed", "alias:recorded")


def crash_point(name: str) -> None:
    """Die here if the environment names this point."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
