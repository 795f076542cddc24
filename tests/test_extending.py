"""docs/extending.md's examples are real: each code block is loaded as a plugin, registers its
part, and (slow tests) trains with it on digits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from siamese_bench import DATASETS, ENCODERS, HEADS, LOSSES, MINERS
from siamese_bench.core import plugins

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
EXPECTED = {
    "product_mlp.py": (HEADS, "product-mlp"),
    "cosh_loss.py": (LOSSES, "log-cosh-contrastive"),
    "tiny_cnn.py": (ENCODERS, "tiny-cnn"),
    "farthest_positive.py": (MINERS, "hard-positive"),
    "blobs.py": (DATASETS, "blobs"),
}


def blocks() -> dict[str, str]:
    """File name -> code of every ```python block whose first line is '# NAME.py'."""
    found = re.findall(r"```python\n# (\S+\.py)\n(.*?)```", DOC.read_text(), flags=re.S)
    return {name: code for name, code in found}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("extending")
    for name, code in blocks().items():
        (folder / name).write_text(code)
        plugins.load(str(folder / name))
    return folder


def test_every_kind_has_an_example_and_each_registers_its_part(loaded):
    assert set(blocks()) == set(EXPECTED)
    for registry, name in EXPECTED.values():
        assert name in registry and not registry.is_builtin(name)


@pytest.mark.slow
@pytest.mark.parametrize(
    "changes",
    [
        {"head": "product-mlp", "loss": "bce"},
        {"loss": "log-cosh-contrastive"},
        {"encoder": "tiny-cnn"},
        {"loss": "triplet", "triplet_mining": "hard-positive"},
        {"dataset": "blobs"},
    ],
)
def test_each_example_trains(loaded, changes):
    from siamese_bench.core.config import TrainConfig
    from siamese_bench.training.build import check_config
    from siamese_bench.training.run import run_training

    cfg = check_config(TrainConfig.parse({"dataset": "digits", "epochs": 2, **changes}))
    result = run_training(cfg, progress=False)
    assert result.metrics["test/auc"] > 0.6, changes
