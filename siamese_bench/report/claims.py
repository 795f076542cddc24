"""Claims files: the schema of a claim row and the loader, for the report's built-in rows
(claim_rows.yaml, package data) and a user's own file (`report --claims FILE`) alike.

A row names a claim, the source's number, the cell that tests it (`select`), the rule that
decides it (report/rules.py) and the data it is about; a comparison row also names the cell it
is claimed to beat (`versus`) and the metric compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from siamese_bench.core import specs
from siamese_bench.core.schema import Schema

RuleName = Literal["works", "chance", "learns", "above-chance", "oneshot", "better"]
Pick = Literal["recipe", "best-oneshot"]
# The smallest difference that matters in an "A beats B" row, per metric, unless the row gives
# its own: smaller effects are "no difference that matters" however many seeds make them significant.
SMALLEST_EFFECT = {
    "test/auc": 0.01,
    "test/acc": 0.01,
    "test/acc_tuned": 0.01,
    "mix/acc_tuned": 0.01,
    "oneshot/acc": 0.02,
}
DEFAULT_EFFECT = 0.01


class ClaimRow(Schema):
    id: str = Field(min_length=1, description="short id shown in tables, e.g. C1 or 'C3 subtract-mlp'")
    claim: str = Field(description="the claim in words")
    source: str = Field(description="the source's number and the data it is on")
    select: dict[str, Any] = Field(description="the cell that tests the claim: head, loss, margin, or cell: ID")
    rule: RuleName = Field(description="how the verdict is read (docs/claims.md)")
    reference: float | None = Field(
        None, ge=0, le=1, description="the source's test accuracy, checked on full MNIST only (C1)"
    )
    tolerance: float = Field(0.015, gt=0, description="half-width of the equivalence band around `reference`")
    variants: tuple[str, ...] = Field(
        ("mnist-full", "mnist-5k", "digits"),
        min_length=1,
        description="data variants the claim is about, preferred first; a trailing * matches a prefix",
    )
    versus: dict[str, Any] | None = Field(None, description="comparison rows: the cell `select` is claimed to beat")
    metric: str = Field("test/auc", description="what a comparison row compares")
    smallest_effect: float | None = Field(
        None, gt=0, description="comparison rows: the smallest difference that matters (δ); default by metric"
    )
    faithful: dict[str, Any] | None = Field(
        None,
        description="what a run needs to be the claim's own setup; "
        "falling short on a reduced setup cannot contradict the claim",
    )
    reduced_note: str = Field("", description="what the reduced setup lacks, for the reason")
    pick: Pick = Field(
        "recipe",
        description="which matching cell is the evidence: closest to the recipe, or the "
        "best one-shot cell of a study (K1's bar)",
    )
    family: str | None = Field(
        None,
        description="the rows corrected together (Holm); default: the id's first "
        "word, so 'C3 subtract-mlp' and 'C3 abs-diff-dense' are one family",
    )
    chosen_from: int = Field(
        1,
        ge=1,
        description="how many cells `select` was chosen from as the best (e.g. the best of an earlier "
        "sweep's 8): its p counts that many times (Bonferroni for the choice), and decide judges it on "
        "seeds the choice did not see (see `first_seed`)",
    )

    @model_validator(mode="after")
    def _better_needs_versus(self) -> ClaimRow:
        if (self.rule == "better") != (self.versus is not None):
            raise ValueError("rule 'better' and `versus` go together: a comparison row names both")
        return self

    @property
    def holm_family(self) -> str:
        return self.family or self.id.split()[0]

    @property
    def delta(self) -> float:
        """The smallest effect that matters for this row's metric."""
        return self.smallest_effect or SMALLEST_EFFECT.get(self.metric, DEFAULT_EFFECT)


class ClaimsFile(Schema):
    """A claims file: its rows, and, for `decide`, what to train them with."""

    name: str | None = Field(None, description="decide's study name (default: the file's stem)")
    notes: str = Field("", description="free text about the file, kept with the study")
    base: dict[str, Any] = Field({}, description="decide: the training options every row's cell starts from")
    plugins: list[str] = Field([], description="decide: plugin files (relative to this file) or modules to load")
    first_seed: int = Field(
        0,
        ge=0,
        description="decide: the first seed its cells run (then the next ones): a confirming decide of a "
        "cell chosen on seeds 0 to k of an earlier study starts past k, so it is judged on fresh runs",
    )
    rows: list[ClaimRow] = Field(min_length=1, description="the claims to decide, one row each")

    @model_validator(mode="after")
    def _unique_ids(self) -> ClaimsFile:
        ids = [r.id for r in self.rows]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"row ids must be unique: {', '.join(twice)}")
        return self


CLAIM_ROWS = Path(__file__).with_name("claim_rows.yaml")


def load_claim_rows(path: str | Path = CLAIM_ROWS) -> list[ClaimRow]:
    """The rows of a claims file; every error names the file, the line and the key. Rows whose
    cell no study ran are left out of the report's table and listed as not covered."""
    claims, _ = ClaimsFile.load(specs.find(path, "claims file"), "claims file")
    return list(claims.rows)


CLAIMS: list[ClaimRow] = load_claim_rows()
