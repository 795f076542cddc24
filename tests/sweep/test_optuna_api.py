"""The contract of the Optuna API the sweep relies on beyond Optuna's public promises
(siamese_bench/sweep/optuna_api.py), run against the installed Optuna on both storages a sweep
uses: a journal file and an RDB storage with heartbeats (SQLite here, PostgreSQL in production).

A failure here names the private API that broke: fix optuna_api.py for that Optuna release (or
pin Optuna below it) before running a sweep on it. Fast: no training, no servers."""

from __future__ import annotations

import ast
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from siamese_bench.sweep import optuna_api as api
from siamese_bench.sweep.recovery import failed_silently, failure_kind
from siamese_bench.sweep.storage import Heartbeats, make_storage

PACKAGE = Path(__file__).resolve().parents[2] / "siamese_bench"
GRACE = 2


@contextlib.contextmanager
def contract(private_api: str, function: str) -> Iterator[None]:
    """Turn any failure into one message naming the private API and the adapter function."""
    try:
        yield
    except Exception as err:  # noqa: BLE001  (assertions included: each is part of the contract)
        pytest.fail(
            f"optuna {optuna.__version__}: the private API {private_api} no longer works as "
            f"siamese_bench/sweep/optuna_api.py::{function} expects: {type(err).__name__}: {err}"
        )


@pytest.fixture(params=["journal", "sqlite-rdb"])
def study(request, tmp_path) -> optuna.Study:
    url = str(tmp_path / "optuna.journal") if request.param == "journal" else f"sqlite:///{tmp_path}/optuna.db"
    storage = make_storage(url, Heartbeats(interval=1, grace=GRACE))
    return optuna.create_study(study_name="contract", storage=storage, direction="maximize")


@pytest.fixture
def rdb_study(tmp_path) -> optuna.Study:
    storage = make_storage(f"sqlite:///{tmp_path}/optuna.db", Heartbeats(interval=1, grace=GRACE))
    return optuna.create_study(study_name="contract", storage=storage, direction="maximize")


def test_study_storage(study):
    with contract("Study._storage", "study_storage"):
        storage = api.study_storage(study)
        assert isinstance(storage, BaseStorage)
        storage.set_study_user_attr(api.study_id(study), "probe", 1)
        assert study.user_attrs["probe"] == 1  # the storage the study itself reads


def test_study_id(study):
    with contract("Study._study_id", "study_id"):
        assert api.study_id(study) == api.study_storage(study).get_study_id_from_name("contract")


def test_trial_id_of_live_and_frozen_trials(study):
    with contract("Trial._trial_id / FrozenTrial._trial_id", "trial_id"):
        study.ask()
        live = study.ask()
        expected = api.study_storage(study).get_trial_id_from_study_id_trial_number(api.study_id(study), live.number)
        assert api.trial_id(live) == expected
        frozen = study.get_trials(deepcopy=False)[1]
        assert isinstance(frozen, FrozenTrial) and api.trial_id(frozen) == expected


def test_trial_handle_suggests_reports_and_prunes(study):
    with contract("optuna.Trial(study, trial_id)", "trial_handle"):
        asked = study.ask()
        handle = api.trial_handle(study, api.trial_id(asked))
        assert handle.number == asked.number
        value = handle.suggest_float("lr", 1e-4, 1e-2, log=True)
        assert handle.suggest_float("lr", 1e-4, 1e-2, log=True) == value  # a set param is returned as set
        handle.report(0.5, step=0)
        assert isinstance(handle.should_prune(), bool)
        frozen = study.get_trials()[0]
        assert frozen.params == {"lr": value} and frozen.intermediate_values == {0: 0.5}


def test_create_running_trial_writes_its_attributes_with_it(study, tmp_path):
    with contract(
        "BaseStorage.create_new_trial(study_id, template_trial=...) via Study._storage", "create_running_trial"
    ):
        first = api.create_running_trial(study, {"claim": "abc", "cell": "c", "seed": 1})
        second = api.create_running_trial(study, {"claim": "def"})
        assert isinstance(first, optuna.Trial) and (first.number, second.number) == (0, 1)
        trials = study.get_trials()
        assert [t.state for t in trials] == [TrialState.RUNNING, TrialState.RUNNING]
        assert trials[0].user_attrs == {"claim": "abc", "cell": "c", "seed": 1}
        assert api.trial_id(trials[0]) == api.trial_id(first)
        first.suggest_float("lr", 0.1, 1.0)  # a live trial: the sampler and storage accept it
        study.tell(first.number, 0.7)
        assert study.get_trials()[0].state == TrialState.COMPLETE


def test_fail_trial_writes_its_reason_first_and_fails_once(study):
    with contract("BaseStorage.set_trial_user_attr / set_trial_state_values via Study._storage", "fail_trial"):
        trial = study.ask()
        assert api.fail_trial(study, api.trial_id(trial), {"failure": "lost", "fail_reason": "lost: test"}) is True
        failed = study.get_trials()[0]
        assert failed.state == TrialState.FAIL and failed.user_attrs == {"failure": "lost", "fail_reason": "lost: test"}
        with pytest.raises(UpdateFinishedTrialError):  # a finished trial is never changed again
            api.fail_trial(study, api.trial_id(trial), {"failure": "lost"})


