"""One training run: config -> data, pairs, model -> Lightning fit -> final evaluation,
tracked in MLflow (params, per-epoch curves, final metrics, tags, test distances)."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from siamese_bench.config import ConfigError, TrainConfig
from siamese_bench.data import LabelledData, PairedData, load_dataset, split_validation
from siamese_bench.data.base import DataUnavailable, stratified_split
from siamese_bench.data.vectors import PairTable
from siamese_bench.evaluation.extras import ALWAYS, EVALUATIONS
from siamese_bench.models.encoders import ENCODERS
from siamese_bench.models.heads import HEADS
from siamese_bench.models.losses import LOSSES, Loss
from siamese_bench.tracking_api import RunTracker
from siamese_bench.training.augment import AUGMENTATIONS
from siamese_bench.training.module import OptimizerFactory, SiameseModule
from siamese_bench.training.objective import Objective, build_objective, pair_stream
from siamese_bench.training.optim import INITS, OPTIMIZERS, SCHEDULES
from siamese_bench.training.samplers import PairIndex, TensorBatches, with_draws

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "siamese-bench-train"


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class RunResult:
    config: TrainConfig
    metrics: dict[str, float]  # final metrics: test/*, train_eval/*, val/*, seconds
    history: list[dict[str, float]]  # one dict of epoch metrics per epoch
    data_variant: str
    run_id: str | None = None
    outputs: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)
    collapsed: bool = False  # embeddings shrank to (nearly) one point: see is_collapsed
    n_parameters: int = 0  # trainable parameters of encoder + head


COLLAPSE_RATIO = 0.01  # final embedding spread below 1 % of the largest seen = collapsed
AT_MARGIN = 0.01  # a triplet loss within 1 % of its margin, every triplet active = collapsed


def is_collapsed(initial_spread: float, history: list[dict[str, float]], triplet_margin: float | None = None) -> bool:
    """A run whose embeddings shrank to (nearly) one point, by either signature:
    - the validation embeddings kept under 1 % of the largest spread they had (untrained or at
      any epoch): batch-hard mining's known failure;
    - for triplet losses, a final training loss stuck at the margin with every triplet active,
      which is what d(a, p) = d(a, n) = 0 gives (C6's constant loss of 1.9768)."""
    if not history:
        return False
    spreads = [h["val/embedding_spread"] for h in history if "val/embedding_spread" in h]
    reference = max([initial_spread, *spreads])
    if spreads and reference > 0 and spreads[-1] < COLLAPSE_RATIO * reference:
        return True
    last = history[-1]
    return (triplet_margin is not None and last.get("train/active_fraction", 0.0) > 1 - AT_MARGIN
            and abs(last.get("train/loss", math.nan) - triplet_margin) < AT_MARGIN * triplet_margin)


@torch.no_grad()
def embedding_spread(module: SiameseModule, batches: TensorBatches) -> float:
    """Mean per-dimension sd of the embeddings of one validation batch (both sides)."""
    was_training = module.training
    module.eval()
    batch = batches.peek()
    emb = module.encoder(torch.cat([batch["x1"], batch["x2"]]))
    module.train(was_training)
    return float(emb.std(dim=0).mean())


class EpochRecorder(pl.Callback):
    """Keeps per-epoch metrics, sends them to MLflow with step=epoch, stops on divergence."""

    def __init__(self, tracker: RunTracker | None, run_id: str | None) -> None:
        self.tracker, self.run_id = tracker, run_id
        self.history: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        # The epoch means of what training_step logged, and what validation logged.
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("train/", "val/"))}
        self.history.append(metrics)
        if self.tracker and self.run_id:
            self.tracker.log_metrics(self.run_id, metrics, step=trainer.current_epoch)
        loss = metrics.get("train/loss", 0.0)
        if not math.isfinite(loss):
            raise DivergedError(f"training loss is {loss} at epoch {trainer.current_epoch}")


def build_loss(cfg: TrainConfig) -> Loss:
    loss_cls = LOSSES.get(cfg.loss)
    kwargs: dict[str, Any] = {"margin": cfg.margin} if loss_cls.uses_margin else {}
    if "squared" in inspect.signature(loss_cls).parameters:
        kwargs["squared"] = cfg.triplet_squared
    return loss_cls(**kwargs)


