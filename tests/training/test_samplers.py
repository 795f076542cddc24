"""Keras pair recipe, triplets and TensorBatches on small label vectors."""

from __future__ import annotations

import pytest
import torch

from siamese_bench.training.samplers import PairIndex, TensorBatches, keras_pairs, triplets

# 3 classes, interleaved in dataset order, sizes 4, 5, 3 -> min_count 3, n = 2 per class.
Y = torch.tensor([0, 1, 2, 0, 1, 2, 1, 0, 2, 1, 0, 1])
C, MIN_COUNT = 3, 3


def g(seed):
    return torch.Generator().manual_seed(seed)


def in_class_order(y, c):
    return [i for i, v in enumerate(y.tolist()) if v == c]


def test_keras_pairs_count_balance_and_interleaving():
    p = keras_pairs(Y, g(0))
    n_pairs = 2 * C * (MIN_COUNT - 1)
    assert len(p.left) == len(p.right) == len(p.y) == n_pairs
    assert p.y.dtype == torch.float32
    assert p.y.sum().item() == n_pairs / 2
    assert p.y[0::2].eq(1).all() and p.y[1::2].eq(0).all()  # pos, neg, pos, neg, ...
    assert p.left.dtype == p.right.dtype == torch.int64


def test_keras_pairs_labels_agree_with_classes():
    p = keras_pairs(Y, g(0))
    same = Y[p.left] == Y[p.right]
    assert torch.equal(same.float(), p.y)
    assert (p.left != p.right).all()


def test_keras_pairs_follow_the_recipe_order():
    """Pair 2*(c*n + i) is (image i of c, image i+1 of c); its negative partner has the same
    left image and image i of some other class on the right."""
    p = keras_pairs(Y, g(0))
    n = MIN_COUNT - 1
    for c in range(C):
        members = in_class_order(Y, c)
        for i in range(n):
            k = 2 * (c * n + i)
            assert (p.left[k].item(), p.right[k].item()) == (members[i], members[i + 1])
            assert p.left[k + 1].item() == members[i]
            other = Y[p.right[k + 1]].item()
            assert other != c
            assert p.right[k + 1].item() == in_class_order(Y, other)[i]


def test_keras_pairs_deterministic_per_seed():
    a, b = keras_pairs(Y, g(5)), keras_pairs(Y, g(5))
    assert all(torch.equal(a.fields()[k], b.fields()[k]) for k in ("x1", "x2", "y"))
    y = torch.arange(10).repeat_interleave(20)  # 10 classes: many negatives to differ
    first, second = keras_pairs(y, g(1)), keras_pairs(y, g(2))
    assert torch.equal(first.left, second.left)
    assert torch.equal(first.right[0::2], second.right[0::2])  # positives fixed by the recipe
    assert not torch.equal(first.right[1::2], second.right[1::2])  # negatives drawn


def test_keras_pairs_negative_classes_cover_all_others():
    y = torch.arange(4).repeat(50)
    p = keras_pairs(y, g(0))
    neg = p.y == 0
    for c in range(4):
        drawn = set(y[p.right[neg & (y[p.left] == c)]].tolist())
        assert drawn == set(range(4)) - {c}


def test_too_small_class_raises():
    labels = torch.tensor([0, 0, 1, 2, 2])  # class 1 has one image
    with pytest.raises(ValueError, match="at least 2"):
        keras_pairs(labels, g(0))
    with pytest.raises(ValueError, match="at least 2"):
        triplets(labels, g(0))


def test_absent_labels_are_skipped():
    """Classes held out whole for validation leave gaps in the labels; pairs use the rest."""
    y = torch.tensor([0, 0, 0, 5, 5, 5, 9, 9, 9])
    p = keras_pairs(y, g(0))
    assert set(y[p.left].tolist()) == {0, 5, 9}
    assert (y[p.left][p.y == 0] != y[p.right][p.y == 0]).all()
    assert (y[p.left][p.y == 1] == y[p.right][p.y == 1]).all()


def test_triplets_other_policy():
    y = torch.arange(5).repeat(30)
    t = triplets(y, g(0), "other")
    assert len(t.anchor) == len(t.positive) == len(t.negative) == 5 * 29
    assert (y[t.anchor] == y[t.positive]).all()
    assert (t.anchor != t.positive).all()
    assert (y[t.negative] != y[t.anchor]).all()


