"""The sweep's worker processes: N workers, one pipe each, forked ready by the fork server
(infra/forkserver.py). The parent hands each a job (one Task, or one cell's seeds as Tasks
to train as one stack), makes the MLflow calls its worker sends (only the parent writes to
MLflow), and learns how each task ended; a worker that dies is seen at once, by its closed
pipe, and every task it still held is reported lost."""

from __future__ import annotations

import logging
import multiprocessing.connection as mp_connection
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from siamese_bench.infra import forkserver
from siamese_bench.infra.faults import RUN_FINISHED, fault_point
from siamese_bench.sweep import messages as msg

if TYPE_CHECKING:  # light to import: the command line reads PRELOAD before it loads torch
    from siamese_bench.infra.tracking import Tracker
    from siamese_bench.sweep.worker import Task

log = logging.getLogger(__name__)

# what the fork server imports before it forks a worker: the heavy part of a worker's start-up
PRELOAD: tuple[str, ...] = ("siamese_bench.sweep.worker", "siamese_bench.training.run", "siamese_bench.data")


@dataclass
class Outcome:
    kind: str  # "done", "pruned" or "failed"
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    epochs: int = 0
    data_variant: str = ""
    failure: str = "error"  # for "failed": diverged, error or lost (see failure_kind)


@dataclass
class WorkerHandle:
    proc: Any  # multiprocessing Process
    conn: Any  # the parent's end of the worker's pipe
    tasks: dict[str, Task] = field(default_factory=dict)  # its job's tasks not ended yet, by key


