"""Extra scores of a trained model that a dataset asks for (LabelledData.evaluations), by name.

The trained module is handed to the evaluation layer as callables (TrainedPair): an embedding
function and a pair-ranking function, batched, in eval mode, without gradients. Each evaluation
returns MLflow metrics; one that cannot run (its data is missing) raises DataUnavailable and
the run goes on without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from siamese_bench.core.registry import Registry
from siamese_bench.data.base import LabelledData
from siamese_bench.evaluation.metrics import pair_metrics
from siamese_bench.evaluation.oneshot import Dissimilarity, oneshot_metrics
from siamese_bench.evaluation.retrieval import retrieval_metrics, sample_index
from siamese_bench.training.module import SiameseModule
from siamese_bench.training.samplers import pair_stream

EVAL_BATCH = 1024


@dataclass(frozen=True)
class TrainedPair:
    """What an evaluation may use of a trained model: callables, results on the CPU."""

    embed: Callable[[torch.Tensor], torch.Tensor]  # (N, ...) -> (N, D)
    compare: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # -> (dissimilarity, ranking)
    threshold: float | None  # the validation-chosen cut on the ranking
    seed: int

    @property
    def ranking(self) -> Dissimilarity:
        """Pairs ranked by the head (-logit for probabilistic heads, so saturated probabilities do not tie)."""
        return lambda x1, x2: self.compare(x1, x2)[1]


def trained_pair(module: SiameseModule, batch_size: int = EVAL_BATCH) -> TrainedPair:
    """The module's encoder and head as batched callables, in eval mode, without gradients."""

    def device() -> torch.device:
        return next(module.parameters()).device

    @torch.no_grad()
    def embed(x: torch.Tensor) -> torch.Tensor:
        module.eval()
        return torch.cat(
            [module.encoder(x[i : i + batch_size].to(device())).cpu() for i in range(0, len(x), batch_size)]
        )

    @torch.no_grad()
    def compare(x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        module.eval()
        d, rank = [], []
        for i in range(0, len(x1), batch_size):
            out = module.compare(x1[i : i + batch_size].to(device()), x2[i : i + batch_size].to(device()))
            d.append(out.dissimilarity.cpu())
            rank.append(out.ranking.cpu())
        return torch.cat(d), torch.cat(rank)

    return TrainedPair(embed, compare, module.val_threshold, module.seed)


EVALUATIONS: Registry[Callable[[TrainedPair, LabelledData], dict[str, float]]] = Registry("evaluation")
ALWAYS = ("retrieval",)  # run for every labelled dataset, besides those it asks for


@EVALUATIONS.register("retrieval")
def retrieval(model: TrainedPair, data: LabelledData) -> dict[str, float]:
    """precision@1, R-precision and MAP@R of the test embeddings (Musgrave et al. 2020)."""
    keep = sample_index(len(data.x_test))
    return retrieval_metrics(model.embed(data.x_test[keep]), data.y_test[keep])


@EVALUATIONS.register("oneshot")
def oneshot(model: TrainedPair, data: LabelledData) -> dict[str, float]:
    """K1: 20-way one-shot accuracy on the 20 official Omniglot runs, with the pixel baseline."""
    from siamese_bench.data.omniglot_runs import official_runs

    return oneshot_metrics(official_runs(data.input_shape[-1]), model.ranking)


MIX_PAIRS = 10_000  # C6 scored 10,000 random pairs per split


@EVALUATIONS.register("mix")
def mix(model: TrainedPair, data: LabelledData) -> dict[str, float]:
    """C6's third split: pairs drawn from the training and test classes together (same class
    or not; classes of the two sets never match), scored at the validation-chosen cut. The
    source's conclusion swaps its test and mix figures, so both are measured."""
    x = torch.cat([data.x_train, data.x_test])
    y = torch.cat([data.y_train, data.y_test + int(data.y_train.max()) + 1])  # test classes are other classes
    pairs = pair_stream(y, model.seed, 300)(0)
    keep = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(model.seed))[:MIX_PAIRS]
    d, rank = [], []
    for chunk in keep.split(512):
        part = model.compare(x[pairs.left[chunk]], x[pairs.right[chunk]])
        d.append(part[0])
        rank.append(part[1])
    metrics = pair_metrics(torch.cat(d), pairs.y[keep], tuned_threshold=model.threshold, ranking=torch.cat(rank))
    return {f"mix/{k}": v for k, v in metrics.items()}
