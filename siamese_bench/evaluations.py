"""Extra scores of a trained model that a dataset asks for (ImageData.evaluations), by name.

Each takes the trained SiameseModule and the dataset and returns MLflow metrics; one that
cannot run (its data is missing) raises DataUnavailable and the run goes on without it.
"""

from __future__ import annotations

from collections.abc import Callable

from siamese_bench.data.base import ImageData
from siamese_bench.module import SiameseModule
from siamese_bench.registry import Registry

EVALUATIONS: Registry[Callable[[SiameseModule, ImageData], dict[str, float]]] = Registry("evaluation")


@EVALUATIONS.register("oneshot")
def oneshot(module: SiameseModule, data: ImageData) -> dict[str, float]:
    """K1: 20-way one-shot accuracy on the 20 official Omniglot runs, with the pixel baseline."""
    from siamese_bench.oneshot import oneshot_metrics

    return oneshot_metrics(module, data.input_shape[-1])
