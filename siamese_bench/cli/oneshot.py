"""`siamese-bench oneshot RUN_ID ...`: 20-way one-shot accuracy of trained models on Omniglot's 20 runs."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from siamese_bench.cli.common import add_plugin_argument, add_tracking_arguments, load_plugins
from siamese_bench.core.errors import ConfigError

DESCRIPTION = (
    "Score trained verification models (MLflow run ids; the run's outputs/model.pt) on the 20 "
    "official 20-way one-shot runs of all_runs.zip (400 trials): each test image goes to the training "
    "image with the lowest dissimilarity. Images are resized to the model's input size. The accuracy is "
    "logged to each run as oneshot/acc (and oneshot/runNN) unless --no-log."
)


def cmd_oneshot(args: argparse.Namespace) -> int:
    from siamese_bench.data.omniglot import find_archive
    from siamese_bench.data.omniglot_runs import RUNS_ARCHIVE, load_runs
    from siamese_bench.evaluation.oneshot import pixel_distance, score
    from siamese_bench.infra.tracking import Tracker
    from siamese_bench.training.artifacts import MODEL_ARTIFACT, load_model
    from siamese_bench.training.evaluations import trained_pair

    load_plugins(args)  # a run's model may be built from a plugin's parts
    if not args.run_ids and not args.pixels:
        raise ConfigError("give one or more MLflow run ids, or --pixels for the baseline alone")
    if not 8 <= args.size <= 105:
        raise ConfigError(f"--size must be between 8 and 105, got {args.size}")
    archive = Path(args.runs) if args.runs else find_archive(RUNS_ARCHIVE)
    if not archive.is_file():
        raise ConfigError(f"--runs {archive}: no such file")
    runs_by_size: dict[int, list[Any]] = {}

    def runs(size: int) -> list[Any]:
        if size not in runs_by_size:
            runs_by_size[size] = load_runs(archive, size)
        return runs_by_size[size]

    lines = [f"20-way one-shot, {RUNS_ARCHIVE} runs from {archive}"]
    if args.pixels:
        result = score(runs(args.size), pixel_distance)
        lines.append(
            f"pixels (nearest neighbour, {args.size} x {args.size}): {result.accuracy:.2%} "
            f"({result.correct}/{result.trials})"
        )
    tracker = Tracker(args.tracking_uri) if args.run_ids else None
    for run_id in args.run_ids:
        assert tracker is not None
        with tempfile.TemporaryDirectory() as tmp:
            cfg, input_shape, module = load_model(tracker.download_artifact(run_id, MODEL_ARTIFACT, Path(tmp)))
        if len(input_shape) != 3 or input_shape[0] != 1 or input_shape[1] != input_shape[2]:
            raise ConfigError(
                f"run {run_id}: its model takes inputs of shape {input_shape}, not square "
                "grayscale images; one-shot runs need a model trained on images"
            )
        result = score(runs(input_shape[-1]), trained_pair(module).ranking)
        lines.append(
            f"{run_id} ({cfg.encoder} + {cfg.head} + {cfg.loss} on {cfg.dataset}): "
            f"{result.accuracy:.2%} ({result.correct}/{result.trials})"
        )
        if args.per_run:
            lines += [f"    {name}: {acc:.0%}" for name, acc in result.per_run.items()]
        if not args.no_log:  # at the step of the run's final metrics, so the new value is the latest
            tracker.log_metrics(run_id, result.metrics(), step=cfg.epochs)
    print("\n".join(lines))
    return 0


def register(sub: Any, full: bool) -> None:
    oneshot = sub.add_parser(
        "oneshot", help="20-way one-shot accuracy of trained models on Omniglot's 20 runs", description=DESCRIPTION
    )
    oneshot.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="MLflow run ids of trained models")
    oneshot.add_argument("--runs", help="all_runs.zip (default: $SIAMESE_BENCH_OMNIGLOT_DIR, then datasets/omniglot)")
    oneshot.add_argument("--pixels", action="store_true", help="also score nearest neighbour on raw pixels")
    oneshot.add_argument("--size", type=int, default=105, help="image size for --pixels (default %(default)s)")
    oneshot.add_argument("--per-run", action="store_true", help="print the accuracy of every run")
    oneshot.add_argument("--no-log", action="store_true", help="print only; do not log metrics to the runs")
    add_tracking_arguments(oneshot, system_metrics=False)
    add_plugin_argument(oneshot)
    oneshot.set_defaults(func=cmd_oneshot)
