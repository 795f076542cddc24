"""Seed stacking: stacked seeds against the same seeds trained one at a time, on real digits."""

from __future__ import annotations

import math

import pytest
import torch

from siamese_bench.cli import main
from siamese_bench.core.config import TrainConfig
from siamese_bench.core.errors import ConfigError
from siamese_bench.infra.tracking import Tracker
from siamese_bench.models.heads import Head, HeadOutput
from siamese_bench.models.registry import HEADS
from siamese_bench.training import stacked
from siamese_bench.training.build import check_config
from siamese_bench.training.run import prepare_run, run_training
from siamese_bench.training.seeds import default_stack_size, parse_seeds, run_seeds, seed_runs, train_stack
from siamese_bench.training.stacked import stack_blocker

SEEDS = (0, 1, 2)
EXACT = 1e-6  # no randomness inside the step: the same float operations, up to this tolerance


def cfg_of(**changes) -> TrainConfig:
    base = {"dataset": "digits", "epochs": 4, "encoder_options": {"dropout": 0.0}}
    return check_config(TrainConfig(**{**base, **changes}))


def stacked_and_sequential(cfg: TrainConfig, data):
    one_by_one = [run_training(cfg.model_copy(update={"seed": s}), data=data, progress=False) for s in SEEDS]
    preps = [prepare_run(cfg.model_copy(update={"seed": s}), data) for s in SEEDS]
    assert stack_blocker(preps) is None
    together = train_stack(preps, seed_runs(SEEDS), progress=False)
    assert all(o.error is None for o in together), [o.error for o in together]
    return one_by_one, [o.result for o in together]


FINAL = ("test/acc", "test/auc", "test/acc_tuned", "train_eval/acc", "val/loss", "val/threshold", "retrieval/map_at_r")


@pytest.mark.slow  # 6 short trainings (~10 s)
def test_stacked_seeds_equal_sequential_seeds_without_randomness_in_the_step(digits):
    """(a) of the issue: no dropout, no augmentation; early stopping (each seed stops at its own
    epoch) and per-seed gradient clipping included: every epoch's metrics and every final metric
    equal the sequential seed's within EXACT."""
    cfg = cfg_of(epochs=20, early_stopping_patience=1, gradient_clip=0.5, optimizer="adam")
    one_by_one, together = stacked_and_sequential(cfg, digits)
    stops = {len(r.history) for r in one_by_one}
    assert len(stops) > 1 or max(stops) < cfg.epochs  # early stopping acted, so its per-seed rule is tested
    for alone, stack in zip(one_by_one, together, strict=True):
        assert len(stack.history) == len(alone.history)
        for a, b in zip(alone.history, stack.history, strict=True):
            assert a.keys() == b.keys()
            assert all(math.isclose(a[k], b[k], rel_tol=EXACT, abs_tol=EXACT) for k in a), (a, b)
        for key in (*FINAL, "global_step"):
            assert stack.metrics[key] == pytest.approx(alone.metrics[key], rel=EXACT, abs=EXACT), key


@pytest.mark.slow
def test_each_stacked_seed_gets_the_distortions_it_gets_alone(digits):
    """Augmentation draws from each seed's own generator, in its own order: still equal."""
    one_by_one, together = stacked_and_sequential(cfg_of(epochs=3, augment="affine"), digits)
    for alone, stack in zip(one_by_one, together, strict=True):
        assert [h["train/loss"] for h in stack.history] == pytest.approx(
            [h["train/loss"] for h in alone.history], rel=EXACT, abs=EXACT
        )
        assert stack.metrics["test/auc"] == pytest.approx(alone.metrics["test/auc"], rel=EXACT, abs=EXACT)


@pytest.mark.slow
def test_batchnorm_and_a_schedule_stack_within_float_rounding(digits):
    """C6's BatchNorm head: its running statistics are stacked buffers (vmap updates each seed's
    own); vmap's batched kernels round otherwise, so 4 epochs agree to 1e-2, not bit for bit."""
    cfg = cfg_of(head="distance-bn-dense", loss="bce", lr_schedule="cosine")
    one_by_one, together = stacked_and_sequential(cfg, digits)
    for alone, stack in zip(one_by_one, together, strict=True):
        losses = [(a["train/loss"], b["train/loss"]) for a, b in zip(alone.history, stack.history, strict=True)]
        assert all(abs(a - b) < 1e-2 for a, b in losses), losses
        assert stack.metrics["test/auc"] == pytest.approx(alone.metrics["test/auc"], abs=1e-2)


