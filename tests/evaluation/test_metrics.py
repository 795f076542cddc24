"""Verification metrics on dissimilarities (lower = more alike), y = 1 same."""

from __future__ import annotations

import math

import pytest
import torch

from siamese_bench.evaluation.metrics import FIXED_THRESHOLD, accuracy_at, best_threshold, pair_metrics
from siamese_bench.models.heads import HeadOutput


def separable(seed=0, n=40):
    g = torch.Generator().manual_seed(seed)
    same = 0.1 + 0.3 * torch.rand(n, generator=g)  # in [0.1, 0.4]
    diff = 0.9 + 0.5 * torch.rand(n, generator=g)  # in [0.9, 1.4]
    d = torch.cat([same, diff])
    y = torch.cat([torch.ones(n), torch.zeros(n)])
    perm = torch.randperm(2 * n, generator=g)
    return d[perm], y[perm]


def test_best_threshold_separable():
    d, y = separable()
    t = best_threshold(d, y)
    assert d[y == 1].max() < t < d[y == 0].min()
    assert accuracy_at(d, y, t) == 1.0


def test_best_threshold_by_hand():
    d = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    y = torch.tensor([1, 1, 0, 1, 0, 0])
    # cut after 0.2 -> 5/6; after 0.4 -> 5/6; the first maximum is chosen: midpoint 0.25
    assert best_threshold(d, y) == pytest.approx(0.25)
    # all "different" is best when every pair is different
    d = torch.tensor([0.3, 0.6])
    assert best_threshold(d, torch.tensor([0, 0])) < float(d.min())  # below the smallest distance as stored


def test_best_threshold_inverted_scores():
    d = torch.tensor([0.1, 0.2, 0.8, 0.9])
    y = torch.tensor([0, 0, 1, 1])  # lower d for "different": no cut beats 50 %
    t = best_threshold(d, y)
    assert accuracy_at(d, y, t) == 0.5


def test_pair_metrics_perfect_separation():
    d, y = separable(1)
    m = pair_metrics(d, y)
    assert set(m) == {"acc", "auc", "acc_tuned", "threshold"}
    assert m["acc"] == 1.0  # separated around FIXED_THRESHOLD = 0.5
    assert m["auc"] == pytest.approx(1.0)
    assert m["acc_tuned"] == 1.0


def test_pair_metrics_fixed_rule_is_d_below_half():
    assert FIXED_THRESHOLD == 0.5
    d = torch.tensor([0.49, 0.51, 0.2, 0.8])
    y = torch.tensor([1, 1, 0, 0])
    m = pair_metrics(d, y)
    assert m["acc"] == pytest.approx(0.5)  # 0.49 right, 0.51 wrong, 0.2 wrong, 0.8 right
    assert m["auc"] == pytest.approx(0.5)  # ranks: 0.2(y0) < 0.49(y1) < 0.51(y1) < 0.8(y0)


def test_pair_metrics_uses_given_tuned_threshold():
    d, y = separable(2)
    m = pair_metrics(d, y, tuned_threshold=0.05)  # below everything: all "different"
    assert m["threshold"] == 0.05
    assert m["acc_tuned"] == pytest.approx(0.5)
    assert m["acc"] == 1.0
    m = pair_metrics(d, y, tuned_threshold=10.0)  # above everything: all "same"
    assert m["acc_tuned"] == pytest.approx(0.5)


def test_pair_metrics_auc_reversed_and_partial():
    d = torch.tensor([0.1, 0.2, 0.3, 0.4])
    assert pair_metrics(d, torch.tensor([0, 0, 1, 1]))["auc"] == pytest.approx(0.0)
    # positives at ranks 1 and 3 of 4: pairs (pos < neg) = 2 + 1 = 3 of 4
    assert pair_metrics(d, torch.tensor([1, 0, 1, 0]))["auc"] == pytest.approx(0.75)


def test_pair_metrics_auc_nan_for_one_class():
    m = pair_metrics(torch.tensor([0.1, 0.2]), torch.tensor([1, 1]))
    assert math.isnan(m["auc"])


def test_pair_metrics_accepts_grad_tensors():
    d = torch.tensor([0.1, 0.9], requires_grad=True)
    assert pair_metrics(d, torch.tensor([1, 0]))["acc"] == 1.0


@pytest.mark.parametrize("offset", [120.0, 500.0])
def test_pair_metrics_auc_is_shift_invariant(offset):
    """AUC depends only on the order of the scores; large L1 distances are legitimate."""
    d, y = separable(3)
    assert pair_metrics(d + offset, y)["auc"] == pytest.approx(1.0)


