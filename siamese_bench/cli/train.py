"""`siamese-bench train`: one variant, trained, evaluated and tracked. Its flags are generated
from TrainConfig's fields (core/config.py): adding an option there adds its flag here."""

from __future__ import annotations

import argparse
import typing
from typing import Any

from siamese_bench.cli.common import add_plugin_argument, add_tracking_arguments, load_plugins, show_progress
from siamese_bench.core.config import TrainConfig
from siamese_bench.core.errors import ConfigError
from siamese_bench.core.words import plural

DESCRIPTION = (
    "Train one variant, evaluate it on the test split and record the run in MLflow. Prints "
    "train/val/test accuracy at the sources' fixed rule (d < 0.5), at the validation-chosen "
    "threshold, and ROC AUC."
)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _choices(name: str, annotation: Any) -> list[str] | None:
    """The valid values of a field: its Literal's, or its registry's (which loads torch)."""
    if typing.get_origin(annotation) is typing.Literal:
        return [str(a) for a in typing.get_args(annotation)]
    from siamese_bench.training.build import choices_of

    registry = choices_of(name)
    return registry.names() if registry is not None else None


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, generated from the field's type, default and help."""
    defaults = TrainConfig()
    g = p.add_argument_group("what to train (defaults: C1's Keras recipe)")
    for name, field in TrainConfig.model_fields.items():
        help_text, default = field.description or "", getattr(defaults, name)
        names = _choices(name, field.annotation)
        if names is not None:
            help_text = f"one of: {', '.join(names)}" + (f"; {help_text}" if help_text else "")
        if name == "encoder_options":  # KEY=VALUE pairs, parsed by config_from_args
            g.add_argument(
                _flag(name), "--encoder-option", "-E", action="append", default=[], metavar="KEY=VALUE", help=help_text
            )
            continue
        kind = field.annotation
        if kind is bool:
            g.add_argument(
                _flag(name),
                action=argparse.BooleanOptionalAction,
                default=default,
                help=f"{help_text} (default %(default)s)",
            )
            continue
        cast = next((t for t in (int, float) if t is kind or t in typing.get_args(kind)), str)
        g.add_argument(
            _flag(name),
            type=cast,
            default=default,
            metavar=name.split("_")[-1].upper(),
            help=f"{help_text} (default %(default)s)" if help_text else "default %(default)s",
        )


