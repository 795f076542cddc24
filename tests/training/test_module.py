"""The training core: every registered part works with the objective interface, and Lightning
runs the loop as Lightning (steps counted, schedulers, max_steps, clipping, bf16 on CPU), with
the same results whether a loader item holds one mini-batch or a group of them."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch

from siamese_bench.core.config import TrainConfig
from siamese_bench.core.errors import ConfigError
from siamese_bench.models.encoders import ENCODERS
from siamese_bench.models.heads import HEADS
from siamese_bench.models.losses import LOSSES, check_compatible
from siamese_bench.training import module as module_file
from siamese_bench.training.build import PROBE_INPUT_SHAPE, build_loss, build_module, check_config
from siamese_bench.training.module import STEP_GROUP
from siamese_bench.training.objective import MINERS, PairObjective, TripletObjective, build_objective
from siamese_bench.training.run import run_training


def _probe(name: str) -> tuple[int, ...]:
    cls = ENCODERS.get(name)
    return getattr(cls, "PROBE_SHAPE", PROBE_INPUT_SHAPE)


@pytest.mark.parametrize("name", ENCODERS.names())
def test_every_encoder_embeds_its_probe_shape_with_gradients_everywhere(name):
    torch.manual_seed(0)
    shape = _probe(name)
    encoder = ENCODERS.get(name)(shape)
    x = torch.randn(4, *shape)
    emb = encoder(x)
    assert emb.shape == (4, encoder.out_features) and torch.isfinite(emb).all()
    emb.pow(2).sum().backward()
    missing = [n for n, p in encoder.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing, f"{name}: no gradient reaches {missing}"


def _batch(objective, dim: int = 6, n: int = 8) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    if isinstance(objective, TripletObjective):
        label = torch.arange(n) % 3
        return {
            "anchor": torch.randn(n, dim, generator=g),
            "positive": torch.randn(n, dim, generator=g),
            "negative": torch.randn(n, dim, generator=g),
            "label": label,
        }
    return {
        "x1": torch.randn(n, dim, generator=g),
        "x2": torch.randn(n, dim, generator=g),
        "y": (torch.arange(n) % 2).float(),
    }


COMBINATIONS = [
    (h, loss, m)
    for h in HEADS.names()
    for loss in LOSSES.names()
    for m in MINERS.names()
    if (m == "random" or LOSSES.get(loss).__name__ == "TripletLoss")
]


@pytest.mark.parametrize(("head", "loss", "miner"), COMBINATIONS)
def test_every_head_loss_and_miner_gives_a_finite_loss_and_gradients(head, loss, miner):
    try:
        check_compatible(head, loss)
    except ValueError:
        pytest.skip("an incompatible pair, refused by the config (tested in test_losses)")
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh())
    head_module = HEADS.get(head)(5)
    objective = build_objective(build_loss(TrainConfig(loss=loss)), miner)
    result = objective.step(encoder, head_module, _batch(objective))
    assert result.loss.ndim == 0 and torch.isfinite(result.loss)
    assert objective.stat_names == ("train/loss", objective.accuracy_key, "train/active_fraction")
    assert result.stats.shape == (3,) and not result.stats.requires_grad and torch.isfinite(result.stats).all()
    result.loss.backward()
    params = [*encoder.parameters(), *head_module.parameters()]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)


def test_the_objective_is_chosen_from_the_loss_and_names_what_early_stopping_watches():
    pair = build_objective(build_loss(TrainConfig(loss="bce")))
    triplet = build_objective(build_loss(TrainConfig(loss="triplet")), "semi-hard")
    assert isinstance(pair, PairObjective) and pair.monitor == ("val/loss", "min")
    assert isinstance(triplet, TripletObjective) and triplet.monitor == ("val/auc", "max")
    assert triplet.collapse_margin == 1.0 and pair.collapse_margin is None
    with pytest.raises(ValueError, match="needs a triplet loss"):
        build_objective(build_loss(TrainConfig(loss="contrastive")), "batch-hard")


class StepWatch(pl.Callback):
    """What a user's callback sees: every batch, the learning rate and the gradient norm each
    optimizer step is taken with, the dtype of the encoder's activations."""

    def __init__(self) -> None:
        self.batches = 0
        self.lrs: list[float] = []
        self.grad_norms: list[float] = []
        self.dtypes: set[torch.dtype] = set()

    def on_train_start(self, trainer, module) -> None:
        optimizer = trainer.optimizers[0]

        def after_step(opt, args, kwargs) -> None:  # Lightning's closure (forward, backward, clipping) ran inside
            grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
            self.grad_norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
            self.lrs.append(opt.param_groups[0]["lr"])

        optimizer.register_step_post_hook(after_step)
        first = next(m for m in module.encoder.modules() if isinstance(m, torch.nn.Linear))
        first.register_forward_hook(lambda mod, inp, out: self.dtypes.add(out.dtype) if mod.training else None)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.batches += 1  # loader items: groups of up to STEP_GROUP mini-batches


