"""Real, short training runs on sklearn's 8x8 digits, tracked in a temporary MLflow store."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from siamese_bench.cli import main
from siamese_bench.core.config import TrainConfig
from siamese_bench.infra.tracking import Tracker
from siamese_bench.training.build import check_config
from siamese_bench.training.run import DivergedError, run_training

pytestmark = pytest.mark.slow

EPOCHS = 8
EXPERIMENT = "e2e"


@pytest.fixture(scope="module")
def tracker(tmp_path_factory):
    return Tracker(f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlruns.db")


def digits_cfg(**changes):
    return check_config(TrainConfig(dataset="digits", epochs=EPOCHS, seed=0, **changes))


@pytest.fixture(scope="module")
def c1_run(tracker, digits):
    """C1's recipe (euclidean + contrastive, m = 1) on digits, tracked."""
    return run_training(digits_cfg(), tracker=tracker, experiment=EXPERIMENT, data=digits, progress=False)


def test_c1_learns(c1_run):
    m = c1_run.metrics
    assert c1_run.data_variant == "digits"
    assert m["test/acc"] >= 0.85, m
    assert m["test/auc"] >= 0.9, m
    assert m["test/acc_tuned"] >= 0.85 and 0 < m["val/threshold"] < 2  # a cut inside the distances' range
    assert len(c1_run.history) == EPOCHS
    assert c1_run.history[-1]["train/loss"] < c1_run.history[0]["train/loss"]
    d, y = c1_run.outputs["test"]
    assert d.shape == y.shape and len(d) > 0


def test_c1_mlflow_run(c1_run, tracker):
    client = tracker.client
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([exp.experiment_id])
    assert [r.info.run_id for r in runs] == [c1_run.run_id]  # other tests use other experiments
    run = runs[0]
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["head"] == "euclidean" and params["loss"] == "contrastive"
    assert float(params["margin"]) == 1.0 and params["seed"] == "0"
    tags = run.data.tags
    assert tags["dataset_variant"] == "digits" and tags["seed"] == "0"
    for key in ("git_commit", "package_version"):
        assert tags.get(key), key
    if not torch.cuda.is_available():  # auto placement keeps the data on the host of a CPU-only machine
        assert tags["hardware.data_placement"] == c1_run.data_location == "host"
        assert tags["hardware.torch"] and tags["hardware.device"].startswith("cpu")
        assert tags["hardware.cpu"].endswith(", " + torch.backends.cpu.get_cpu_capability())
    assert run.data.metrics["test/acc"] == pytest.approx(c1_run.metrics["test/acc"])
    # retrieval on the test embeddings (issue 11): logged, and above what 10 balanced classes give by chance
    for key in ("retrieval/precision_at_1", "retrieval/r_precision", "retrieval/map_at_r"):
        assert run.data.metrics[key] == pytest.approx(c1_run.metrics[key]) and 0.2 < c1_run.metrics[key] <= 1, key
    assert c1_run.metrics["retrieval/map_at_r"] <= c1_run.metrics["retrieval/r_precision"]
    artifacts = [a.path for a in client.list_artifacts(c1_run.run_id, "outputs")]
    assert "outputs/distances.npz" in artifacts
    local = client.download_artifacts(c1_run.run_id, "outputs/distances.npz")
    with np.load(local) as npz:
        assert {"test_d", "test_y", "train_eval_d", "train_eval_y"} <= set(npz.files)
        np.testing.assert_allclose(npz["test_d"], c1_run.outputs["test"][0].numpy())
    assert "outputs/embeddings.npz" in artifacts
    with np.load(client.download_artifacts(c1_run.run_id, "outputs/embeddings.npz")) as npz:
        assert npz["embedding"].shape == (len(npz["label"]), 128)
        assert np.isfinite(npz["embedding"].astype(np.float32)).all()


def test_c1_epoch_curves_logged_per_epoch(c1_run, tracker):
    history = tracker.client.get_metric_history(c1_run.run_id, "train/loss")
    assert sorted(h.step for h in history) == list(range(EPOCHS))
    values = [h.value for h in sorted(history, key=lambda h: h.step)]
    assert values == pytest.approx([e["train/loss"] for e in c1_run.history])


def test_c1_val_curve_has_one_point_per_epoch(c1_run, tracker):
    history = tracker.client.get_metric_history(c1_run.run_id, "val/acc")
    assert sorted(h.step for h in history) == list(range(EPOCHS))


