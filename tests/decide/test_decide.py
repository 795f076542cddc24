"""decide end to end: the example's claims about a plugin head, decided on digits; run again, it
resumes without training anything; a row whose projection lies beyond --max-seeds is left alone."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from siamese_bench.cli import main
from siamese_bench.report.stats import Interval

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own-head" / "claims.yaml"


@pytest.mark.slow
def test_the_example_is_decided_end_to_end_and_a_second_run_trains_nothing(tmp_path, mlruns, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(EXAMPLE.parent, tmp_path / "examples" / "own-head")  # run as the README says: a relative path
    args = [
        "decide",
        "examples/own-head/claims.yaml",
        "--storage",
        str(tmp_path / "optuna.journal"),
        "--tracking-uri",
        mlruns,
        "--no-progress",
        "--json",
        "--workers",
        "2",
        "--threads",
        "1",
    ]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    rows = {r["id"]: r for r in first["rows"]}
    assert rows["product learns"]["verdict"] == "reproduced" and rows["product vs concat"]["verdict"] == "reproduced"
    assert first["trials"] == 6 and first["interval_level"] < 0.99  # 2 cells x 3 seeds, read at the looks' level
    assert Path(first["report"]).is_file() and "product vs concat" in Path(first["markdown"]).read_text()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlruns)
    exp = client.get_experiment_by_name("own-head")
    runs = client.search_runs([exp.experiment_id], "tags.phase = 'grid'")
    assert len(runs) == 6 and all(r.data.tags.get("plugin.product_head") for r in runs)  # provenance
    parent = client.search_runs([exp.experiment_id], "tags.role = 'study'")[0]
    assert parent.info.status == "FINISHED" and parent.data.tags["decide_rounds"] == "1"

    assert main(args) == 0  # resumes: every point is done, nothing is retrained
    again = json.loads(capsys.readouterr().out)
    assert [r["verdict"] for r in again["rows"]] == [r["verdict"] for r in first["rows"]]
    assert len(client.search_runs([exp.experiment_id], "tags.phase = 'grid'")) == 6


def test_a_row_beyond_max_seeds_gets_none_and_says_so():
    from types import SimpleNamespace

    from siamese_bench.decide.loop import RowState, _next_targets
    from siamese_bench.decide.sequential import nominal_alpha
    from siamese_bench.report.claims import ClaimRow

    def finding(row: ClaimRow, mean: float, sd: float) -> SimpleNamespace:
        diff = Interval(mean, sd, 3, mean - 0.02, mean + 0.02, sd / math.sqrt(3), 2)
        return SimpleNamespace(row=row, paired=SimpleNamespace(diff=diff), decided_on=None)

    near = ClaimRow(id="near", claim="c", source="s", select={"head": "a"}, versus={"head": "b"}, rule="better")
    clear = ClaimRow(id="clear", claim="c", source="s", select={"head": "c"}, versus={"head": "b"}, rule="better")
    plan = SimpleNamespace(rows=[near, clear], cells_of={"near": ("a", "b"), "clear": ("c", "b")})
    states = {"near": RowState("near"), "clear": RowState("clear")}
    found = {"near": finding(near, 0.006, 0.01), "clear": finding(clear, 0.03, 0.01)}
    seeds = {"a": 3, "b": 3, "c": 3}
    target = _next_targets(plan, found, states, seeds, 10, nominal_alpha(10))
    assert states["near"].why.startswith("not decidable within --max-seeds 10 (needs about")
    assert target["a"] == 3  # no seeds spent on it
    assert states["clear"].why == "open" and target["c"] > 3 and target["b"] == target["c"]


@pytest.mark.parametrize(("name", "cells", "rows"), [("mnist-claims", 9, 8), ("omniglot-claims", 3, 3)])
def test_the_shipped_claims_files_plan_their_cells(name, cells, rows):
    from siamese_bench.decide.plan import make_plan

    plan = make_plan(name, 10)
    assert plan.spec.name == name and len(plan.spec.cells()) == cells and len(plan.rows) == rows
    assert all(r.variants == ("*",) for r in plan.rows)  # decide's study holds only these cells


def test_a_bad_row_cell_names_the_file_line_and_row(tmp_path):
    from siamese_bench.core.errors import ConfigError
    from siamese_bench.decide.plan import make_plan

    path = tmp_path / "claims.yaml"
    path.write_text(
        "base: {dataset: digits}\nrows:\n  - id: x\n    claim: c\n    source: s\n"
        "    select: {head: nope}\n    rule: works\n"
    )
    with pytest.raises(ConfigError) as err:
        make_plan(path, 10)
    assert str(err.value).startswith(f"{path}: line 3: row 'x': cell head=nope: --head: unknown head 'nope'")
