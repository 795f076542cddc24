"""Triplet mining against a brute-force reference, and the labels it relies on."""

from __future__ import annotations

import pytest
import torch

from siamese_bench.core.config import ConfigError, TrainConfig
from siamese_bench.models.heads import HEADS
from siamese_bench.training.build import check_config
from siamese_bench.training.objective import MINERS
from siamese_bench.training.samplers import triplets


def brute_force(d, la, lc, pos, anchor_index, policy):
    d_ap, d_an = [], []
    for i in range(d.shape[0]):
        negs = [d[i, j].item() for j in range(d.shape[1]) if lc[j] != la[i]]
        if not negs:
            continue
        if policy == "batch-hard":
            d_ap.append(max(d[i, j].item() for j in range(d.shape[1]) if lc[j] == la[i] and j != anchor_index[i]))
            d_an.append(min(negs))
        else:
            ap = d[i, pos[i]].item()
            farther = [x for x in negs if x > ap]
            d_ap.append(ap)
            d_an.append(min(farther) if farther else max(negs))
    return torch.tensor(d_ap), torch.tensor(d_an)


def _matrix(head, emb: torch.Tensor, b: int) -> torch.Tensor:
    """d(anchor i, candidate j) one pair at a time: the reference the miners' batched matrix must match."""
    return torch.tensor(
        [[float(head(emb[i : i + 1], emb[j : j + 1]).dissimilarity) for j in range(len(emb))] for i in range(b)]
    )


@pytest.mark.parametrize("policy", ["batch-hard", "semi-hard"])
@pytest.mark.parametrize("seed", range(5))
def test_miners_match_brute_force(policy, seed):
    g = torch.Generator().manual_seed(seed)
    b = 12
    labels = torch.randint(0, 3, (b,), generator=g)
    emb = torch.randn(2 * b, 4, generator=g)  # the anchors, then their positives
    head = HEADS.get("euclidean")(4)
    a, p, n = MINERS.get(policy)().select(head, emb, labels)
    d = _matrix(head, emb, b)
    idx = torch.arange(b)
    ref_ap, ref_an = brute_force(d, labels, torch.cat([labels, labels]), b + idx, idx, policy)
    assert torch.allclose(d[a, p], ref_ap, atol=1e-5) and torch.allclose(d[a, n], ref_an, atol=1e-5)
    assert (labels[a] == torch.cat([labels, labels])[p]).all() and (labels[a] != torch.cat([labels, labels])[n]).all()


def test_random_miner_passes_the_sampled_triplets_through():
    emb = torch.randn(9, 2)  # 3 anchors, 3 positives, 3 negatives
    a, p, n = MINERS.get("random")().select(None, emb, torch.tensor([0, 1, 2]))
    assert a.tolist() == [0, 1, 2] and p.tolist() == [3, 4, 5] and n.tolist() == [6, 7, 8]


def test_anchors_without_negatives_are_dropped():
    head = HEADS.get("euclidean")(2)
    emb = torch.randn(6, 2)
    a, p, n = MINERS.get("batch-hard")().select(head, emb, torch.tensor([0, 0, 1]))
    assert a.tolist() == [0, 1, 2]  # every anchor has an other-class candidate
    a, p, n = MINERS.get("semi-hard")().select(head, emb, torch.tensor([0, 0, 0]))
    assert len(a) == len(p) == len(n) == 0  # one class: nothing to mine


def test_unknown_miner_names_the_valid_ones():
    with pytest.raises(KeyError, match="batch-hard, random, semi-hard"):
        MINERS.get("hardest")


def test_triplet_labels_are_the_anchor_classes():
    y = torch.arange(4).repeat_interleave(5)[torch.randperm(20, generator=torch.Generator().manual_seed(0))]
    t = triplets(y, torch.Generator().manual_seed(1))
    assert torch.equal(t.label, y[t.anchor]) and torch.equal(t.label, y[t.positive])


def test_config_checks_mining():
    assert "random" in MINERS  # a pass-through miner, accepted like the others
    with pytest.raises(ConfigError, match="needs a triplet loss"):
        check_config(TrainConfig(dataset="digits", loss="contrastive", triplet_mining="semi-hard"))
    with pytest.raises(ConfigError, match="--triplet-mining"):
        check_config(TrainConfig(dataset="digits", loss="triplet", triplet_mining="hardest"))


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["batch-hard", "semi-hard"])
def test_mined_training_runs(digits, policy):
    from siamese_bench.training.run import run_training

    cfg = check_config(TrainConfig(dataset="digits", loss="triplet", triplet_mining=policy, epochs=2))
    result = run_training(cfg, data=digits, progress=False)
    assert len(result.history) == 2
    assert all(torch.isfinite(torch.tensor(h["train/loss"])) for h in result.history)
    # mined triplets are hard: some still violate the margin after 2 epochs, so the loss is live
    # (batch-hard on digits has every triplet active: the collapse test below is about that)
    assert result.history[-1]["train/active_fraction"] > 0.1


def test_is_collapsed_compares_with_the_untrained_spread():
    from siamese_bench.training.run import is_collapsed

    assert is_collapsed(0.1, [{"val/embedding_spread": 0.05}, {"val/embedding_spread": 0.0005}])
    assert not is_collapsed(0.1, [{"val/embedding_spread": 0.2}])
    assert not is_collapsed(0.1, [])  # nothing trained: nothing to judge
    assert not is_collapsed(0.0, [{"val/embedding_spread": 0.0}])
    # measured against the largest spread seen, not only the untrained one (an LSTM starts small)
    assert is_collapsed(0.01, [{"val/embedding_spread": 0.5}, {"val/embedding_spread": 0.004}])


def test_a_triplet_loss_stuck_at_its_margin_is_a_collapse():
    from siamese_bench.training.run import is_collapsed

    stuck = [{"val/embedding_spread": 0.1, "train/loss": 0.9995, "train/active_fraction": 1.0}]
    assert is_collapsed(0.1, stuck, triplet_margin=1.0)
    assert not is_collapsed(0.1, stuck, triplet_margin=None)  # contrastive: no such signature
    learning = [{"val/embedding_spread": 0.1, "train/loss": 0.6, "train/active_fraction": 0.7}]
    assert not is_collapsed(0.1, learning, triplet_margin=1.0)
    assert not is_collapsed(0.1, [{**stuck[0], "train/active_fraction": 0.8}], triplet_margin=1.0)


@pytest.mark.slow
def test_batch_hard_collapse_is_flagged_and_semi_hard_is_not(digits):
    """The signature PITFALLS.md describes: batch-hard mining shrinks every embedding to a point."""
    from siamese_bench.training.run import run_training

    runs = {
        p: run_training(
            check_config(TrainConfig(dataset="digits", loss="triplet", triplet_mining=p, epochs=5)),
            data=digits,
            progress=False,
        )
        for p in ("batch-hard", "semi-hard")
    }
    assert runs["batch-hard"].collapsed and runs["batch-hard"].metrics["collapsed"] == 1.0
    assert runs["batch-hard"].metrics["test/auc"] < 0.6
    assert not runs["semi-hard"].collapsed and runs["semi-hard"].metrics["test/auc"] > 0.9
