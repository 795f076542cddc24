"""End-to-end studies on tiny real data: tracking, resume after a real kill, NaN trials."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import psutil
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from siamese_bench.core.errors import ConfigError
from siamese_bench.infra.forkserver import workers_of
from siamese_bench.infra.tracking import Tracker
from siamese_bench.sweep.runner import Sweep
from siamese_bench.sweep.spec import load_spec
from siamese_bench.sweep.storage import make_storage

pytestmark = pytest.mark.slow

GRID = """
    name: {name}
    base: {{dataset: digits, epochs: {epochs}}}
    factors:
      head: [euclidean, abs-diff-dense]
      loss: [contrastive, triplet]
    seeds: [0]
"""

ONE_CELL = """
    name: {name}
    base: {{dataset: digits, epochs: {epochs}}}
    factors:
      head: [euclidean]
    seeds: [0]
"""


def make_spec(tmp_path: Path, name: str, epochs: int, text: str = GRID) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text.format(name=name, epochs=epochs)))
    return path


def load(storage: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=make_storage(storage))


def child_runs(uri: str, experiment: str):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("role") == "study"]
    children = [r for r in runs if r.data.tags.get("role") != "study"]
    return client, parents, children


@pytest.mark.parametrize("storage_kind", ["journal", "rdb"])
def test_tiny_study_tracks_every_trial(tmp_path, mlruns, storage_kind):
    spec = load_spec(make_spec(tmp_path, "tiny", epochs=1))
    storage = str(tmp_path / "optuna.journal") if storage_kind == "journal" else f"sqlite:///{tmp_path}/optuna.db"
    uri = mlruns
    summary = Sweep(spec, storage, Tracker(uri), workers=2, progress=False).run()
    assert summary.completed == 4 and summary.failed == 0
    study = load(storage, "tiny")
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert sorted(t.user_attrs["cell"] for t in complete) == sorted(c.id for c in spec.cells())
    assert all("test/acc" in t.user_attrs for t in complete)
    client, parents, children = child_runs(uri, "tiny")
    assert len(parents) == 1 and len(children) == 4
    parent_id = parents[0].info.run_id
    assert study.user_attrs["mlflow_parent_run_id"] == parent_id
    assert parents[0].data.tags["optuna_study"] == "tiny"
    for run in children:
        assert run.data.tags["mlflow.parentRunId"] == parent_id
        assert run.data.tags["optuna_state"] == "COMPLETE"
        assert {"cell", "seed", "optuna_trial", "dataset_variant"} <= set(run.data.tags)
        assert run.info.status == "FINISHED"
        assert len(client.get_metric_history(run.info.run_id, "val/auc")) == 1  # one per epoch
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "outputs")}
        assert artifacts == {"outputs/distances.npz", "outputs/embeddings.npz", "outputs/model.pt"}
    # running again resumes: nothing left to do, nothing duplicated, same parent run
    again = Sweep(spec, storage, Tracker(uri), workers=1, progress=False).run()
    assert again.completed == 0
    assert len(load(storage, "tiny").trials) == 4
    _, parents, children = child_runs(uri, "tiny")
    assert len(parents) == 1 and len(children) == 4


def test_resume_after_kill_runs_each_cell_once(tmp_path, mlruns):
    spec_path = make_spec(tmp_path, "killed", epochs=40)
    storage, uri = str(tmp_path / "optuna.journal"), mlruns
    cmd = [
        sys.executable,
        "-m",
        "siamese_bench",
        "sweep",
        str(spec_path),
        "--workers",
        "2",
        "--storage",
        storage,
        "--tracking-uri",
        uri,
        "--no-progress",
    ]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 240
    try:
        while time.time() < deadline:  # kill once a trial has finished and others are running
            time.sleep(1)
            if not Path(storage).exists():
                continue
            try:
                states = [t.state for t in load(storage, "killed").trials]
            except KeyError:  # the journal exists, the study not yet: the sweep is creating it
                continue
            if TrialState.COMPLETE in states and TrialState.RUNNING in states and workers_of(proc.pid):
                break
        else:
            pytest.fail("the sweep never had a finished and a running trial at once")
        # the sweep alone is killed: its fork server and workers must not outlive it
        left = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _, alive = psutil.wait_procs(left, timeout=20)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # nothing of it is left
            pass
        proc.wait()
    before = load(storage, "killed").trials
    assert any(t.state == TrialState.RUNNING for t in before)
    spec = load_spec(spec_path)
    summary = Sweep(spec, storage, Tracker(uri), workers=2, progress=False).run()
    assert summary.stale >= 1
    after = load(storage, "killed").trials
    complete = [t.user_attrs["cell"] for t in after if t.state == TrialState.COMPLETE]
    assert sorted(complete) == sorted(c.id for c in spec.cells())  # each exactly once
    assert not [t for t in after if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    first_done = {t.number for t in before if t.state == TrialState.COMPLETE}
    assert first_done <= {t.number for t in after if t.state == TrialState.COMPLETE}  # nothing lost
    _, parents, children = child_runs(uri, "killed")
    assert len(parents) == 1
    finished = [r for r in children if r.info.status == "FINISHED"]
    assert len(finished) == len(spec.cells())
    assert all(r.info.status in ("FINISHED", "KILLED") for r in children)


def test_nan_trial_fails_alone(tmp_path, mlruns):
    text = """
        name: {name}
        base: {{dataset: digits, epochs: {epochs}, optimizer: sgd}}
        factors:
          lr: [0.01, 1.0e+30]
        seeds: [0]
    """
    spec = load_spec(make_spec(tmp_path, "nan", epochs=2, text=text))
    storage, uri = str(tmp_path / "optuna.journal"), mlruns
    summary = Sweep(spec, storage, Tracker(uri), workers=2, progress=False).run()
    assert summary.completed == 1 and summary.failed == 1
    trials = load(storage, "nan").trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["cell"] == "lr=1e+30"
    assert "DivergedError" in failed[0].user_attrs["fail_reason"]
    _, _, children = child_runs(uri, "nan")
    assert sorted(r.info.status for r in children) == ["FAILED", "FINISHED"]


def test_tuning_gives_every_cell_the_same_budget(tmp_path, mlruns):
    text = """
        name: {name}
        base: {{dataset: digits, epochs: {epochs}}}
        factors:
          head: [euclidean, abs-diff-dense]
        tune:
          params: {{lr: {{low: 1.0e-4, high: 1.0e-2, log: true}}}}
          trials_per_cell: 3
          pruner: median
        seeds: [0, 1]
    """
    spec = load_spec(make_spec(tmp_path, "tuned", epochs=2, text=text))
    storage, uri = str(tmp_path / "optuna.journal"), mlruns
    summary = Sweep(spec, storage, Tracker(uri), workers=2, progress=False).run()
    assert summary.failed == 0
    assert summary.tune_epochs_budget == 2 * 3 * 2
    for cell in spec.cells():
        study = load(storage, f"tuned/tune/{cell.id}")
        counted = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        assert len(counted) == 3
    grid = load(storage, "tuned").get_trials(states=(TrialState.COMPLETE,))
    assert len(grid) == 4
    best = {
        c.id: max(
            (t for t in load(storage, f"tuned/tune/{c.id}").trials if t.value is not None), key=lambda t: t.value
        ).params["lr"]
        for c in spec.cells()
    }
    for trial in grid:
        assert trial.user_attrs["tuned.lr"] == pytest.approx(best[trial.user_attrs["cell"]])


def test_a_spec_that_gains_seeds_and_cells_resumes_with_only_the_new_points(tmp_path, mlruns):
    """Extending a study (more seeds for tighter intervals, one more cell) must not fail on
    Optuna's frozen categorical choices, and must not re-run what finished."""
    storage, uri = str(tmp_path / "optuna.journal"), mlruns
    first = Sweep(
        load_spec(make_spec(tmp_path, "grow", 1, ONE_CELL)), storage, Tracker(uri), workers=1, progress=False
    ).run()
    assert first.completed == 1
    bigger = ONE_CELL.replace("[euclidean]", "[euclidean, abs-diff-dense]").replace("seeds: [0]", "seeds: [0, 1]")
    second = Sweep(
        load_spec(make_spec(tmp_path, "grow", 1, bigger)), storage, Tracker(uri), workers=1, progress=False
    ).run()
    assert second.completed == 3 and second.failed == 0
    points = sorted(
        (t.user_attrs["cell"], t.user_attrs["seed"])
        for t in load(storage, "grow").trials
        if t.state == TrialState.COMPLETE
    )
    assert points == [
        ("head=abs-diff-dense", 0),
        ("head=abs-diff-dense", 1),
        ("head=euclidean", 0),
        ("head=euclidean", 1),
    ]


