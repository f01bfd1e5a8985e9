"""The shared losses (losses.py) against values computed here from their papers' formulas, on tiny
hand-made tensors: every term, sign and normalisation pinned."""

from __future__ import annotations

import math

import pytest
import torch

from inpaintgan.losses import (
    ADV_LOSSES,
    d_loss,
    g_loss,
    gradient_penalty,
    masked_l1,
    masked_mse,
    spatial_discount,
)


def _sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


REAL = torch.tensor([[0.7], [-1.5]])
FAKE = torch.tensor([[-0.3], [2.0]])


def test_masked_reconstruction_losses_average_over_hole_pixels_and_channels():
    pred = torch.full((1, 2, 2, 2), 0.5)
    target = torch.full((1, 2, 2, 2), 0.5)
    target[0, 0, 0, 0] = 2.5  # hole pixel, channel 0: error -2
    target[0, 1, 0, 0] = -0.5  # hole pixel, channel 1: error 1
    target[0, :, 1, 1] = 5.0  # known pixel: ignored
    mask = torch.zeros(1, 1, 2, 2)
    mask[0, 0, 0, :] = 1  # two hole pixels x two channels = 4 elements
    assert masked_mse(pred, target, mask).item() == pytest.approx((4 + 1) / 4)
    assert masked_l1(pred, target, mask).item() == pytest.approx((2 + 1) / 4)
    # weighted masks: a 0.5 weight counts half in both the numerator and the denominator
    soft = mask * 0.5
    assert masked_l1(pred, target, soft).item() == pytest.approx((2 + 1) * 0.5 / 2)
    assert masked_mse(pred, target, soft).item() == pytest.approx((4 + 1) * 0.5 / 2)
    assert masked_mse(pred, target, torch.zeros_like(mask)).item() == 0.0


@pytest.mark.parametrize("kind", ADV_LOSSES)
def test_discriminator_losses_from_their_definitions(kind):
    r, f = REAL.flatten().tolist(), FAKE.flatten().tolist()
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    want = {
        "bce": mean([-math.log(_sig(x)) for x in r]) + mean([-math.log(1 - _sig(x)) for x in f]),
        "lsgan": 0.5 * (mean([(x - 1) ** 2 for x in r]) + mean([x**2 for x in f])),
        "hinge": mean([max(0.0, 1 - x) for x in r]) + mean([max(0.0, 1 + x) for x in f]),
        "wgan": mean(f) - mean(r),
    }[kind]
    assert d_loss(REAL, FAKE, kind).item() == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("kind", ADV_LOSSES)
def test_generator_losses_from_their_definitions(kind):
    f = FAKE.flatten().tolist()
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    want = {
        "bce": mean([-math.log(_sig(x)) for x in f]),  # non-saturating
        "lsgan": 0.5 * mean([(x - 1) ** 2 for x in f]),
        "hinge": -mean(f),
        "wgan": -mean(f),
    }[kind]
    assert g_loss(FAKE, kind).item() == pytest.approx(want, rel=1e-6)


def test_unknown_adversarial_loss_is_refused():
    with pytest.raises(ValueError, match="unknown adversarial loss"):
        d_loss(REAL, FAKE, "nope")
    with pytest.raises(ValueError, match="unknown adversarial loss"):
        g_loss(FAKE, "nope")


def test_gradient_penalty_of_a_linear_critic_with_and_without_the_hole_mask():
    # D(x) = <w, x>: the gradient is w at every interpolate, so the penalty is (|w| - 1)^2, or over the
    # hole only (|w * mask| - 1)^2; the interpolation point does not matter
    w = torch.zeros(1, 1, 2, 2)
    w[0, 0] = torch.tensor([[3.0, 0.0], [4.0, 2.0]])
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.rand(3, 1, 2, 2), torch.rand(3, 1, 2, 2)
    g = torch.Generator().manual_seed(0)
    assert gradient_penalty(critic, real, fake, generator=g).item() == pytest.approx((math.sqrt(29) - 1) ** 2, rel=1e-5)
    mask = torch.zeros(3, 1, 2, 2)
    mask[:, :, 1, :] = 1  # the hole holds the 4 and the 2
    assert gradient_penalty(critic, real, fake, mask, g).item() == pytest.approx((math.sqrt(20) - 1) ** 2, rel=1e-5)


def test_gradient_penalty_is_taken_at_the_interpolates_of_real_and_fake():
    # D(x) = sum(x^2) / 2 has gradient x, so |grad| at x_hat = a*real + (1-a)*fake is |x_hat|; the
    # interpolation weights a ~ U(0, 1) are the generator's first draw, one per sample
    critic = lambda x: (x**2).flatten(1).sum(1) / 2  # noqa: E731
    real = torch.full((5, 1, 1, 1), 2.0)
    fake = torch.full((5, 1, 1, 1), 5.0)
    a = torch.rand((5, 1, 1, 1), generator=torch.Generator().manual_seed(1))
    x_hat = a * 2.0 + (1 - a) * 5.0
    want = ((x_hat.abs().flatten() - 1) ** 2).mean()
    gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(1))
    assert gp.item() == pytest.approx(float(want), rel=1e-5)
    # and the penalty is differentiable with respect to the critic (create_graph)
    scale = torch.tensor(1.0, requires_grad=True)
    gp2 = gradient_penalty(lambda x: scale * (x**2).flatten(1).sum(1) / 2, real, fake, generator=torch.Generator().manual_seed(1))
    (d,) = torch.autograd.grad(gp2, scale)
    assert d.item() == pytest.approx(float((2 * (x_hat.abs().flatten() - 1) * x_hat.abs().flatten()).mean()), rel=1e-5)


def test_spatial_discount_is_gamma_to_the_distance_to_the_known_region():
    mask = torch.zeros(1, 1, 7, 7)
    mask[0, 0, 1:6, 1:6] = 1  # 5x5 hole: border distance 1, then 2, centre 3
    w = spatial_discount(mask, gamma=0.5)[0, 0]
    assert w[0, 0] == 0 and w[1, 1] == pytest.approx(0.5) and w[2, 2] == pytest.approx(0.25)
    assert w[3, 3] == pytest.approx(0.125) and w[1, 3] == pytest.approx(0.5)
    assert spatial_discount(torch.ones(1, 1, 3, 3), 0.5).eq(1).all()
    assert spatial_discount(torch.zeros(1, 1, 3, 3), 0.5).eq(0).all()


def test_spatial_discount_defaults_to_the_papers_gamma_and_checks_the_mask_shape():
    mask = torch.zeros(1, 1, 5, 5)
    mask[0, 0, 1:4, 1:4] = 1  # centre pixel: distance 2 to the known ring
    assert spatial_discount(mask)[0, 0, 2, 2].item() == pytest.approx(0.99**2)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        spatial_discount(mask[:, 0])
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        spatial_discount(mask.expand(1, 2, 5, 5))
