"""The names a plugin needs are public and stable at the package's top level."""

from __future__ import annotations

import subprocess
import sys

import pytest

PUBLIC = [
    "HEADS",
    "LOSSES",
    "ENCODERS",
    "MINERS",
    "DATASETS",
    "AUGMENTATIONS",
    "OPTIMIZERS",
    "SCHEDULES",
    "INITS",
    "Head",
    "HeadOutput",
    "ProbabilisticHead",
    "Loss",
    "PairLoss",
    "LossValue",
    "Miner",
    "BatchMiner",
    "LabelledData",
    "PairedData",
    "PairTable",
    "TrainConfig",
    "ConfigError",
    "UserError",
]


def test_exactly_these_names_are_public():
    import siamese_bench
    from siamese_bench import (  # noqa: F401
        DATASETS,
        ENCODERS,
        HEADS,
        LOSSES,
        MINERS,
        BatchMiner,
        ConfigError,
        Head,
        HeadOutput,
        LabelledData,
        Loss,
        LossValue,
        Miner,
        PairedData,
        PairLoss,
        ProbabilisticHead,
        TrainConfig,
    )

    assert sorted(siamese_bench.__all__) == sorted(["__version__", *PUBLIC])
    assert "euclidean" in HEADS and "contrastive" in LOSSES and "mlp" in ENCODERS and "semi-hard" in MINERS
    assert "digits" in DATASETS  # the registries are complete once asked for
    assert issubclass(ProbabilisticHead, Head)


def test_an_unknown_name_is_an_attribute_error():
    import siamese_bench

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        siamese_bench.Nope  # noqa: B018


def test_importing_the_package_loads_no_torch():
    out = subprocess.run(
        [sys.executable, "-c", "import sys, siamese_bench; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"
