"""Claim rows: read from their data file, bad rows named with file, line and key."""

from __future__ import annotations

import pytest

from siamese_bench.core.errors import ConfigError
from siamese_bench.report.claims import CLAIMS


def test_claim_rows_come_from_their_data_file_and_bad_rows_are_named(tmp_path):
    from siamese_bench.report.claims import CLAIM_ROWS, load_claim_rows
    from siamese_bench.report.rules import RULES

    rows = load_claim_rows(CLAIM_ROWS)
    assert [r.id for r in rows] == [r.id for r in CLAIMS] and all(r.rule in RULES for r in rows)
    assert {r.id.split()[0] for r in rows} >= {"C1", "C2", "C3", "C4", "C5", "C6", "K1"}
    bad = tmp_path / "rows.yaml"
    for text, message in (
        (
            "rows: [{id: X, claim: c, source: s, select: {head: l1}, rule: wins}]",
            "line 1: rows[0].rule: should be 'works', 'chance', 'learns', 'above-chance', 'oneshot' "
            "or 'better', got 'wins'",
        ),
        (
            "rows: [{id: X, claim: c, source: s, select: {}, rule: works, colour: red}]",
            "rows[0]: unknown key(s) colour",
        ),
        ("rows: [{id: X, claim: c, rule: works}]", "rows[0]: missing required key 'source'"),
    ):
        bad.write_text(text)
        with pytest.raises(
            ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")
        ):
            load_claim_rows(bad)
