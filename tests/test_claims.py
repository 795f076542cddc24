"""Regression checks: thresholds decide, shortfalls fail with a table, calibration writes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from siamese_bench.claims import load_claims, regress
from siamese_bench.cli import main
from siamese_bench.config import ConfigError

REPO = Path(__file__).resolve().parents[1]

CLAIMS = """
    base: {{dataset: digits, epochs: 2}}
    seeds: [0]
    calibration_seeds: [1, 2, 3]
    checks:
    - id: C1
      claim: euclidean learns
      cell: {{head: euclidean, loss: contrastive, margin: 1}}
      metric: test/auc
      at_least: {c1}
    - id: C2
      claim: subtract-dense stays at chance
      cell: {{head: subtract-dense, loss: contrastive, margin: 1}}
      metric: test/auc
      at_most: {c2}
"""


def write(tmp_path: Path, c1, c2) -> Path:
    path = tmp_path / "claims.yaml"
    path.write_text(textwrap.dedent(CLAIMS.format(c1=c1, c2=c2)))
    return path


def test_shipped_claims_are_calibrated():
    spec = load_claims(REPO / "benchmarks" / "claims.yaml")
    assert {c.id for c in spec.checks} >= {"C1", "C2", "C3-mlp", "C3-absdiff", "C4", "C5-seq", "C6", "K1"}
    for check in spec.checks:
        assert check.threshold is not None, check.id
        cal = check.calibration
        assert cal and cal["n"] >= 10 and "sd" in cal
        expected = cal["mean"] - 3 * cal["sd"] if check.direction == "at_least" else cal["mean"] + 3 * cal["sd"]
        assert check.threshold == pytest.approx(expected, abs=2e-4)
    assert not set(spec.seeds) & set(spec.calibration_seeds)
    by_id = {c.id: c for c in spec.checks}
    c4, c1 = spec.config(by_id["C4"], 0), spec.config(by_id["C1"], 0)  # a check's base overrides the file's
    assert c4.dataset.startswith("csv:") and c4.val_fraction == 0.5 and c4.epochs == 10
    assert c1.dataset == "mnist-5k" and c1.val_fraction == 0.1 and c1.epochs == 5


@pytest.mark.slow
def test_regress_passes_and_fails_on_thresholds(tmp_path, capsys):
    rows, failed = regress(load_claims(write(tmp_path, 0.8, 0.7)))
    assert failed == 0 and [r["result"] for r in rows] == ["ok", "ok"]
    # an impossible bar for C1 and C2 fails both, with a readable table and exit status 1
    assert main(["regress", str(write(tmp_path, 1.01, 0.01))]) == 1
    out = capsys.readouterr().out
    assert out.count("FELL SHORT") == 2
    assert "regress: 0 passed, 2 failed" in out


@pytest.mark.slow
def test_calibrate_writes_thresholds(tmp_path):
    path = write(tmp_path, "null", "null")
    assert main(["regress", "--calibrate", str(path)]) == 0
    raw = yaml.safe_load(path.read_text())
    c1, c2 = raw["checks"]
    assert c1["calibration"]["n"] == 3
    assert c1["at_least"] == pytest.approx(c1["calibration"]["mean"] - 3 * c1["calibration"]["sd"], abs=2e-4)
    assert c2["at_most"] == pytest.approx(c2["calibration"]["mean"] + 3 * c2["calibration"]["sd"], abs=2e-4)


@pytest.mark.slow
def test_calibrate_only_named_checks_and_unknown_names(tmp_path, capsys):
    path = write(tmp_path, 0.123, "null")
    assert main(["regress", "--calibrate", "--only", "C2", str(path)]) == 0
    c1, c2 = yaml.safe_load(path.read_text())["checks"]
    assert c1["at_least"] == 0.123 and "calibration" not in c1  # untouched
    assert c2["at_most"] is not None and c2["calibration"]["n"] == 3
    assert main(["regress", "--calibrate", "--only", "C9", str(path)]) == 2
    assert "no check C9" in capsys.readouterr().err


def test_data_other_than_the_calibration_data_fails_without_training(tmp_path, capsys):
    path = write(tmp_path, 0.5, 0.9)
    raw = yaml.safe_load(path.read_text())
    raw["checks"][0]["calibration"] = {"data": "mnist-full", "mean": 0.9, "sd": 0.01, "n": 10}
    path.write_text(yaml.safe_dump(raw))
    rows, failed = regress(load_claims(path))
    assert failed >= 1 and rows[0]["result"] == "WRONG DATA" and rows[0]["data"] == "digits"
    assert main(["regress", "--only", "C1", str(path)]) == 2
    assert "--only selects checks to calibrate" in capsys.readouterr().err


def test_uncalibrated_check_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no threshold"):
        regress(load_claims(write(tmp_path, "null", 0.7)))


@pytest.mark.parametrize(("text", "message"), [
    ("checks: [{id: X, claim: x, cell: {head: euclidean}, metric: test/acc}]", "one of at_least/at_most"),
    ("checks: [{id: X, claim: x, cell: {head: nope}, metric: test/acc, at_least: 0.5}]", "unknown head"),
    ("colour: red", "unknown key(s) colour"),
])
def test_bad_claims_files(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_claims(path)
