"""The training, validation and test batches of one run, from cfg.seed: pairs or triplets
sampled from the labelled images (or C4's ready-made pairs), kept as index tensors and
gathered from in-memory tensors."""

from __future__ import annotations

from typing import Any

import torch

from siamese_bench.core.config import TrainConfig
from siamese_bench.data import LabelledData, PairedData, split_validation
from siamese_bench.data.base import PairTable, stratified_split
from siamese_bench.training.objective import Objective
from siamese_bench.training.samplers import PairIndex, TensorBatches, pair_stream, with_draws


def build_pair_batches(cfg: TrainConfig, data: PairedData) -> dict[str, TensorBatches]:
    """Ready-made pairs (C4): a seeded, label-stratified share of the training rows is held out
    for validation; each table becomes images = [left; right] with pairs (i, n + i)."""
    keep, held = stratified_split(data.train.y.long(), cfg.val_fraction, torch.Generator().manual_seed(cfg.seed))

    def batches(table: PairTable, rows: torch.Tensor, bs: int, shuffle: bool) -> TensorBatches:
        left, right, y = table.left[rows], table.right[rows], table.y[rows]
        n = len(rows)
        index = PairIndex(torch.arange(n), n + torch.arange(n), y)
        return TensorBatches(torch.cat([left, right]), lambda epoch: index, bs, cfg.seed, shuffle=shuffle)

    eval_bs = max(cfg.batch_size, 1024)
    return {
        "train": batches(data.train, keep, cfg.batch_size, True),
        "val": batches(data.train, held, eval_bs, False),
        "train_eval": batches(data.train, keep, eval_bs, False),
        "test": batches(data.test, torch.arange(len(data.test.y)), eval_bs, False),
    }


def build_batches(cfg: TrainConfig, data: LabelledData | PairedData, objective: Objective) -> dict[str, TensorBatches]:
    """train (the objective's pairs or triplets), val, train_eval and test pair batches, all
    from cfg.seed."""
    if isinstance(data, PairedData):
        return build_pair_batches(cfg, data)
    x_tr, y_tr, x_val, y_val = split_validation(data.x_train, data.y_train, cfg.val_fraction, cfg.seed, data.holdout)
    bs, eval_bs = cfg.batch_size, max(cfg.batch_size, 1024)  # no gradients: bigger is cheaper
    sample = objective.sampler(y_tr, cfg.seed, cfg.triplet_negatives)
    if cfg.pair_draws > 1:
        sample = with_draws(
            lambda y, seed: objective.sampler(y, seed, cfg.triplet_negatives), y_tr, cfg.seed, cfg.pair_draws
        )
    return {
        "train": TensorBatches(x_tr, sample, bs, cfg.seed, resample=cfg.resample_negatives),
        "val": TensorBatches(x_val, pair_stream(y_val, cfg.seed, 100), eval_bs, cfg.seed, shuffle=False),
        "train_eval": TensorBatches(x_tr, pair_stream(y_tr, cfg.seed, 0), eval_bs, cfg.seed, shuffle=False),
        "test": TensorBatches(data.x_test, pair_stream(data.y_test, cfg.seed, 200), eval_bs, cfg.seed, shuffle=False),
    }


def dataset_input(data: LabelledData | PairedData, split_sizes: dict[str, int]) -> dict[str, Any]:
    """What MLflow records as the run's input dataset: name, content digest, source, sizes."""
    sizes = (
        {"train_images": len(data.y_train), "test_images": len(data.y_test)}
        if isinstance(data, LabelledData)
        else {"train_pairs": len(data.train.y), "test_pairs": len(data.test.y)}
    )
    return {
        "name": data.variant,
        "digest": data.digest,
        "source": data.source,
        "sizes": {**sizes, **{f"{k}_items": v for k, v in split_sizes.items()}},
    }