def optimizer_factory(cfg: TrainConfig) -> OptimizerFactory:
    """The optimizer, with Lightning's lr_scheduler config when cfg.lr_schedule has one."""
    make, schedule = OPTIMIZERS.get(cfg.optimizer), SCHEDULES.get(cfg.lr_schedule)

    def build(params, total_steps: int) -> Any:
        optimizer = make(params, cfg.lr)
        scheduler = schedule(optimizer, total_steps, cfg.lr_decay)
        return optimizer if scheduler is None else {"optimizer": optimizer, "lr_scheduler": scheduler}

    return build


def build_module(cfg: TrainConfig, input_shape: tuple[int, ...],
                 eval_stages: tuple[str, ...] = ("train_eval", "test")) -> SiameseModule:
    """Encoder, head, loss and optimizer factory from the config, initialised from cfg.seed."""
    pl.seed_everything(cfg.seed, verbose=False)
    encoder = ENCODERS.get(cfg.encoder)(input_shape, **cfg.encoder_options)
    head = HEADS.get(cfg.head)(encoder.out_features)
    if cfg.augment != "none" and len(input_shape) != 3:
        raise ConfigError(f"--augment {cfg.augment}: distortions need images, but dataset {cfg.dataset!r} "
                          f"gives inputs of shape {tuple(input_shape)}")
    module = SiameseModule(encoder, head, build_objective(build_loss(cfg), cfg.triplet_mining),
                           optimizer_factory(cfg), eval_stages=eval_stages,
                           augment=None if cfg.augment == "none" else AUGMENTATIONS.get(cfg.augment),
                           seed=cfg.seed)
    INITS.get(cfg.init)(module)
    return module


def build_pair_batches(cfg: TrainConfig, data: PairedData) -> dict[str, TensorBatches]:
    """Ready-made pairs (C4): a seeded, label-stratified share of the training rows is held out
    for validation; each table becomes images = [left; right] with pairs (i, n + i)."""
    keep, held = stratified_split(data.train.y.long(), cfg.val_fraction, torch.Generator().manual_seed(cfg.seed))

    def batches(table: PairTable, rows: torch.Tensor, bs: int, shuffle: bool) -> TensorBatches:
        left, right, y = table.left[rows], table.right[rows], table.y[rows]
        n = len(rows)
        index = PairIndex(torch.arange(n), n + torch.arange(n), y)
        return TensorBatches(torch.cat([left, right]), lambda epoch: index, bs, cfg.seed, shuffle=shuffle)

    eval_bs = max(cfg.batch_size, 1024)
    return {
        "train": batches(data.train, keep, cfg.batch_size, True),
        "val": batches(data.train, held, eval_bs, False),
        "train_eval": batches(data.train, keep, eval_bs, False),
        "test": batches(data.test, torch.arange(len(data.test.y)), eval_bs, False),
    }


def build_batches(cfg: TrainConfig, data: LabelledData | PairedData, objective: Objective) -> dict[str, TensorBatches]:
    """train (the objective's pairs or triplets), val, train_eval and test pair batches, all
    from cfg.seed."""
    if isinstance(data, PairedData):
        return build_pair_batches(cfg, data)
    x_tr, y_tr, x_val, y_val = split_validation(data.x_train, data.y_train, cfg.val_fraction, cfg.seed,
                                                  data.holdout)
    bs, eval_bs = cfg.batch_size, max(cfg.batch_size, 1024)  # no gradients: bigger is cheaper
    sample = objective.sampler(y_tr, cfg.seed, cfg.triplet_negatives)
    if cfg.pair_draws > 1:
        sample = with_draws(lambda y, seed: objective.sampler(y, seed, cfg.triplet_negatives), y_tr, cfg.seed,
                            cfg.pair_draws)
    return {
        "train": TensorBatches(x_tr, sample, bs, cfg.seed, resample=cfg.resample_negatives),
        "val": TensorBatches(x_val, pair_stream(y_val, cfg.seed, 100), eval_bs, cfg.seed, shuffle=False),
        "train_eval": TensorBatches(x_tr, pair_stream(y_tr, cfg.seed, 0), eval_bs, cfg.seed, shuffle=False),
        "test": TensorBatches(data.x_test, pair_stream(data.y_test, cfg.seed, 200), eval_bs, cfg.seed,
                              shuffle=False),
    }


