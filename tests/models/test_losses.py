"""Losses against values worked out by hand (y = 1 same, y = 0 different)."""

from __future__ import annotations

import math

import pytest
import torch

from siamese_bench.models.heads import HEADS, HeadOutput
from siamese_bench.models.losses import LOSSES, BCELoss, ContrastiveLoss, TripletLoss, check_compatible


def dist(values, requires_grad=False):
    return HeadOutput(torch.tensor(values, requires_grad=requires_grad), None)


def test_contrastive_by_hand():
    # y=1: d^2 = 0.04; y=0, d=0.7: (1-0.7)^2 = 0.09; y=0, d=1.5 beyond margin: 0
    value = ContrastiveLoss(margin=1.0)(dist([0.2, 0.7, 1.5]), torch.tensor([1, 0, 0]))
    assert value.loss.item() == pytest.approx((0.04 + 0.09 + 0.0) / 3, abs=1e-7)
    assert value.active_fraction.item() == pytest.approx(2 / 3)


def test_contrastive_margin_scales_negative_term():
    # margin 2: y=0 at d=0.5 -> (2-0.5)^2 = 2.25; y=1 at d=3 -> 9 (no margin on positives)
    value = ContrastiveLoss(margin=2.0)(dist([0.5, 3.0]), torch.tensor([0.0, 1.0]))
    assert value.loss.item() == pytest.approx((2.25 + 9.0) / 2)
    assert value.active_fraction.item() == 1.0


def test_contrastive_all_inactive():
    value = ContrastiveLoss(margin=1.0)(dist([0.0, 1.0, 2.0]), torch.tensor([1, 0, 0]))
    assert value.loss.item() == 0.0
    assert value.active_fraction.item() == 0.0


def test_contrastive_on_probability_is_c2_inverted_loss():
    # d = 1 - p; contrastive m=1 == y * max(1-p,0)^2 + (1-y) * p^2
    p = torch.tensor([0.9, 0.3, 0.6, 0.1])
    y = torch.tensor([1.0, 1.0, 0.0, 0.0])
    expected = (y * (1 - p).clamp_min(0) ** 2 + (1 - y) * p**2).mean()
    value = ContrastiveLoss(margin=1.0)(HeadOutput(1 - p, torch.logit(p)), y)
    assert value.loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_bce_by_hand_from_logits():
    z = [2.0, -1.0, 0.5, -3.0]
    y = [1.0, 1.0, 0.0, 0.0]
    by_hand = []
    for zi, yi in zip(z, y, strict=True):
        p = 1 / (1 + math.exp(-zi))
        by_hand.append(-(yi * math.log(p) + (1 - yi) * math.log(1 - p)))
    logit = torch.tensor(z)
    value = BCELoss()(HeadOutput(torch.sigmoid(-logit), logit), torch.tensor(y))
    assert value.loss.item() == pytest.approx(sum(by_hand) / len(by_hand), rel=1e-6)
    assert value.active_fraction.item() == 1.0


def test_bce_is_stable_for_extreme_logits():
    logit = torch.tensor([200.0, -200.0])
    value = BCELoss()(HeadOutput(torch.sigmoid(-logit), logit), torch.tensor([0.0, 1.0]))
    assert value.loss.item() == pytest.approx(200.0)


def test_triplet_squared_by_hand():
    # squared: 0.25 - 1 + 0.2 < 0 -> 0;  1 - 0.25 + 0.2 = 0.95
    value = TripletLoss(margin=0.2)(torch.tensor([0.5, 1.0]), torch.tensor([1.0, 0.5]))
    assert value.loss.item() == pytest.approx(0.95 / 2)
    assert value.active_fraction.item() == 0.5


def test_triplet_plain_by_hand():
    # plain: 0.5 - 1 + 0.2 < 0 -> 0;  1 - 0.5 + 0.2 = 0.7;  0.3 - 0.4 + 0.2 = 0.1
    value = TripletLoss(margin=0.2, squared=False)(torch.tensor([0.5, 1.0, 0.3]), torch.tensor([1.0, 0.5, 0.4]))
    assert value.loss.item() == pytest.approx((0.7 + 0.1) / 3)
    assert value.active_fraction.item() == pytest.approx(2 / 3)


@pytest.mark.parametrize("cls", [ContrastiveLoss, TripletLoss])
@pytest.mark.parametrize("margin", [0.0, -1.0, None, float("nan")])
def test_margin_must_be_positive(cls, margin):
    with pytest.raises(ValueError, match="margin"):
        cls(margin=margin)


