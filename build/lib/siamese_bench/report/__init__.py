"""Reports of grid studies, built from what MLflow holds (no retraining).

load (runs, curves, artifacts) -> findings, results, comparisons, provenance (tables) and
figures -> pdf; `build` orchestrates, `cli` registers `siamese-bench report`.

`build_report` is imported lazily, so registering the subcommand stays cheap (no matplotlib,
seaborn or MLflow import until a report is built).
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_report"]


def __getattr__(name: str) -> Any:
    if name == "build_report":
        from siamese_bench.report.build import build_report

        return build_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