def test_seeds_option_runs_a_subset_and_a_later_sweep_adds_the_rest(tmp_path, mlruns):
    """--seeds splits one study over time (C6 at 105 px runs one seed an hour): the subset runs
    alone, the study stays open and its parent run is not called finished; a later sweep
    without --seeds runs only the seeds still missing."""
    storage, uri = str(tmp_path / "optuna.journal"), mlruns
    spec = load_spec(make_spec(tmp_path, "split", 1, ONE_CELL.replace("seeds: [0]", "seeds: [0, 1, 2]")))
    first = Sweep(spec, storage, Tracker(uri), workers=1, progress=False, seeds=[2, 0]).run()
    assert first.completed == 2 and not first.study_done and first.seeds_left == [1]
    ran = sorted(t.user_attrs["seed"] for t in load(storage, "split").trials if t.state == TrialState.COMPLETE)
    assert ran == [0, 2]
    _, parents, _ = child_runs(uri, "split")
    assert [p.info.status for p in parents] == ["KILLED"]  # a partial study is not FINISHED
    assert parents[0].data.params["seeds"] == "[0, 1, 2]"  # the spec's seeds, so the report names the hole
    rest = Sweep(spec, storage, Tracker(uri), workers=1, progress=False).run()
    assert rest.completed == 1 and rest.study_done and rest.seeds_left == []
    _, parents, children = child_runs(uri, "split")
    assert [p.info.status for p in parents] == ["FINISHED"] and len(children) == 3
    with pytest.raises(ConfigError, match="--seeds 3: the spec .* has seeds 0, 1, 2"):
        Sweep(spec, storage, Tracker(uri), workers=1, progress=False, seeds=[3])


