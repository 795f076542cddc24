"""The results the docs show, as data: a snapshot of studies (their runs and what their parent runs
declare) taken from the tracking store, and the Markdown rendered from it.

`siamese-bench docs --results` takes the snapshot (docs/results.json) and renders docs/results.md
and the README's claims table from it, so no number in the docs is typed by hand; a test renders
them again from the checked-in snapshot and compares. The same snapshot renders the same bytes.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from typing import Any

import numpy as np
import pandas as pd

from siamese_bench.report.claims import CLAIMS
from siamese_bench.report.findings import Finding, findings, not_covered
from siamese_bench.report.findings_table import findings_table
from siamese_bench.report.load import Study
from siamese_bench.report.results import results_table

# The groups the docs report, one name per study (spec file, study, report folder and make target).
GROUPS: dict[str, tuple[str, ...]] = {
    "mnist": ("mnist", "mnist-full"),
    "vectors": ("vectors",),
    "mining": ("mining",),
    "sequences": ("sequences",),
    "omniglot": ("omniglot", "omniglot-full"),
    "oneshot": ("oneshot",),
}
SNAPSHOT_VERSION = 1


def _plain(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def snapshot(studies: list[Study]) -> dict[str, Any]:
    """The studies as JSON data: every field of each, the runs as columns and rows."""
    out = []
    for s in studies:
        item: dict[str, Any] = {}
        for f in fields(Study):
            if not f.init:  # a cache, not data
                continue
            value = getattr(s, f.name)
            if f.name == "runs":
                frame = value.drop(columns=[c for c in ("artifact_uri",) if c in value])
                item["runs"] = {
                    "columns": list(frame.columns),
                    "rows": [[_plain(v) for v in row] for row in frame.itertuples(index=False)],
                }
            else:
                item[f.name] = value
        out.append(item)
    return {"version": SNAPSHOT_VERSION, "studies": out}


def studies_from(data: dict[str, Any]) -> list[Study]:
    """The studies a snapshot holds, as the report reads them from a store."""
    out = []
    for item in data["studies"]:
        runs = pd.DataFrame(item["runs"]["rows"], columns=item["runs"]["columns"])
        for col in runs.columns:  # JSON's null back to NaN in numeric columns
            if runs[col].dtype == object and runs[col].map(lambda v: v is None or isinstance(v, float | int)).all():
                runs[col] = pd.to_numeric(runs[col])
        out.append(Study(**{**{k: v for k, v in item.items() if k != "runs"}, "runs": runs}))
    return out


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True, allow_nan=False) + "\n"


def glance(found: list[Finding]) -> str:
    """One line per claim row: the verdict and the evidence that decided it (Markdown)."""
    lines = ["| claim | verdict | decided on | measured (95 % interval over seeds) |", "|---|---|---|---|"]
    for f in found:
        ev = f.decided_on
        where = f"{ev.variant}, {ev.acc.n} seeds ({ev.study})" if ev else "–"
        if f.paired is not None and f.paired.diff.n:
            d = f.paired.diff
            scale = 1 if f.row.metric.endswith("auc") else 100
            measured = (
                f"{f.row.metric} difference {d.mean * scale:+.3g} [{d.lo * scale:+.3g}, {d.hi * scale:+.3g}]"
                if d.has_interval
                else f"{f.row.metric} difference {d.mean * scale:+.3g}"
            )
        elif ev is not None and f.row.rule == "oneshot" and ev.oneshot is not None:
            measured = f"one-shot {ev.oneshot.text(unit=' %')}"
        elif ev is not None and f.row.rule in ("chance", "learns", "above-chance"):
            measured = f"AUC {ev.auc.text(scale=1, digits=3)}"
        elif ev is not None:
            measured = f"test acc {ev.acc.text(unit=' %')}"
        else:
            measured = "no finished run"
        claim = f.row.claim.replace("|", "\\|")
        lines.append(f"| **{f.row.id}**: {claim} | {f.verdict} | {where} | {measured} |")
    return "\n".join(lines)


def results_markdown(studies: list[Study], everything: list[Finding] | None = None) -> tuple[str, str]:
    """(docs/results.md, the README's claims table) rendered from `studies`; `everything` is
    their findings on every claim, when the caller has them already."""
    by_name = {s.name: s for s in studies}
    everything = findings(studies, CLAIMS) if everything is None else everything
    missing = not_covered(studies, everything)
    parts = [
        "# Results",
        "",
        "Written by `make docs` (`siamese-bench docs --results`) from the tracking store, through the snapshot "
        "docs/results.json; nothing here is typed by hand. Rules and families: [claims.md](claims.md).",
        "",
        "## Every claim",
        "",
        glance(everything),
        "",
    ]
    if missing:
        parts += [f"Not covered by these studies: {', '.join(missing)}.", ""]
    for group, names in GROUPS.items():
        present = [by_name[n] for n in names if n in by_name]
        if not present:
            continue
        found = findings(present, CLAIMS)
        parts += [f"## {group}", "", f"Studies: {', '.join(s.name for s in present)} (`make bench-{group}`).", ""]
        if found:
            parts += [findings_table(found, []).markdown(), ""]
        for i, study in enumerate(present, start=1):
            table = results_table(study, i)
            parts += [f"### {table.title}", "", table.markdown(), "", table.note, ""]
    versions = sorted({str(v) for s in studies for v in s.runs.get("package_version", []) if v})
    commits = sorted({str(c)[:10] for s in studies for c in s.runs.get("git_commit", []) if c})
    parts += [
        "## Provenance",
        "",
        f"Runs made by siamese-bench {', '.join(versions) or '?'} at commit(s) "
        f"{', '.join(commits) or '?'}; studies: "
        + "; ".join(f"{s.name} ({len(s.complete)} finished runs)" for s in studies)
        + ".",
        "",
    ]
    return "\n".join(parts), glance(everything)


__all__ = ["GROUPS", "dumps", "glance", "results_markdown", "snapshot", "studies_from"]
