"""Every use of Optuna's private API in siamese-bench, in one place.

The sweep runs trials by ask/tell from many processes and machines, and needs four things
Optuna's public API does not offer: create a trial with its user attributes in one write (a
claim cut between writes by an outage leaves a trial no recovery rule can place), reach a live
trial by its id outside `study.optimize` (the worker that reports a tuning trial's epochs), fail
another process's RUNNING trial after recording why, and record heartbeats for ask/tell trials
(Optuna records them only inside `study.optimize`). Nothing else in the package touches an
underscore attribute of an Optuna object; tests/sweep/test_optuna_api.py runs every function
here against the installed Optuna, on a JournalStorage and on an SQLite RDBStorage with
heartbeats, so a release that renames or changes one fails there, naming it.

What each function wraps:

- study_storage:        `Study._storage` (the storage a study writes through: an RDBStorage
                        wrapped in Optuna's cache layer, or the JournalStorage itself)
- study_id:             `Study._study_id`
- trial_id:             `FrozenTrial._trial_id`, `Trial._trial_id` (a FrozenTrial shows only its number)
- trial_handle:         `optuna.Trial(study, trial_id)` (Optuna builds Trials only in ask/optimize)
- create_running_trial: `Study._storage.create_new_trial(Study._study_id, template_trial=...)`
- fail_trial:           `Study._storage.set_trial_user_attr` and `.set_trial_state_values`
- record_heartbeats:    `Study._storage.record_heartbeat` and `.get_heartbeat_interval`

Trials whose machine stopped recording heartbeats are failed with the public
`optuna.storages.fail_stale_trials(study)` (sweep/recovery.py), not with the private
`_get_stale_trial_ids` it is built on.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState


class OptunaAPIChanged(RuntimeError):
    """A private Optuna API the sweep relies on is gone or changed: the message names it."""


def _private(obj: object, name: str, api: str) -> Any:
    try:
        return getattr(obj, name)
    except AttributeError:
        raise OptunaAPIChanged(
            f"optuna {optuna.__version__}: {api} is gone; siamese_bench/sweep/optuna_api.py "
            "relies on it (run tests/sweep/test_optuna_api.py)"
        ) from None


def study_storage(study: optuna.Study) -> BaseStorage:
    """The storage `study` reads and writes through (`Study._storage`)."""
    return _private(study, "_storage", "Study._storage")


def study_id(study: optuna.Study) -> int:
    """The study's id in its storage (`Study._study_id`)."""
    return _private(study, "_study_id", "Study._study_id")


def trial_id(trial: FrozenTrial | optuna.Trial) -> int:
    """A trial's id in its storage (`FrozenTrial._trial_id`, `Trial._trial_id`): storage calls
    take ids, but a FrozenTrial shows only its number within the study."""
    return _private(trial, "_trial_id", f"{type(trial).__name__}._trial_id")


def trial_handle(study: optuna.Study, trial_id: int) -> optuna.Trial:
    """A live Trial for an existing RUNNING trial (`optuna.Trial(study, trial_id)`): suggest,
    report and should_prune on a trial another process claimed."""
    try:
        inspect.signature(optuna.Trial).bind(study, trial_id)
    except TypeError as err:
        raise OptunaAPIChanged(
            f"optuna {optuna.__version__}: optuna.Trial(study, trial_id) changed ({err}); "
            "siamese_bench/sweep/optuna_api.py relies on it"
        ) from None
    return optuna.Trial(study, trial_id)


def create_running_trial(study: optuna.Study, user_attrs: dict[str, Any]) -> optuna.Trial:
    """A new RUNNING trial with `user_attrs`, in one write (`BaseStorage.create_new_trial` with a
    template trial, reached through `Study._storage` and `Study._study_id`): Study.ask() cannot
    create a trial with attributes, and attributes set one at a time can be cut by an outage."""
    template = FrozenTrial(
        number=0,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=datetime.now(),
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs=dict(user_attrs),
        system_attrs={},
        intermediate_values={},
        trial_id=0,
    )
    new_id = study_storage(study).create_new_trial(study_id(study), template_trial=template)
    return trial_handle(study, new_id)


def fail_trial(study: optuna.Study, trial_id: int, user_attrs: dict[str, Any]) -> bool:
    """Set `user_attrs` on a RUNNING trial, then mark it FAIL (`set_trial_user_attr`,
    `set_trial_state_values` through `Study._storage`: Optuna has no public way to fail another
    process's trial). The attributes go first, so a FAIL trial never lacks its reason. True when
    the state changed; raises UpdateFinishedTrialError when the trial finished meanwhile."""
    storage = study_storage(study)
    for key, value in user_attrs.items():
        storage.set_trial_user_attr(trial_id, key, value)
    return storage.set_trial_state_values(trial_id, TrialState.FAIL)


def record_heartbeats(study: optuna.Study, trial_ids: Iterable[int]) -> bool:
    """Record a heartbeat now for each of `trial_ids` (`record_heartbeat` through
    `Study._storage`); False, recording nothing, when the study's storage keeps no heartbeats
    (a journal, or an RDB storage without heartbeat_interval)."""
    storage = study_storage(study)
    interval = getattr(storage, "get_heartbeat_interval", None)
    if interval is None or not interval():
        return False
    record = _private(storage, "record_heartbeat", f"{type(storage).__name__}.record_heartbeat")
    for tid in trial_ids:
        record(tid)
    return True