def test_a_trial_popped_but_never_claimed_is_recovered(tmp_path, mlruns):
    """A sweep that crashes between ask() and recording its PID leaves a RUNNING trial with no
    owner; the next sweep must fail it and run its point, not wait for it forever."""
    storage, uri = str(tmp_path / "optuna.journal"), mlruns
    spec = load_spec(make_spec(tmp_path, "orphan", 1, ONE_CELL))
    sweep = Sweep(spec, storage, Tracker(uri), workers=1, progress=False)
    study = sweep.grid_study()
    study.enqueue_trial({}, user_attrs={"cell": "head=euclidean", "seed": 0, "head": "euclidean"})
    trial = study.ask()  # popped, then the "crash": no owner recorded, never told
    # ... after the parent had started the trial's MLflow run but before linking it to the trial
    tracker = Tracker(uri)
    orphan_run = tracker.start_run(
        "orphan", "head=euclidean seed=0", {}, {"optuna_study": "orphan", "optuna_trial": str(trial.number)}
    )
    summary = Sweep(spec, storage, tracker, workers=1, progress=False).run()
    assert summary.stale == 1 and summary.completed == 1
    states = sorted(t.state.name for t in load(storage, "orphan").trials)
    assert states == ["COMPLETE", "FAIL"]
    assert tracker.client.get_run(orphan_run).info.status == "KILLED"
    _, parents, _ = child_runs(uri, "orphan")
    assert [p.info.status for p in parents] == ["FINISHED"]  # the study's own run is not an orphan


