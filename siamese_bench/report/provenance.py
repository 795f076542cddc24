"""Provenance: what produced the numbers (versions, data, seeds, time, hardware) and which
cell x seed runs are missing or failed. A study with holes still reports; this names them."""

from __future__ import annotations

import os
import platform
from collections import Counter
from datetime import UTC, datetime

import pandas as pd

from siamese_bench.infra.tracking import git_commit, package_version
from siamese_bench.report.load import Study
from siamese_bench.report.tables import Table


def _counts(values) -> str:
    counts = Counter(v for v in values if v)
    if not counts:
        return "unknown"
    return "; ".join(f"{v} ({n} runs)" if len(counts) > 1 else str(v) for v, n in counts.most_common())


def _short_commits(values) -> list[str]:
    return [v[:10] if len(v) == 40 else v for v in values]


def _when(ms) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC") if ms else "?"


def _samples(runs: pd.DataFrame) -> str:
    parts = []
    for n, group in runs.groupby("n_train_samples", sort=True):
        parts.append(f"{n:,} ({', '.join(sorted(set(group['loss'])))})")
    return "; ".join(parts) or "unknown"


def _plugins(runs: pd.DataFrame) -> str:
    """Plugins the runs loaded, from their plugin.<module> = sha256 tags (the report imports none)."""
    cols = sorted(c for c in runs.columns if c.startswith("plugin."))
    shas = {c: ", ".join(sorted({str(v)[:12] for v in runs[c].dropna()})) for c in cols}
    return "; ".join(f"{c.removeprefix('plugin.')} (sha256 {sha})" for c, sha in shas.items()) or "none"


def study_rows(studies: list[Study]) -> list[dict[str, str]]:
    rows = []
    for s in studies:
        runs, done = s.runs, s.complete
        expected = len(s.cells) * len(s.seeds)
        secs = done["seconds"].dropna() if not done.empty else pd.Series(dtype=float)
        declared = f" of {s.cells_declared} declared" if s.cells_declared and s.cells_declared != len(s.cells) else ""
        rows.append(
            {
                "study": s.name,
                "dataset variant": ", ".join(s.variants) or "–",
                "dataset source": _counts(runs["dataset_source"]) if not runs.empty else "–",
                "training samples (pairs or triplets) per epoch": _samples(done) if not done.empty else "–",
                "seeds": ", ".join(str(x) for x in s.seeds) or "–",
                "epochs": ", ".join(str(e) for e in sorted(set(runs["epochs"]))) if not runs.empty else "–",
                "cells": f"{len(s.cells)}{declared} (from {s.cells_source})",
                "grid runs finished / expected": f"{len(done)} / {expected}",
                "tuning runs (not reported)": str(s.tune_runs),
                "wall time per trial: median, total": (
                    f"{secs.median():.1f} s, {secs.sum() / 60:.1f} min" if len(secs) else "–"
                ),
                "sweep wall time": (
                    f"{s.parent_metrics['sweep_seconds'] / 60:.1f} min (last sweep call)"
                    if "sweep_seconds" in s.parent_metrics
                    else "–"
                ),
                "sweep workers": s.parent_params.get("workers", "–"),
                "package version": _counts(runs["package_version"]) if not runs.empty else "–",
                "git commit": _counts(_short_commits(runs["git_commit"])) if not runs.empty else "–",
                "plugins": _plugins(runs) if not runs.empty else "–",
                "spec": (
                    f"{s.parent_params.get('spec_path', '–')} "
                    f"(fingerprint {s.parent_tags.get('spec_fingerprint', '–')})"
                ),
                "runs started – ended": (
                    f"{_when(runs['start_time'].min())} – {_when(runs['end_time'].max())}" if not runs.empty else "–"
                ),
                "study run status": s.parent_status,
            }
        )
    return rows


def provenance_table(studies: list[Study]) -> Table:
    rows = study_rows(studies)
    keys = list(rows[0]) if rows else ["study"]
    view = pd.DataFrame({"": keys[1:], **{r["study"]: [r[k] for k in keys[1:]] for r in rows}})
    widths = {"": 1.4, **{r["study"]: 3.0 for r in rows}}
    return Table(
        "provenance",
        "Provenance of the runs",
        pd.DataFrame(rows),
        view,
        widths=widths,
        note="Package version and git commit as tagged on each grid run (several values mean the "
        "study was resumed with newer code). Wall time is the trial's own training and "
        "evaluation time.",
    )


