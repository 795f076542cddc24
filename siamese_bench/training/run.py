"""One training run: config -> data, pairs, model -> Lightning fit -> final evaluation,
tracked in MLflow (params, per-epoch curves, final metrics, tags, test distances)."""

from __future__ import annotations

import logging
import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytorch_lightning as pl
import torch

from siamese_bench.core.config import TrainConfig
from siamese_bench.core.errors import ConfigError
from siamese_bench.data import LabelledData, PairedData, load_dataset
from siamese_bench.data.base import DataUnavailable
from siamese_bench.infra.run_tracker import RunTracker
from siamese_bench.training.artifacts import log_model, log_outputs, test_embeddings
from siamese_bench.training.batches import build_batches, dataset_input
from siamese_bench.training.build import build_module, run_params, run_traits
from siamese_bench.training.device import dataset_bytes, matmul_precision, place
from siamese_bench.training.evaluations import ALWAYS, EVALUATIONS, trained_pair
from siamese_bench.training.module import SiameseModule
from siamese_bench.training.objective import Objective
from siamese_bench.training.samplers import TensorBatches

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
    data_location: str = "host"  # where the dataset's tensors lived during training: "host" or "device"


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
    return (
        triplet_margin is not None
        and last.get("train/active_fraction", 0.0) > 1 - AT_MARGIN
        and abs(last.get("train/loss", math.nan) - triplet_margin) < AT_MARGIN * triplet_margin
    )


@torch.no_grad()
def embedding_spread(module: SiameseModule, batches: TensorBatches) -> float:
    """Mean per-dimension sd of the embeddings of one validation batch (both sides)."""
    was_training = module.training
    module.eval()
    batch = batches.peek()
    emb = module.encoder(torch.cat([batch["x1"], batch["x2"]]).to(module.device))
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