def test_triplets_any_policy_can_share_anchor_class():
    y = torch.arange(3).repeat(40)
    t = triplets(y, g(0), "any")
    assert (y[t.anchor] == y[t.positive]).all()
    same = (y[t.negative] == y[t.anchor]).float().mean().item()
    assert 0.15 < same < 0.55  # about 1/3 with 3 balanced classes


def test_triplets_deterministic_and_seed_dependent():
    y = torch.arange(5).repeat(30)
    for policy in ("other", "any"):
        a, b, c = triplets(y, g(3), policy), triplets(y, g(3), policy), triplets(y, g(4), policy)
        assert torch.equal(a.negative, b.negative)
        assert not torch.equal(a.negative, c.negative)


def test_triplets_unknown_policy():
    with pytest.raises(ValueError, match="other, any"):
        triplets(Y, g(0), "hard")


# ---------------------------------------------------------------- TensorBatches

N = 23
IMAGES = torch.arange(100, 100 + N, dtype=torch.float32)[:, None] * torch.ones(1, 2)  # (N, 2)


def fixed_sample(epoch):
    idx = torch.arange(N)
    return PairIndex(idx, idx.flip(0), (idx % 2).float())


def left_order(batches):
    """One epoch: the left indices recovered from the gathered images, and the batch sizes."""
    got, sizes = [], []
    for batch in batches:
        assert set(batch) == {"x1", "x2", "y"}
        assert torch.equal(batch["x2"][:, 0] - 100, (N - 1) - (batch["x1"][:, 0] - 100))
        assert torch.equal(batch["y"], (batch["x1"][:, 0] - 100) % 2)  # y stays with its pair
        got += (batch["x1"][:, 0] - 100).long().tolist()
        sizes.append(len(batch["y"]))
    return got, sizes


def test_batches_cover_every_sample_once_and_len():
    tb = TensorBatches(IMAGES, fixed_sample, batch_size=5, seed=0)
    assert len(tb) == 5  # ceil(23 / 5)
    order, sizes = left_order(tb)
    assert sorted(order) == list(range(N))
    assert sizes == [5, 5, 5, 5, 3]
    assert len(tb) == len(sizes)
    order2, _ = left_order(tb)
    assert sorted(order2) == list(range(N))


def test_batches_seeded_order():
    a = TensorBatches(IMAGES, fixed_sample, 4, seed=7)
    b = TensorBatches(IMAGES, fixed_sample, 4, seed=7)
    c = TensorBatches(IMAGES, fixed_sample, 4, seed=8)
    ea, eb, ec = left_order(a)[0], left_order(b)[0], left_order(c)[0]
    assert ea == eb
    assert ea != ec
    assert ea != list(range(N))  # shuffled
    assert left_order(a)[0] != ea  # epoch 1 differs from epoch 0


def test_batches_epochs_reproducible_across_instances():
    a = TensorBatches(IMAGES, fixed_sample, 4, seed=7)
    b = TensorBatches(IMAGES, fixed_sample, 4, seed=7)
    epochs_a = [left_order(a)[0] for _ in range(3)]
    epochs_b = [left_order(b)[0] for _ in range(3)]
    assert epochs_a == epochs_b
    assert len({tuple(e) for e in epochs_a}) == 3


def test_batches_no_shuffle_keeps_order():
    tb = TensorBatches(IMAGES, fixed_sample, 6, seed=3, shuffle=False)
    for _ in range(2):
        assert left_order(tb)[0] == list(range(N))