def test_auc_with_negative_dissimilarities():
    """A learned linear distance (abs-diff-linear) can go below 0; AUC must still rank."""
    d = torch.tensor([-5.0, -3.0, -2.5, 0.5, 2.0, 7.0])
    y = torch.tensor([1, 1, 1, 0, 0, 0])
    assert pair_metrics(d, y)["auc"] == pytest.approx(1.0)
    assert pair_metrics(-d, y)["auc"] == pytest.approx(0.0)


def test_best_threshold_scores_only_cuts_between_distinct_values():
    """Three tied distances cannot be split: the best real cut keeps them together (issue 11)."""
    d, y = torch.tensor([0.5, 0.5, 0.5, 0.9]), torch.tensor([1, 1, 0, 0])
    t = best_threshold(d, y)
    assert 0.5 < t < 0.9 and accuracy_at(d, y, t) == pytest.approx(0.75)


@pytest.mark.parametrize("scale", [1.0, 64.0, 1.0e6, 1.0e30])
def test_best_threshold_everything_same_survives_large_distances(scale):
    d = torch.tensor([1.0, 2.0, 3.0]) * scale  # float32, where a +1e-6 pad vanishes above ~16
    y = torch.tensor([1, 1, 1])
    t = best_threshold(d, y)
    assert accuracy_at(d, y, t) == 1.0


def test_best_threshold_on_a_saturated_probability_head():
    """d = 1 - sigmoid(logit) is exactly 1.0 for every logit below about -17: all tied."""
    d = torch.tensor([1.0, 1.0, 1.0, 0.2, 0.1])
    y = torch.tensor([0, 0, 1, 1, 1])
    t = best_threshold(d, y)
    assert accuracy_at(d, y, t) == pytest.approx(0.8)


def test_probability_heads_rank_on_the_logit_not_on_saturated_d() -> None:
    """Logits below about -17 give d = sigmoid(-z) = 1.0 exactly in float32: every such pair
    ties on d. Ranked on -logit the order survives and the AUC is exact."""
    logit = torch.tensor([-18.0, -25.0, -40.0, -60.0])
    y = torch.tensor([1, 1, 0, 0])
    out = HeadOutput(torch.sigmoid(-logit), logit)
    assert torch.unique(out.dissimilarity).numel() == 1  # the float32 tie the logit avoids
    assert pair_metrics(out.dissimilarity, y)["auc"] == pytest.approx(0.5)
    m = pair_metrics(out.dissimilarity, y, ranking=out.ranking)
    assert m["auc"] == pytest.approx(1.0)
    assert m["acc_tuned"] == 1.0  # the tuned cut lies on the ranking, between -logit 25 and 40
    assert m["acc"] == 0.5  # the fixed rule stays d < 0.5, i.e. logit > 0: all "different"


def _brute_force_retrieval(emb: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Musgrave et al.'s definitions, one query at a time."""
    p1 = rp = mapr = 0.0
    n = 0
    for i in range(len(emb)):
        r = int((labels == labels[i]).sum()) - 1
        if r == 0:
            continue
        d = (emb - emb[i]).norm(dim=1)
        d[i] = float("inf")
        order = sorted(range(len(emb)), key=lambda j: (float(d[j]), j))[:r]
        rel = [int(labels[j] == labels[i]) for j in order]
        p1 += rel[0]
        rp += sum(rel) / r
        mapr += sum(sum(rel[: k + 1]) / (k + 1) * rel[k] for k in range(r)) / r
        n += 1
    return {"retrieval/precision_at_1": p1 / n, "retrieval/r_precision": rp / n, "retrieval/map_at_r": mapr / n}


def test_retrieval_metrics_match_their_definitions() -> None:
    from siamese_bench.evaluation.retrieval import retrieval_metrics

    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 4, (60,), generator=g)
    emb = torch.randn(60, 5, generator=g) + labels[:, None].float() * 0.8  # partly separated classes
    got = retrieval_metrics(emb, labels)
    want = _brute_force_retrieval(emb, labels)
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-6), key
    assert 0 < got["retrieval/map_at_r"] < got["retrieval/r_precision"] < 1  # MAP@R also rewards order


def test_retrieval_metrics_perfect_and_random() -> None:
    from siamese_bench.evaluation.retrieval import retrieval_metrics

    labels = torch.arange(5).repeat_interleave(10)
    perfect = retrieval_metrics(torch.nn.functional.one_hot(labels).float() * 10, labels)
    assert all(v == pytest.approx(1.0) for v in perfect.values())
    noise = retrieval_metrics(torch.randn(50, 8, generator=torch.Generator().manual_seed(0)), labels)
    assert noise["retrieval/map_at_r"] < 0.5
    assert retrieval_metrics(torch.randn(3, 2), torch.tensor([0, 1, 2])) == {}  # no query has a match
