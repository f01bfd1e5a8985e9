"""DeepFill v1's training step from its definitions (Yu et al. 2018, Sec. 3; the v1 code's
``build_graph_with_losses``): n_critic WGAN-GP critic updates (global + local critic, gradient taken
over hole pixels only, fresh interpolates each update), then one generator update on spatially
discounted hole L1 + known-pixel L1 on the coarse and refined outputs + the weighted WGAN terms;
the reconstruction-only phase; the networks' layouts at the code's width."""

from __future__ import annotations

import copy

import pytest
import torch

from conftest import FakeTrainContext, assert_grads_close, grads_of
from inpaintgan.methods.deepfill import DeepFill, DeepFillConfig, GenConv, GenDeconv


class RecordingCtx(FakeTrainContext):
    """Records, at every backward_step, the network as it was and the gradient it received."""

    def __init__(self, method):
        super().__init__(method, 1e-3)
        self.method = method
        self.steps: list[tuple[str, torch.nn.Module, list[torch.Tensor]]] = []

    def backward_step(self, loss, name):
        net = getattr(self.method, name)
        before = copy.deepcopy(net)
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in net.parameters()]
        self.steps.append((name, before, grads))
        opt.step()


WEIGHTS = dict(coarse_l1_alpha=1.5, l1_loss_alpha=1.1, ae_loss_alpha=0.7, gan_loss_alpha=0.3, global_wgan_loss_alpha=2.0,
               wgan_gp_lambda=4.0, gamma=0.5)  # fmt: skip


def tiny(**kw) -> DeepFill:
    torch.manual_seed(0)
    cfg = dict(width=4, d_width=4, n_critic=3, **WEIGHTS)
    cfg.update(kw)
    return DeepFill(DeepFillConfig(**cfg), image_size=16)


def batch():
    g = torch.Generator().manual_seed(2)
    image = torch.rand(2, 3, 16, 16, generator=g)
    mask = torch.zeros(2, 1, 16, 16)
    mask[0, :, 2:7, 3:10] = 1  # hole rows 2..6, cols 3..9: centre (4, 6) -> local 8x8 crop at (0, 2)
    mask[1, :, 8:13, 9:14] = 1  # centre (10, 11) -> (6, 7)
    return image, mask


CORNERS = [(0, 2), (6, 7)]
BOXES = [(2, 7, 3, 10), (8, 13, 9, 14)]


def crop(t):
    return torch.stack([s[:, a : a + 8, b : b + 8] for s, (a, b) in zip(t, CORNERS)])


def discount(mask, gamma):
    """gamma ** (distance to the nearest known pixel) in each rectangular hole (away from the border)."""
    w = torch.zeros_like(mask)
    for i, (y0, y1, x0, x1) in enumerate(BOXES):
        for y in range(y0, y1):
            for x in range(x0, x1):
                w[i, 0, y, x] = gamma ** min(y - y0 + 1, y1 - y, x - x0 + 1, x1 - x)
    return w


def generator_losses(m, g0, critics, image, mask):
    c = m.cfg
    x = image * 2 - 1
    x1, x2, _ = g0(x * (1 - mask), mask)
    n_hole, n_known = mask.sum() * 3, (1 - mask).sum() * 3
    disc = discount(mask, c.gamma)
    l1d = lambda p: ((p - x).abs() * disc).sum() / n_hole  # noqa: E731
    ae = lambda p: ((p - x).abs() * (1 - mask)).sum() / n_known  # noqa: E731
    l1 = c.coarse_l1_alpha * l1d(x1) + l1d(x2)
    ae_ = c.coarse_l1_alpha * ae(x1) + ae(x2)
    completed = x2 * mask + x * (1 - mask)
    adv = None
    if critics is not None:
        adv = -c.global_wgan_loss_alpha * critics.global_critic(completed).mean() - critics.local_critic(crop(completed)).mean()
    return x, completed, l1, ae_, adv


