"""Read studies back from MLflow, read only: runs and final metrics, curves and artifacts.

A study is one MLflow experiment written by `siamese-bench sweep`: a parent run (tag
role=study) and a child run per trial (tag phase=grid or tune). Only grid runs enter the
tables; tuning runs are counted. Nothing here writes to the store.

Whether a run's loss takes a margin is what the run says (its loss_uses_margin tag; for runs
from before the tag, whether it recorded a margin), never the loss's name; where it takes none,
the run's margin is NaN.
"""

from __future__ import annotations

import ast
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from siamese_bench.core.errors import ConfigError
from siamese_bench.core.recipe import VARIANT_PREFERENCE
from siamese_bench.core.redact import mask_url, scrub
from siamese_bench.core.store import LOSS_USES_MARGIN, OBJECTIVE, STUDY_CELLS
from siamese_bench.infra.tracking import check_reachable

log = logging.getLogger(__name__)

FINAL_METRICS = (
    "test/acc",
    "test/auc",
    "test/acc_tuned",
    "test/threshold",
    "test/loss",
    "train_eval/acc",
    "train_eval/auc",
    "train_eval/acc_tuned",
    "val/auc",
    "val/acc",
    "val/acc_tuned",
    "seconds",
    "collapsed",
    "oneshot/acc",
    "oneshot_pixels/acc",
    "oneshot/trials",
    "retrieval/precision_at_1",
    "retrieval/r_precision",
    "retrieval/map_at_r",
    "mix/acc",
    "mix/auc",
    "mix/acc_tuned",
)
CURVE_METRICS = ("val/auc", "train/loss")
VARIANT_ORDER = VARIANT_PREFERENCE  # preferred evidence first (recipe.py says why)
PARAM_COLUMNS = ("encoder", "optimizer", "lr", "batch_size", "init", "triplet_negatives", "triplet_mining")


def variant_rank(variant: str) -> int:
    return VARIANT_ORDER.index(variant) if variant in VARIANT_ORDER else len(VARIANT_ORDER)


def parse_cell(cell: str) -> dict[str, str]:
    """'head=euclidean,loss=contrastive,margin=1' -> {'head': 'euclidean', ...} (ordered)."""
    out = {}
    for part in cell.split(","):
        key, sep, value = part.partition("=")
        if sep:
            out[key] = value
    return out


@dataclass
class Study:
    """One study's grid runs (every state) and what its parent run declares."""

    name: str
    experiment_id: str
    runs: pd.DataFrame  # one row per grid child run, any status
    parent_tags: dict[str, str] = field(default_factory=dict)
    parent_params: dict[str, str] = field(default_factory=dict)
    parent_metrics: dict[str, float] = field(default_factory=dict)
    parent_status: str = "missing"
    tune_runs: int = 0
    seeds: list[int] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)  # expected cells, in spec order when known
    cells_declared: int | None = None  # the parent's `cells` param
    cells_source: str = "runs"  # "the spec ..." when the study recorded its cells
    # (the runs frame it was computed from, `complete`): a report asks for it hundreds of times
    _complete: tuple[pd.DataFrame, pd.DataFrame] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def complete(self) -> pd.DataFrame:
        """Finished grid runs with final metrics, one per cell x seed x data variant (the latest).
        Computed once per runs frame; each caller gets its own (copy-on-write) view."""
        if self._complete is None or self._complete[0] is not self.runs:
            self._complete = (self.runs, self._finished())
        return self._complete[1].copy(deep=False)

    def _finished(self) -> pd.DataFrame:
        if self.runs.empty:
            return self.runs
        ok = (
            (self.runs["status"] == "FINISHED")
            & (self.runs["optuna_state"].isin(["COMPLETE", ""]))
            & self.runs["test/acc"].notna()
        )
        done = self.runs[ok].sort_values("start_time")
        return done.drop_duplicates(["cell", "seed", "dataset_variant"], keep="last").reset_index(drop=True)

    @property
    def factors(self) -> list[str]:
        names: list[str] = []
        for cell in self.cells:
            names += [k for k in parse_cell(cell) if k not in names]
        return names

    @property
    def is_grid(self) -> bool:
        """A factorial design over head (and loss): every cell sets the same factors, head among
        them. A one-lever-at-a-time study (K1's) or a claims file's cells are not: they get forest
        plots of what their rows compare, not grids with empty places."""
        keys = {tuple(parse_cell(c)) for c in self.cells}
        return len(self.cells) >= 2 and len(keys) == 1 and "head" in next(iter(keys))

    @property
    def variants(self) -> list[str]:
        done = self.complete
        return sorted(done["dataset_variant"].unique(), key=variant_rank) if not done.empty else []


DIVERGED_REASONS = ("DivergedError", "diverged:")  # train.DivergedError, or a non-finite objective (runner)


