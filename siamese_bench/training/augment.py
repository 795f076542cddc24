"""Training-time image distortions, applied to whole mini-batches with tensor ops.

Koch et al. (2015) trained their one-shot Omniglot net on pairs distorted on the fly by a
random affine map per image: rotation in [-10, 10] degrees, shear in [-0.3, 0.3], scale in
[0.8, 1.2] and translation in [-2, 2] pixels (of 105), each component drawn with probability
0.5. Here one (B, 2, 3) matrix per image goes through `affine_grid`/`grid_sample`: no
per-image Python loop, and the same code runs on CUDA.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from siamese_bench.core.registry import Registry

Augmentation = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]  # (B, C, H, W) -> same
AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation")

ROTATION_DEGREES = 10.0
SHEAR = 0.3
SCALE = (0.8, 1.2)
TRANSLATION_PIXELS_OF_105 = 2.0  # Koch's [-2, 2] pixels at 105 x 105, scaled to the image size


def _uniform(n: int, low: float, high: float, gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen, device=device)


def _maybe(values: torch.Tensor, neutral: float, gen: torch.Generator | None) -> torch.Tensor:
    """Each component is applied with probability 0.5, as Koch et al. did; else neutral."""
    keep = torch.rand(values.shape, generator=gen, device=values.device) < 0.5
    return torch.where(keep, values, torch.full_like(values, neutral))


def affine_matrices(
    n: int, size: int, gen: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """(n, 2, 3) random affine maps in affine_grid's normalised coordinates ([-1, 1])."""
    device = torch.device(device)
    angle = _maybe(_uniform(n, -ROTATION_DEGREES, ROTATION_DEGREES, gen, device), 0.0, gen) * math.pi / 180
    shear_x, shear_y = (_maybe(_uniform(n, -SHEAR, SHEAR, gen, device), 0.0, gen) for _ in range(2))
    scale_x, scale_y = (_maybe(_uniform(n, *SCALE, gen, device), 1.0, gen) for _ in range(2))
    shift = TRANSLATION_PIXELS_OF_105 * size / 105 * 2 / size  # pixels -> normalised units
    t_x, t_y = (_maybe(_uniform(n, -shift, shift, gen, device), 0.0, gen) for _ in range(2))
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (n, 2, 2)
    ones = torch.ones(n, device=device)
    shear = torch.stack([torch.stack([ones, shear_x], -1), torch.stack([shear_y, ones], -1)], -2)
    scale = torch.diag_embed(torch.stack([scale_x, scale_y], -1))
    linear = rotation @ shear @ scale
    return torch.cat([linear, torch.stack([t_x, t_y], -1)[..., None]], dim=-1)


@AUGMENTATIONS.register("none")
def no_augmentation(images: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    return images


@AUGMENTATIONS.register("affine")
def koch_affine(images: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Koch et al.'s affine distortions, one random map per image; paper (0) fills the border."""
    theta = affine_matrices(len(images), images.shape[-1], gen, images.device).to(images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