def test_bce_needs_no_margin_and_ignores_one():
    """BCE has no margin: it is built without one, and a margin given changes nothing."""
    assert not BCELoss.uses_margin and BCELoss().margin is None
    out = HeadOutput(torch.sigmoid(-torch.tensor([2.0, -1.0])), torch.tensor([2.0, -1.0]))
    y = torch.tensor([1.0, 0.0])
    assert torch.equal(BCELoss()(out, y).loss, BCELoss(margin=5.0)(out, y).loss)


def test_contrastive_backward_finite():
    d = torch.tensor([0.2, 0.7, 1.5, 0.0], requires_grad=True)
    ContrastiveLoss(margin=1.0)(HeadOutput(d, None), torch.tensor([1, 0, 0, 1])).loss.backward()
    assert torch.isfinite(d.grad).all()
    # dL/dd = (1/N) * [2 d y - 2 (m - d)_+ (1 - y)]
    expected = torch.tensor([2 * 0.2, -2 * 0.3, 0.0, 0.0]) / 4
    assert torch.allclose(d.grad, expected, atol=1e-6)


def test_bce_backward_finite():
    z = torch.tensor([3.0, -2.0], requires_grad=True)
    BCELoss()(HeadOutput(torch.sigmoid(-z), z), torch.tensor([1.0, 0.0])).loss.backward()
    assert torch.isfinite(z.grad).all()
    expected = (torch.sigmoid(z.detach()) - torch.tensor([1.0, 0.0])) / 2  # (p - y) / N
    assert torch.allclose(z.grad, expected, atol=1e-6)


@pytest.mark.parametrize("squared", [True, False])
def test_triplet_backward_finite(squared):
    d_ap = torch.tensor([0.5, 1.0], requires_grad=True)
    d_an = torch.tensor([1.0, 0.5], requires_grad=True)
    TripletLoss(margin=0.2, squared=squared)(d_ap, d_an).loss.backward()
    assert torch.isfinite(d_ap.grad).all() and torch.isfinite(d_an.grad).all()
    assert d_ap.grad[1] > 0 and d_an.grad[1] < 0  # the active triplet pulls/pushes
    assert d_ap.grad[0] == 0 and d_an.grad[0] == 0  # the satisfied one does not


def test_check_compatible_rejects_distance_head_with_bce():
    with pytest.raises(ValueError) as err:
        check_compatible("euclidean", "bce")
    message = str(err.value)
    logit_heads = [n for n in HEADS.names() if HEADS.get(n).has_logit]
    assert logit_heads, "there must be heads that work with bce"
    for name in logit_heads:
        assert name in message
    assert "l1" not in message.split("heads that work with it:")[-1]


@pytest.mark.parametrize("head", HEADS.names())
@pytest.mark.parametrize("loss", LOSSES.names())
def test_check_compatible_matrix(head, loss):
    needs_logit = LOSSES.get(loss).needs_logit
    if needs_logit and not HEADS.get(head).has_logit:
        with pytest.raises(ValueError):
            check_compatible(head, loss)
    else:
        check_compatible(head, loss)


def test_check_compatible_unknown_names():
    from siamese_bench.core.registry import UnknownNameError

    with pytest.raises(UnknownNameError, match="valid: .*contrastive"):
        check_compatible("euclidean", "hinge")
    with pytest.raises(UnknownNameError, match="valid: .*euclidean"):
        check_compatible("cosine-nope", "contrastive")


def test_bce_sigmoid_matches_stable_bce_and_clips_like_keras():
    from siamese_bench.models.heads import HeadOutput
    from siamese_bench.models.losses import BCELoss, SigmoidBCELoss

    logit = torch.tensor([-2.0, 0.5, 3.0])
    y = torch.tensor([0.0, 1.0, 1.0])
    out = HeadOutput(torch.sigmoid(-logit), logit)
    assert SigmoidBCELoss()(out, y).loss.item() == pytest.approx(BCELoss()(out, y).loss.item(), rel=1e-5)
    # a confidently wrong logit: the stable form grows with it, the clipped one stops near
    # -log(1e-7) (float32 rounds 1 - 1e-7 to 1 - 1.19e-7)
    wrong = torch.tensor([40.0])
    out = HeadOutput(torch.sigmoid(-wrong), wrong)
    assert SigmoidBCELoss()(out, torch.zeros(1)).loss.item() == pytest.approx(-math.log(1e-7), rel=0.02)
    assert BCELoss()(out, torch.zeros(1)).loss.item() == pytest.approx(40.0, rel=1e-3)
