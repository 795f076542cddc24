"""Command line: `siamese-bench train|...`. Bad input gets one line and exit status 2."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import typing
import warnings
from collections.abc import Sequence

from siamese_bench.allocator import keep_freed_memory
from siamese_bench.errors import ConfigError, UserError
from siamese_bench.report.cli import register as register_report

log = logging.getLogger("siamese_bench")
TORCH_COMMANDS = ("train", "sweep", "regress", "oneshot", "make-pairs-csv")  # the others never load torch


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, generated from the field's type, default and help
    (config.option): adding an option to TrainConfig adds its flag."""
    from siamese_bench.config import TrainConfig

    defaults = TrainConfig()
    g = p.add_argument_group("what to train (defaults: C1's Keras recipe)")
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        help_text, choices = f.metadata.get("help", ""), f.metadata.get("choices")
        default = getattr(defaults, f.name)
        if choices is not None:
            names = choices.names() if hasattr(choices, "names") else list(choices)
            help_text = f"one of: {', '.join(names)}" + (f"; {help_text}" if help_text else "")
        if f.name == "encoder_options":  # KEY=VALUE pairs, parsed by config_from_args
            g.add_argument(_flag(f.name), "--encoder-option", "-E", action="append", default=[], metavar="KEY=VALUE",
                           help=help_text)
            continue
        kind = hints[f.name]
        if kind is bool:
            g.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, default=default,
                           help=f"{help_text} (default %(default)s)")
            continue
        cast = next(t for t in (int, float, str) if t is kind or t in typing.get_args(kind))
        g.add_argument(_flag(f.name), type=cast, default=default, metavar=f.name.split("_")[-1].upper(),
                       help=f"{help_text} (default %(default)s)" if help_text else "default %(default)s")


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def config_from_args(args: argparse.Namespace):
    from siamese_bench.config import TrainConfig

    options = {}
    for item in args.encoder_options:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--encoder-options {item!r}: expected KEY=VALUE")
        options[key] = _parse_value(value)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{**values, "encoder_options": options}).validate()


def add_tracking_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("tracking")
    g.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
                   "else sqlite:///./mlruns.db); http://HOST:PORT for a server (make services-up starts one)")
    g.add_argument("--system-metrics", action="store_true",
                   help="record MLflow's CPU, memory and GPU samples (every 5 s) with each run")


def cmd_train(args: argparse.Namespace) -> int:
    from siamese_bench.tracking import Tracker
    from siamese_bench.training.train import DEFAULT_EXPERIMENT, run_training

    cfg = config_from_args(args)
    tracker = None if args.no_track else Tracker(args.tracking_uri, system_metrics=args.system_metrics)
    result = run_training(cfg, tracker=tracker, experiment=args.experiment or DEFAULT_EXPERIMENT,
                          progress=not args.no_progress)
    print(format_result(result))
    return 0


def format_result(result) -> str:
    m = result.metrics
    lines = [f"{result.config.head} + {result.config.loss} on {result.data_variant} "
             f"(seed {result.config.seed}, {result.config.epochs} epochs, {m['seconds']:.1f} s)",
             f"model: {result.config.encoder} encoder + {result.config.head} head, {result.n_parameters:,} parameters"]
    lines.append(f"{'split':<8} {'acc@0.5':>8} {'acc@val-thr':>11} {'ROC AUC':>8}")
    for label, stage in (("train", "train_eval"), ("val", "val"), ("test", "test")):
        lines.append(f"{label:<8} {m.get(stage + '/acc', float('nan')):>8.4f} "
                     f"{m.get(stage + '/acc_tuned', float('nan')):>11.4f} {m.get(stage + '/auc', float('nan')):>8.4f}")
    lines.append(f"validation threshold: d < {m.get('val/threshold', float('nan')):.4f}")
    if "retrieval/map_at_r" in m:
        lines.append(f"retrieval on the test set, by embedding distance: "
                     f"precision@1 {m['retrieval/precision_at_1']:.4f}, "
                     f"R-precision {m['retrieval/r_precision']:.4f}, MAP@R {m['retrieval/map_at_r']:.4f}")
    if "oneshot/acc" in m:
        lines.append(f"20-way one-shot (20 official runs): {m['oneshot/acc']:.2%}; "
                     f"nearest neighbour on pixels {m.get('oneshot_pixels/acc', float('nan')):.2%}")
    if result.collapsed:
        lines.append("COLLAPSED: the embeddings shrank to nearly one point; these numbers are not a model's")
    if result.run_id:
        lines.append(f"MLflow run: {result.run_id}")
    return "\n".join(lines)