def make_trainer(
    cfg: TrainConfig, callbacks: Sequence[pl.Callback], progress: bool, loader_items: int, accelerator: str = "auto"
) -> pl.Trainer:
    bars: list[pl.Callback] = []
    if progress:
        from pytorch_lightning.callbacks import TQDMProgressBar

        bars = [TQDMProgressBar(refresh_rate=max(1, loader_items // 20))]  # ~20 redraws/epoch
    from lightning_fabric.plugins.environments import LightningEnvironment

    return pl.Trainer(
        # one process, one device, whether or not it runs in a SLURM job: Lightning would otherwise read the job's
        # SLURM_* variables as a cluster it must join, warn where srun is installed, and requeue on SIGUSR1
        plugins=[LightningEnvironment()],
        max_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        precision=cfg.precision,
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        enable_progress_bar=progress,
        callbacks=[*callbacks, *bars],
    )


def _early_stopping(cfg: TrainConfig, objective: Objective) -> list[pl.Callback]:
    """Lightning's EarlyStopping on the metric the objective names (validation loss for pair
    losses, validation AUC for triplet losses, which have no validation loss on pairs)."""
    if cfg.early_stopping_patience is None:
        return []
    from pytorch_lightning.callbacks import EarlyStopping

    monitor, mode = objective.monitor
    return [EarlyStopping(monitor=monitor, mode=mode, patience=cfg.early_stopping_patience)]


@dataclass
class PreparedRun:
    """One seed's run before fitting: the built module, its batches (placed), what tracking needs."""

    cfg: TrainConfig
    data: LabelledData | PairedData
    module: SiameseModule
    batches: dict[str, TensorBatches]
    initial_spread: float
    placement: str
    n_parameters: int


def prepare_run(cfg: TrainConfig, data: LabelledData | PairedData, evaluate_train: bool = True) -> PreparedRun:
    """Module and batches from cfg.seed, checked on a real batch, data placed for fitting."""
    try:  # a forward pass on a real batch: an encoder that cannot take this data fails here, named
        module = build_module(
            cfg, data.input_shape, eval_stages=("train_eval", "test") if evaluate_train else ("test",)
        )
        batches = build_batches(cfg, data, module.objective)
        initial_spread = embedding_spread(module, batches["val"])
    except (RuntimeError, ValueError) as err:
        raise ConfigError(
            f"--encoder {cfg.encoder} cannot take --dataset {cfg.dataset} (inputs of shape "
            f"{tuple(data.input_shape)}): {str(err).splitlines()[0][:200]}"
        ) from None
    placement = place(cfg.data_placement, batches)  # once, before fitting: batches are then gathered there
    if placement == "device":
        log.info(
            "dataset tensors moved to %s once (%s MiB)",
            batches["train"].images.device,
            f"{dataset_bytes(batches) / 2**20:,.0f}",
        )
    n_parameters = sum(p.numel() for p in module.parameters())
    return PreparedRun(cfg, data, module, batches, initial_spread, placement, n_parameters)


def start_tracking(
    prep: PreparedRun,
    tracker: RunTracker | None,
    experiment: str,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    extra_tags: dict[str, str] | None = None,
) -> str | None:
    """The run's MLflow run, started with its params, tags and input dataset (None untracked)."""
    if tracker is None:
        return None
    cfg, data, batches = prep.cfg, prep.data, prep.batches
    tags = {
        "dataset_variant": data.variant,
        "dataset_source": data.source,
        "seed": str(cfg.seed),
        "head": cfg.head,
        "loss": cfg.loss,
        **hardware_tags(prep.placement),
        **(extra_tags or {}),
    }
    tags.update(run_traits(cfg))
    params = {**run_params(cfg), "n_parameters": prep.n_parameters, "n_train_samples": len(batches["train"].index)}
    run_id = tracker.start_run(experiment, run_name or f"{cfg.head}+{cfg.loss}", params, tags, parent_run_id)
    tracker.log_dataset(run_id, dataset_input(data, {k: len(b.index) for k, b in batches.items()}))
    return run_id


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
    prep = prepare_run(cfg, data or load_dataset(cfg.dataset), evaluate_train)
    module, batches = prep.module, prep.batches
    log.info("model: %s encoder + %s head, %s parameters", cfg.encoder, cfg.head, f"{prep.n_parameters:,}")
    run_id = start_tracking(prep, tracker, experiment, run_name, parent_run_id, extra_tags)
    recorder = EpochRecorder(tracker, run_id)
    train_loader = module.train_loader(batches["train"])
    trainer = make_trainer(
        cfg, [recorder, *_early_stopping(cfg, module.objective), *callbacks], progress, len(train_loader)
    )
    status = "FAILED"
    try:
        with matmul_precision(cfg.matmul_precision):
            trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=batches["val"])
        result = finish_run(prep, trainer, recorder.history, trainer.global_step, started, tracker, run_id, run_name)
        status = "FINISHED"
    except BaseException as err:
        status = failed_status(err)
        if tracker and run_id:
            tracker.set_tags(run_id, fail_reason(err))
        raise
    finally:  # whatever failed, training or saving its outputs, the run is never left RUNNING
        if tracker and run_id:
            tracker.end_run(run_id, status)
    return result


def fail_reason(err: BaseException) -> dict[str, str]:
    """The tag a failed run carries: the error's type and message, cut to MLflow's tag length."""
    return {"fail_reason": f"{type(err).__name__}: {err}"[:500]}


def failed_status(err: BaseException) -> str:
    """MLflow's status for a run that raised: Lightning turns Ctrl-C into SystemExit(1);
    pruning sets its own status."""
    interrupted = isinstance(err, KeyboardInterrupt | SystemExit)
    return getattr(err, "run_status", "KILLED" if interrupted else "FAILED")


def finish_run(
    prep: PreparedRun,
    trainer: pl.Trainer,
    history: list[dict[str, float]],
    global_step: int,
    started: float,
    tracker: RunTracker | None,
    run_id: str | None,
    run_name: str | None,
) -> RunResult:
    """The trained module tested (with `trainer`), its extra evaluations, final metrics and
    artifacts recorded: the run's result."""
    cfg, module, data = prep.cfg, prep.module, prep.data
    with matmul_precision(cfg.matmul_precision):
        trainer.test(module, dataloaders=[prep.batches[stage] for stage in module.eval_stages], verbose=False)
        extra = _extra_evaluations(module, data)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("test/", "train_eval/"))}
    if history:
        metrics.update({k: v for k, v in history[-1].items() if k.startswith("val/")})
    metrics.update(extra)
    collapsed = is_collapsed(prep.initial_spread, history, module.objective.collapse_margin)
    metrics["collapsed"] = float(collapsed)
    metrics["global_step"] = float(global_step)  # optimizer steps taken
    metrics["seconds"] = time.perf_counter() - started
    if collapsed:
        log.warning(
            "run %s collapsed: its embeddings shrank to nearly one point (spread or a triplet loss "
            "stuck at the margin)",
            run_name or cfg.head,
        )
    if tracker and run_id:  # val/* already has its per-epoch curve; no extra point
        tracker.log_metrics(run_id, {k: v for k, v in metrics.items() if not k.startswith("val/")}, step=cfg.epochs)
        log_outputs(tracker, run_id, module.final_outputs, test_embeddings(module, data))
        log_model(tracker, run_id, cfg, data.input_shape, module)
        tracker.set_tags(
            run_id, {"collapsed": str(collapsed).lower(), "initial_embedding_spread": f"{prep.initial_spread:.6g}"}
        )
    return RunResult(
        cfg, metrics, history, data.variant, run_id, module.final_outputs, collapsed, prep.n_parameters, prep.placement
    )


def cpu_name() -> str:
    """The CPU's model and the vector instructions torch's kernels use (AVX2, AVX512, ...): the same
    seed gives other numbers on another of these, as float sums are rounded in another order."""
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{model or 'unknown'}, {torch.backends.cpu.get_cpu_capability()}"


def hardware_tags(placement: str) -> dict[str, str]:
    """What ran the run: the report lists these (it never imports torch to guess)."""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({platform.processor() or 'cpu'})"
    return {
        "hardware.device": device,
        "hardware.cpu": cpu_name(),
        "hardware.torch": torch.__version__,
        "hardware.threads": str(torch.get_num_threads()),
        "hardware.cpus": str(os.cpu_count()),
        "hardware.platform": platform.platform(),
        "hardware.data_placement": placement,
    }


def _extra_evaluations(module: SiameseModule, data: LabelledData | PairedData) -> dict[str, float]:
    metrics: dict[str, float] = {}
    if not isinstance(data, LabelledData):
        return metrics  # the evaluations need classes; a pair-only dataset has none
    model = trained_pair(module)
    for name in dict.fromkeys((*ALWAYS, *data.evaluations)):
        try:
            metrics.update(EVALUATIONS.get(name)(model, data))
        except DataUnavailable as err:
            log.warning("evaluation %s skipped: %s", name, err)
    return metrics