def test_two_sweeps_on_one_journal_study_and_a_killed_worker_train_each_point_once(tmp_path, mlruns):
    """Two sweep processes on one machine (the default journal storage, one SQLite tracking
    store) share the points; kill -9 of one training worker mid-trial is seen at once (its pipe
    closes): that trial fails as lost, a new worker starts, and the point is trained again."""
    spec_path = make_spec(tmp_path, "shared", epochs=40)
    storage, uri = str(tmp_path / "optuna.journal"), mlruns
    cmd = [
        sys.executable,
        "-m",
        "siamese_bench",
        "sweep",
        str(spec_path),
        "--workers",
        "1",
        "--threads",
        "1",
        "--storage",
        storage,
        "--tracking-uri",
        uri,
        "--no-progress",
    ]
    logs = [tmp_path / f"sweep{i}.log" for i in range(2)]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=log.open("w"), stderr=subprocess.STDOUT) for log in logs]
    deadline, killed = time.time() + 180, None
    while time.time() < deadline and killed is None:
        time.sleep(0.5)
        if not Path(storage).exists():
            continue
        try:
            trials = load(storage, "shared").trials
        except KeyError:  # the journal exists, the study not yet: a sweep is creating it
            continue
        running = [
            t
            for t in trials
            if t.state == TrialState.RUNNING
            and t.user_attrs.get("pid") == procs[0].pid
            and "mlflow_run_id" in t.user_attrs
        ]
        workers = workers_of(procs[0].pid)
        if running and workers:  # sweep 0's worker is training
            workers[0].kill()
            killed = running[0].number
    assert killed is not None, logs[0].read_text()[-3000:]
    for proc, log in zip(procs, logs, strict=True):
        assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    trials = load(storage, "shared").trials
    spec = load_spec(spec_path)
    complete = sorted(t.user_attrs["cell"] for t in trials if t.state == TrialState.COMPLETE)
    assert complete == sorted(c.id for c in spec.cells())  # each point once
    lost = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.number for t in lost] == [killed] and "worker process died" in lost[0].user_attrs["fail_reason"]
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # both sweeps trained
    _, parents, children = child_runs(uri, "shared")
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert sorted(r.info.status for r in children) == ["FAILED"] + ["FINISHED"] * len(spec.cells())


def test_a_claim_whose_answer_an_outage_lost_is_adopted_by_its_retry(tmp_path, mlruns, monkeypatch):
    """The server commits a new trial but the connection drops before the answer arrives: the
    claim's retry must take that trial over, not leave it RUNNING or fail it as lost. The first
    grid claim and the first tuning claim are cut this way, after their real write."""
    import siamese_bench.sweep.claims as claims

    real, cut = claims.new_claimed_trial, []

    def commit_then_drop(study, token, attrs):
        trial = real(study, token, attrs)
        kind = "tune" if "/tune/" in study.study_name else "grid"
        if kind not in cut:
            cut.append(kind)
            raise ConnectionResetError("connection reset by peer (after the commit)")
        return trial

    monkeypatch.setattr(claims, "new_claimed_trial", commit_then_drop)
    text = """
        name: {name}
        base: {{dataset: digits, epochs: {epochs}}}
        factors:
          head: [euclidean, abs-diff-dense]
        tune:
          params: {{lr: {{low: 1.0e-4, high: 1.0e-2, log: true}}}}
          trials_per_cell: 1
        seeds: [0]
    """
    spec = load_spec(make_spec(tmp_path, "cut", epochs=1, text=text))
    storage, uri = str(tmp_path / "optuna.journal"), mlruns
    sweep = Sweep(spec, storage, Tracker(uri), workers=1, progress=False)
    sweep.retry.first_pause = 0.05
    summary = sweep.run()
    assert cut == ["tune", "grid"] and summary.failed == 0 and summary.stale == 0
    names = ["cut", *(f"cut/tune/{c.id}" for c in spec.cells())]
    states = [t.state for name in names for t in load(storage, name).trials]
    assert states == [TrialState.COMPLETE] * 4  # two grid points, one tuning trial per cell, nothing else