def make_trainer(cfg: TrainConfig, callbacks: Sequence[pl.Callback], progress: bool,
                 steps_per_epoch: int) -> pl.Trainer:
    bars: list[pl.Callback] = []
    if progress:
        from pytorch_lightning.callbacks import TQDMProgressBar

        bars = [TQDMProgressBar(refresh_rate=max(1, steps_per_epoch // 20))]  # ~20 redraws/epoch
    return pl.Trainer(
        max_epochs=cfg.epochs, max_steps=cfg.max_steps or -1, gradient_clip_val=cfg.gradient_clip,
        precision=cfg.precision, accelerator="auto", devices=1, logger=False,
        enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0,
        enable_progress_bar=progress, callbacks=[*callbacks, *bars],
    )


def _early_stopping(cfg: TrainConfig, objective: Objective) -> list[pl.Callback]:
    """Lightning's EarlyStopping on the metric the objective names (validation loss for pair
    losses, validation AUC for triplet losses, which have no validation loss on pairs)."""
    if cfg.early_stopping_patience is None:
        return []
    from pytorch_lightning.callbacks import EarlyStopping

    monitor, mode = objective.monitor
    return [EarlyStopping(monitor=monitor, mode=mode, patience=cfg.early_stopping_patience)]


def dataset_input(data: LabelledData | PairedData, split_sizes: dict[str, int]) -> dict[str, Any]:
    """What MLflow records as the run's input dataset: name, content digest, source, sizes."""
    sizes = ({"train_images": len(data.y_train), "test_images": len(data.y_test)} if isinstance(data, LabelledData)
             else {"train_pairs": len(data.train.y), "test_pairs": len(data.test.y)})
    return {"name": data.variant, "digest": data.digest, "source": data.source,
            "sizes": {**sizes, **{f"{k}_items": v for k, v in split_sizes.items()}}}


def run_training(
    cfg: TrainConfig,
    *,
    tracker: RunTracker | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    data: LabelledData | PairedData | None = None,
    parent_run_id: str | None = None,
    run_name: str | None = None,
    extra_tags: dict[str, str] | None = None,
    callbacks: Sequence[pl.Callback] = (),
    progress: bool = True,
    evaluate_train: bool = True,
) -> RunResult:
    """Train and evaluate one configuration. Always ends its MLflow run (FAILED or KILLED on
    error), so a tracked run is never left RUNNING by this process. `evaluate_train=False`
    skips the final pass over the training pairs (train_eval/*), which a caller that only
    reads test metrics (the regression checks) does not need."""
    started = time.perf_counter()
    data = data or load_dataset(cfg.dataset)
    try:  # a forward pass on a real batch: an encoder that cannot take this data fails here, named
        module = build_module(cfg, data.input_shape,
                              eval_stages=("train_eval", "test") if evaluate_train else ("test",))
        batches = build_batches(cfg, data, module.objective)
        initial_spread = embedding_spread(module, batches["val"])
    except (RuntimeError, ValueError) as err:
        raise ConfigError(f"--encoder {cfg.encoder} cannot take --dataset {cfg.dataset} (inputs of shape "
                          f"{tuple(data.input_shape)}): {str(err).splitlines()[0][:200]}") from None
    n_parameters = sum(p.numel() for p in module.parameters())
    log.info("model: %s encoder + %s head, %s parameters", cfg.encoder, cfg.head, f"{n_parameters:,}")
    run_id = None
    if tracker is not None:
        tags = {"dataset_variant": data.variant, "dataset_source": data.source,
                "seed": str(cfg.seed), "head": cfg.head, "loss": cfg.loss, **(extra_tags or {})}
        params = {**cfg.flat_params(), "n_parameters": n_parameters,
                  "n_train_samples": len(batches["train"].index)}
        run_id = tracker.start_run(experiment, run_name or f"{cfg.head}+{cfg.loss}", params, tags,
                                   parent_run_id)
        tracker.log_dataset(run_id, dataset_input(data, {k: len(b.index) for k, b in batches.items()}))
    recorder = EpochRecorder(tracker, run_id)
    trainer = make_trainer(cfg, [recorder, *_early_stopping(cfg, module.objective), *callbacks], progress,
                           len(batches["train"]))
    status = "FAILED"
    try:
        trainer.fit(module, train_dataloaders=batches["train"], val_dataloaders=batches["val"])
        trainer.test(module, dataloaders=[batches[stage] for stage in module.eval_stages], verbose=False)
        extra = _extra_evaluations(module, data)
        status = "FINISHED"
    except BaseException as err:
        # Lightning turns Ctrl-C into SystemExit(1); pruning sets its own status.
        interrupted = isinstance(err, KeyboardInterrupt | SystemExit)
        status = getattr(err, "run_status", "KILLED" if interrupted else "FAILED")
        if tracker and run_id:
            tracker.set_tags(run_id, {"fail_reason": f"{type(err).__name__}: {err}"[:500]})
        raise
    finally:
        if tracker and run_id and status != "FINISHED":
            tracker.end_run(run_id, status)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
               if k.startswith(("test/", "train_eval/"))}
    if recorder.history:
        metrics.update({k: v for k, v in recorder.history[-1].items() if k.startswith("val/")})
    metrics.update(extra)
    collapsed = is_collapsed(initial_spread, recorder.history, module.objective.collapse_margin)
    metrics["collapsed"] = float(collapsed)
    if collapsed:
        log.warning("run %s collapsed: its embeddings shrank to nearly one point (spread or a triplet loss "
                    "stuck at the margin)", run_name or cfg.head)
    metrics["global_step"] = float(trainer.global_step)  # optimizer steps taken
    metrics["seconds"] = time.perf_counter() - started
    if tracker and run_id:  # val/* already has its per-epoch curve; no extra point
        tracker.log_metrics(run_id, {k: v for k, v in metrics.items() if not k.startswith("val/")},
                            step=cfg.epochs)
        _log_outputs(tracker, run_id, module.final_outputs, _test_embeddings(module, data))
        _log_model(tracker, run_id, cfg, data.input_shape, module)
        tracker.set_tags(run_id, {"collapsed": str(collapsed).lower(),
                                  "initial_embedding_spread": f"{initial_spread:.6g}"})
        tracker.end_run(run_id)
    return RunResult(cfg, metrics, recorder.history, data.variant, run_id, module.final_outputs, collapsed,
                     n_parameters)


def _extra_evaluations(module: SiameseModule, data: LabelledData | PairedData) -> dict[str, float]:
    metrics: dict[str, float] = {}
    names = (*ALWAYS, *getattr(data, "evaluations", ())) if isinstance(data, LabelledData) else ()
    for name in dict.fromkeys(names):
        try:
            metrics.update(EVALUATIONS.get(name)(module, data))
        except DataUnavailable as err:
            log.warning("evaluation %s skipped: %s", name, err)
    return metrics


MODEL_ARTIFACT = "outputs/model.pt"


def _log_model(tracker: RunTracker, run_id: str, cfg: TrainConfig, input_shape: tuple[int, ...],
               module: SiameseModule) -> None:
    """Config, input shape and weights, enough for load_model() to rebuild the trained model
    (siamese-bench oneshot scores runs from it)."""
    state = {"config": dataclasses.asdict(cfg), "input_shape": list(input_shape),
             "state_dict": {k: v.cpu() for k, v in module.state_dict().items()}}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(MODEL_ARTIFACT).name
        torch.save(state, path)
        tracker.log_artifact(run_id, path, str(Path(MODEL_ARTIFACT).parent))


def load_model(path: Path | str) -> tuple[TrainConfig, tuple[int, ...], SiameseModule]:
    """The config, input shape and trained module saved by _log_model."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    cfg = TrainConfig.from_dict(state["config"])
    input_shape = tuple(state["input_shape"])
    module = build_module(cfg, input_shape)
    module.load_state_dict(state["state_dict"])
    return cfg, input_shape, module.eval()


EMBEDDING_SAMPLE = 1000  # test images whose embeddings are kept for the report's 2-D plots


@torch.no_grad()
def _test_embeddings(module: SiameseModule, data: LabelledData | PairedData) -> dict[str, np.ndarray]:
    """Class-labelled test images; for ready-made pairs, the left vectors labelled by pair."""
    module.eval()
    if isinstance(data, PairedData):
        x, label = data.test.left, data.test.y
    else:
        x, label = data.x_test, data.y_test
    emb = module.encoder(x[:EMBEDDING_SAMPLE].to(module.device))
    return {"embedding": emb.cpu().half().numpy(), "label": label[:EMBEDDING_SAMPLE].numpy()}


def _log_outputs(tracker: RunTracker, run_id: str, outputs: dict[str, tuple[torch.Tensor, torch.Tensor]],
                 embeddings: dict[str, np.ndarray]) -> None:
    """Final dissimilarities and labels per split (distances.npz) and a sample of test
    embeddings (embeddings.npz), so reports can draw ROC curves, histograms and projections
    without retraining."""
    arrays = {}
    for stage, (d, y) in outputs.items():
        arrays[f"{stage}_d"], arrays[f"{stage}_y"] = d.numpy(), y.numpy()
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in (("distances.npz", arrays), ("embeddings.npz", embeddings)):
            path = Path(tmp) / name
            np.savez_compressed(path, **content)
            tracker.log_artifact(run_id, path, "outputs")