def diverged(runs: pd.DataFrame) -> pd.Series:
    """Runs that ended because training diverged (NaN or infinite loss or objective): the
    method failed, as opposed to a run the infrastructure lost (those are re-run)."""
    if runs.empty or "fail_reason" not in runs:
        return pd.Series(False, index=runs.index)
    reason = runs["fail_reason"].fillna("").astype(str)
    return reason.str.startswith(DIVERGED_REASONS)


def open_store(uri: str):
    """An MlflowClient on `uri`, checked to be readable; never creates a store."""
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # the report downloads small files
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            raise ConfigError(f"tracking store {uri} not found (no file {path})")
    elif uri.startswith("file:") or "://" not in uri:
        path = Path(uri.removeprefix("file://").removeprefix("file:"))
        if not path.is_dir():
            raise ConfigError(f"tracking store {uri} not found (no folder {path})")
    elif uri.startswith(("http://", "https://")):
        # MLflow retries an unreachable server for minutes by default; a report should not.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        check_reachable(uri)  # one line for an unreachable server, refused credentials or an unknown certificate
    try:
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)
    except Exception as err:  # noqa: BLE001  (MLflow raises many kinds here)
        text = str(err).strip()
        if "Connection refused" in text or "Max retries exceeded" in text or "timed out" in text:
            raise ConfigError(f"cannot reach tracking store {mask_url(uri)} (is the server running?)") from None
        first = text.splitlines()[0] if text else type(err).__name__
        raise ConfigError(f"cannot read tracking store {mask_url(uri)}: {scrub(first, uri)[:200]}") from None
    return client


