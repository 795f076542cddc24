"""What a decide study keeps of its design (decide/design.py): the looks it started with, and fresh
seeds for a cell chosen as the best of several. A real MLflow store, no training."""

from __future__ import annotations

import pytest

from siamese_bench.core.errors import ConfigError
from siamese_bench.decide.design import Design, check_fresh_seeds, keep_or_record, recorded
from siamese_bench.decide.plan import make_plan
from siamese_bench.infra.tracking import Tracker


def claims_file(tmp_path, first_seed: int = 0, chosen_from: int = 1) -> str:
    path = tmp_path / "mine.yaml"
    path.write_text(
        f"base: {{dataset: digits, epochs: 2}}\nfirst_seed: {first_seed}\nrows:\n"
        "  - id: pick\n    claim: c\n    source: s\n    select: {head: abs-diff-dense, loss: bce}\n"
        f"    rule: learns\n    chosen_from: {chosen_from}\n"
    )
    return str(path)


def finished_run(tracker: Tracker, study: str, seed: int, head: str = "abs-diff-dense") -> None:
    params = {"dataset": "digits", "head": head, "loss": "bce", "seed": seed}
    run_id = tracker.start_run(study, f"{head}+bce", params, {"phase": "grid", "seed": str(seed)})
    tracker.end_run(run_id, "FINISHED")


def test_a_study_keeps_the_max_seeds_it_started_with(tmp_path, mlruns):
    tracker, plan = Tracker(mlruns), make_plan(claims_file(tmp_path), 10)
    keep_or_record(tracker, plan, Design(10, 0), "f")
    assert recorded(tracker, "mine") == Design(10, 0)
    keep_or_record(tracker, plan, Design(10, 0), "f")  # resuming with the same design is fine
    with pytest.raises(ConfigError) as err:
        keep_or_record(tracker, plan, Design(20, 0), "f")
    assert str(err.value).startswith("--max-seeds 20: study 'mine' was started with --max-seeds 10")
    assert "Resume with --max-seeds 10, or decide into a fresh study (--name mine-20)" in str(err.value)


def test_a_study_with_runs_no_decide_recorded_is_refused(tmp_path, mlruns):
    tracker, plan = Tracker(mlruns), make_plan(claims_file(tmp_path), 10)
    finished_run(tracker, "mine", 0)
    with pytest.raises(ConfigError, match="already holds 1 runs that no decide recorded its looks for"):
        keep_or_record(tracker, plan, Design(10, 0), "f")


def test_a_chosen_cell_is_judged_on_seeds_its_choice_did_not_see(tmp_path, mlruns):
    tracker = Tracker(mlruns)
    for seed in (0, 1, 2):
        finished_run(tracker, "lever-study", seed)  # the sweep the cell was chosen from
    finished_run(tracker, "lever-study", 5, head="euclidean")  # another cell: no matter
    check_fresh_seeds(tracker, make_plan(claims_file(tmp_path), 10), "f")  # not chosen: seeds may repeat
    chosen = make_plan(claims_file(tmp_path, chosen_from=8), 10)
    with pytest.raises(ConfigError) as err:
        check_fresh_seeds(tracker, chosen, "f")
    assert "row 'pick' (chosen_from: 8)" in str(err.value) and "study 'lever-study': seeds 0, 1, 2" in str(err.value)
    assert "set first_seed: 3" in str(err.value)
    fresh = make_plan(claims_file(tmp_path, first_seed=3, chosen_from=8), 10)
    assert fresh.spec.seeds == list(range(3, 13))
    check_fresh_seeds(tracker, fresh, "f")
