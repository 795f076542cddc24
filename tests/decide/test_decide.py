"""decide end to end: the example's claims about a plugin head, decided on digits; run again, it
resumes without training anything, and refuses a larger --max-seeds on the same study."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest

from siamese_bench.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own-head" / "claims.yaml"


@pytest.mark.slow
def test_the_example_is_decided_end_to_end_and_a_second_run_trains_nothing(
    tmp_path, mlruns, monkeypatch, capsys, caplog
):
    caplog.set_level(logging.INFO, logger="siamese_bench.sweep")
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
    assert "2 cells x 3 seeds = 6 trials" in caplog.text  # the round, not the spec's 10 seeds
    seconds = [float(s) for s in re.findall(r"auc [0-9.]+ \(([0-9.]+) s\)", caplog.text)]
    assert len(seconds) == 6 and all(s > 0 for s in seconds)  # each trained point's real time

    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlruns)
    exp = client.get_experiment_by_name("own-head")
    runs = client.search_runs([exp.experiment_id], "tags.phase = 'grid'")
    assert len(runs) == 6 and all(r.data.tags.get("plugin.product_head") for r in runs)  # provenance
    assert {r.data.tags["stack_size"] for r in runs} == {"3"}  # each cell's round of seeds: one stack
    parent = client.search_runs([exp.experiment_id], "tags.role = 'study'")[0]
    assert parent.info.status == "FINISHED" and parent.data.tags["decide_rounds"] == "1"

    assert main(args) == 0  # resumes: every point is done, nothing is retrained
    again = json.loads(capsys.readouterr().out)
    assert [r["verdict"] for r in again["rows"]] == [r["verdict"] for r in first["rows"]]
    assert len(client.search_runs([exp.experiment_id], "tags.phase = 'grid'")) == 6

    assert main([*args, "--max-seeds", "20"]) == 2  # more looks at the same runs would spend the error again
    assert "study 'own-head' was started with --max-seeds 10" in capsys.readouterr().err
    assert len(client.search_runs([exp.experiment_id], "tags.phase = 'grid'")) == 6


@pytest.mark.parametrize(
    ("name", "cells", "rows"), [("mnist-claims", 9, 8), ("omniglot-claims", 3, 3), ("sequences-claims", 1, 1)]
)
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