@pytest.mark.slow
def test_a_stack_with_dropout_reproduces_itself_and_its_seeds_differ(digits):
    cfg = cfg_of(encoder_options={}, epochs=2)  # the MLP's dropout 0.1: masks drawn per seed

    def once() -> list[list[float]]:
        preps = [prepare_run(cfg.model_copy(update={"seed": s}), digits) for s in (0, 1)]
        outcomes = train_stack(preps, seed_runs((0, 1)), progress=False)
        return [[h["train/loss"] for h in o.result.history] for o in outcomes]

    first = once()
    assert once() == first
    assert first[0] != first[1]


class ShapeBranchingHead(Head):
    """A plugin head whose step branches on its data (a Python `if` on a tensor's value): the
    kind of part vmap cannot batch."""

    symmetric = True

    def forward(self, a, b):
        d = (a - b).abs().sum(dim=1)
        return HeadOutput(d if bool(d.mean() > 0) else -d, None)


@pytest.fixture
def branching_head():
    HEADS.register("shape-branching")(ShapeBranchingHead)
    yield "shape-branching"
    del HEADS._items["shape-branching"]


def test_what_cannot_stack_is_named(digits, branching_head):
    def why(**changes) -> str | None:
        cfg = cfg_of(epochs=1, **changes)
        return stack_blocker([prepare_run(cfg.model_copy(update={"seed": s}), digits) for s in (0, 1)])

    assert why() is None
    assert why(loss="triplet") is None  # random triplets stack
    assert why(loss="triplet", triplet_mining="batch-hard") is None  # in its fixed-shape form
    assert why(loss="triplet", triplet_mining="semi-hard") is None
    assert "the shape-branching head or the contrastive loss cannot run batched" in why(head=branching_head)
    sizes = [prepare_run(cfg_of(epochs=1, val_fraction=f), digits) for f in (0.1, 0.3)]
    assert "training sets differ in size" in stack_blocker(sizes)


@pytest.mark.slow  # 12 short trainings (~12 s)
@pytest.mark.parametrize("mining", ["batch-hard", "semi-hard"])
def test_mined_triplets_stack_as_they_train_alone(digits, mining):
    """Mining keeps every anchor in the stack's fixed-shape form. The first epoch's loss equals
    the sequential one; the hardest pick is an argmax over distances that vmap's batched kernels
    round otherwise, so a near tie can flip later: 4 epochs agree to 1e-2."""
    one_by_one, together = stacked_and_sequential(cfg_of(loss="triplet", triplet_mining=mining), digits)
    for alone, stack in zip(one_by_one, together, strict=True):
        assert stack.history[0]["train/loss"] == pytest.approx(alone.history[0]["train/loss"], rel=1e-5)
        losses = [(a["train/loss"], b["train/loss"]) for a, b in zip(alone.history, stack.history, strict=True)]
        assert all(abs(a - b) < 1e-2 for a, b in losses), losses
        assert stack.metrics["test/auc"] == pytest.approx(alone.metrics["test/auc"], abs=1e-2)


def test_a_miners_fixed_shape_form_weights_out_anchors_without_a_negative():
    """Anchors whose batch holds no other class: dropped by the usual form, weighted 0 by the
    fixed one; the triplets that count are the same."""
    from siamese_bench.models.heads import EuclideanHead
    from siamese_bench.models.miners import BatchHardMiner

    emb, labels = torch.randn(8, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 0, 1, 1])
    labels_one_class = torch.zeros(4, dtype=torch.long)
    miner = BatchHardMiner()
    usual = miner.select(EuclideanHead(3), emb, labels)
    miner.fixed_shapes = True
    a, p, n, weight = miner.select_weighted(EuclideanHead(3), emb, labels)
    assert weight.tolist() == [1.0] * 4 and all(torch.equal(x, y) for x, y in zip(usual, (a, p, n), strict=True))
    *_, weight = miner.select_weighted(EuclideanHead(3), emb, labels_one_class)
    assert weight.tolist() == [0.0] * 4
    assert len(BatchHardMiner().select(EuclideanHead(3), emb, labels_one_class)[0]) == 0


