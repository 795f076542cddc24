"""Seed stacking in sweeps: a worker claims one cell's seeds together and trains them as one
stack, each seed still its own Optuna trial and MLflow run; a worker killed mid-stack loses
nothing. On real digits."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from siamese_bench.core.config import TrainConfig
from siamese_bench.infra.forkserver import workers_of
from siamese_bench.infra.tracking import Tracker
from siamese_bench.sweep.claims import claim_grid_points, new_claimed_trial
from siamese_bench.sweep.runner import Sweep
from siamese_bench.sweep.spec import load_spec
from siamese_bench.sweep.storage import make_storage
from siamese_bench.training.seeds import claim_size

SEEDS_SPEC = """
    name: {name}
    base: {{dataset: digits, epochs: {epochs}, encoder_options: {{dropout: 0.0}}}}
    factors:
      head: [euclidean]
    seeds: [0, 1, 2, 3]
"""
FINAL = ("test/acc", "test/auc", "test/acc_tuned", "val/loss", "retrieval/map_at_r")


def spec_file(tmp_path: Path, name: str, epochs: int) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(SEEDS_SPEC.format(name=name, epochs=epochs)))
    return path


def trials_by_seed(storage: str, name: str) -> dict[int, optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=make_storage(storage))
    return {t.user_attrs["seed"]: t for t in study.get_trials(states=(TrialState.COMPLETE,))}


def grid_runs(uri: str, name: str):
    client = Tracker(uri).client
    exp = client.get_experiment_by_name(name)
    return client, client.search_runs([exp.experiment_id], "tags.phase = 'grid'")


@pytest.mark.slow  # two sweeps of 4 short trainings
def test_a_stacked_sweep_gives_each_seed_its_own_trial_and_run_equal_to_one_at_a_time(tmp_path, mlruns):
    """No randomness in the step (dropout 0): each seed's trial and run carry that seed's numbers,
    equal to the sweep that trains one seed at a time; so no seed's result lands on another's trial."""
    storage = str(tmp_path / "optuna.journal")
    for name, stack in (("stacked", None), ("alone", 1)):
        spec = load_spec(spec_file(tmp_path, name, epochs=3))
        summary = Sweep(spec, storage, Tracker(mlruns), workers=1, progress=False, stack_seeds=stack).run()
        assert summary.completed == 4 and summary.failed == 0
    stacked, alone = trials_by_seed(storage, "stacked"), trials_by_seed(storage, "alone")
    assert sorted(stacked) == sorted(alone) == [0, 1, 2, 3]
    for seed in stacked:
        for key in FINAL:
            a, b = alone[seed].user_attrs[key], stacked[seed].user_attrs[key]
            assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6), (seed, key, a, b)
        assert stacked[seed].value == pytest.approx(alone[seed].value, abs=1e-6)
        assert stacked[seed].user_attrs["epochs_run"] == alone[seed].user_attrs["epochs_run"] == 3
    assert len({t.user_attrs["test/acc"] for t in stacked.values()}) > 1  # the seeds differ: a real check
    for name, size in (("stacked", "4"), ("alone", "1")):
        client, runs = grid_runs(mlruns, name)
        assert len(runs) == 4 and {r.data.tags["stack_size"] for r in runs} == {size}
        trials = trials_by_seed(storage, name)
        for run in runs:
            seed = int(run.data.params["seed"])
            assert run.info.status == "FINISHED" and run.data.tags["optuna_state"] == "COMPLETE"
            assert trials[seed].user_attrs["mlflow_run_id"] == run.info.run_id
            assert run.data.tags["optuna_trial"] == str(trials[seed].number)
            assert run.data.metrics["test/acc"] == pytest.approx(trials[seed].user_attrs["test/acc"])
            assert [m.step for m in client.get_metric_history(run.info.run_id, "val/auc")] == [0, 1, 2]
            artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "outputs")}
            assert artifacts == {"outputs/distances.npz", "outputs/embeddings.npz", "outputs/model.pt"}


@pytest.mark.slow
def test_a_worker_killed_mid_stack_loses_nothing_and_each_seed_reruns_once(tmp_path, mlruns):
    """kill -9 of the worker training a stack of 4: its 4 trials fail as lost, their runs end
    FAILED, and the points train again (as a stack) exactly once each."""
    spec_path = spec_file(tmp_path, "killed-stack", epochs=60)
    storage = str(tmp_path / "optuna.journal")
    cmd = [sys.executable, "-m", "siamese_bench", "sweep", str(spec_path), "--workers", "1", "--threads", "1"]
    cmd += ["--storage", storage, "--tracking-uri", mlruns, "--no-progress"]
    log = tmp_path / "sweep.log"
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline, killed = time.time() + 180, None
    while time.time() < deadline and killed is None:
        time.sleep(0.5)
        try:
            trials = optuna.load_study(study_name="killed-stack", storage=make_storage(storage)).trials
        except (KeyError, FileNotFoundError):  # not created yet
            continue
        running = [t for t in trials if t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs]
        if len(running) == 4 and (workers := workers_of(proc.pid)):  # the stack is training
            workers[0].kill()
            killed = sorted(t.number for t in running)
    assert killed is not None, log.read_text()[-3000:]
    assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    trials = optuna.load_study(study_name="killed-stack", storage=make_storage(storage)).trials
    complete = sorted(t.user_attrs["seed"] for t in trials if t.state == TrialState.COMPLETE)
    assert complete == [0, 1, 2, 3]  # each point once
    lost = [t for t in trials if t.state == TrialState.FAIL]
    assert sorted(t.number for t in lost) == killed
    assert all("worker process died" in t.user_attrs["fail_reason"] for t in lost)
    _, runs = grid_runs(mlruns, "killed-stack")
    assert sorted(r.info.status for r in runs) == ["FAILED"] * 4 + ["FINISHED"] * 4
    assert {r.data.tags["stack_size"] for r in runs if r.info.status == "FINISHED"} == {"4"}
    assert not [r for r in runs if r.info.status == "RUNNING"]


def test_the_claim_size_rule():
    """(cell config, its open seeds, open points, idle workers, --stack-seeds, device) -> stack size."""
    mlp, conv = TrainConfig(dataset="digits"), TrainConfig(dataset="mnist-5k", encoder="cnn-small")
    assert claim_size(mlp, 10, 40, 2, None, "cpu") == 5  # 10 seeds in equal stacks of at most 8: 5 + 5
    assert claim_size(mlp, 4, 4, 1, None, "cpu") == 4
    assert claim_size(mlp, 3, 6, 2, None, "cpu") == 3  # decide's round: a cell's 3 added seeds, one stack
    assert claim_size(mlp, 3, 3, 1, None, "cpu") == 3  # ... and the other cell's, by the last idle worker
    assert claim_size(mlp, 3, 3, 2, None, "cpu") == 2  # but no worker left idle: 2 + 1
    assert claim_size(mlp, 10, 40, 2, 1, "cpu") == 1  # --stack-seeds 1: today's path
    assert claim_size(conv, 10, 40, 2, None, "cpu") == 1  # measured slower stacked on a CPU
    assert claim_size(conv, 40, 80, 2, None, "cuda") == 20  # up to 32 on a GPU, 40 in equal stacks


def test_a_stack_claim_an_outage_cut_short_is_adopted_with_the_trials_it_made():
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    wanted = [("a", s) for s in range(4)] + [("b", 0)]

    def attrs_of(point):
        return {"cell": point[0], "seed": point[1]}

    for point in wanted[:2]:  # the first attempt made 2 of its 4 trials, then the connection dropped
        new_claimed_trial(study, "tok", attrs_of(point))
    adopted = claim_grid_points(study, "tok", wanted[2:], attrs_of, lambda cell, n: 4)
    assert sorted(t.user_attrs["seed"] for t in adopted) == [0, 1]  # adopted, nothing new
    fresh = claim_grid_points(study, "tok2", wanted[2:], attrs_of, lambda cell, n: 4)
    assert [(t.user_attrs["cell"], t.user_attrs["seed"]) for t in fresh] == [("a", 2), ("a", 3)]  # one cell
    assert len(study.trials) == 4
