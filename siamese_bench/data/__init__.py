"""Datasets as in-memory tensors, looked up by name in DATASETS."""

from siamese_bench.data import images as _images  # noqa: F401  (registers the loaders)
from siamese_bench.data.base import DATASETS, ImageData, load_dataset, split_validation

__all__ = ["DATASETS", "ImageData", "load_dataset", "split_validation"]
