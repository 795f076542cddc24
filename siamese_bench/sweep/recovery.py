"""Who runs a trial, why a trial failed, and the recovery of trials whose sweep died.

A sweep that dies leaves its trials RUNNING. A later or concurrent sweep finds them under the
study lock: on another machine by their missing heartbeats (RDB storage; Optuna's public
`fail_stale_trials`), on this machine by the owner's PID, and fails them as "lost", so their
points are claimed again. A dead sweep's trial whose MLflow run had already ended FINISHED (it
died between ending the run and telling the trial) is adopted instead: `adopt` tells it from the
run's recorded metrics, and nothing retrains.
"""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from siamese_bench.sweep.optuna_api import fail_trial, record_heartbeats, study_storage, trial_id

# adopt(study, trial, ended_for): tell `trial` from its MLflow run if that run ended FINISHED at
# least `ended_for` seconds ago; True when it did (sweep/recording.py Recorder.adopt).
Adopt = Callable[[optuna.Study, FrozenTrial, float], bool]


def owner_attrs() -> dict[str, object]:
    """Who runs a trial: recorded on the trial so a later sweep can tell if it died (and, in a SLURM job, which
    job trained it)."""
    attrs: dict[str, object] = {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": _start_time(os.getpid())}
    if os.environ.get("SLURM_JOB_ID"):
        attrs["slurm_job"] = os.environ["SLURM_JOB_ID"]
    return attrs


def failed_silently(trial: FrozenTrial) -> bool:
    """A claimed trial that was failed with no kind recorded: Optuna's heartbeat check failed it
    (fail_stale_trials records nothing on the trial, and every sweep path that fails a claimed
    trial writes its "failure" first), so its machine stopped recording heartbeats."""
    return "claim" in trial.user_attrs and not trial.user_attrs.get("failure")


def failure_kind(trial: FrozenTrial) -> str:
    """Why a FAIL trial failed: "diverged" (the method: NaN loss, a non-finite objective; never
    re-run), "error" (training raised: re-run up to MAX_ERROR_ATTEMPTS), "lost" (its process or
    machine died: always re-run), "superseded" (a trial queued by hand,
    from before claims created their own trials; ignored)."""
    kind = trial.user_attrs.get("failure")
    if kind:
        return str(kind)
    if failed_silently(trial):
        return "lost"
    reason = str(trial.user_attrs.get("fail_reason", ""))  # trials recorded before "failure" existed
    if "DivergedError" in reason or "not finite" in reason:
        return "diverged"
    if "died" in reason or "killed" in reason:
        return "lost"
    return "error"


def silent_reason(trial: FrozenTrial) -> str:
    return f"lost: no heartbeat from {trial.user_attrs.get('host', '?')} for its grace period"


def fail_reason(trial: FrozenTrial) -> str:
    """Why a FAIL trial failed, as its sweep recorded it; for a trial Optuna's heartbeat check
    failed (which records no reason) the reason that implies."""
    reason = trial.user_attrs.get("fail_reason")
    if reason:
        return str(reason)
    return silent_reason(trial) if failed_silently(trial) else ""


def _start_time(pid: int) -> str | None:
    try:  # field 22 of /proc/PID/stat: start time in clock ticks, guards against PID reuse
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner_alive(trial: FrozenTrial) -> bool:
    attrs = trial.user_attrs
    if "host" not in attrs:
        return False  # popped but never claimed: claims happen under the study lock, so its sweep died
    if attrs.get("host") != socket.gethostname():
        return True  # another machine's trial: RDB heartbeats decide
    pid = attrs.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return attrs.get("pid_start") in (None, _start_time(pid))


def _is_this_process(trial: FrozenTrial) -> bool:
    attrs = trial.user_attrs
    return (
        attrs.get("host") == socket.gethostname()
        and attrs.get("pid") == os.getpid()
        and attrs.get("pid_start") == _start_time(os.getpid())
    )


def _fail_silent(study: optuna.Study, mine: set[int] | frozenset[int], running: list[FrozenTrial]) -> list[FrozenTrial]:
    """Fail the trials whose heartbeat is older than the grace period, with Optuna's public
    fail_stale_trials; return them (as they were while RUNNING). Our own trials get a heartbeat
    first, so a live trial of this process is never among them even after an outage longer
    than the grace period kept the heartbeat thread from writing. Journal storage: none."""
    if not running or not record_heartbeats(study, mine):
        return []
    with warnings.catch_warnings():  # fail_stale_trials is "experimental" in Optuna
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    was_running = {t.number: t for t in running}
    return [
        was_running[t.number]
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if t.number in was_running and failed_silently(t)
    ]


def _keeps_heartbeats(study: optuna.Study) -> bool:
    interval = getattr(study_storage(study), "get_heartbeat_interval", None)
    return bool(interval and interval())


def _dead_for(trial: FrozenTrial, grace: float | None) -> float | None:
    """How long ago a RUNNING trial's run must have ended FINISHED for its sweep to be surely
    gone: 0 when its owner on this machine is dead, or is this process and abandoned it; on
    another machine, the heartbeat grace period (a live owner tells its trial within moments of
    ending the run); None when nothing can tell (a journal's trial of another machine)."""
    attrs = trial.user_attrs
    if attrs.get("host", socket.gethostname()) != socket.gethostname():
        return grace
    if not _owner_alive(trial) or _is_this_process(trial):
        return 0.0
    return None


def fail_dead_trials(
    study: optuna.Study,
    mine: set[int] | frozenset[int] = frozenset(),
    claiming: str | None = None,
    adopt: Adopt | None = None,
    grace: float | None = None,
) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
    """Mark FAIL (failure "lost") the RUNNING trials whose sweep is gone: on another machine by
    its missing heartbeats, on this machine by its PID. `mine` are the trial ids this process
    runs now, `claiming` the token of the claim it is making (its trial, if an earlier attempt
    created it, is about to be adopted); any other trial of its own was abandoned (an
    interrupted run). A gone sweep's trial whose run had ended FINISHED is adopted first
    (`adopt`; `grace` is the heartbeat grace period). Returns (failed, adopted). Call under
    study_lock."""
    running = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if trial_id(t) not in mine and not (claiming is not None and t.user_attrs.get("claim") == claiming)
    ]
    adopted: list[FrozenTrial] = []
    if adopt is not None:
        beats = grace if _keeps_heartbeats(study) else None
        for trial in running:
            ended_for = _dead_for(trial, beats)
            if ended_for is not None and adopt(study, trial, ended_for):
                adopted.append(trial)
        taken = {t.number for t in adopted}
        running = [t for t in running if t.number not in taken]
    stale = _fail_silent(study, mine, running)
    silent = {t.number for t in stale}
    for trial in running:
        if trial.number in silent:
            continue
        if not _owner_alive(trial):
            reason = "lost: its sweep process died"
        elif _is_this_process(trial):
            reason = "lost: abandoned by this sweep (interrupted, or its claim was cut short)"
        else:
            continue
        try:
            if fail_trial(study, trial_id(trial), {"fail_reason": reason, "failure": "lost"}):
                stale.append(trial)
        except UpdateFinishedTrialError:
            continue  # its owner finished it meanwhile
    return stale, adopted