@pytest.mark.slow  # japanese-vowels: padded sequences
def test_the_lstm_stacks_equal_to_its_packed_sequential_runs():
    """C5's LSTM: the stack runs it masked step by step, alone it is packed; the same function,
    so every epoch's loss and the final metrics agree within EXACT."""
    from siamese_bench.data import load_dataset

    data = load_dataset("japanese-vowels")
    cfg = check_config(
        TrainConfig(dataset="japanese-vowels", encoder="lstm", head="concat-dense", loss="bce", epochs=3)
    )
    one_by_one, together = stacked_and_sequential(cfg, data)
    for alone, stack in zip(one_by_one, together, strict=True):
        assert [h["train/loss"] for h in stack.history] == pytest.approx(
            [h["train/loss"] for h in alone.history], rel=EXACT, abs=EXACT
        )
        assert stack.metrics["test/auc"] == pytest.approx(alone.metrics["test/auc"], rel=EXACT, abs=EXACT)


def test_seed_lists_and_the_default_rule():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("5, 1,2-3,1") == [5, 1, 2, 3]
    for bad in ("3-1", "a", "-1", ""):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)
    mlp, conv = TrainConfig(dataset="digits"), TrainConfig(dataset="mnist-5k", encoder="cnn-small")
    assert default_stack_size(mlp, 10, "cpu") == 8 and default_stack_size(conv, 10, "cpu") == 1
    assert default_stack_size(conv, 10, "cuda") == 10 and default_stack_size(mlp, 100, "cuda") == 32
    mined = TrainConfig(dataset="digits", loss="triplet", triplet_mining="semi-hard")
    lstm = TrainConfig(dataset="japanese-vowels", encoder="lstm", head="concat-dense", loss="bce")
    assert default_stack_size(mined, 10, "cpu") == 1 and default_stack_size(lstm, 10, "cpu") == 1  # measured slower
    assert default_stack_size(mined, 10, "cuda") == 10 and default_stack_size(lstm, 10, "cuda") == 10
    with pytest.raises(ConfigError, match="--stack-seeds 0"):
        run_seeds(mlp, seed_runs([0, 1]), stack_size=0)


@pytest.mark.slow
def test_train_seeds_records_one_finished_run_per_seed_with_its_stack_size(mlruns, capsys):
    code = main(
        ["train", "--dataset", "digits", "--epochs", "2", "--seeds", "0-2", "--stack-seeds", "2"]
        + ["--tracking-uri", mlruns, "--experiment", "stacks", "--no-progress"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "3 of 3 seeds trained" in out and out.count("MLflow run: ") == 3
    client = Tracker(mlruns).client
    runs = client.search_runs([client.get_experiment_by_name("stacks").experiment_id])
    by_seed = {r.data.params["seed"]: r for r in runs}
    assert sorted(by_seed) == ["0", "1", "2"]
    assert {s: r.data.tags["stack_size"] for s, r in by_seed.items()} == {"0": "2", "1": "2", "2": "1"}
    for run in runs:
        assert run.info.status == "FINISHED"
        assert "test/acc" in run.data.metrics and "retrieval/map_at_r" in run.data.metrics
        curve = client.get_metric_history(run.info.run_id, "val/auc")
        assert [m.step for m in curve] == [0, 1]


@pytest.mark.slow
def test_a_stack_interrupted_midway_ends_every_seed_run_killed(mlruns, digits, monkeypatch):
    tracker = Tracker(mlruns)
    real_end = stacked.StackedModule.on_train_epoch_end

    def interrupted(self):
        real_end(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(stacked.StackedModule, "on_train_epoch_end", interrupted)
    preps = [prepare_run(cfg_of(seed=s), digits) for s in SEEDS]
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        train_stack(preps, seed_runs(SEEDS, tracker=tracker, experiment="killed"), progress=False)
    runs = tracker.client.search_runs([tracker.client.get_experiment_by_name("killed").experiment_id])
    assert sorted(r.info.status for r in runs) == ["KILLED"] * 3


@pytest.mark.parametrize("seeds", ["0", "0-1"])  # one seed alone, and a stack
def test_a_bad_configuration_is_one_line_with_seeds_as_without(seeds, capsys):
    assert main(["train", "--dataset", "digits", "--encoder", "conv4", "--seeds", seeds, "--no-track"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--encoder conv4 cannot take --dataset digits" in err[0], err