def study_state(summary) -> str:
    if summary.study_done:
        return "done"
    if summary.seeds_left:
        return f"not done (seeds {', '.join(map(str, summary.seeds_left))} left for a later sweep)"
    return "not done (other sweeps still run)"


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds like 0,1,2, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("expected at least one seed, e.g. 0")
    return seeds


def cmd_sweep(args: argparse.Namespace) -> int:
    from siamese_bench.redact import mask_url
    from siamese_bench.sweep.runner import Sweep, available_cores
    from siamese_bench.sweep.spec import load_spec
    from siamese_bench.sweep.storage import Heartbeats, resolve_storage_url
    from siamese_bench.sweep.table import cell_table, format_cell_table, trials_frame
    from siamese_bench.tracking import Tracker

    spec = load_spec(args.spec)
    cells = spec.cells()
    seeds = spec.chosen_seeds(args.seeds)
    if args.dry_run:
        print(f"study {spec.name}: {len(cells)} cells x {len(seeds)} seeds = {len(cells) * len(seeds)} trials"
              f"{spec.seeds_note(seeds)}")
        if spec.tune:
            print(f"  first, tuning {', '.join(spec.tune.params)}: {len(cells)} cells x "
                  f"{spec.tune.trials_per_cell} trials on seed {spec.tune.seed}, {spec.tune.pruner} pruner")
        for cell in cells:
            print(f"  run      {cell.id}")
        for cell, reason in spec.excluded():
            print(f"  excluded {cell.id}: {reason}")
        return 0
    workers = args.workers or available_cores()
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    storage = resolve_storage_url(args.storage)
    heartbeats = Heartbeats(args.heartbeat, args.grace)
    tracker = Tracker(args.tracking_uri, system_metrics=args.system_metrics, outage=args.outage)
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}")
    sweep = Sweep(spec, storage, tracker, workers, progress=not args.no_progress, heartbeats=heartbeats,
                  outage=args.outage, threads=args.threads, seeds=seeds)
    summary = sweep.run()
    study = sweep.grid_study()
    factors = spec.cell_keys()
    print(f"\nstudy {spec.name} ({mask_url(storage)}): this sweep finished {summary.completed} trials, "
          f"{summary.failed} failed, {summary.pruned} pruned, {summary.stale} recovered from a dead sweep, "
          f"{summary.seconds:.0f} s; study {study_state(summary)}")
    if summary.tune_epochs_budget:
        saved = summary.tune_epochs_budget - summary.tune_epochs_run
        print(f"tuning: pruning ran {summary.tune_epochs_run} of {summary.tune_epochs_budget} epochs "
              f"({saved / summary.tune_epochs_budget:.0%} saved)")
    print(format_cell_table(cell_table(trials_frame(study), factors), factors))
    return 0 if summary.failed == 0 else 1


