"""Extra scores of a trained model that a dataset asks for (LabelledData.evaluations), by name.

Each takes the trained SiameseModule and the dataset and returns MLflow metrics; one that
cannot run (its data is missing) raises DataUnavailable and the run goes on without it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from siamese_bench.data.base import LabelledData
from siamese_bench.registry import Registry
from siamese_bench.training.module import SiameseModule

EVALUATIONS: Registry[Callable[[SiameseModule, LabelledData], dict[str, float]]] = Registry("evaluation")
ALWAYS = ("retrieval",)  # run for every labelled dataset, besides those it asks for


@EVALUATIONS.register("retrieval")
@torch.no_grad()
def retrieval(module: SiameseModule, data: LabelledData) -> dict[str, float]:
    """precision@1, R-precision and MAP@R of the test embeddings (Musgrave et al. 2020)."""
    from siamese_bench.evaluation.retrieval import retrieval_metrics, sample_index

    module.eval()
    keep = sample_index(len(data.x_test))
    x, y = data.x_test[keep], data.y_test[keep]
    emb = torch.cat([module.encoder(x[i:i + 1024].to(module.device)).cpu() for i in range(0, len(x), 1024)])
    return retrieval_metrics(emb, y)


@EVALUATIONS.register("oneshot")
def oneshot(module: SiameseModule, data: LabelledData) -> dict[str, float]:
    """K1: 20-way one-shot accuracy on the 20 official Omniglot runs, with the pixel baseline."""
    from siamese_bench.evaluation.oneshot import oneshot_metrics

    return oneshot_metrics(module, data.input_shape[-1])


MIX_PAIRS = 10_000  # C6 scored 10,000 random pairs per split


@EVALUATIONS.register("mix")
@torch.no_grad()
def mix(module: SiameseModule, data: LabelledData) -> dict[str, float]:
    """C6's third split: pairs drawn from the training and test classes together (same class
    or not; classes of the two sets never match), scored at the validation-chosen cut. The
    source's conclusion swaps its test and mix figures, so both are measured."""
    from siamese_bench.evaluation.metrics import pair_metrics
    from siamese_bench.training.objective import pair_stream

    module.eval()
    x = torch.cat([data.x_train, data.x_test])
    y = torch.cat([data.y_train, data.y_test + int(data.y_train.max()) + 1])  # test classes are other classes
    pairs = pair_stream(y, module.seed, 300)(0)
    keep = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(module.seed))[:MIX_PAIRS]
    d, rank = [], []
    for chunk in keep.split(512):
        out = module.compare(x[pairs.left[chunk]].to(module.device), x[pairs.right[chunk]].to(module.device))
        d.append(out.dissimilarity.cpu())
        rank.append(out.ranking.cpu())
    metrics = pair_metrics(torch.cat(d), pairs.y[keep], tuned_threshold=module.val_threshold, ranking=torch.cat(rank))
    return {f"mix/{k}": v for k, v in metrics.items()}