def hole_gp(critic, real, fake, mask, alpha):
    xh = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(xh).sum(), xh, create_graph=True)
    norm = (grad * mask).flatten(1).pow(2).sum(1).sqrt()
    return ((norm - 1) ** 2).mean()


def phase(m, name):
    return next(p for p in m.phases() if p.name == name)


# ------------------------------------------------------------------------------------- the step


@pytest.mark.parametrize("n_critic", [3, 1])
def test_adversarial_step_n_critic_updates_then_the_generator(n_critic):
    m = tiny(n_critic=n_critic)
    m.train()
    image, mask = batch()
    g0 = copy.deepcopy(m.generator)
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": mask}, phase(m, "adversarial"), 0, ctx)
    assert [s[0] for s in ctx.steps] == ["discriminator"] * n_critic + ["generator"]
    x, completed, l1, ae, _ = generator_losses(m, g0, None, image, mask)
    fake = completed.detach()
    gen = torch.Generator().manual_seed(0)  # the context's: two interpolation draws per critic update
    for k in range(n_critic):
        _, critics, grads = ctx.steps[k]
        a_g = torch.rand(2, 1, 1, 1, generator=gen)
        a_l = torch.rand(2, 1, 1, 1, generator=gen)
        w = (critics.global_critic(fake).mean() - critics.global_critic(x).mean()
             + critics.local_critic(crop(fake)).mean() - critics.local_critic(crop(x)).mean())  # fmt: skip
        gp = hole_gp(critics.global_critic, x, fake, mask, a_g) + hole_gp(critics.local_critic, crop(x), crop(fake), crop(mask), a_l)
        want_d = w + m.cfg.wgan_gp_lambda * gp
        assert_grads_close(grads, grads_of(want_d, critics), f"critic update {k}")
    assert logs["loss_d"] == pytest.approx(float(want_d.detach()), rel=1e-4)
    assert logs["loss_gp"] == pytest.approx(float(gp.detach()), rel=1e-4)
    assert logs["w_distance"] == pytest.approx(-float(w.detach()), rel=1e-4, abs=1e-6)
    # the generator update uses the critics after their n_critic updates
    c = m.cfg
    critics_after = copy.deepcopy(m.discriminator).requires_grad_(False)
    _, _, l1, ae, adv = generator_losses(m, g0, critics_after, image, mask)
    want_g = c.l1_loss_alpha * l1 + c.ae_loss_alpha * ae + c.gan_loss_alpha * adv
    assert logs["loss_l1"] == pytest.approx(float(l1.detach()), rel=1e-5)
    assert logs["loss_ae"] == pytest.approx(float(ae.detach()), rel=1e-5)
    assert logs["loss_adv"] == pytest.approx(float(adv.detach()), rel=1e-4)
    assert logs["loss_g"] == pytest.approx(float(want_g.detach()), rel=1e-5)
    name, _, grads = ctx.steps[-1]
    assert name == "generator"
    assert_grads_close(grads, grads_of(want_g, g0), "generator")


def test_the_adversarial_term_alone_moves_the_generator_by_its_weighted_gradient():
    """With the reconstruction weights at zero, G's gradient is that of gan_alpha * (global_alpha *
    -D_g(completed) - D_l(local crop)): the adversarial wiring, weights and crop in isolation."""
    m = tiny(n_critic=0, l1_loss_alpha=0.0, ae_loss_alpha=0.0)
    m.train()
    image, mask = batch()
    g0, d0 = copy.deepcopy(m.generator), copy.deepcopy(m.discriminator).requires_grad_(False)
    ctx = RecordingCtx(m)
    m.train_step({"image": image, "mask": mask}, phase(m, "adversarial"), 0, ctx)
    assert [s[0] for s in ctx.steps] == ["generator"]
    _, _, _, _, adv = generator_losses(m, g0, d0, image, mask)
    assert_grads_close(ctx.steps[0][2], grads_of(m.cfg.gan_loss_alpha * adv, g0), "generator")