def _train(digits, watch: StepWatch, **changes):
    cfg = check_config(TrainConfig(dataset="digits", epochs=2, **changes))
    return run_training(cfg, data=digits, progress=False, callbacks=[watch])


@pytest.mark.slow
def test_lightning_counts_every_optimizer_step_and_callbacks_see_each(digits):
    watch = StepWatch()
    result = _train(digits, watch)
    steps = len(watch.lrs)  # digits: 20 mini-batches an epoch, so groups of 8, 8 and 4
    assert steps == 40 and watch.batches == 2 * math.ceil(20 / STEP_GROUP)  # every step seen, a hook per group
    assert result.metrics["global_step"] == steps  # trainer.global_step advanced with them
    assert result.history[0]["train/loss"] > result.history[-1]["train/loss"]  # epoch means from the log


@pytest.mark.slow
def test_max_steps_stops_training_there(digits):
    watch = StepWatch()
    result = _train(digits, watch, max_steps=7)
    assert len(watch.lrs) == 7 and result.metrics["global_step"] == 7


@pytest.mark.slow
def test_a_step_based_cosine_schedule_decays_every_step(digits):
    watch = StepWatch()
    _train(digits, watch, lr_schedule="cosine")
    lrs = watch.lrs
    assert lrs[0] == pytest.approx(1e-3) and all(b < a for a, b in zip(lrs, lrs[1:], strict=False))
    assert lrs[-1] < 0.01 * lrs[0]  # close to 0 at the last step
    decay = StepWatch()
    _train(digits, decay, lr_schedule="epoch-decay", lr_decay=0.5)
    assert sorted(set(decay.lrs), reverse=True) == pytest.approx([1e-3, 5e-4])  # per epoch, not per step


@pytest.mark.slow
def test_gradient_clipping_bounds_every_step(digits):
    free, clipped = StepWatch(), StepWatch()
    _train(digits, free)
    _train(digits, clipped, gradient_clip=0.05)
    assert max(free.grad_norms) > 0.1  # clipping has something to do ...
    assert max(clipped.grad_norms) <= 0.05 * (1 + 1e-4)  # ... and does it at every step


@pytest.mark.slow
def test_bf16_mixed_precision_trains_on_cpu(digits):
    watch = StepWatch()
    result = _train(digits, watch, precision="bf16-mixed")
    assert watch.dtypes == {torch.bfloat16}  # autocast was on in training
    assert math.isfinite(result.metrics["test/auc"]) and result.metrics["test/auc"] > 0.8


@pytest.mark.slow
@pytest.mark.parametrize(
    "changes",
    [
        {"max_steps": 30, "lr_schedule": "cosine", "gradient_clip": 0.05},  # stops inside a group
        {"augment": "affine", "lr_schedule": "epoch-decay", "lr_decay": 0.5},
        {"loss": "triplet", "triplet_mining": "semi-hard", "precision": "bf16-mixed"},
    ],
)
def test_groups_of_mini_batches_give_the_results_of_one_mini_batch_a_step(digits, monkeypatch, changes):
    one, grouped = StepWatch(), StepWatch()
    monkeypatch.setattr(module_file, "STEP_GROUP", 1)
    alone = _train(digits, one, **changes)
    monkeypatch.setattr(module_file, "STEP_GROUP", 8)
    together = _train(digits, grouped, **changes)
    assert one.batches == len(one.lrs) > grouped.batches  # the loaders did differ
    assert grouped.lrs == one.lrs and grouped.grad_norms == one.grad_norms  # step for step
    assert together.history == alone.history and together.metrics["global_step"] == alone.metrics["global_step"]
    for stage, (d, y) in alone.outputs.items():  # every test pair's distance, bit for bit
        assert torch.equal(together.outputs[stage][0], d) and torch.equal(together.outputs[stage][1], y)


def test_a_schedule_on_a_monitored_metric_is_refused_by_name(digits):
    cfg = check_config(TrainConfig(dataset="digits", epochs=1))
    module = build_module(cfg, digits.input_shape)

    def plateau(params, steps):
        optimizer = torch.optim.SGD(params, lr=0.1)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss"}}

    module.optimizer_factory = plateau
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    with pytest.raises(ConfigError, match="ReduceLROnPlateau steps on a monitored metric"):
        trainer.fit(module, train_dataloaders=[])


def test_bad_training_options_are_named():
    for changes, message in (
        ({"precision": "8-bit"}, "--precision"),
        ({"max_steps": 0}, "--max-steps"),
        ({"gradient_clip": -1.0}, "--gradient-clip"),
        ({"lr_schedule": "warm"}, "--lr-schedule"),
        ({"lr_decay": 1.5}, "--lr-decay"),
    ):
        with pytest.raises(ConfigError, match=message):
            check_config(TrainConfig.parse({"dataset": "digits", **changes}, flags=True))
