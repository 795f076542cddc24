"""check_config: names against the registries, parts that must fit, encoder options; run_params."""

from __future__ import annotations

import pytest

from siamese_bench.core.config import TrainConfig
from siamese_bench.core.errors import ConfigError
from siamese_bench.data import DATASETS
from siamese_bench.models.registry import HEADS, LOSSES
from siamese_bench.training.build import check_config, run_params, run_traits
from siamese_bench.training.optim import OPTIMIZERS


def test_defaults_pass():
    assert check_config(TrainConfig()) == TrainConfig()


@pytest.mark.parametrize(
    "option,registry", [("head", HEADS), ("loss", LOSSES), ("dataset", DATASETS), ("optimizer", OPTIMIZERS)]
)
def test_unknown_names_list_valid_ones(option, registry):
    with pytest.raises(ConfigError) as err:
        check_config(TrainConfig(**{option: "no-such-thing"}))
    message = str(err.value)
    assert f"--{option}" in message and "no-such-thing" in message
    for name in registry.names():
        assert name in message


def test_bce_with_distance_head_rejected():
    with pytest.raises(ConfigError, match="abs-diff-dense"):
        check_config(TrainConfig(head="euclidean", loss="bce"))


def test_mining_needs_a_triplet_loss():
    with pytest.raises(ConfigError, match="--triplet-mining semi-hard needs a triplet loss"):
        check_config(TrainConfig(dataset="digits", loss="contrastive", triplet_mining="semi-hard"))


def test_unknown_encoder_option():
    with pytest.raises(ConfigError) as err:
        check_config(TrainConfig(encoder_options={"foo": 1}))
    message = str(err.value)
    assert "'foo'" in message
    for accepted in ("units", "depth", "dropout", "final_activation"):
        assert accepted in message
    assert "input_shape" not in message


def test_bad_encoder_option_value_is_named():
    with pytest.raises(ConfigError, match="encoder 'mlp': final_activation 'sine'"):
        check_config(TrainConfig(encoder_options={"final_activation": "sine"}))


def test_run_params_are_flat_and_margin_is_none_without_a_margin_loss():
    cfg = check_config(TrainConfig(encoder_options={"dropout": 0.5, "final_activation": "linear"}))
    flat = run_params(cfg)
    assert "encoder_options" not in flat
    assert flat["encoder.dropout"] == 0.5 and flat["encoder.final_activation"] == "linear"
    assert flat["margin"] == 1.0 and flat["head"] == "euclidean" and flat["seed"] == 0
    assert all(not isinstance(v, dict) for v in flat.values())
    bce = run_params(check_config(TrainConfig(head="subtract-dense", loss="bce", margin=3.0)))
    assert bce["margin"] is None and bce["loss"] == "bce"


def test_run_traits_tell_the_report_what_a_loss_is():
    assert run_traits(TrainConfig(head="subtract-dense", loss="bce")) == {
        "loss_uses_margin": "false",
        "loss_needs_logit": "true",
        "objective": "pairs",
    }
    assert run_traits(TrainConfig(loss="triplet"))["objective"] == "triplets"
    assert run_traits(TrainConfig())["loss_uses_margin"] == "true"