@pytest.mark.parametrize("coarse_only", [False, True])
def test_reconstruction_phase_trains_the_generator_on_l1_only(coarse_only):
    m = tiny(steps_reconstruction=5, reconstruction_coarse_only=coarse_only)
    m.train()
    image, mask = batch()
    g0 = copy.deepcopy(m.generator)
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": mask}, phase(m, "reconstruction"), 0, ctx)
    assert [s[0] for s in ctx.steps] == ["generator"] and "loss_adv" not in logs
    c = m.cfg
    x = image * 2 - 1
    x1, x2, _ = g0(x * (1 - mask), mask)
    disc = discount(mask, c.gamma)
    l1 = c.coarse_l1_alpha * ((x1 - x).abs() * disc).sum() / (mask.sum() * 3)
    ae = c.coarse_l1_alpha * ((x1 - x).abs() * (1 - mask)).sum() / ((1 - mask).sum() * 3)
    if not coarse_only:
        l1 = l1 + ((x2 - x).abs() * disc).sum() / (mask.sum() * 3)
        ae = ae + ((x2 - x).abs() * (1 - mask)).sum() / ((1 - mask).sum() * 3)
    want = c.l1_loss_alpha * l1 + c.ae_loss_alpha * ae
    assert logs["loss_g"] == pytest.approx(float(want.detach()), rel=1e-5)
    assert_grads_close(ctx.steps[0][2], grads_of(want, g0), "generator")


def test_schedule_and_the_codes_weights():
    c = DeepFillConfig()
    assert (c.coarse_l1_alpha, c.l1_loss_alpha, c.ae_loss_alpha, c.gan_loss_alpha, c.global_wgan_loss_alpha) == (1.2, 1.2, 1.2, 0.001, 1.0)
    assert (c.wgan_gp_lambda, c.gamma, c.n_critic, c.local_fraction) == (10.0, 0.99, 5, 0.5)
    m = tiny(steps_reconstruction=7, steps_adversarial=11)
    assert [(p.name, p.steps, set(p.trains)) for p in m.phases()] == [
        ("reconstruction", 7, {"generator"}), ("adversarial", 11, {"generator", "discriminator"})]  # fmt: skip
    with pytest.raises(ValueError, match="n_critic"):
        tiny(n_critic=-1)


def test_generator_input_is_the_zeroed_hole_ones_and_mask_and_stage_2_sees_the_coarse_fill():
    m = tiny().eval()
    image, mask = batch()
    seen = {}
    m.generator.coarse.register_forward_pre_hook(lambda mod, a: seen.setdefault("coarse", a[0].clone()))
    m.generator.hallucination.register_forward_pre_hook(lambda mod, a: seen.setdefault("stage2", a[0].clone()))
    with torch.no_grad():
        x, _, x1, _, _ = m.run_generator(image, mask)
    xin = (image * 2 - 1) * (1 - mask)
    assert torch.allclose(seen["coarse"], torch.cat([xin, torch.ones_like(mask), mask], 1))
    assert x1.abs().max() <= 1
    assert torch.allclose(seen["stage2"], torch.cat([x1 * mask + xin, torch.ones_like(mask), mask], 1), atol=1e-6)


# ------------------------------------------------------------------------------------- networks


def _rows(seq):
    out = []
    for layer in seq:
        kind = "up" if isinstance(layer, GenDeconv) else "conv"
        conv = layer.conv.conv if isinstance(layer, GenDeconv) else layer.conv
        act = layer.conv.act if isinstance(layer, GenDeconv) else layer.act
        out.append((kind, conv.kernel_size[0], conv.stride[0], conv.dilation[0], conv.out_channels, act))
    return out


