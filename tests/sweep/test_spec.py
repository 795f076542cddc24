"""Study spec validation: every error names the file and the key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from siamese_bench.core.config import ConfigError
from siamese_bench.sweep.spec import load_spec
from siamese_bench.training.build import check_config

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return path


GOOD = """
    name: t
    base: {dataset: digits, epochs: 1}
    factors:
      head: [euclidean, abs-diff-dense]
      loss: [contrastive, bce]
      margin: [0.5, 1]
    exclude:
      - when: {head: euclidean, loss: bce}
        reason: no logit
      - when: {loss: bce, margin: 0.5}
        reason: bce has no margin
    include:
      - {head: subtract-dense, loss: contrastive, margin: 1}
      - {head: euclidean, loss: contrastive, margin: 1}
    seeds: [0, 1]
"""


def test_cells_exclusions_and_includes(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    ids = [c.id for c in spec.cells()]
    # 2 heads x 2 losses x 2 margins = 8, minus euclidean+bce (2), minus abs-diff+bce@0.5 (1),
    # plus one new include (the euclidean include duplicates a crossed cell)
    assert len(ids) == 6
    assert len(set(ids)) == len(ids)
    assert "head=subtract-dense,loss=contrastive,margin=1" in ids
    assert all("head=euclidean,loss=bce" not in i for i in ids)
    excluded = {c.id: reason for c, reason in spec.excluded()}
    assert excluded["head=euclidean,loss=bce,margin=1"] == "no logit"
    assert spec.config_for(spec.cells()[0], 1).seed == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: t\nfactors: {head: [euclidean]}\nseeds: [0]\ncolour: red\n", "unknown key(s) colour"),
        ("name: t\nseeds: [0]\n", "needs factors (crossed into cells) or include (cells listed one by one)"),
        ("name: t\nfactors: {head: [euclidean]}\nseeds: []\n", "seeds"),
        ("name: t\nfactors: {head: [euclidean], loss: [bce]}\nseeds: [0]\n", "cell head=euclidean,loss=bce"),
        ("name: t\nfactors: {head: [nope]}\nseeds: [0]\n", "unknown head 'nope'"),
        ("name: t\nfactors: {colour: [1]}\nseeds: [0]\n", "unknown factor 'colour'"),
        ("name: t\nbase: {epoch: 3}\nfactors: {head: [euclidean]}\nseeds: [0]\n", "base: unknown option(s) epoch"),
        ("name: t\nfactors: {head: [euclidean]}\nseeds: [0]\nexclude: [{when: {head: euclidean}}]\n", "exclude[0]"),
        (
            "name: t\nfactors: {head: [euclidean]}\nseeds: [0]\nexclude: [{when: {loss: bce}, reason: x}]\n",
            "loss is not a factor",
        ),
        (
            "name: t\nfactors: {head: [euclidean]}\nseeds: [0]\ntune: {params: {lr: {low: 1}}, trials_per_cell: 2}\n",
            "tune.params.lr: missing required key 'high'",
        ),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_specs_name_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no such study spec"):
        load_spec(tmp_path / "nope.yaml")


STUDIES = [
    "mnist",
    "mnist-full",
    "mnist-grid-full",
    "mnist-tune",
    "vectors",
    "mining",
    "oneshot",
    "sequences",
    "sequences-full",
    "omniglot",
    "omniglot-full",
    "oneshot-full",
]


@pytest.mark.parametrize("name", STUDIES)
def test_shipped_specs_load_by_name_and_the_study_is_named_like_the_file(name):
    spec = load_spec(name)
    assert spec.cells() and len(spec.seeds) >= 1
    assert spec.name == name == spec.path.stem  # one name: spec file, study, report folder, make target


def test_every_shipped_spec_is_a_study_claims_or_checks_file():
    from siamese_bench.core.specs import shipped

    assert set(shipped()) == {*STUDIES, "mnist-claims", "omniglot-claims", "sequences-claims", "regress"}
    for benchmark in ("workers-speedup", "startup-sweep"):  # the benchmarks' own specs, by path
        assert load_spec(REPO / "benchmarks" / f"{benchmark}.yaml").cells()


def test_mnist_spec_covers_the_issue_grid():
    spec = load_spec("mnist")
    heads = {"euclidean", "subtract-dense", "abs-diff-dense", "subtract-mlp", "concat-dense"}
    assert set(spec.factors["head"]) >= heads
    assert set(spec.factors["loss"]) == {"contrastive", "bce", "triplet"}
    assert set(spec.factors["margin"]) >= {0.5, 1, 2}
    assert len(spec.seeds) >= 3
    # every excluded crossed cell has a stated reason
    assert all(reason.strip() for _, reason in spec.excluded())


def test_one_factor_at_a_time_cells_keep_their_own_keys(tmp_path):
    spec = load_spec(
        write(
            tmp_path,
            """
        name: t
        base: {dataset: digits, epochs: 1}
        factors: {head: [euclidean]}
        include:
          - {head: euclidean, encoder.dropout: 0.5}
          - {head: abs-diff-dense, loss: bce}
        seeds: [0]
    """,
        )
    )
    assert spec.cell_keys() == ["head", "encoder.dropout", "loss"]
    configs = [spec.config_for(c, 0) for c in spec.cells()]
    assert configs[1].encoder_options == {"dropout": 0.5} and configs[2].loss == "bce"

    import pandas as pd

    from siamese_bench.sweep.table import cell_table

    frame = pd.DataFrame(
        [
            {"head": "euclidean", "test/acc": 0.9, "seed": 0},
            {"head": "euclidean", "encoder.dropout": 0.5, "test/acc": 0.7, "seed": 0},
            {"head": "abs-diff-dense", "loss": "bce", "test/acc": 0.8, "seed": 0},
        ]
    )
    table = cell_table(frame, spec.cell_keys())
    assert len(table) == 3  # three cells stay three rows, none merged
    assert sorted(table["test/acc mean"]) == pytest.approx([0.7, 0.8, 0.9])


def test_a_cell_that_changes_the_encoder_drops_the_base_encoder_options(tmp_path):
    """K1's lever study: conv4 with 32 channels as the base, cnn-small in one cell; the base's
    `channels` means nothing to cnn-small and must not follow it there."""
    spec = load_spec(
        write(
            tmp_path,
            """
        name: t
        base: {dataset: omniglot-chars:28, encoder: conv4, encoder_options: {channels: 32}}
        factors: {loss: [triplet]}
        include:
          - {loss: triplet, augment: affine}
          - {loss: triplet, encoder: cnn-small, encoder.embedding: 64}
        seeds: [0]
    """,
        )
    )
    configs = [check_config(spec.config_for(c, 0)) for c in spec.cells()]
    assert [c.encoder_options for c in configs] == [{"channels": 32}, {"channels": 32}, {"embedding": 64}]
    assert configs[1].augment == "affine" and configs[2].encoder == "cnn-small"


# -- safe YAML: the spec loader, and the claims file read the same way ---------------------------


def test_spec_with_a_python_tag_is_refused_in_one_line(tmp_path):
    spec = tmp_path / "evil.yaml"
    spec.write_text('name: x\nfactors: !!python/object/apply:os.system ["touch pwned"]\nseeds: [0]\n')
    with pytest.raises(ConfigError) as err:
        load_spec(spec)
    message = str(err.value)
    assert str(spec) in message and "line 2" in message and "not allowed" in message and "\n" not in message
    assert not Path("pwned").exists() and not (tmp_path / "pwned").exists()


def test_claims_with_a_python_tag_are_refused(tmp_path):
    from siamese_bench.regress.checks import load_checks

    claims = tmp_path / "claims.yaml"
    claims.write_text("checks: !!python/object/new:os.getcwd []\n")
    with pytest.raises(ConfigError, match="not allowed"):
        load_checks(claims)


def test_a_spec_of_listed_cells_alone(tmp_path):
    spec = load_spec(
        write(
            tmp_path,
            """
        name: listed
        base: {dataset: digits, epochs: 1}
        include:
          - {head: euclidean, loss: contrastive}
          - {head: abs-diff-dense, loss: bce}
        seeds: [0, 1]
    """,
        )
    )
    assert [c.id for c in spec.cells()] == ["head=euclidean,loss=contrastive", "head=abs-diff-dense,loss=bce"]
    assert spec.excluded() == [] and spec.config_for(spec.cells()[1], 1).loss == "bce"
