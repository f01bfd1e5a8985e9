"""The semantic method's training step from its definitions: the DCGAN's alternating BCE updates on
one z from the prior (Radford et al. 2016; non-saturating generator), the median-logit calibration at
the end of the gan phase and every ``calibrate_every`` steps, Liu et al.'s discriminator shaping on
refined composites (one refinement step written out by hand), and the DCGAN's layers at 64 px."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from conftest import RecordingCtx, assert_grads_close, grads_of
from inpaintgan.methods.semantic import SemanticConfig, SemanticInpainting

S = 16


def tiny(**kw) -> SemanticInpainting:
    torch.manual_seed(0)
    cfg = dict(z_dim=8, ngf=4, ndf=4, steps_gan=10, shaping_steps=3, calibrate_every=4, progress=False)
    cfg.update(kw)
    return SemanticInpainting(SemanticConfig(**cfg), S, channels=1)


def batch():
    g = torch.Generator().manual_seed(6)
    image = torch.rand(4, 1, S, S, generator=g)
    mask = torch.zeros(4, 1, S, S)
    mask[:, :, 4:11, 5:12] = 1
    return image, mask


def median_logit(d, real):
    d = copy.deepcopy(d).eval()
    with torch.no_grad():
        return float(d(real).quantile(0.5))


@pytest.mark.parametrize("prior", ["uniform", "normal"])
def test_gan_step_d_then_g_on_one_z_from_the_prior(prior):
    m = tiny(z_prior=prior)
    m.train()
    image, _ = batch()
    real = image * 2 - 1
    g0, d0 = copy.deepcopy(m.generator), copy.deepcopy(m.discriminator)
    gen = torch.Generator().manual_seed(0)  # the context's generator
    z = torch.rand(4, 8, generator=gen) * 2 - 1 if prior == "uniform" else torch.randn(4, 8, generator=gen)
    fake = g0(z)
    want_d = F.softplus(-d0(real)).mean() + F.softplus(d0(fake.detach())).mean()
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": torch.zeros_like(image)}, m.phases()[0], 1, ctx)
    assert ctx.calls == ["discriminator", "generator"]
    assert logs["loss_d"] == pytest.approx(float(want_d.detach()), rel=1e-5)
    assert_grads_close(ctx.grads["discriminator"], grads_of(want_d, d0), "discriminator")
    d1 = copy.deepcopy(m.discriminator).requires_grad_(False)
    want_g = F.softplus(-d1(fake)).mean()  # -log D(G(z)), the same z, D after its update
    assert logs["loss_g"] == pytest.approx(float(want_g.detach()), rel=1e-5)
    assert_grads_close(ctx.grads["generator"], grads_of(want_g, g0), "generator")
    assert "d_real_median" not in logs  # step 1: neither the phase's end nor a multiple of calibrate_every


@pytest.mark.parametrize("step,calibrates", [(2, False), (3, True), (7, True), (8, False), (9, True)])
def test_median_calibration_every_k_steps_and_at_the_phase_end(step, calibrates):
    m = tiny()
    m.train()
    image, _ = batch()
    logs = m.train_step({"image": image, "mask": torch.zeros_like(image)}, m.phases()[0], step, RecordingCtx(m))
    assert ("d_real_median" in logs) == calibrates
    if calibrates:
        want = median_logit(m.discriminator, image * 2 - 1)
        assert logs["d_real_median"] == pytest.approx(want, rel=1e-5)
        assert float(m.d_real_median) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("masked", [True, False])
def test_shaping_step_trains_d_on_refined_composites(masked):
    m = tiny(refine_steps=1, refine_step_size=0.5, stop_rule="none", refine_masked=masked, refine_layer=1)
    with torch.no_grad():  # DCGAN's N(0, 0.02) init gives refinement gradients of ~1e-7: make them count
        for p in m.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
    m.train()
    image, mask = batch()
    real = image * 2 - 1
    g0, d0 = copy.deepcopy(m.generator).eval(), copy.deepcopy(m.discriminator).eval()
    z = torch.rand(4, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    # one refinement step of the activations after the first block, G and D in eval mode
    h = g0.blocks[0](z.view(4, 8, 1, 1)).detach().requires_grad_(True)
    x = h
    for blk in g0.blocks[1:]:
        x = blk(x)
    view = torch.where(mask > 0.5, x, real) if masked else x
    (grad,) = torch.autograd.grad(F.softplus(-d0(view)).sum(), h)
    x0 = x.detach()
    x = (h - 0.5 * grad).detach()
    for blk in g0.blocks[1:]:
        x = blk(x)
    assert (x - x0).abs().mean() > 0.02  # the step moves the image: a wrong sign or view would show
    fake = torch.where(mask > 0.5, x, real).detach()
    d0.train()
    want = F.softplus(-d0(real)).mean() + F.softplus(d0(fake)).mean()
    g_before = copy.deepcopy(m.generator)
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": mask}, m.phases()[1], 11, ctx)
    assert ctx.calls == ["discriminator"] and logs["refine_steps"] == 1.0
    assert logs["loss_d"] == pytest.approx(float(want.detach()), rel=1e-4)
    assert_grads_close(ctx.grads["discriminator"], grads_of(want, d0), "discriminator")
    assert all(torch.equal(p, q) for p, q in zip(m.generator.state_dict().values(), g_before.state_dict().values()))
    assert logs["d_real_median"] == pytest.approx(median_logit(m.discriminator, real), rel=1e-5)


def test_schedule_and_defaults():
    m = tiny()
    assert [(p.name, p.steps, set(p.trains)) for p in m.phases()] == [
        ("gan", 10, {"generator", "discriminator"}), ("shaping", 3, {"discriminator"})]  # fmt: skip
    c = SemanticConfig()
    assert (c.z_dim, c.ngf, c.ndf, c.lam, c.window, c.refine_steps, c.refine_step_size) == (100, 64, 64, 1e-4, 7, 50, 0.1)


def test_dcgan_layers_at_64_px():
    m = SemanticInpainting(SemanticConfig(), 64, channels=3)
    g = [blk[0] for blk in m.generator.blocks]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in g] == [
        (100, 512, 4, 1, 0), (512, 256, 4, 2, 1), (256, 128, 4, 2, 1), (128, 64, 4, 2, 1), (64, 3, 4, 2, 1)]  # fmt: skip
    assert all(isinstance(b[1], torch.nn.BatchNorm2d) and isinstance(b[2], torch.nn.ReLU) for b in m.generator.blocks[:-1])
    assert isinstance(m.generator.blocks[-1][1], torch.nn.Tanh) and len(m.generator.blocks[-1]) == 2
    d = [mod for mod in m.discriminator.net if isinstance(mod, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in d] == [
        (3, 64, 4, 2, 1), (64, 128, 4, 2, 1), (128, 256, 4, 2, 1), (256, 512, 4, 2, 1), (512, 1, 4, 1, 0)]  # fmt: skip
    norms = [type(mod).__name__ for mod in m.discriminator.net if not isinstance(mod, torch.nn.Conv2d)]
    assert norms == ["LeakyReLU"] + ["BatchNorm2d", "LeakyReLU"] * 3
    assert all(mod.negative_slope == 0.2 for mod in m.discriminator.net if isinstance(mod, torch.nn.LeakyReLU))