def test_generator_is_the_v1_codes_layer_list_at_cnum_32():
    g = DeepFill(DeepFillConfig(), image_size=256).generator
    enc = lambda a, b, c, d: [("conv", 5, 1, 1, a, "elu"), ("conv", 3, 2, 1, b, "elu"), ("conv", 3, 1, 1, c, "elu"),  # noqa: E731
                              ("conv", 3, 2, 1, d, "elu")]  # fmt: skip
    dil = [("conv", 3, 1, r, 128, "elu") for r in (2, 4, 8, 16)]
    dec = [("conv", 3, 1, 1, 128, "elu"), ("conv", 3, 1, 1, 128, "elu"), ("up", 3, 1, 1, 64, "elu"),
           ("conv", 3, 1, 1, 64, "elu"), ("up", 3, 1, 1, 32, "elu"), ("conv", 3, 1, 1, 16, "elu"),
           ("conv", 3, 1, 1, 3, None)]  # fmt: skip
    two = [("conv", 3, 1, 1, 128, "elu")] * 2
    assert _rows(g.coarse) == enc(32, 64, 64, 128) + two + dil + dec
    assert _rows(g.hallucination) == enc(32, 32, 64, 64) + two + dil
    assert _rows(g.attention_encoder) == enc(32, 32, 64, 128) + [("conv", 3, 1, 1, 128, "elu"), ("conv", 3, 1, 1, 128, "relu")]
    assert _rows(g.attention_decoder) == two
    assert _rows(g.decoder) == dec and g.decoder[0].conv.in_channels == 256  # both branches concatenated
    assert g.coarse[0].conv.in_channels == 5  # image, ones, mask
    for layer in list(g.coarse) + list(g.hallucination):  # 'same' padding
        conv = layer.conv.conv if isinstance(layer, GenDeconv) else layer.conv
        assert layer.conv.pad if isinstance(layer, GenDeconv) else conv.padding[0] == conv.dilation[0] * (conv.kernel_size[0] - 1) // 2
    ca = g.contextual_attention
    assert isinstance(g.coarse[0], GenConv) and ca is not None
    no_att = DeepFill(DeepFillConfig(attention=False), image_size=256).generator
    assert no_att.decoder[0].conv.in_channels == 128 and not hasattr(no_att, "attention_encoder")


def test_critics_are_the_codes_wgan_critics():
    d = DeepFill(DeepFillConfig(), image_size=256).discriminator
    for critic, chans, size in ((d.global_critic, [64, 128, 256, 256], 256), (d.local_critic, [64, 128, 256, 512], 128)):
        convs = [mod for mod in critic.features if isinstance(mod, torch.nn.Conv2d)]
        assert [(c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in convs] == [(ch, 5, 2, 2) for ch in chans]
        acts = [mod for mod in critic.features if not isinstance(mod, torch.nn.Conv2d)]
        assert all(isinstance(a, torch.nn.LeakyReLU) and a.negative_slope == 0.2 for a in acts) and len(acts) == 4
        assert critic.size == size and (critic.fc.in_features, critic.fc.out_features) == (chans[-1] * (size // 16) ** 2, 1)


def test_one_discriminator_family_keeps_each_configurations_state_dict_names():
    """GLCIC's, pconv's and DeepFill's discriminators are one nn family (StridedConvDiscriminator),
    configured; their parameter names are those the committed model files were written with."""
    from inpaintgan.methods.glcic import GLCIC, GLCICConfig
    from inpaintgan.methods.pconv import PConvConfig, PConvGAN
    from inpaintgan.nn import StridedConvDiscriminator

    critic = DeepFill(DeepFillConfig(width=4, d_width=2), image_size=32).discriminator.global_critic
    glcic = GLCIC(GLCICConfig(width=4, d_width=2), image_size=32).discriminator.global_d
    region = PConvGAN(PConvConfig(depth=3), image_size=32).discriminator.left_d
    assert all(isinstance(d, StridedConvDiscriminator) for d in (critic, glcic, region))
    assert list(critic.state_dict())[:4] == ["features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias"]
    assert list(glcic.state_dict())[:3] == ["features.0.0.weight", "features.0.0.bias", "features.1.0.weight"]
    assert list(region.state_dict())[:3] == ["net.0.0.weight", "net.0.0.bias", "net.1.0.weight"]
    with pytest.raises(ValueError, match="critic expects 32x32"):
        critic(torch.zeros(1, 3, 16, 16))