def _all_runs(client, experiment_id: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _margin(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "None", "") else float("nan")
    except ValueError:
        return float("nan")


def _uses_margin(tag: str | None, margin: float) -> bool:
    """The run's loss_uses_margin tag; for runs from before it, whether a margin was recorded
    (training records None as the margin of a loss that takes none)."""
    if tag in ("true", "false"):
        return tag == "true"
    return math.isfinite(margin)


def _run_row(run) -> dict[str, Any]:
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    margin = _margin(params.get("margin"))
    uses_margin = _uses_margin(tags.get(LOSS_USES_MARGIN), margin)
    row: dict[str, Any] = {
        "run_id": run.info.run_id,
        "cell": tags.get("cell", run.info.run_name or run.info.run_id),
        "seed": int(tags.get("seed", params.get("seed", -1))),
        "status": run.info.status,
        "optuna_state": tags.get("optuna_state", ""),
        "fail_reason": tags.get("fail_reason", ""),
        "optuna_trial": int(tags.get("optuna_trial", -1)),
        "head": tags.get("head", params.get("head", "")),
        "loss": tags.get("loss", params.get("loss", "")),
        "margin": margin if uses_margin else float("nan"),  # NaN: the loss takes no margin
        "loss_uses_margin": uses_margin,
        "objective": tags.get(OBJECTIVE, ""),  # "pairs" or "triplets"; "" in runs from before the tag
        "dataset_variant": tags.get("dataset_variant", params.get("dataset", "")),
        "dataset_source": tags.get("dataset_source", ""),
        "epochs": int(params["epochs"]) if "epochs" in params else -1,
        "n_train_samples": int(params["n_train_samples"]) if "n_train_samples" in params else -1,
        "n_parameters": int(params["n_parameters"]) if "n_parameters" in params else -1,
        "package_version": tags.get("package_version", ""),
        "git_commit": tags.get("git_commit", ""),
        "start_time": run.info.start_time or 0,
        "end_time": run.info.end_time,
        "artifact_uri": run.info.artifact_uri,
    }
    for key in PARAM_COLUMNS:
        row[f"param.{key}"] = params.get(key, "")
    for key, value in params.items():
        if key.startswith("encoder."):
            row[f"param.{key}"] = value
    for key, value in tags.items():
        if key.startswith(("factor.", "hardware.", "plugin.")):
            row[key] = value
    for name in FINAL_METRICS:
        row[name] = metrics.get(name, np.nan)
    for name, value in metrics.items():
        if name.startswith(("oneshot/run", "oneshot_pixels/run")):  # per official run (K1's figure)
            row[name] = value
    return row


RUN_COLUMNS = [
    "run_id",
    "cell",
    "seed",
    "status",
    "optuna_state",
    "fail_reason",
    "optuna_trial",
    "head",
    "loss",
    "margin",
    "loss_uses_margin",
    "objective",
    "dataset_variant",
    "dataset_source",
    "epochs",
    "n_train_samples",
    "n_parameters",
    "package_version",
    "git_commit",
    "start_time",
    "end_time",
    "artifact_uri",
    *(f"param.{k}" for k in PARAM_COLUMNS),
    *FINAL_METRICS,
]


def _declared_cells(client, run_id: str) -> list[str] | None:
    """The cells the study's spec declares, in spec order, as its parent run recorded them."""
    import json
    import tempfile

    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(run_id, STUDY_CELLS, tmp)
            return [str(c) for c in json.loads(Path(path).read_text())["cells"]]
    except Exception as err:  # noqa: BLE001  (absent in older studies, moved store)
        log.debug("study run %s: no %s (%s)", run_id, STUDY_CELLS, type(err).__name__)
        return None


def load_study(client, name: str, uri: str) -> Study:
    exp = client.get_experiment_by_name(name)
    if exp is None or exp.lifecycle_stage != "active":
        known = sorted(e.name for e in client.search_experiments() if e.name != "Default")
        raise ConfigError(
            f"study {name!r} not found in tracking store {uri} (studies there: {', '.join(known) or 'none'})"
        )
    runs = _all_runs(client, exp.experiment_id)
    parents = sorted((r for r in runs if r.data.tags.get("role") == "study"), key=lambda r: r.info.start_time or 0)
    children = [r for r in runs if r.data.tags.get("role") != "study"]
    grid = [r for r in children if r.data.tags.get("phase", "grid") == "grid" and "cell" in r.data.tags]
    frame = pd.DataFrame([_run_row(r) for r in grid]) if grid else pd.DataFrame(columns=RUN_COLUMNS)
    study = Study(name, exp.experiment_id, frame, tune_runs=sum(r.data.tags.get("phase") == "tune" for r in children))
    if parents:
        p = parents[-1]
        study.parent_tags, study.parent_params = dict(p.data.tags), dict(p.data.params)
        study.parent_metrics, study.parent_status = dict(p.data.metrics), p.info.status
    try:
        study.seeds = [int(s) for s in ast.literal_eval(study.parent_params.get("seeds", "[]"))]
    except (ValueError, SyntaxError):
        study.seeds = []
    if not frame.empty:
        study.seeds = sorted(set(study.seeds) | set(frame["seed"]))
    declared = study.parent_params.get("cells")
    study.cells_declared = int(declared) if declared and declared.isdigit() else None
    observed = [] if frame.empty else list(frame.sort_values("optuna_trial").drop_duplicates("cell")["cell"])
    spec_cells = _declared_cells(client, parents[-1].info.run_id) if parents else None
    if spec_cells is not None:
        study.cells = spec_cells + [c for c in observed if c not in spec_cells]
        study.cells_source = f"the spec {study.parent_params.get('spec_path', '?')}, as the study recorded it"
    else:
        study.cells = observed
    return study


def load_studies(names: list[str], uri: str) -> tuple[Any, list[Study]]:
    if not names:
        raise ConfigError("name at least one study")
    client = open_store(uri)
    return client, [load_study(client, name, uri) for name in names]


def load_curves(client, runs: pd.DataFrame, metrics=CURVE_METRICS) -> pd.DataFrame:
    """Per-epoch values: one row per run x metric x step (run_id, cell, seed, metric, epoch, value)."""
    rows = []
    run: Any  # a row of `runs`; pandas-stubs types its cells as any scalar, not as their columns
    for run in runs.itertuples(index=False):
        for metric in metrics:
            for m in client.get_metric_history(run.run_id, metric):
                if m.step < run.epochs or run.epochs < 0:  # step = epochs holds final metrics
                    rows.append((run.run_id, run.cell, run.seed, metric, m.step, m.value))
    return pd.DataFrame(rows, columns=["run_id", "cell", "seed", "metric", "epoch", "value"])


class ArtifactCache:
    """Downloads `outputs/*.npz` of runs on demand into a folder; a missing one gives None."""

    def __init__(self, client, folder: Path) -> None:
        self.client, self.folder = client, folder
        self.missing: list[tuple[str, str]] = []  # (run_id, artifact path)
        self._local: dict[tuple[str, str], Path | None] = {}
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    def get(self, run_id: str, name: str) -> dict[str, np.ndarray] | None:
        artifact = f"outputs/{name}"
        key = (run_id, artifact)
        if key not in self._local:
            dst = self.folder / run_id
            try:
                dst.mkdir(parents=True, exist_ok=True)
                self._local[key] = Path(self.client.download_artifacts(run_id, artifact, str(dst)))
            except Exception as err:  # noqa: BLE001  (absent artifact, moved store, server error)
                log.debug("run %s: no %s (%s)", run_id, artifact, type(err).__name__)
                self._local[key] = None
                self.missing.append(key)
        local = self._local[key]
        if local is None:
            return None
        try:
            with np.load(local, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except (OSError, ValueError):
            self._local[key] = None
            self.missing.append(key)
            return None


# C1's recipe (recipe.py, TrainConfig's defaults): when a study varies other factors too, the
# claims' rows use the cells that keep these values (compared as MLflow stores params: text).
