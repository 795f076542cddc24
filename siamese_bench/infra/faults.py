"""Named fault points: a test kills the sweep exactly where a crash would hurt most, instead of
guessing a moment by timing. `SIAMESE_BENCH_FAULT=<point>` in a process's environment makes it
kill itself with SIGKILL (no cleanup, as a power cut or the OOM killer would) when it reaches
`fault_point(<point>)`; unset, a fault point costs one dictionary lookup."""

from __future__ import annotations

import os
import signal

FAULT_ENV = "SIAMESE_BENCH_FAULT"

# The points, and where they are:
RUN_FINISHED = "run-finished"  # sweep/pool.py: a worker's MLflow run just ended FINISHED, its trial not told yet


def fault_point(name: str) -> None:
    """Die here, by SIGKILL, when the environment names this point."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
