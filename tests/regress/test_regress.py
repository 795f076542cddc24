"""Regression checks: thresholds decide, shortfalls fail with a table, calibration writes."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from siamese_bench.cli import main
from siamese_bench.core.errors import ConfigError
from siamese_bench.models.heads import HEADS, HeadOutput, ProbabilisticHead
from siamese_bench.regress.bounds import Bound
from siamese_bench.regress.checks import Check, load_checks
from siamese_bench.regress.run import calibration_block, problems, regress

REPO = Path(__file__).resolve().parents[2]

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


def test_shipped_claims_are_calibrated_prediction_bounds_that_see_their_targets():
    spec = load_checks("regress")
    assert {c.id for c in spec.checks} >= {"C1", "C2", "C3-mlp", "C3-absdiff", "C4", "C5-seq", "C6", "K1"}
    assert len(spec.calibration_seeds) >= 20
    for check in spec.checks:
        cal = check.calibration
        assert check.threshold is not None and cal, check.id
        k = len(spec.seeds_of(check))
        bound = Bound(cal.mean, cal.sd, cal.n, k, check.direction)
        assert cal.n == len(spec.calibration_seeds) and cal.k == k
        expected = bound.threshold()
        assert check.threshold == pytest.approx(expected, abs=2e-4), check.id
        assert cal.detectable_90 == pytest.approx(bound.detectable(), abs=2e-4), check.id
        assert problems(check) == [], check.id  # sees its target drop; a trivial model fails it
        assert not set(spec.seeds_of(check)) & set(spec.calibration_seeds)
    by_id = {c.id: c for c in spec.checks}
    assert by_id["C2"].direction == "within"  # leaving 0.5 on either side fails
    assert {by_id[i].detect for i in ("C1", "C5-seq", "C6")} == {0.02} and by_id["K1"].detect == 0.05
    assert by_id["C3-mlp"].detect == by_id["C3-absdiff"].detect == 0.03
    assert by_id["K1"].threshold > by_id["K1"].baseline.value == 0.215  # above the pixel baseline
    c4, c1 = spec.config(by_id["C4"], 0), spec.config(by_id["C1"], 0)  # a check's base overrides the file's
    assert c4.dataset.startswith("csv:") and c4.val_fraction == 0.5 and c4.epochs == 10
    assert c1.dataset == "mnist-5k" and c1.val_fraction == 0.1 and c1.epochs == 5


def test_prediction_bound_false_alarm_and_power_by_simulation():
    """The bound fails a healthy pipeline about 1 % of the time and a pipeline whose mean
    dropped by the detectable amount about 90 % of the time (simulated normal seeds)."""
    rng = np.random.default_rng(0)
    n, k, sd, trials = 10, 3, 0.01, 20000
    cal = rng.normal(0.9, sd, (trials, n))
    m, s = cal.mean(1), cal.std(1, ddof=1)
    bounds = [Bound(mi, si, n, k, "at_least") for mi, si in zip(m[:200], s[:200], strict=True)]
    t = bounds[0].t
    threshold = m - t * s * np.sqrt(1 / k + 1 / n)
    healthy = rng.normal(0.9, sd, (trials, k)).mean(1)
    assert np.mean(healthy < threshold) == pytest.approx(0.01, abs=0.004)
    drop = Bound(0.9, sd, n, k, "at_least").detectable()
    broken = rng.normal(0.9 - drop, sd, (trials, k)).mean(1)
    assert np.mean(broken < threshold) == pytest.approx(0.90, abs=0.02)
    within = Bound(0.5, sd, n, k, "within")
    low, high = within.threshold()
    assert low < 0.5 < high and within.power(0.0) == pytest.approx(0.01, abs=1e-3)


def test_the_per_run_false_alarm_rate_is_stated():
    from siamese_bench.regress.bounds import run_false_alarm
    from siamese_bench.regress.run import format_rows

    assert run_false_alarm(1) == pytest.approx(0.01) and run_false_alarm(8) == pytest.approx(0.0773, abs=1e-4)
    rng = np.random.default_rng(0)  # eight healthy checks at 1 % each: the run fails ~7.7 % of the time
    assert np.mean((rng.random((200_000, 8)) < 0.01).any(axis=1)) == pytest.approx(run_false_alarm(8), abs=0.002)
    row = {
        "check": "C1",
        "metric": "test/acc",
        "mean": 0.9,
        "rule": ">= 0.8",
        "mdd": 0.02,
        "result": "ok",
        "values": [0.9],
        "cell": "head=euclidean",
        "data": "digits",
    }
    assert "at least one of these 8 checks 7.7 % of the time" in format_rows([row] * 8)


def test_two_sided_check_fails_on_either_side():
    check = Check(id="C2", claim="at chance", cell={}, metric="test/auc", within=[0.49, 0.51])
    assert check.passes(0.5) and not check.passes(0.3) and not check.passes(0.7)


@pytest.mark.slow
def test_regress_passes_and_fails_on_thresholds(tmp_path, capsys):
    rows, failed = regress(load_checks(write(tmp_path, 0.8, 0.7)))
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
    assert c1["calibration"]["n"] == 3 and c1["calibration"]["k"] == 1 and len(c1["calibration"]["values"]) == 3
    margin = 6.9646 * np.sqrt(1 + 1 / 3)  # t(0.99, 2) * sqrt(1/k + 1/n), k = 1 check seed
    # from the rounded mean and sd the file records: within their rounding times the margin
    assert c1["at_least"] == pytest.approx(c1["calibration"]["mean"] - margin * c1["calibration"]["sd"], abs=1e-3)
    assert c2["at_most"] == pytest.approx(c2["calibration"]["mean"] + margin * c2["calibration"]["sd"], abs=1e-3)
    assert c1["calibration"]["detectable_90"] > c1["calibration"]["sd"]


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
    check = load_checks(path).checks[0]
    raw["checks"][0]["calibration"] = calibration_block(check, [0.89, 0.9, 0.91], 2, "mnist-full")[1]
    path.write_text(yaml.safe_dump(raw))
    rows, failed = regress(load_checks(path))
    assert failed >= 1 and rows[0]["result"] == "WRONG DATA" and rows[0]["data"] == "digits"
    assert main(["regress", "--only", "C1", str(path)]) == 2
    assert "--only selects checks to calibrate" in capsys.readouterr().err


def test_a_calibration_value_that_is_not_finite_is_one_line(tmp_path):
    path = write(tmp_path, 0.5, 0.9)
    raw = yaml.safe_load(path.read_text())
    check = load_checks(path).checks[0]
    block = calibration_block(check, [0.89, 0.9, 0.91], 2, "digits")[1]
    raw["checks"][0]["calibration"] = {**block, "sd": ".nan"}
    path.write_text(yaml.safe_dump(raw).replace("'.nan'", ".nan"))
    with pytest.raises(ConfigError) as err:
        load_checks(path)
    message = str(err.value)
    assert "checks[0].calibration.sd: should be a finite number" in message and "line " in message


def test_uncalibrated_check_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no threshold"):
        regress(load_checks(write(tmp_path, "null", 0.7)))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "checks: [{id: X, claim: x, cell: {head: euclidean}, metric: test/acc}]",
            "checks[0]: needs exactly one of at_least, at_most, within (found none)",
        ),
        (
            "checks: [{id: X, claim: x, cell: {head: euclidean}, metric: test/acc, within: 0.5}]",
            "checks[0].within: should be a valid list, got 0.5",
        ),
        (
            "checks: [{id: X, claim: x, cell: {head: euclidean}, metric: test/acc, at_least: 0.5, colour: 1}]",
            "unknown key(s) colour",
        ),
        (
            "calibration_seeds: [0, 1, 2]\nchecks: [{id: X, claim: x, cell: {head: euclidean}, metric: test/acc, "
            "at_least: 0.5}]",
            "are also calibration seeds",
        ),
        ("checks: [{id: X, claim: x, cell: {head: nope}, metric: test/acc, at_least: 0.5}]", "unknown head"),
        ("colour: red", "unknown key(s) colour"),
    ],
)
def test_bad_checks_files_name_file_line_and_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_checks(path)


class NoiseHead(ProbabilisticHead):
    """A deliberately broken model: the logit is random noise (the parameters stay in the graph
    with a zero weight, so training runs and changes nothing)."""

    def pair_features(self, a, b):
        return a - b

    def forward(self, a, b):
        logit = torch.randn(len(a), device=a.device) + 0.0 * self.out(self.pair_features(a, b)).squeeze(-1)
        return HeadOutput(torch.sigmoid(-logit), logit)


@pytest.fixture
def noise_head():
    HEADS.register("noise")(NoiseHead)
    yield "noise"
    del HEADS._items["noise"]


@pytest.mark.slow
def test_every_shipped_check_fails_on_a_degraded_model(noise_head):
    """Issue 11: each check must catch a model no better than the trivial baseline. A head that
    returns noise fails every check but C2's (which claims chance, and gets it); C2 fails on a
    head that learns. An untrained model (lr 1e-12) fails the cheap checks too."""
    spec = load_checks("regress")
    # one step: what the noise head outputs, and the encoder's zero gradient, no training changes
    rows, failed = regress(spec, overrides={"head": noise_head, "epochs": 1, "max_steps": 1}, seeds=1)
    result = {r["check"]: r["result"] for r in rows}
    assert result.pop("C2") == "ok" and set(result.values()) == {"FELL SHORT"}, rows
    c2 = [c for c in spec.checks if c.id == "C2"]
    learns = spec.model_copy(update={"checks": c2})
    rows, failed = regress(learns, overrides={"head": "abs-diff-dense"}, seeds=1)
    assert failed == 1 and rows[0]["result"] == "OUT OF BOUNDS", rows
    cheap = spec.model_copy(update={"checks": [c for c in spec.checks if c.id in ("C1", "C3-mlp", "C3-absdiff", "C4")]})
    rows, failed = regress(cheap, overrides={"lr": 1e-12, "epochs": 1}, seeds=2)  # more epochs teach it no more
    assert failed == 4, rows
