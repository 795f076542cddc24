"""Koch's affine distortions: batched, seeded, within the paper's ranges, training only."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch

from siamese_bench.core.config import ConfigError, TrainConfig
from siamese_bench.training.augment import (
    ROTATION_DEGREES,
    SCALE,
    SHEAR,
    TRANSLATION_PIXELS_OF_105,
    affine_matrices,
    koch_affine,
)
from siamese_bench.training.build import build_module, check_config


def test_matrices_stay_in_koch_ranges_and_each_part_is_drawn_half_the_time():
    size, n = 105, 20_000
    theta = affine_matrices(n, size, torch.Generator().manual_seed(0))
    shift = theta[:, :, 2] * size / 2  # back to pixels
    assert shift.abs().max() <= TRANSLATION_PIXELS_OF_105 + 1e-5
    assert (shift == 0).float().mean().item() == pytest.approx(0.5, abs=0.02)  # per component
    det = torch.linalg.det(theta[:, :, :2])  # rotation 1, shear 1 - sx sy, scale sx sy
    low = SCALE[0] ** 2 * (1 - SHEAR**2)
    high = SCALE[1] ** 2 * (1 + SHEAR**2)
    assert low - 1e-5 <= det.min().item() and det.max().item() <= high + 1e-5
    # with no shear or scale drawn, the linear part is a rotation within +-10 degrees
    plain = (theta[:, :, :2] - theta[:, :, :2].transpose(1, 2)).abs().sum((1, 2)) > 0
    angle = torch.atan2(theta[:, 1, 0], theta[:, 0, 0]).abs().max().item()
    assert plain.any() and angle <= math.radians(ROTATION_DEGREES) + SHEAR + 1e-3


def test_a_batch_is_distorted_per_image_reproducibly():
    images = torch.zeros(64, 1, 28, 28)
    images[:, :, 8:20, 12:16] = 1.0  # the same stroke in every image
    a = koch_affine(images, torch.Generator().manual_seed(1))
    b = koch_affine(images, torch.Generator().manual_seed(1))
    c = koch_affine(images, torch.Generator().manual_seed(2))
    assert a.shape == images.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert 0 <= a.min() and a.max() <= 1 + 1e-6
    distinct = {tuple(img.flatten().round(decimals=3).tolist()) for img in a}
    assert len(distinct) > 48  # one map per image, not one per batch
    ink = a.sum((1, 2, 3)) / images[0].sum()
    assert 0.5 < ink.min() and ink.max() < 1.6  # scale in [0.8, 1.2] per axis keeps the ink


def _attached(augment: str) -> pl.LightningModule:
    module = build_module(TrainConfig(dataset="mnist-5k", encoder="cnn-small", augment=augment), (1, 28, 28))
    module.trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_checkpointing=False)
    return module


def test_training_batches_are_distorted_but_evaluation_batches_are_not():
    module = _attached("affine")
    x = torch.rand(8, 1, 28, 28)
    batch = {"x1": x, "x2": x.clone(), "y": torch.ones(8)}
    module.trainer.training = True
    out = module.on_after_batch_transfer(batch, 0)
    assert not torch.equal(out["x1"], x) and not torch.equal(out["x1"], out["x2"])  # each side its own map
    assert torch.equal(out["y"], batch["y"])
    module.trainer.validating = True
    assert module.on_after_batch_transfer(batch, 0) is batch
    plain = _attached("none")
    plain.trainer.training = True
    assert plain.on_after_batch_transfer(batch, 0) is batch


def test_bad_augment_options_are_refused_by_name():
    with pytest.raises(ConfigError, match="--augment.*'twirl'.*affine"):
        check_config(TrainConfig(augment="twirl"))
    with pytest.raises(ConfigError, match="--augment affine: distortions need images"):
        build_module(TrainConfig(dataset="csv:a.csv,b.csv", encoder="mlp", augment="affine"), (32,))
    with pytest.raises(ConfigError, match="--pair-draws: must be at least 1"):
        TrainConfig.parse({"pair_draws": 0}, flags=True)