def test_batches_resample_draws_each_epoch():
    calls = []

    def sample(epoch):
        calls.append(epoch)
        return keras_pairs(torch.arange(10).repeat(8), g(epoch))

    images = torch.arange(80, dtype=torch.float32)[:, None]
    fixed = TensorBatches(images, sample, 16, seed=0, shuffle=False)
    assert calls == [0]
    first = [b["x2"] for b in fixed]
    second = [b["x2"] for b in fixed]
    assert calls == [0]  # no resampling by default
    assert all(torch.equal(u, v) for u, v in zip(first, second, strict=True))

    calls.clear()
    fresh = TensorBatches(images, sample, 16, seed=0, shuffle=False, resample=True)
    first = torch.cat([b["x2"] for b in fresh])
    second = torch.cat([b["x2"] for b in fresh])
    assert calls == [0, 1]
    assert not torch.equal(first, second)
    assert len(fresh) == -(-len(first) // 16)


def test_batches_triplet_fields_gather_images():
    y = torch.arange(3).repeat(5)
    images = torch.arange(15, dtype=torch.float32)[:, None]
    tb = TensorBatches(images, lambda e: triplets(y, g(e)), 4, seed=0)
    batch = next(iter(tb))
    assert set(batch) == {"anchor", "positive", "negative", "label"}
    a, p, n = (batch[k][:, 0].long() for k in ("anchor", "positive", "negative"))
    assert (y[a] == y[p]).all() and (y[a] != y[n]).all()
    assert torch.equal(batch["label"], y[a])  # labels pass through, not gathered as images


def test_one_item_per_minibatch_and_the_order_follows_the_seed():
    y = torch.arange(10).repeat_interleave(7)  # 10 classes x 7 images: 2 x 10 x 6 = 120 pairs
    images = torch.rand(len(y), 1, 2, 2)
    sample = lambda epoch: keras_pairs(y, torch.Generator().manual_seed(epoch))  # noqa: E731
    a, b = TensorBatches(images, sample, batch_size=16, seed=3), TensorBatches(images, sample, batch_size=16, seed=3)
    assert len(a) == 8  # ceil(120 / 16): Lightning sees every optimizer step
    first = list(a)
    assert [len(mb["y"]) for mb in first] == [16] * 7 + [8]
    assert all(torch.equal(x[k], z[k]) for x, z in zip(first, list(b), strict=True) for k in x)  # same seed
    second = list(a)  # the next epoch is reshuffled
    assert not torch.equal(first[0]["x1"], second[0]["x1"])


def test_peek_is_the_first_minibatch_and_changes_nothing():
    tb = TensorBatches(IMAGES, fixed_sample, batch_size=5, seed=0, shuffle=False)
    first = tb.peek()
    assert tb.epoch == 0
    batch = next(iter(tb))
    assert all(torch.equal(first[k], batch[k]) for k in batch)


def test_more_draws_add_new_positive_pairs_of_the_same_classes():
    from siamese_bench.training.samplers import with_draws

    y = torch.arange(10).repeat_interleave(12)[torch.randperm(120, generator=torch.Generator().manual_seed(0))]
    sampler = lambda labels, seed: lambda epoch: keras_pairs(labels, torch.Generator().manual_seed(seed + epoch))  # noqa: E731
    one, three = sampler(y, 5)(0), with_draws(sampler, y, 5, 3)(0)
    assert len(three) == 3 * len(one)
    assert torch.equal(three.left[: len(one)], one.left) and torch.equal(three.right[: len(one)], one.right)
    same = y[three.left] == y[three.right]
    assert torch.equal(same.float(), three.y)  # labels still right after mapping back

    def positive_pairs(index):
        keep = index.y == 1
        return {frozenset(p) for p in zip(index.left[keep].tolist(), index.right[keep].tolist(), strict=True)}

    positives, first = positive_pairs(three), positive_pairs(one)
    assert len(positives) > 2.2 * len(first)  # the extra draws are mostly new pairs (66 per class to draw 33 from)
    assert torch.equal(with_draws(sampler, y, 5, 3)(0).left, three.left)  # seeded
    assert not torch.equal(with_draws(sampler, y, 5, 3)(1).left, three.left)  # per epoch


def test_more_draws_of_triplets_keep_the_anchor_labels():
    from siamese_bench.training.samplers import with_draws

    y = torch.arange(6).repeat_interleave(5)
    sampler = lambda labels, seed: lambda epoch: triplets(labels, torch.Generator().manual_seed(seed + epoch))  # noqa: E731
    t = with_draws(sampler, y, 0, 2)(0)
    assert torch.equal(y[t.anchor], t.label) and torch.equal(y[t.positive], t.label)
    assert (y[t.negative] != t.label).all()