def cmd_regress(args: argparse.Namespace) -> int:
    from siamese_bench.regress import calibrate, format_rows, load_claims, problems, regress

    spec = load_claims(args.claims)
    if args.only and not args.calibrate:
        raise ConfigError("--only selects checks to calibrate: use it with --calibrate")
    if args.calibrate:
        calibrate(spec, set(args.only.split(",")) if args.only else None)
        print(f"thresholds written to {spec.path}")
        return 0
    for check in spec.checks:  # a check that cannot do its job is said before it runs
        for problem in problems(check):
            print(f"WARNING {problem}", flush=True)
    rows, failed = regress(spec)
    print(format_rows(rows))
    print(f"regress: {len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0


def cmd_make_pairs_csv(args: argparse.Namespace) -> int:
    from siamese_bench.data.make_pairs import make_pairs_csv

    train, test = make_pairs_csv(args.source, args.out, args.dims, args.seed)
    print(f"wrote {train} and {test}\nuse: --dataset csv:{train},{test}")
    return 0


def cmd_oneshot(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from siamese_bench.data.omniglot import find_archive
    from siamese_bench.evaluation.oneshot import RUNS_ARCHIVE, load_runs, model_dissimilarity, pixel_distance, score
    from siamese_bench.tracking import Tracker
    from siamese_bench.training.train import MODEL_ARTIFACT, load_model

    if not args.run_ids and not args.pixels:
        raise ConfigError("give one or more MLflow run ids, or --pixels for the baseline alone")
    if not 8 <= args.size <= 105:
        raise ConfigError(f"--size must be between 8 and 105, got {args.size}")
    archive = Path(args.runs) if args.runs else find_archive(RUNS_ARCHIVE)
    if not archive.is_file():
        raise ConfigError(f"--runs {archive}: no such file")
    runs_by_size: dict[int, list] = {}

    def runs(size: int) -> list:
        if size not in runs_by_size:
            runs_by_size[size] = load_runs(archive, size)
        return runs_by_size[size]

    lines = [f"20-way one-shot, {RUNS_ARCHIVE} runs from {archive}"]
    if args.pixels:
        result = score(runs(args.size), pixel_distance)
        lines.append(f"pixels (nearest neighbour, {args.size} x {args.size}): {result.accuracy:.2%} "
                     f"({result.correct}/{result.trials})")
    tracker = Tracker(args.tracking_uri) if args.run_ids else None
    for run_id in args.run_ids:
        with tempfile.TemporaryDirectory() as tmp:
            cfg, input_shape, module = load_model(tracker.download_artifact(run_id, MODEL_ARTIFACT, Path(tmp)))
        if len(input_shape) != 3 or input_shape[0] != 1 or input_shape[1] != input_shape[2]:
            raise ConfigError(f"run {run_id}: its model takes inputs of shape {input_shape}, not square "
                              "grayscale images; one-shot runs need a model trained on images")
        size = input_shape[-1]
        result = score(runs(size), model_dissimilarity(module))
        lines.append(f"{run_id} ({cfg.encoder} + {cfg.head} + {cfg.loss} on {cfg.dataset}): "
                     f"{result.accuracy:.2%} ({result.correct}/{result.trials})")
        if args.per_run:
            lines += [f"    {name}: {acc:.0%}" for name, acc in result.per_run.items()]
        if not args.no_log:  # at the step of the run's final metrics, so the new value is the latest
            tracker.log_metrics(run_id, result.metrics(), step=cfg.epochs)
    print("\n".join(lines))
    return 0


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `command` given, only that subcommand gets its full
    arguments (the train flags come from TrainConfig, whose registries load torch, so
    `siamese-bench --help` and `siamese-bench report ...` do not pay for them)."""
    parser = argparse.ArgumentParser(
        prog="siamese-bench",
        description="Ablation benchmarks of Siamese-network design choices (heads x losses x margins).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show library log messages")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train and evaluate one head x loss variant",
                           description="Train one variant, evaluate it on the test split and "
                           "record the run in MLflow. Prints train/val/test accuracy at the "
                           "sources' fixed rule (d < 0.5), at the validation-chosen threshold, and ROC AUC.")
    if command in (None, "train"):
        add_train_arguments(train)
    add_tracking_arguments(train)
    train.add_argument("--no-track", action="store_true", help="do not record the run in MLflow")
    train.add_argument("--experiment", help="MLflow experiment name (default siamese-bench-train)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    sweep = sub.add_parser("sweep", help="run (or resume) an Optuna study from a spec file",
                           description="Run every cell x seed of a study spec once, in parallel worker "
                           "processes, tracked in MLflow (a parent run per study, a child run per trial). "
                           "Running the same command again resumes: finished trials are kept, trials of "
                           "a killed run are marked failed and re-run. Several sweeps of one spec on one "
                           "storage (PostgreSQL for several machines) share the work: each cell x seed is "
                           "trained once, and a sweep that dies is detected and its points re-run.")
    sweep.add_argument("spec", help="study spec (YAML), e.g. benchmarks/mnist.yaml")
    sweep.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    sweep.add_argument("--threads", type=int, help="torch threads per worker (default: cores / workers; give 1 "
                       "when several sweeps share one machine, as oversubscribed cores slow tiny models many times)")
    sweep.add_argument("--storage", help="Optuna storage: a journal file path (default ./optuna.journal, "
                       "or $SIAMESE_BENCH_STORAGE; one machine) or postgresql://USER:PASSWORD@HOST:PORT/DB "
                       "(several machines: start the same command on each; make services-up starts a server)")
    sweep.add_argument("--heartbeat", type=int, default=10, metavar="SECONDS",
                       help="PostgreSQL storage: how often this sweep records that its trials are alive "
                       "(default %(default)s)")
    sweep.add_argument("--grace", type=int, default=60, metavar="SECONDS",
                       help="PostgreSQL storage: a trial silent this long belongs to a dead machine; it fails "
                       "and its point re-runs (default %(default)s; keep it above the longest outage)")
    sweep.add_argument("--outage", type=float, default=300, metavar="SECONDS",
                       help="how long to wait for an unreachable database or tracking server before "
                       "stopping (default %(default)s); finished trials are kept either way")
    sweep.add_argument("--seeds", type=seed_list, metavar="S[,S...]",
                       help="run only these of the spec's seeds (default: all); the study stays one study, "
                       "so a later sweep with the other seeds, or without --seeds, adds the rest")
    sweep.add_argument("--dry-run", action="store_true", help="list the cells and exclusions, run nothing")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_tracking_arguments(sweep)
    sweep.set_defaults(func=cmd_sweep)

    regress = sub.add_parser("regress", help="quick accuracy checks of the claims against thresholds",
                             description="Train each check's cell briefly on its check seeds and fail (exit "
                             "1) with a table when the mean falls outside its calibrated threshold: a 99 % "
                             "prediction bound for the mean of those seeds, from the calibration seeds. The "
                             "'detects' column is the drop of the true mean caught with 90 % power.")
    regress.add_argument("claims", help="claims file, e.g. benchmarks/claims.yaml")
    regress.add_argument("--calibrate", action="store_true",
                         help="measure the calibration seeds and write new thresholds (and what each check "
                         "detects) into the file; warns about a check that misses its `detect` target or that "
                         "its `baseline` would pass")
    regress.add_argument("--only", metavar="ID[,ID...]", help="with --calibrate: only these checks")
    regress.set_defaults(func=cmd_regress)

    register_report(sub)

    pairs = sub.add_parser("make-pairs-csv", help="write a C4-shaped pairs CSV (train + test) from a dataset",
                           description="C4's file is not public: write one of the same shape (1,983 training "
                           "rows, 1,060 same / 923 different; 662 test rows, 354 / 308; two 200-d vectors per row "
                           "and a class column) from a registered image dataset, encoded by PCA fitted on its "
                           "training images.")
    pairs.add_argument("--from", dest="source", default="mnist-5k", help="image dataset (default %(default)s)")
    pairs.add_argument("--out", default="datasets/c4/pairs",
                       help="output prefix: writes PREFIX-train.csv and PREFIX-test.csv (default %(default)s)")
    pairs.add_argument("--dims", type=int, default=200, help="vector length per side (default %(default)s)")
    pairs.add_argument("--seed", type=int, default=0, help="PCA and pair sampling seed (default %(default)s)")
    pairs.set_defaults(func=cmd_make_pairs_csv)
    oneshot = sub.add_parser("oneshot", help="20-way one-shot accuracy of trained models on Omniglot's 20 runs",
                             description="Score trained verification models (MLflow run ids; the run's "
                             "outputs/model.pt) on the 20 official 20-way one-shot runs of all_runs.zip "
                             "(400 trials): each test image goes to the training image with the lowest "
                             "dissimilarity. Images are resized to the model's input size. The accuracy is "
                             "logged to each run as oneshot/acc (and oneshot/runNN) unless --no-log.")
    oneshot.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="MLflow run ids of trained models")
    oneshot.add_argument("--runs", help="all_runs.zip (default: $SIAMESE_BENCH_OMNIGLOT_DIR, then datasets/omniglot)")
    oneshot.add_argument("--pixels", action="store_true", help="also score nearest neighbour on raw pixels")
    oneshot.add_argument("--size", type=int, default=105, help="image size for --pixels (default %(default)s)")
    oneshot.add_argument("--per-run", action="store_true", help="print the accuracy of every run")
    oneshot.add_argument("--no-log", action="store_true", help="print only; do not log metrics to the runs")
    add_tracking_arguments(oneshot)
    oneshot.set_defaults(func=cmd_oneshot)
    return parser


def quiet_libraries(verbose: bool, command: str = "train") -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        if command in TORCH_COMMANDS:
            import pytorch_lightning  # noqa: F401  (its import sets its loggers to INFO: import first)

        for name in ("pytorch_lightning", "lightning", "lightning_fabric", "mlflow", "alembic", "optuna"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # MLflow's HTTP client warns at each retry of a restarting server; sweep.retry says it once
        logging.getLogger("urllib3").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        if command in TORCH_COMMANDS:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    # MLflow prints two "View run" lines per run to stdout when it talks to a server
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), "")
    args = build_parser(command).parse_args(argv)
    quiet_libraries(args.verbose, args.command)
    keep_freed_memory()
    try:
        return args.func(args)
    except UserError as err:
        print(f"siamese-bench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("siamese-bench: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