def test_record_heartbeats(study, request):
    with contract("record_heartbeat / get_heartbeat_interval via Study._storage", "record_heartbeats"):
        trial = study.ask()
        recorded = api.record_heartbeats(study, [api.trial_id(trial)])
        is_rdb = request.node.callspec.params["study"] == "sqlite-rdb"
        assert recorded is is_rdb  # a journal keeps no heartbeats: nothing recorded, no error


@pytest.mark.slow  # separate processes or the full archives: several seconds
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_public_fail_stale_trials_fails_only_silent_trials_and_writes_nothing(rdb_study):
    """What sweep/recovery.py relies on: optuna.storages.fail_stale_trials(study) fails RUNNING
    trials whose last heartbeat is older than the grace period, leaves trials that never beat
    and trials beaten just now alone, and records nothing on the trials it fails (so the sweep
    tells them apart: failed_silently). A finished trial takes no more attributes, which is why
    the reason goes to the trial's MLflow run instead."""
    study = rdb_study
    with contract("optuna.storages.fail_stale_trials (public) and record_heartbeat", "record_heartbeats"):
        silent = api.create_running_trial(study, {"claim": "a", "host": "host-b"})
        beaten = api.create_running_trial(study, {"claim": "b"})
        never = api.create_running_trial(study, {"claim": "c"})
        assert api.record_heartbeats(study, [api.trial_id(silent), api.trial_id(beaten)])
        time.sleep(GRACE + 1.5)  # SQLite's clock counts whole seconds
        assert api.record_heartbeats(study, [api.trial_id(beaten)])
        optuna.storages.fail_stale_trials(study)
        states = {t.number: t.state for t in study.get_trials()}
        assert states == {
            silent.number: TrialState.FAIL,
            beaten.number: TrialState.RUNNING,
            never.number: TrialState.RUNNING,
        }
        failed = study.get_trials(states=(TrialState.FAIL,))[0]
        assert failed.user_attrs == {"claim": "a", "host": "host-b"}
        assert failed_silently(failed) and failure_kind(failed) == "lost"
        with pytest.raises(UpdateFinishedTrialError):
            api.study_storage(study).set_trial_user_attr(api.trial_id(failed), "fail_reason", "too late")


def test_a_missing_private_attribute_is_named():
    with pytest.raises(api.OptunaAPIChanged, match=r"Study\._storage is gone"):
        api.study_storage(object())
    with pytest.raises(api.OptunaAPIChanged, match=r"object\._trial_id is gone"):
        api.trial_id(object())


def _optuna_private_names() -> set[str]:
    """Underscore attributes of the Optuna objects the sweep handles, read from real ones."""
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    names: set[str] = set()
    for obj in (
        study,
        trial,
        study.get_trials()[0],
        storage,
        optuna.storages.JournalStorage,
        optuna.storages.RDBStorage,
        optuna.storages._CachedStorage,
    ):
        names |= {n for n in [*dir(obj), *getattr(obj, "__dict__", {})] if n.startswith("_") and not n.endswith("__")}
    return names


def private_uses(path: Path, private: set[str]) -> list[str]:
    """Each use of Optuna's private API in one file: an attribute named like one of Optuna's
    underscore attributes (not on self), a hand-built Trial, an import from a private module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        line = getattr(node, "lineno", "?")
        if (
            isinstance(node, ast.Attribute)
            and node.attr in private
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append(f"{line}: .{node.attr}")
        elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("optuna.Trial", "optuna.trial.Trial", "Trial"):
            found.append(f"{line}: {ast.unparse(node.func)}(...)")
        elif (
            isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("optuna")
            and (
                any(part.startswith("_") for part in (node.module or "").split("."))
                or any(a.name.startswith("_") for a in node.names)
            )
        ):
            found.append(f"{line}: from {node.module} import {', '.join(a.name for a in node.names)}")
    return found


def test_no_module_but_the_adapter_touches_optuna_private_api():
    """Every underscore attribute of an Optuna object, and every hand-built optuna.Trial, is in
    optuna_api.py; a use anywhere else in the package is listed with its file and line."""
    private = _optuna_private_names()
    assert {"_storage", "_study_id", "_trial_id", "_get_stale_trial_ids"} <= private
    adapter = PACKAGE / "sweep" / "optuna_api.py"
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{use}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != adapter
        for use in private_uses(path, private)
    ]
    assert found == []


def test_the_check_sees_a_private_use(tmp_path):
    """The rule above can fail: the uses the adapter replaced are each found."""
    fake = tmp_path / "fake.py"
    fake.write_text(
        "import optuna\nfrom optuna.storages._heartbeat import is_heartbeat_enabled\n"
        "s = study._storage\nt = optuna.Trial(study, frozen._trial_id)\n"
        "s._get_stale_trial_ids(study._study_id)\nself._storage = None\n"
    )
    assert private_uses(fake, _optuna_private_names()) == [
        "2: from optuna.storages._heartbeat import is_heartbeat_enabled",
        "3: ._storage",
        "4: optuna.Trial(...)",
        "4: ._trial_id",
        "5: ._get_stale_trial_ids",
        "5: ._study_id",
    ]