def test_abs_diff_dense_bce_learns(digits):
    cfg = digits_cfg(head="abs-diff-dense", loss="bce")
    result = run_training(cfg, data=digits, progress=False)
    assert result.metrics["test/auc"] >= 0.9, result.metrics


def test_same_config_is_deterministic(digits):
    cfg = digits_cfg().replace(epochs=3)
    a = run_training(cfg, data=digits, progress=False)
    b = run_training(cfg, data=digits, progress=False)
    keys = [k for k in a.metrics if k.startswith(("test/", "val/", "train_eval/"))]
    assert keys
    assert {k: a.metrics[k] for k in keys} == {k: b.metrics[k] for k in keys}
    assert a.history == b.history


def test_early_stopping_stops_on_a_stalled_validation_loss(digits):
    cfg = digits_cfg().replace(epochs=60, early_stopping_patience=1, lr=0.05)
    result = run_training(cfg, data=digits, progress=False)
    assert 2 <= len(result.history) < 60
    losses = [h["val/loss"] for h in result.history]
    assert losses[-1] >= min(losses[:-1])  # it stopped because the loss did not improve


def test_c2_subtract_dense_contrastive_stays_near_chance(digits):
    """C2: a - b -> Dense(1, sigmoid) with the inverted contrastive loss does not learn."""
    result = run_training(digits_cfg(head="subtract-dense", loss="contrastive"), data=digits, progress=False)
    assert result.metrics["test/auc"] < 0.7, result.metrics


def test_triplet_any_negatives_runs(digits):
    result = run_training(
        digits_cfg(loss="triplet", triplet_negatives="any").replace(epochs=2), data=digits, progress=False
    )
    assert "train/triplet_order_acc" in result.history[-1]
    assert result.metrics["test/auc"] > 0.6, result.metrics


def test_divergence_marks_tracked_run_failed(tracker, digits):
    cfg = digits_cfg(optimizer="sgd", lr=1e6).replace(epochs=2)
    with pytest.raises(DivergedError):
        run_training(cfg, tracker=tracker, experiment="e2e-diverge", data=digits, progress=False)
    exp = tracker.client.get_experiment_by_name("e2e-diverge")
    runs = tracker.client.search_runs([exp.experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert runs[0].data.tags["fail_reason"].startswith("DivergedError")


def test_cli_train_run(capsys, tmp_path):
    uri = f"sqlite:///{tmp_path}/cli.db"
    code = main(
        [
            "train",
            "--dataset",
            "digits",
            "--epochs",
            "2",
            "--tracking-uri",
            uri,
            "--no-progress",
            "--experiment",
            "cli-e2e",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    rows = {line.split()[0]: line.split()[1:] for line in io.StringIO(out) if line.strip()}
    for split in ("train", "val", "test"):
        assert split in rows and len(rows[split]) == 3
        assert all(0.0 <= float(v) <= 1.0 for v in rows[split])
    assert "MLflow run:" in out
    run_id = out.split("MLflow run:")[1].split()[0]
    run = Tracker(uri).client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["epochs"] == "2"
    # where to look: the store, the experiment and the run's page in the UI
    page = f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run_id} after `make mlflow-ui`"
    assert f"(store {uri}, experiment cli-e2e; {page})" in out, out
    n = int(run.data.params["n_parameters"])
    assert f"model: mlp encoder + euclidean head, {n:,} parameters" in out


class _Recording:
    """A RunTracker that records its calls and fails when an artifact is logged."""

    def __init__(self) -> None:
        self.ended: list[str] = []

    def start_run(self, *a, **k):
        return "run-1"

    def log_metrics(self, *a, **k):
        pass

    def set_tags(self, *a, **k):
        pass

    def log_dataset(self, *a, **k):
        pass

    def log_artifact(self, *a, **k):
        raise OSError("disk full")

    def end_run(self, run_id, status="FINISHED"):
        self.ended.append(status)


def test_a_run_whose_outputs_cannot_be_saved_ends_failed_not_running(digits):
    tracker = _Recording()
    with pytest.raises(OSError, match="disk full"):
        run_training(digits_cfg().replace(epochs=1), tracker=tracker, data=digits, progress=False)  # type: ignore[arg-type]
    assert tracker.ended == ["FAILED"]