class WorkerPool:
    """N workers, one pipe each; the parent dispatches jobs (tuples of Tasks) and applies their
    tracking messages. A worker that dies is seen at once (its pipe closes), the tasks it
    held are reported lost, and a new worker takes its place."""

    def __init__(self, workers: int, tracker: Tracker, threads: int) -> None:
        self.ctx = forkserver.context(PRELOAD)
        self.tracker, self.n, self.threads = tracker, workers, threads
        self.workers = [self._spawn() for _ in range(workers)]
        self.run_ids: dict[str, str] = {}
        self.ended: set[str] = set()  # task keys whose MLflow run was ended by its worker

    def _spawn(self) -> WorkerHandle:
        from siamese_bench.sweep.worker import worker_main

        ours, theirs = self.ctx.Pipe(duplex=True)
        # the fork server's environment is the one it started with: each worker gets ours as of now
        p = self.ctx.Process(target=worker_main, args=(theirs, self.threads, dict(os.environ)), daemon=True)
        p.start()
        theirs.close()
        return WorkerHandle(p, ours)

    def close(self) -> None:
        for w in self.workers:
            try:
                w.conn.send(None)
            except OSError:
                pass
        for w in self.workers:
            w.proc.join(timeout=10)
            if w.proc.is_alive():
                w.proc.kill()
            w.conn.close()

    def terminate(self) -> None:
        for w in self.workers:
            w.proc.kill()

    def run(
        self,
        next_job: Callable[[int], Sequence[Task] | None],
        on_start: Callable[[Task, str], None],
        on_finish: Callable[[Task, Outcome], None],
        settled: Callable[[], bool],
        poll: float = 2.0,
        housekeeping: Callable[[], None] | None = None,
        every: float = 10.0,
    ) -> None:
        """Keep every worker busy. next_job(idle workers) returns the tasks one worker trains
        together (one cell's stacked seeds, or one task), or None when nothing can be claimed now;
        then the pool tries again every `poll` seconds, and returns once nothing is in flight
        here and settled() says no trial is left anywhere. While every worker is busy,
        housekeeping() runs every `every` seconds (a claim does the same checks), so a dead
        sweep's trials are failed promptly even when no worker here is free."""
        next_claim, last_check = 0.0, time.monotonic()
        while True:
            busy = [w for w in self.workers if w.tasks]
            if housekeeping and len(busy) == self.n and time.monotonic() - last_check >= every:
                last_check = time.monotonic()
                try:
                    housekeeping()
                except Exception as err:  # noqa: BLE001  (an outage: the next round tries again)
                    log.warning("check for dead sweeps failed: %s", err)
            if len(busy) < self.n and time.monotonic() >= next_claim:
                last_check = time.monotonic()
                for w in self.workers:
                    if w.tasks:
                        continue
                    job = next_job(sum(not other.tasks for other in self.workers))
                    if not job:
                        next_claim = time.monotonic() + poll
                        break
                    w.tasks = {task.key: task for task in job}
                    try:
                        w.conn.send(tuple(job))
                    except OSError:  # it died while idle: the tasks go back, a new worker comes
                        self._lost(w, on_finish)
                        next_claim = 0.0
                busy = [w for w in self.workers if w.tasks]
            if not busy:
                if settled():
                    return
                time.sleep(max(0.0, next_claim - time.monotonic()))
                continue
            by_conn = {w.conn: w for w in busy}
            by_sentinel = {w.proc.sentinel: w for w in busy}
            for ready in mp_connection.wait([*by_conn, *by_sentinel], timeout=min(poll, 5)):
                w = by_conn[ready] if ready in by_conn else by_sentinel[ready]  # wait() returns only these
                if not w.tasks:
                    continue
                if ready in by_conn:
                    if self._receive(w, on_start, on_finish):
                        next_claim = 0.0  # a worker is free: claim at once
                elif not w.conn.poll():  # died, and nothing it sent is left to read
                    self._lost(w, on_finish)

    def _receive(self, w: WorkerHandle, on_start, on_finish) -> bool:
        """Handle one message from `w`; True when its job ended (the worker is free)."""
        assert w.tasks, "called for busy workers only"
        try:
            message = w.conn.recv()
        except (EOFError, OSError):
            self._lost(w, on_finish)
            return True
        task = w.tasks.get(message.key)
        if task is None or isinstance(message, msg.Begin):
            return False
        if isinstance(message, msg.ENDINGS):
            del w.tasks[task.key]
            on_finish(task, self._outcome(message))
            return not w.tasks
        try:
            self._apply(message, task, on_start)
        except Exception as err:  # noqa: BLE001  (a tracking hiccup must not stop the study)
            log.warning(
                "MLflow %s call for %s failed: %s: %s", type(message).__name__, task.run_name, type(err).__name__, err
            )
        return False

    def _lost(self, w: WorkerHandle, on_finish) -> None:
        tasks, w.tasks = list(w.tasks.values()), {}
        w.proc.join(timeout=5)
        code = w.proc.exitcode
        w.conn.close()
        self.workers[self.workers.index(w)] = self._spawn()
        for task in tasks:  # each of its stack's seeds not ended yet
            on_finish(task, Outcome("failed", reason=f"lost: worker process died (exit code {code})", failure="lost"))

    def _apply(self, message: msg.Message, task: Task, on_start) -> None:
        """Make a worker's tracking call on the parent's tracker."""
        if isinstance(message, msg.StartRun):
            run_id = self.tracker.start_run(
                message.experiment, message.run_name, message.params, message.tags, message.parent_run_id
            )
            self.run_ids[task.key] = run_id
            on_start(task, run_id)
            return
        run_id = self.run_ids[task.key]
        match message:
            case msg.LogMetrics(metrics=metrics, step=step):
                self.tracker.log_metrics(run_id, metrics, step)
            case msg.SetTags(tags=tags):
                self.tracker.set_tags(run_id, tags)
            case msg.LogDataset(info=info):
                self.tracker.log_dataset(run_id, info)
            case msg.LogArtifact(path=path, artifact_path=artifact_path):
                self.tracker.log_artifact(run_id, Path(path), artifact_path)
                shutil.rmtree(Path(path).parent, ignore_errors=True)
            case msg.EndRun(status=status):
                self.tracker.end_run(run_id, status)
                self.ended.add(task.key)
                if status == "FINISHED":
                    fault_point(RUN_FINISHED)  # the window recovery's adoption closes (sweep/recording.py)

    @staticmethod
    def _outcome(message: msg.Message) -> Outcome:
        match message:
            case msg.Done(metrics=metrics, epochs=epochs, data_variant=variant):
                return Outcome("done", metrics=metrics, epochs=epochs, data_variant=variant)
            case msg.Pruned(reason=reason, epochs=epochs):
                return Outcome("pruned", reason=reason, epochs=epochs)
            case msg.Failed(reason=reason, epochs=epochs, failure=failure):
                return Outcome("failed", reason=reason, epochs=epochs, failure=failure)
        raise TypeError(f"not a task ending: {message!r}")
