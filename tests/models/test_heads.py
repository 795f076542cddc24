"""Heads, parametrized over every registered name so new heads are covered automatically."""

from __future__ import annotations

import math

import pytest
import torch

from siamese_bench.models.heads import HEADS, KERAS_EPSILON

ALL_HEADS = HEADS.names()
SYMMETRIC = [n for n in HEADS.names() if HEADS.get(n).symmetric]  # what each head states
ASYMMETRIC = [n for n in HEADS.names() if not HEADS.get(n).symmetric]
ODD_UP_TO_BIAS = ["subtract-dense", "one-minus-diff-dense", "reciprocal-dense"]
D = 16
B = 8


def make(name: str, seed: int = 0):
    torch.manual_seed(seed)
    head = HEADS.get(name)(D)
    # Non-zero biases, so "odd up to the bias" is a real check and not "odd".
    with torch.no_grad():
        for mod in head.modules():
            if isinstance(mod, torch.nn.Linear):
                mod.bias.uniform_(0.3, 0.9)
    return head.eval()


def pair(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, D, generator=g), torch.randn(B, D, generator=g)


def test_named_heads_exist_and_state_their_symmetry():
    for name in ODD_UP_TO_BIAS:
        assert name in HEADS and not HEADS.get(name).symmetric
    assert set(SYMMETRIC) == {
        "abs-diff-linear",
        "euclidean",
        "l1",
        "abs-diff-dense",
        "square-diff-dense",
        "distance-bn-dense",
        "cosine",
        "bilinear",
        "cosine-distance",
    }
    assert {"sbert", "sbert-prod-mlp", "concat-dense", "subtract-mlp"} <= set(ASYMMETRIC)


@pytest.mark.parametrize("name", ALL_HEADS)
def test_shapes_and_ranges(name):
    head = make(name)
    a, b = pair()
    out = head(a, b)
    assert out.dissimilarity.shape == (B,)
    assert torch.isfinite(out.dissimilarity).all()
    if not HEADS.get(name).may_be_negative:
        assert (out.dissimilarity >= 0).all()
    if head.has_logit:
        assert out.logit is not None and out.logit.shape == (B,)
        assert torch.isfinite(out.logit).all()
    else:
        assert out.logit is None


@pytest.mark.parametrize("name", [n for n in ALL_HEADS if HEADS.get(n).has_logit])
def test_probabilistic_d_is_one_minus_sigmoid(name):
    out = make(name)(*pair())
    assert torch.allclose(out.dissimilarity, 1 - torch.sigmoid(out.logit), atol=1e-6)
    assert (out.dissimilarity <= 1).all()


@pytest.mark.parametrize("name", ALL_HEADS)
def test_gradients_reach_inputs_and_step_changes_parameters(name):
    head = make(name).train()
    a, b = pair()
    a.requires_grad_(True)
    params = [p for p in head.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    head(a, b).dissimilarity.sum().backward()
    assert a.grad is not None and torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
    if not params:
        return  # parameter-free distance heads
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)
    torch.optim.SGD(params, lr=0.1).step()
    changed = [not torch.equal(p0, p.detach()) for p0, p in zip(before, params, strict=True)]
    assert any(changed)
    assert changed[-1]  # the output unit is trained


@pytest.mark.parametrize("name", SYMMETRIC)
def test_symmetric_heads(name):
    head = make(name)
    a, b = pair()
    assert torch.allclose(head(a, b).dissimilarity, head(b, a).dissimilarity, atol=1e-6)


@pytest.mark.parametrize("name", ASYMMETRIC)
def test_heads_that_do_not_claim_symmetry_depend_on_the_order(name):
    head = make(name)
    a, b = pair()
    assert not torch.allclose(head(a, b).dissimilarity, head(b, a).dissimilarity, atol=1e-4)


