"""TrainConfig's schema (torch-free): unknown keys and bad values fail at once, in one line naming
the option and, for a file, the file and line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from siamese_bench.core.config import TrainConfig
from siamese_bench.core.errors import ConfigError


def test_defaults_are_c1():
    cfg = TrainConfig()
    assert (cfg.head, cfg.loss, cfg.margin, cfg.batch_size, cfg.lr, cfg.epochs) == (
        "euclidean",
        "contrastive",
        1.0,
        128,
        1e-3,
        20,
    )


def test_from_dict_round_trip():
    cfg = TrainConfig.from_dict({"dataset": "digits", "head": "l1", "epochs": 3, "encoder_options": {"dropout": 0.5}})
    assert cfg.head == "l1" and cfg.epochs == 3 and cfg.encoder_options == {"dropout": 0.5}
    assert TrainConfig.from_dict(cfg.model_dump()) == cfg


def test_from_dict_rejects_unknown_keys_naming_them():
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({"head": "l1", "hed": "x", "epoch": 3})
    message = str(err.value)
    assert "unknown option(s) epoch, hed" in message
    assert "valid:" in message and "epochs" in message


@pytest.mark.parametrize("option", ["epochs", "margin", "lr", "batch_size"])
@pytest.mark.parametrize("value", [0, -1])
def test_non_positive_values_name_the_flag(option, value):
    with pytest.raises(ConfigError, match=f"^--{option.replace('_', '-')}: must be "):
        TrainConfig.parse({option: value}, flags=True)


def test_nan_lr_rejected():
    with pytest.raises(ConfigError, match="--lr: should be a finite number"):
        TrainConfig.parse({"lr": float("nan")}, flags=True)


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_val_fraction_bounds(fraction):
    with pytest.raises(ConfigError, match="--val-fraction"):
        TrainConfig.parse({"val_fraction": fraction}, flags=True)


def test_triplet_negatives_policy_lists_the_valid_ones():
    assert TrainConfig(loss="triplet", triplet_negatives="any").triplet_negatives == "any"
    with pytest.raises(ConfigError, match="'other' or 'any'"):
        TrainConfig.parse({"loss": "triplet", "triplet_negatives": "hardest"}, flags=True)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 1.5}, "--epochs: should be a valid integer"),
        ({"epochs": "many"}, "--epochs: should be a valid integer"),
        ({"triplet_squared": "maybe"}, "--triplet-squared: should be a valid boolean"),
        ({"max_steps": 0}, "--max-steps: must be at least 1"),
        ({"lr_decay": 1.5}, "--lr-decay: must be in (0, 1]"),
        ({"precision": "64"}, "--precision: should be '32-true', 'bf16-mixed' or '16-mixed'"),
        ({"dataset": ""}, "--dataset: names no dataset"),
    ],
)
def test_wrong_types_and_ranges_are_one_line(changes, message):
    with pytest.raises(ConfigError) as err:
        TrainConfig.parse(changes, flags=True)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_replace_and_with_values_validate():
    cfg = TrainConfig()
    assert cfg.replace(epochs=2).epochs == 2 and cfg.epochs == 20
    with pytest.raises(ConfigError, match="--epochs"):
        cfg.replace(epochs=0)
    changed = cfg.with_values({"head": "l1", "encoder.dropout": 0.5})
    assert changed.head == "l1" and changed.encoder_options == {"dropout": 0.5}
    with pytest.raises(ConfigError, match="unknown factor 'colour'"):
        cfg.with_values({"colour": 1})


def test_a_cell_that_changes_the_encoder_drops_the_base_options():
    base = TrainConfig(encoder_options={"units": 64})
    assert base.with_values({"encoder": "conv4"}).encoder_options == {}
    assert base.with_values({"encoder": "conv4", "encoder.channels": 8}).encoder_options == {"channels": 8}
    assert base.with_values({"seed": 3}).encoder_options == {"units": 64}


def test_building_directly_raises_pydantics_error():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        TrainConfig(epochs=0)


def test_the_schema_is_torch_free():
    code = "import sys; from siamese_bench.core.config import TrainConfig; TrainConfig(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
