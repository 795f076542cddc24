"""Where worker processes come from: a fork server that has imported what the workers need
(torch, Lightning, the training code) once and has run nothing. A new worker (at start, or in
place of one that died) is forked with them loaded instead of importing them again (about 10 s
of CPU time each on a slow host: docs/performance.md), and no worker is forked from a process
whose OpenMP or CUDA state is live (which a `fork` of the caller itself would risk).

Only the standard library here: the command line starts the server before it imports torch
itself, so the two import at once on two cores. A process has one server; the modules of the
first call are the ones it preloads."""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
from collections.abc import Sequence
from multiprocessing import forkserver
from multiprocessing.context import ForkServerContext
from typing import Any

MARK = "multiprocessing.forkserver"  # in the command line of a fork server and of every fork of it


def available_cores() -> int:
    """The cores this process may use (its affinity mask, e.g. under taskset or a container's cpuset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def context(preload: Sequence[str]) -> ForkServerContext:
    """The multiprocessing context to start workers with; the server imports `preload` first."""
    ctx = mp.get_context("forkserver")
    assert isinstance(ctx, ForkServerContext)
    ctx.set_forkserver_preload(list(preload))  # no effect once this process's server runs
    return ctx


def start(preload: Sequence[str]) -> None:
    """Start this process's fork server now, so that its imports overlap with the caller's."""
    context(preload)
    forkserver.ensure_running()


def become_worker(environ: dict[str, str]) -> int:
    """First steps of a forked worker: die with the fork server (which exits when its caller
    does, so a killed caller leaves no workers behind), take the caller's environment as of when
    it asked for this worker (the server's is as of its own start), and return the server's pid."""
    server = os.getppid()
    try:  # Linux: SIGKILL when the parent dies
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    os.environ.clear()
    os.environ.update(environ)
    return server


def workers_of(pid: int) -> list[Any]:
    """The workers forked for process `pid` or its descendants (psutil processes): the children of
    its fork server, which share the server's command line. For tests and the fault soak, which
    kill one; empty once the process has ended."""
    import psutil

    def forked(p: Any) -> bool:
        try:
            return MARK in " ".join(p.cmdline())
        except psutil.Error:  # ended while we looked
            return False

    try:
        tree = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    fork_pids = {p.pid for p in tree if forked(p)}
    return [p for p in tree if p.pid in fork_pids and p.ppid() in fork_pids]  # not the server itself