def test_new_heads_match_their_definitions():
    a, b = pair()
    cosine = make("cosine")
    with torch.no_grad():
        cosine.log_scale.fill_(math.log(3.0))
        cosine.offset.fill_(-0.7)
    expected = 3.0 * torch.nn.functional.cosine_similarity(a, b, dim=1) - 0.7
    assert torch.allclose(cosine(a, b).logit, expected, atol=1e-6)
    bil = make("bilinear")
    sym = (bil.weight + bil.weight.T) / 2
    expected = bil.out[0].weight.squeeze() * torch.einsum("bi,ij,bj->b", a, sym, b) + bil.out[0].bias.squeeze()
    assert torch.allclose(bil(a, b).logit, expected, atol=1e-5)
    sbert = make("sbert")
    feats = torch.cat([a, b, (a - b).abs()], dim=1)
    assert torch.allclose(sbert(a, b).logit, sbert.out(feats).squeeze(-1), atol=1e-6)


@pytest.mark.parametrize("name", ODD_UP_TO_BIAS)
def test_affine_in_difference_heads_are_odd_up_to_bias(name):
    head = make(name)
    a, b = pair()
    bias = head(a, a).logit  # the logit at zero difference: the bias term (per row, all equal)
    assert torch.allclose(bias, bias[0].expand_as(bias))
    ab, ba = head(a, b).logit, head(b, a).logit
    assert torch.allclose(ab - bias, -(ba - bias), atol=1e-5)
    assert torch.allclose(ab + ba, 2 * bias, atol=1e-5)
    assert not torch.allclose(ab, ba, atol=1e-3)  # genuinely order dependent


@pytest.mark.parametrize("name", ["subtract-mlp", "concat-dense"])
def test_nonlinear_or_concat_heads_are_not_odd(name):
    head = make(name)
    a, b = pair()
    bias = head(a, a).logit
    ab, ba = head(a, b).logit, head(b, a).logit
    assert not torch.allclose(ab + ba, 2 * bias, atol=1e-3)


def test_euclidean_matches_definition():
    head = make("euclidean")
    a, b = pair()
    expected = torch.sqrt(((a - b) ** 2).sum(dim=1))
    assert torch.allclose(head(a, b).dissimilarity, expected, atol=1e-6)


def test_euclidean_identical_inputs_is_sqrt_eps_with_finite_grad():
    head = make("euclidean")
    a = torch.randn(B, D, requires_grad=True)
    d = head(a, a.detach().clone()).dissimilarity
    assert torch.allclose(d, torch.full((B,), math.sqrt(KERAS_EPSILON)))
    assert KERAS_EPSILON == 1e-7
    d.sum().backward()
    assert torch.isfinite(a.grad).all()


def test_l1_matches_definition():
    a, b = pair()
    assert torch.allclose(make("l1")(a, b).dissimilarity, (a - b).abs().sum(dim=1), atol=1e-5)


def test_cosine_distance_is_half_the_squared_distance_on_the_unit_sphere():
    a, b = pair()
    d = make("cosine-distance")(a, b).dissimilarity
    unit = torch.nn.functional.normalize
    assert torch.allclose(d, (unit(a) - unit(b)).pow(2).sum(1) / 2, atol=1e-6)
    assert torch.allclose(make("cosine-distance")(a, 3 * a).dissimilarity, torch.zeros(B), atol=1e-6)  # scale-free


@pytest.mark.parametrize("init", ["keras", "torch"])
@pytest.mark.parametrize("seed", range(5))
def test_cosine_head_starts_as_a_similarity_whatever_the_init(init, seed):
    """The learned-scale cosine head must rank more-alike pairs as more likely the same from the
    first step, at every seed and init: a scale that starts negative or small teaches the encoder
    the opposite (test AUC 0.47 under C1's recipe)."""
    from siamese_bench.training.optim import INITS

    head = make("cosine", seed)
    INITS.get(init)(head)
    a = torch.randn(B, D)
    near, far = a + 0.1 * torch.randn(B, D), torch.randn(B, D)
    out_near, out_far = head(a, near), head(a, far)
    assert (out_near.logit > out_far.logit + 1.0).all()  # a scale of at least a few units
    assert torch.allclose(head(a, a).logit, torch.full((B,), 5.0), atol=1e-4)  # cos 1: 10 - 5
