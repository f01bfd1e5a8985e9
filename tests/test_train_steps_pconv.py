"""The partial-convolution GAN's training step phase by phase, from the project report's definitions
(hole MSE + 1/6 valid MSE; BCE discriminators on the whole image, the left third and the right two
thirds; generator loss L_MSE - (1/2000) log D(G(x)); GLCIC's three phases), the "MSE only" schedule,
the valid-pixel mask fed to the partial convolutions, and the U-Net / discriminator layouts.

Pinned here as the code stands (see docs/methods.md): the MSE terms are normalised by the hole and
valid pixel counts; the report's Table 1 ending (3x3 PConv + LeakyReLU, then 1x1 PConv + sigmoid) is
not what the code builds; that test is a strict xfail until the report's layout lands (issue 16)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from conftest import RecordingCtx, assert_grads_close, grads_of
from inpaintgan.methods.pconv import PConvConfig, PConvGAN
from inpaintgan.nn import PartialConv2d


def tiny(**kw) -> PConvGAN:
    torch.manual_seed(0)
    cfg = dict(width=0.125, d_width=0.25, depth=3, adv_weight=0.2, hole_weight=1.3, valid_weight=0.4)
    cfg.update(kw)
    return PConvGAN(PConvConfig(**cfg), image_size=32, channels=3)


def batch():
    g = torch.Generator().manual_seed(4)
    image = torch.rand(2, 3, 32, 32, generator=g)
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 4:12, 2:9] = 1
    mask[1, :, 18:28, 15:27] = 1
    return image, mask


def phase(m, name):
    return next(p for p in m.phases() if p.name == name)


def rec_loss(m, pred, image, mask):
    c = m.cfg
    se = (pred - image) ** 2
    hole = (se * mask).sum() / (mask.sum() * 3)
    valid = (se * (1 - mask)).sum() / ((1 - mask).sum() * 3)
    return c.hole_weight * hole + c.valid_weight * valid


def d_by_hand(d, x):
    """Global + left third (10 of 32 columns) + right two thirds, one fully connected unit."""
    feats = torch.cat([d.global_d(x), d.left_d(x[..., :10]), d.right_d(x[..., 10:])], 1)
    return feats @ d.fuse.weight.t() + d.fuse.bias


# ------------------------------------------------------------------------------------- the step


def test_completion_phase_is_weighted_hole_and_valid_mse_on_the_valid_mask():
    m = tiny()
    m.train()
    image, mask = batch()
    g0 = copy.deepcopy(m.generator)
    pred = g0(image, 1 - mask)  # partial convolutions take the valid mask (1 = known)
    want = rec_loss(m, pred, image, mask)
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": mask}, phase(m, "completion"), 0, ctx)
    assert ctx.calls == ["generator"] and "loss_adv" not in logs
    assert logs["loss_mse"] == pytest.approx(float(want.detach()), rel=1e-5)
    assert_grads_close(ctx.grads["generator"], grads_of(want, g0), "generator")


def test_hole_pixels_never_reach_the_output():
    m = tiny().eval()
    image, mask = batch()
    noisy = torch.where(mask > 0.5, torch.rand_like(image), image)
    with torch.no_grad():
        assert torch.equal(m.complete(image, mask), m.complete(noisy, mask))


def test_discriminator_phase_is_bce_on_real_and_composited_fakes():
    m = tiny()
    m.train()
    m.generator.eval()
    image, mask = batch()
    g0, d0 = copy.deepcopy(m.generator), copy.deepcopy(m.discriminator)
    with torch.no_grad():
        fake = image * (1 - mask) + g0(image, 1 - mask) * mask
    want = F.softplus(-d_by_hand(d0, image)).mean() + F.softplus(d_by_hand(d0, fake)).mean()
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": mask}, phase(m, "discriminator"), 0, ctx)
    assert ctx.calls == ["discriminator"]
    assert logs["loss_d"] == pytest.approx(float(want.detach()), rel=1e-5)
    assert_grads_close(ctx.grads["discriminator"], grads_of(want, d0), "discriminator")


def test_joint_phase_adds_the_weighted_non_saturating_term_after_the_discriminator_update():
    m = tiny()
    m.train()
    image, mask = batch()
    g0 = copy.deepcopy(m.generator)
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": mask}, phase(m, "joint"), 0, ctx)
    assert ctx.calls == ["discriminator", "generator"]
    d1 = copy.deepcopy(m.discriminator).requires_grad_(False)
    pred = g0(image, 1 - mask)
    adv = F.softplus(-d_by_hand(d1, image * (1 - mask) + pred * mask)).mean()  # -log D(G(x))
    want = rec_loss(m, pred, image, mask) + m.cfg.adv_weight * adv
    assert logs["loss_adv"] == pytest.approx(float(adv.detach()), rel=1e-5)
    assert_grads_close(ctx.grads["generator"], grads_of(want, g0), "generator")


def test_ssim_term_is_added_with_its_weight():
    m = tiny(ssim_weight=0.7)
    m.train()
    image, mask = batch()
    from inpaintgan.metrics import ssim_map

    g0 = copy.deepcopy(m.generator)
    pred = g0(image, 1 - mask)
    comp = torch.where(mask > 0.5, pred, image)
    s = ssim_map(comp, image, dtype=torch.float32)
    w = mask.expand_as(s)
    want = rec_loss(m, pred, image, mask) + 0.7 * (1 - (s * w).sum() / w.sum())
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": mask}, phase(m, "completion"), 0, ctx)
    assert "loss_ssim" in logs
    assert_grads_close(ctx.grads["generator"], grads_of(want, g0), "generator")


def test_schedule_the_reports_weights_and_mse_only():
    c = PConvConfig()
    assert (c.hole_weight, c.valid_weight, c.adv_weight) == (1.0, 1 / 6, 1 / 2000)
    assert (c.steps_completion, c.steps_discriminator, c.steps_joint) == (25000, 6000, 94000)
    assert [(p.name, p.steps, set(p.trains)) for p in tiny(steps_completion=3, steps_discriminator=4, steps_joint=5).phases()] == [
        ("completion", 3, {"generator"}), ("discriminator", 4, {"discriminator"}), ("joint", 5, {"generator", "discriminator"})]  # fmt: skip
    mse_only = tiny(adv_weight=0.0, steps_completion=3, steps_discriminator=4, steps_joint=5)
    assert [(p.name, p.steps, set(p.trains)) for p in mse_only.phases()] == [
        ("completion", 3, {"generator"}), ("discriminator", 0, {"discriminator"}), ("joint", 5, {"generator"})]  # fmt: skip
    image, mask = batch()
    ctx = RecordingCtx(mse_only)
    logs = mse_only.train_step({"image": image, "mask": mask}, phase(mse_only, "joint"), 0, ctx)
    assert ctx.calls == ["generator"] and "loss_adv" not in logs


# ------------------------------------------------------------------------------------- networks


def test_unet_encoder_decoder_at_the_reports_width():
    """Encoder: kernels 5/5/3/3/3, stride 2, 64/128/256/256/256, BN on all but the first, ReLU;
    decoder: 3x3 stride 1 partial convs reading upsampled + skip channels, BN, LeakyReLU 0.2."""
    g = PConvGAN(PConvConfig(), image_size=128).generator
    enc = [(b.conv.in_channels, b.conv.out_channels, b.conv.kernel_size[0], b.conv.stride[0], b.conv.padding[0]) for b in g.encoder]
    assert enc == [(3, 64, 5, 2, 2), (64, 128, 5, 2, 2), (128, 256, 3, 2, 1), (256, 256, 3, 2, 1), (256, 256, 3, 2, 1)]
    assert all(isinstance(b.conv, PartialConv2d) and isinstance(b.act, torch.nn.ReLU) for b in g.encoder)
    assert isinstance(g.encoder[0].bn, torch.nn.Identity) and all(isinstance(b.bn, torch.nn.BatchNorm2d) for b in g.encoder[1:])
    dec = [(b.conv.in_channels, b.conv.out_channels, b.conv.kernel_size[0], b.conv.stride[0]) for b in g.decoder]
    assert dec == [(128 + 64, 64, 3, 1), (256 + 128, 128, 3, 1), (256 + 256, 256, 3, 1), (256 + 256, 256, 3, 1)]
    assert all(isinstance(b.act, torch.nn.LeakyReLU) and b.act.negative_slope == 0.2 for b in g.decoder)
    assert all(isinstance(b.bn, torch.nn.BatchNorm2d) for b in g.decoder)


@pytest.mark.xfail(strict=True, reason="issue 16: the report's Table 1 ends 3x3 PConv + LeakyReLU, then 1x1 PConv + sigmoid")
def test_unet_ends_as_the_reports_table_1():
    g = PConvGAN(PConvConfig(), image_size=128).generator
    assert g.output.conv.kernel_size == (1, 1)  # the last layer: a 1x1 partial convolution


def test_discriminators_at_the_reports_width():
    d = PConvGAN(PConvConfig(), image_size=128).discriminator
    rows = lambda stack: [(layer[0].out_channels, layer[0].kernel_size[0], layer[0].stride[0]) for layer in stack.net]  # noqa: E731
    assert rows(d.global_d) == [(32, 5, 2), (64, 5, 2), (64, 5, 2), (128, 5, 2), (128, 5, 2)]
    assert rows(d.left_d) == rows(d.right_d) == [(32, 5, 2), (64, 5, 2), (64, 5, 2), (128, 5, 2)]
    assert (d.third, d.left_d.width, d.right_d.width) == (42, 42, 86)
    assert all(isinstance(layer[-1], torch.nn.LeakyReLU) for layer in d.global_d.net)
    assert d.fuse.in_features == d.global_d.out_features + d.left_d.out_features + d.right_d.out_features
    assert d.global_d.out_features == 128 * 4 * 4
