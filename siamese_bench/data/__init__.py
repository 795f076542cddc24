"""Datasets as in-memory tensors, looked up by name in DATASETS."""

from siamese_bench.data import images as _images  # noqa: F401  (registers the loaders)
from siamese_bench.data import omniglot as _omniglot  # noqa: F401
from siamese_bench.data import sequences as _sequences  # noqa: F401
from siamese_bench.data import vectors as _vectors  # noqa: F401
from siamese_bench.data.base import DATASETS, LabelledData, PairedData, load_dataset, split_validation
from siamese_bench.data.vectors import CSVFormatError

__all__ = ["DATASETS", "CSVFormatError", "LabelledData", "PairedData", "load_dataset", "split_validation"]