def hardware_table(studies: list[Study], uri: str) -> Table:
    """The hardware the runs record (their hardware.* tags: device, torch, threads, ...), and the
    machine that built the report, read without importing torch."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = "not installed"
    tagged = {}
    for s in studies:
        for col in s.runs.columns:
            if col.startswith("hardware."):
                tagged[f"runs: {col.removeprefix('hardware.')}"] = _counts(s.runs[col].dropna())
    rows = {
        **tagged,
        "platform (report machine)": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "CPU count": str(os.cpu_count()),
        "Python": platform.python_version(),
        "torch (report machine)": torch_version,
        "siamese-bench (report)": f"{package_version()} at {git_commit()[:10]}",
        "tracking URI": uri,
        "report built": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    data = pd.DataFrame({"item": list(rows), "value": list(rows.values())})
    note = (
        "The runs' hardware.* tags first, then the machine that built the report."
        if tagged
        else "The runs carry no hardware tags (older runs): only the machine that built the report is known."
    )
    return Table("hardware", "Hardware and software", data, data.copy(), widths={"item": 1.5, "value": 4.0}, note=note)


def missing_table(studies: list[Study]) -> Table:
    """Every expected cell x seed without a finished run, with its state and reason."""
    rows = []
    retried = 0
    for s in studies:
        done = set(zip(s.complete["cell"], s.complete["seed"], strict=True)) if not s.complete.empty else set()
        if done:
            kept = set(s.complete["run_id"])
            retried += sum(
                (c, sd) in done and rid not in kept
                for c, sd, rid in zip(s.runs["cell"], s.runs["seed"], s.runs["run_id"], strict=True)
            )
        for cell in s.cells:
            for seed in s.seeds:
                if (cell, seed) in done:
                    continue
                tries = s.runs[(s.runs["cell"] == cell) & (s.runs["seed"] == seed)] if not s.runs.empty else s.runs
                if tries.empty:
                    rows.append(
                        {
                            "study": s.name,
                            "cell": cell,
                            "seed": seed,
                            "state": "MISSING",
                            "fail_reason": "no run in the tracking store (never run, or deleted)",
                        }
                    )
                    continue
                last = tries.sort_values("start_time").iloc[-1]
                state = last["status"] + (f" / optuna {last['optuna_state']}" if last["optuna_state"] else "")
                reason = last["fail_reason"] or (
                    "still running, or its sweep was killed"
                    if last["status"] == "RUNNING"
                    else "finished without final metrics"
                )
                rows.append(
                    {
                        "study": s.name,
                        "cell": cell,
                        "seed": seed,
                        "state": state,
                        "fail_reason": f"{reason} ({len(tries)} attempt{'s' if len(tries) > 1 else ''})",
                    }
                )
        if s.runs.empty and not (s.cells_declared and s.cells_declared > len(s.cells)):
            rows.append(
                {
                    "study": s.name,
                    "cell": "all",
                    "seed": "all",
                    "state": "MISSING",
                    "fail_reason": "the study has no grid run in the tracking store",
                }
            )
        if s.cells_declared and s.cells_declared > len(s.cells):
            rows.append(
                {
                    "study": s.name,
                    "cell": f"{s.cells_declared - len(s.cells)} declared cell(s)",
                    "seed": "all",
                    "state": "MISSING",
                    "fail_reason": f"no run at all; names in {s.parent_params.get('spec_path', 'the spec')}",
                }
            )
    data = pd.DataFrame(rows, columns=["study", "cell", "seed", "state", "fail_reason"])
    note = (
        "Every cell x seed finished."
        if not rows
        else f"{len(rows)} cell x seed point(s) without a finished run; tables and figures use what finished."
    )
    if retried > 0:
        note += (
            f" {retried} earlier failed or killed attempt(s) of points that did finish (re-runs or duplicates; "
            "not listed)."
        )
    return Table(
        "missing",
        "Missing or failed runs",
        data,
        data.astype(str),
        widths={"study": 1.0, "cell": 2.2, "seed": 0.4, "state": 1.1, "fail_reason": 2.6},
        note=note,
    )
