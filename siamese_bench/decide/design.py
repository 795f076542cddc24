"""What a decide study keeps of its design, so that its error stays what it says across runs:

- its looks: the --max-seeds and first seed it started with, recorded on the study's MLflow
  experiment before its first round. The per-look level is calibrated for those looks; a later
  decide with a larger --max-seeds would look again at the same runs and spend the error a
  second time (10 then 20 seeds: about 3.2 % instead of 2.5 %), so it is refused, naming the way
  out (the recorded --max-seeds to resume, or a fresh study for more);
- fresh seeds for a chosen cell: a row whose cell was chosen as the best of several
  (`chosen_from`) must not be judged on the runs that chose it. Seeds are deterministic, so a
  finished run of the same cell (the row's own options, on the same dataset) in any other study
  of the tracking store with one of decide's seeds is such a run: decide refuses, naming the
  `first_seed` past them.
"""

from __future__ import annotations

from dataclasses import dataclass

from siamese_bench.core.errors import ConfigError
from siamese_bench.decide.plan import Plan
from siamese_bench.infra.tracking import Tracker
from siamese_bench.training.build import run_params

MAX_SEEDS_TAG, FIRST_SEED_TAG = "decide.max_seeds", "decide.first_seed"


@dataclass(frozen=True)
class Design:
    max_seeds: int
    first_seed: int

    def tags(self) -> dict[str, str]:
        return {MAX_SEEDS_TAG: str(self.max_seeds), FIRST_SEED_TAG: str(self.first_seed)}


def recorded(tracker: Tracker, study: str) -> Design | None:
    experiment = tracker.get_experiment(study)
    tags = dict(experiment.tags) if experiment is not None else {}
    if MAX_SEEDS_TAG not in tags:
        return None
    return Design(int(tags[MAX_SEEDS_TAG]), int(tags.get(FIRST_SEED_TAG, "0")))


def _runs_in(tracker: Tracker, study: str) -> int:
    experiment = tracker.get_experiment(study)
    return 0 if experiment is None else len(tracker.search_runs(experiment, "tags.phase = 'grid'"))


def keep_or_record(tracker: Tracker, plan: Plan, design: Design, where: str) -> None:
    """Record the study's design at its start; refuse (one line) a decide whose design differs
    from the one its study recorded, or a study that already holds runs no decide recorded."""
    study = plan.spec.name
    before = recorded(tracker, study)
    if before is None:
        held = _runs_in(tracker, study)
        if held:
            raise ConfigError(
                f"{where}: study {study!r} already holds {held} runs that no decide recorded its looks for "
                "(made by a sweep, or by an older siamese-bench): judging them again with new looks would "
                f"spend the error twice; decide into a fresh study (--name {study}-2)"
            )
        tracker.set_experiment_tags(study, design.tags())
        return
    if before == design:
        return
    if before.max_seeds != design.max_seeds:
        raise ConfigError(
            f"--max-seeds {design.max_seeds}: study {study!r} was started with --max-seeds {before.max_seeds}, "
            f"and its looks are calibrated for that; looking again at the same runs with more seeds would spend "
            f"the error a second time. Resume with --max-seeds {before.max_seeds}, or decide into a fresh study "
            f"(--name {study}-{design.max_seeds}) with --max-seeds {design.max_seeds} from its first seed"
        )
    raise ConfigError(
        f"{where}: first_seed {design.first_seed}: study {study!r} was started at first seed {before.first_seed}; "
        f"resume with first_seed: {before.first_seed}, or decide into a fresh study (--name {study}-2)"
    )


def _quoted(value: object) -> str:
    return "'" + str("None" if value is None else value).replace("'", "\\'") + "'"


def check_fresh_seeds(tracker: Tracker, plan: Plan, where: str) -> None:
    """A row chosen from several cells (`chosen_from` > 1) runs on seeds no finished run of its
    cell in another study of the store holds: else the error names `first_seed` to set."""
    seeds = set(plan.spec.seeds)
    for row in plan.rows:
        if row.chosen_from <= 1:
            continue
        values = plan.select_of[row.id]
        params = run_params(plan.spec.base.with_values(values))
        keys = sorted({*values, "dataset"} - {"seed"})
        query = " and ".join(f"params.`{k}` = {_quoted(params[k])}" for k in keys if k in params)
        seen: dict[str, set[int]] = {}
        for run in tracker.search_runs_everywhere(f"{query} and attributes.status = 'FINISHED'"):
            study = tracker.experiment_name(run.info.experiment_id)
            seed = run.data.params.get("seed")
            if study != plan.spec.name and seed is not None and seed.lstrip("-").isdigit():
                seen.setdefault(study, set()).add(int(seed))
        overlap = {study: sorted(s & seeds) for study, s in seen.items() if s & seeds}
        if overlap:
            studies = "; ".join(f"study {study!r}: seeds {', '.join(map(str, s))}" for study, s in overlap.items())
            past = max(max(s) for s in seen.values()) + 1
            raise ConfigError(
                f"{where}: row {row.id!r} (chosen_from: {row.chosen_from}): its cell already finished runs with "
                f"decide's seeds ({studies}), the runs it may have been chosen on; set first_seed: {past} in "
                f"{plan.path} so that decide judges it on fresh seeds"
            )
