"""TrainConfig: unknown keys and bad values fail early, naming the option and the valid names."""

from __future__ import annotations

import pytest

from siamese_bench.config import ConfigError, TrainConfig
from siamese_bench.data import DATASETS
from siamese_bench.models.heads import HEADS
from siamese_bench.models.losses import LOSSES
from siamese_bench.training.optim import OPTIMIZERS


def test_defaults_are_c1_and_valid():
    cfg = TrainConfig().validate()
    c1 = ("euclidean", "contrastive", 1.0, 128, 1e-3)
    assert (cfg.head, cfg.loss, cfg.margin, cfg.batch_size, cfg.lr) == c1


def test_from_dict_round_trip():
    cfg = TrainConfig.from_dict({"dataset": "digits", "head": "l1", "epochs": 3,
                                 "encoder_options": {"dropout": 0.5}})
    assert cfg.head == "l1" and cfg.epochs == 3 and cfg.encoder_options == {"dropout": 0.5}


def test_from_dict_rejects_unknown_keys_naming_them():
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({"head": "l1", "hed": "x", "epoch": 3})
    message = str(err.value)
    assert "epoch" in message and "hed" in message
    assert "valid:" in message and "epochs" in message


@pytest.mark.parametrize("option,registry", [("head", HEADS), ("loss", LOSSES),
                                             ("dataset", DATASETS), ("optimizer", OPTIMIZERS)])
def test_unknown_names_list_valid_ones(option, registry):
    with pytest.raises(ConfigError) as err:
        TrainConfig(**{option: "no-such-thing"}).validate()
    message = str(err.value)
    assert f"--{option}" in message and "no-such-thing" in message
    for name in registry.names():
        assert name in message


@pytest.mark.parametrize("option", ["epochs", "margin", "lr", "batch_size"])
@pytest.mark.parametrize("value", [0, -1])
def test_non_positive_values(option, value):
    with pytest.raises(ConfigError, match=f"--{option.replace('_', '-')} must be positive"):
        TrainConfig(**{option: value}).validate()


def test_nan_lr_rejected():
    with pytest.raises(ConfigError, match="--lr"):
        TrainConfig(lr=float("nan")).validate()


def test_bce_with_distance_head_rejected():
    with pytest.raises(ConfigError, match="abs-diff-dense"):
        TrainConfig(head="euclidean", loss="bce").validate()


def test_margin_ignored_for_bce():
    cfg = TrainConfig(head="abs-diff-dense", loss="bce", margin=0).validate()
    assert cfg.flat_params()["margin"] is None


def test_margin_checked_for_triplet():
    with pytest.raises(ConfigError, match="--margin"):
        TrainConfig(loss="triplet", margin=0).validate()


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_val_fraction_bounds(fraction):
    with pytest.raises(ConfigError, match="--val-fraction"):
        TrainConfig(val_fraction=fraction).validate()


def test_triplet_negatives_policy():
    TrainConfig(loss="triplet", triplet_negatives="any").validate()
    with pytest.raises(ConfigError, match="other, any"):
        TrainConfig(loss="triplet", triplet_negatives="hardest").validate()


def test_unknown_encoder_option():
    with pytest.raises(ConfigError) as err:
        TrainConfig(encoder_options={"foo": 1}).validate()
    message = str(err.value)
    assert "'foo'" in message
    for accepted in ("units", "depth", "dropout", "final_activation"):
        assert accepted in message
    assert "input_shape" not in message


def test_replace_validates():
    cfg = TrainConfig()
    assert cfg.replace(epochs=2).epochs == 2 and cfg.epochs == 20
    with pytest.raises(ConfigError):
        cfg.replace(head="nope")


def test_flat_params():
    cfg = TrainConfig(encoder_options={"dropout": 0.5, "final_activation": "linear"}).validate()
    flat = cfg.flat_params()
    assert "encoder_options" not in flat
    assert flat["encoder.dropout"] == 0.5 and flat["encoder.final_activation"] == "linear"
    assert flat["margin"] == 1.0 and flat["head"] == "euclidean" and flat["seed"] == 0
    assert all(not isinstance(v, dict) for v in flat.values())
    bce = TrainConfig(head="subtract-dense", loss="bce", margin=3.0).validate().flat_params()
    assert bce["margin"] is None and bce["loss"] == "bce"
