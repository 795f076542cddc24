"""The trained module handed to evaluations as callables (TrainedPair)."""

from __future__ import annotations

import torch

from siamese_bench.evaluation.oneshot import score
from siamese_bench.models.heads import HeadOutput
from siamese_bench.training.evaluations import trained_pair


class Saturated(torch.nn.Module):
    """A 'module' whose logit for a pair is minus the pixel distance minus 50: always saturated."""

    val_threshold, seed = None, 0

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.encoder = torch.nn.Flatten()

    def compare(self, x1: torch.Tensor, x2: torch.Tensor) -> HeadOutput:
        logit = -(x1 - x2).flatten(1).norm(dim=1) - 50 + self.w
        return HeadOutput(torch.sigmoid(-logit), logit)


def test_the_ranking_of_a_probability_head_is_its_minus_logit():
    x = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1)
    d, ranked = trained_pair(Saturated()).compare(x[:1].repeat(4, 1, 1, 1), x)
    assert torch.unique(d).numel() == 1  # on d alone all four tie at 1.0 and argmin is arbitrary
    assert int(ranked.argmin()) == 0 and torch.all(ranked[1:] > ranked[0])


def test_one_shot_argmin_uses_the_ranking_across_batches():
    class Run:
        name, answer = "run01", torch.tensor([0, 1, 2])
        train = torch.arange(3, dtype=torch.float32).view(3, 1, 1, 1)
        test = train + 0.1

    result = score([Run()], trained_pair(Saturated(), batch_size=2).ranking)
    assert result.correct == 3 and result.per_run == {"run01": 1.0}


def test_embed_batches_and_returns_cpu_tensors_without_gradients():
    model = trained_pair(Saturated(), batch_size=3)
    emb = model.embed(torch.ones(7, 1, 2, 2))
    assert emb.shape == (7, 4) and emb.device.type == "cpu" and not emb.requires_grad