def _parse_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The checked TrainConfig of the command line; ConfigError naming the flag."""
    from siamese_bench.training.build import check_config

    options = {}
    for item in args.encoder_options:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--encoder-options {item!r}: expected KEY=VALUE")
        options[key] = _parse_value(value)
    values = {name: getattr(args, name) for name in TrainConfig.model_fields}
    return check_config(TrainConfig.parse({**values, "encoder_options": options}, flags=True))


def run_location(tracker: Any, experiment: str, run_id: str) -> str:
    """Where a tracked run is: the store (password masked), the experiment, and the UI address of the run (the
    server's own, or `make mlflow-ui`'s for a local store)."""
    from siamese_bench.core.redact import mask_url

    exp_id = tracker.experiment_id(experiment)
    server = tracker.uri if tracker.uri.startswith(("http://", "https://")) else None
    base = mask_url(server) if server else "http://127.0.0.1:5000"
    page = f"{base.rstrip('/')}/#/experiments/{exp_id}/runs/{run_id}"
    how = page if server else f"{page} after `make mlflow-ui`"
    return f"MLflow run: {run_id} (store {mask_url(tracker.uri)}, experiment {experiment}; {how})"


def format_result(result: Any, where: str | None = None) -> str:
    """The result table; `where` replaces the bare run id (run_location)."""
    m = result.metrics
    lines = [
        f"{result.config.head} + {result.config.loss} on {result.data_variant} "
        f"(seed {result.config.seed}, {plural(result.config.epochs, 'epoch')}, {m['seconds']:.1f} s)",
        f"model: {result.config.encoder} encoder + {result.config.head} head, {result.n_parameters:,} parameters",
    ]
    lines.append(f"{'split':<8} {'acc@0.5':>8} {'acc@val-thr':>11} {'ROC AUC':>8}")
    for label, stage in (("train", "train_eval"), ("val", "val"), ("test", "test")):
        lines.append(
            f"{label:<8} {m.get(stage + '/acc', float('nan')):>8.4f} "
            f"{m.get(stage + '/acc_tuned', float('nan')):>11.4f} {m.get(stage + '/auc', float('nan')):>8.4f}"
        )
    lines.append(f"validation threshold: d < {m.get('val/threshold', float('nan')):.4f}")
    if "retrieval/map_at_r" in m:
        lines.append(
            f"retrieval on the test set, by embedding distance: "
            f"precision@1 {m['retrieval/precision_at_1']:.4f}, "
            f"R-precision {m['retrieval/r_precision']:.4f}, MAP@R {m['retrieval/map_at_r']:.4f}"
        )
    if "oneshot/acc" in m:
        lines.append(
            f"20-way one-shot (20 official runs): {m['oneshot/acc']:.2%}; "
            f"nearest neighbour on pixels {m.get('oneshot_pixels/acc', float('nan')):.2%}"
        )
    if result.collapsed:
        lines.append("COLLAPSED: the embeddings shrank to nearly one point; these numbers are not a model's")
    if where:
        lines.append(where)
    elif result.run_id:
        lines.append(f"MLflow run: {result.run_id}")
    return "\n".join(lines)


def cmd_train(args: argparse.Namespace) -> int:
    from siamese_bench.core import plugins
    from siamese_bench.infra.tracking import Tracker
    from siamese_bench.training.run import DEFAULT_EXPERIMENT, run_training

    loaded = load_plugins(args)
    cfg = config_from_args(args)
    tracker = None if args.no_track else Tracker(args.tracking_uri, system_metrics=args.system_metrics)
    if args.seeds is None and args.stack_seeds is None:
        experiment = args.experiment or DEFAULT_EXPERIMENT
        result = run_training(
            cfg, tracker=tracker, experiment=experiment, progress=show_progress(args), extra_tags=plugins.tags(loaded)
        )
        where = run_location(tracker, experiment, result.run_id) if tracker and result.run_id else None
        print(format_result(result, where))
        return 0
    return _train_seeds(args, cfg, tracker, plugins.tags(loaded))


def _train_seeds(args: argparse.Namespace, cfg: TrainConfig, tracker: Any, tags: dict[str, str]) -> int:
    """`--seeds`: every seed trained (stacked where it can), each result printed as it ends,
    then one line per failed seed; exit 1 when any failed."""
    from siamese_bench.training.device import training_device
    from siamese_bench.training.run import DEFAULT_EXPERIMENT
    from siamese_bench.training.seeds import parse_seeds, run_seeds, seed_runs

    seeds = parse_seeds(args.seeds) if args.seeds is not None else [cfg.seed]

    experiment = args.experiment or DEFAULT_EXPERIMENT

    def show(outcome: Any) -> None:
        if outcome.result is not None:
            run_id = outcome.result.run_id
            where = run_location(tracker, experiment, run_id) if tracker and run_id else None
            print(format_result(outcome.result, where), end="\n\n", flush=True)

    outcomes = run_seeds(
        cfg,
        seed_runs(seeds, tracker=tracker, experiment=experiment, tags=tags),
        stack_size=args.stack_seeds,
        progress=show_progress(args),
        accelerator=training_device().type,
        on_done=show,
    )
    failed = [o for o in outcomes if o.error is not None]
    for o in failed:
        print(f"seed {o.seed} FAILED: {type(o.error).__name__}: {o.error}")
    done = [o.result for o in outcomes if o.result is not None]
    if done:
        acc = [r.metrics.get("test/acc_tuned", float("nan")) for r in done]
        print(
            f"{len(done)} of {len(seeds)} seeds trained; test acc@val-thr "
            f"mean {sum(acc) / len(acc):.4f}, min {min(acc):.4f}, max {max(acc):.4f}"
        )
    return 1 if failed else 0


def register(sub: Any, full: bool) -> None:
    """The `train` subcommand; its TrainConfig flags only when `full` (they load the registries)."""
    train = sub.add_parser("train", help="train and evaluate one head x loss variant", description=DESCRIPTION)
    if full:
        add_train_arguments(train)
    add_tracking_arguments(train)
    add_plugin_argument(train)
    seeds = train.add_argument_group("several seeds of this variant")
    seeds.add_argument(
        "--seeds",
        metavar="LIST",
        help="train these seeds (0-7, 0,3,5 or 2) instead of --seed, each its own MLflow run; "
        "stacked as one batched model where that is faster (docs/performance.md)",
    )
    seeds.add_argument(
        "--stack-seeds",
        type=int,
        metavar="K",
        help="train the seeds in stacks of K (1: one at a time, the single-seed path); default: "
        "up to 32 on a GPU, up to 8 on a CPU for the MLP encoder without in-batch mining, else 1",
    )
    train.add_argument("--no-track", action="store_true", help="do not record the run in MLflow")
    train.add_argument("--experiment", help="MLflow experiment name (default siamese-bench-train)")
    train.add_argument(
        "--no-progress", action="store_true", help="no progress bar (none either when stderr is not a terminal)"
    )
    train.set_defaults(func=cmd_train)
