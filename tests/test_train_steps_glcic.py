"""GLCIC's training step phase by phase (Iizuka et al. 2017, Sec. 3.4): the gradient each phase sends
to each network, computed here from the paper's definitions (masked MSE; the context discriminator on
the whole image and on a crop centred on the hole; MSE + alpha * adversarial), the local crop's
position, the three-phase schedule, the mean-pixel input and the networks of Tables 1-2."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from conftest import FakeTrainContext, assert_grads_close, grads_of
from inpaintgan.methods.glcic import GLCIC, GLCICConfig
from inpaintgan.nn.blocks import ConvBNAct


class RecordingCtx(FakeTrainContext):
    def __init__(self, method):
        super().__init__(method, 1e-3)
        self.method = method
        self.grads: dict[str, list[torch.Tensor]] = {}
        self.calls: list[str] = []

    def backward_step(self, loss, name):
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        params = list(getattr(self.method, name).parameters())
        self.grads[name] = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in params]
        self.calls.append(name)
        opt.step()


def tiny(**kw) -> GLCIC:
    torch.manual_seed(0)
    cfg = dict(width=4, d_width=4, adv_loss="bce", alpha=0.3)
    cfg.update(kw)
    return GLCIC(GLCICConfig(**cfg), image_size=16)


def batch():
    g = torch.Generator().manual_seed(1)
    image = torch.rand(3, 3, 16, 16, generator=g)
    mask = torch.zeros(3, 1, 16, 16)
    mask[0, :, 2:6, 3:9] = 1  # hole bbox rows 2..5, cols 3..8: centre (4, 6) -> crop at (0, 2) clamped
    mask[1, :, 9:13, 8:12] = 1  # centre (11, 10) -> crop (7, 6)
    mask[2, :, 14:16, 14:16] = 1  # bottom-right corner -> clamped to (8, 8)
    return image, mask


# expected local crop corners (top, left) for an 8x8 crop, worked out by hand from the holes above
CORNERS = [(0, 2), (7, 6), (8, 8)]


def phase(m, name):
    return next(p for p in m.phases() if p.name == name)


def mean_fill_input(m, image, mask):
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    return torch.cat([image * (1 - mask) + mean * mask, mask], 1)


def hole_mse(pred, image, mask):
    return (((pred - image) ** 2) * mask).sum() / (mask.sum() * pred.shape[1])


def bce_real(logit):  # -log sigmoid(x)
    return torch.nn.functional.softplus(-logit).mean()


def bce_fake(logit):  # -log (1 - sigmoid(x))
    return torch.nn.functional.softplus(logit).mean()


def context_logits(d, images):
    """The context discriminator by hand: global branch on the image, local branch on the 8x8 crop at
    CORNERS, concatenated, one linear layer."""
    crops = torch.stack([img[:, t : t + 8, c : c + 8] for img, (t, c) in zip(images, CORNERS)])
    feats = torch.cat([d.global_d(images), d.local_d(crops)], 1)
    return feats @ d.fuse.weight.t() + d.fuse.bias


# ------------------------------------------------------------------------------------- the step


def test_local_crop_is_centred_on_the_hole_and_clamped():
    from inpaintgan.masks import local_crop_boxes

    _, mask = batch()
    assert local_crop_boxes(mask, 8).tolist() == [list(c) for c in CORNERS]
    m = tiny()
    assert m.local_size == 8


def test_completion_phase_trains_the_generator_on_hole_mse_only():
    m = tiny()
    m.train()
    image, mask = batch()
    g0 = copy.deepcopy(m.generator)
    x = mean_fill_input(m, image, mask)
    want = hole_mse(torch.sigmoid(g0.net(x)), image, mask)
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": mask}, phase(m, "completion"), 0, ctx)
    assert ctx.calls == ["generator"]
    assert set(logs) == {"loss_mse"}
    assert logs["loss_mse"] == pytest.approx(float(want.detach()), rel=1e-5)
    assert_grads_close(ctx.grads["generator"], grads_of(want, g0), "generator")


@pytest.mark.parametrize("kind", ["bce", "lsgan"])
def test_discriminator_phase_sees_real_and_completed_images_at_the_holes(kind):
    m = tiny(adv_loss=kind)
    m.train()
    m.generator.eval()  # frozen in this phase (the trainer puts it in eval mode)
    image, mask = batch()
    g0, d0 = copy.deepcopy(m.generator), copy.deepcopy(m.discriminator)
    with torch.no_grad():
        pred = torch.sigmoid(g0.net(mean_fill_input(m, image, mask)))
    fake = image * (1 - mask) + pred * mask
    lr_, lf = context_logits(d0, image), context_logits(d0, fake)
    want = bce_real(lr_) + bce_fake(lf) if kind == "bce" else 0.5 * (((lr_ - 1) ** 2).mean() + (lf**2).mean())
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": mask}, phase(m, "discriminator"), 0, ctx)
    assert ctx.calls == ["discriminator"]
    assert logs["loss_d"] == pytest.approx(float(want.detach()), rel=1e-5)
    assert_grads_close(ctx.grads["discriminator"], grads_of(want, d0), "discriminator")
    assert all(torch.equal(p, q) for p, q in zip(m.generator.parameters(), g0.parameters()))


@pytest.mark.parametrize("alpha", [0.3, 0.0])
def test_joint_phase_discriminator_then_generator_on_mse_plus_alpha_adversarial(alpha):
    m = tiny(alpha=alpha)
    m.train()
    image, mask = batch()
    g0, d0 = copy.deepcopy(m.generator), copy.deepcopy(m.discriminator)
    pred = torch.sigmoid(g0.net(mean_fill_input(m, image, mask)))
    fake = image * (1 - mask) + pred * mask
    want_d = bce_real(context_logits(d0, image)) + bce_fake(context_logits(d0, fake.detach()))
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": mask}, phase(m, "joint"), 0, ctx)
    assert ctx.calls == ["discriminator", "generator"]
    assert logs["loss_d"] == pytest.approx(float(want_d.detach()), rel=1e-5)
    assert_grads_close(ctx.grads["discriminator"], grads_of(want_d, d0), "discriminator")
    # the generator's adversarial term uses the discriminator as updated by this step
    d1 = copy.deepcopy(m.discriminator).requires_grad_(False)
    mse = hole_mse(pred, image, mask)
    want_g = mse
    if alpha > 0:
        adv = bce_real(context_logits(d1, fake))  # non-saturating: -log D(G(x))
        want_g = mse + alpha * adv
        assert logs["loss_adv"] == pytest.approx(float(adv.detach()), rel=1e-5)
    else:
        assert "loss_adv" not in logs
    assert logs["loss_mse"] == pytest.approx(float(mse.detach()), rel=1e-5)
    assert_grads_close(ctx.grads["generator"], grads_of(want_g, g0), "generator")


def test_adversarial_gradient_reaches_the_generator_only_through_the_hole():
    """The discriminators see the composite: the adversarial term alone cannot move known pixels'
    outputs, so its gradient w.r.t. G's output is zero there (and non-zero in the hole)."""
    m = tiny(alpha=1.0)
    m.train()
    image, mask = batch()
    pred = m.complete(image, mask)
    pred.retain_grad()
    fake = m.composite(pred, image, mask)
    from inpaintgan.masks import local_crop_boxes

    adv = bce_real(m.discriminator(fake, local_crop_boxes(mask, 8)))
    adv.backward()
    hole = mask.expand_as(pred) > 0.5
    assert pred.grad[~hole].abs().max() == 0 and pred.grad[hole].abs().max() > 0


def test_three_phases_in_the_papers_order_and_lengths():
    m = GLCIC(GLCICConfig(), image_size=32)
    ph = m.phases()
    assert [(p.name, p.steps, set(p.trains)) for p in ph] == [
        ("completion", 90000, {"generator"}), ("discriminator", 10000, {"discriminator"}),
        ("joint", 400000, {"generator", "discriminator"})]  # fmt: skip
    c = GLCICConfig()
    assert c.alpha == 0.0004 and c.adv_loss == "bce" and c.local_fraction == 0.5 and tuple(c.dilations) == (2, 4, 8, 16)


def test_input_is_the_mean_filled_image_and_the_mask_and_output_a_sigmoid():
    m = tiny()
    m.eval()
    image, mask = batch()
    seen = {}
    m.generator.register_forward_pre_hook(lambda mod, args: seen.setdefault("x", args[0].clone()))
    out = m.complete(image, mask)
    assert torch.allclose(seen["x"], mean_fill_input(m, image, mask))
    with torch.no_grad():
        assert torch.allclose(out, torch.sigmoid(m.generator.net(seen["x"])))
        res = m.inpaint(image, mask)
    keep = mask.expand_as(image) < 0.5
    assert torch.equal(res[keep], image[keep])


# ------------------------------------------------------------------------------------- networks


def _conv(layer):
    return layer[0] if isinstance(layer, ConvBNAct) else layer


def test_completion_network_is_table_1():
    """Iizuka et al. 2017, Table 1, at its width (64): type, kernel, dilation, stride, outputs."""
    g = GLCIC(GLCICConfig(), image_size=32).generator
    rows = []
    for layer in g.net:
        c = _conv(layer)
        kind = "deconv" if isinstance(c, torch.nn.ConvTranspose2d) else "conv"
        rows.append((kind, c.kernel_size[0], c.dilation[0], c.stride[0], c.out_channels))
    assert rows == [
        ("conv", 5, 1, 1, 64), ("conv", 3, 1, 2, 128), ("conv", 3, 1, 1, 128), ("conv", 3, 1, 2, 256),
        ("conv", 3, 1, 1, 256), ("conv", 3, 1, 1, 256), ("conv", 3, 2, 1, 256), ("conv", 3, 4, 1, 256),
        ("conv", 3, 8, 1, 256), ("conv", 3, 16, 1, 256), ("conv", 3, 1, 1, 256), ("conv", 3, 1, 1, 256),
        ("deconv", 4, 1, 2, 128), ("conv", 3, 1, 1, 128), ("deconv", 4, 1, 2, 64), ("conv", 3, 1, 1, 32),
        ("conv", 3, 1, 1, 3)]  # fmt: skip
    assert _conv(g.net[0]).in_channels == 4  # RGB + mask
    for layer in g.net[:-1]:  # BN + ReLU after every layer but the output
        assert isinstance(layer[1], torch.nn.BatchNorm2d) and isinstance(layer[2], torch.nn.ReLU)
    for layer in g.net:  # 'same' padding: dilation * (k - 1) / 2
        c = _conv(layer)
        if isinstance(c, torch.nn.Conv2d):
            assert c.padding[0] == c.dilation[0] * (c.kernel_size[0] - 1) // 2


def test_context_discriminators_are_table_2():
    """Local (128 -> 5 convs) and global (256 -> 6 convs) discriminators: 5x5 stride-2 convs of 64,
    128, 256, 512, 512 (, 512) channels, each a 1024-d FC; concatenated and fused into one logit."""
    d = GLCIC(GLCICConfig(), image_size=256).discriminator
    for branch, chans in ((d.local_d, [64, 128, 256, 512, 512]), (d.global_d, [64, 128, 256, 512, 512, 512])):
        convs = [layer[0] for layer in branch.features]
        assert [(c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in convs] == [(ch, 5, 2, 2) for ch in chans]
        assert all(isinstance(layer[-1], torch.nn.ReLU) for layer in branch.features)
        assert branch.fc.out_features == 1024 and branch.fc.in_features == 512 * 4 * 4
    assert d.local_size == 128 and d.local_d.size == 128 and d.global_d.size == 256
    assert (d.fuse.in_features, d.fuse.out_features) == (2048, 1)
    assert math.isclose(GLCIC(GLCICConfig(), image_size=32).local_size, 16)


def test_glcic_and_pconv_share_one_schedule_residual_and_step():
    from inpaintgan.methods.completion_gan import (
        CompletionGAN,
        completion_phases,
        residual_output,
        zero_layer_,
    )
    from inpaintgan.methods.pconv import PConvGAN

    assert issubclass(GLCIC, CompletionGAN) and issubclass(PConvGAN, CompletionGAN)
    assert [(p.name, p.steps, sorted(p.trains)) for p in completion_phases(3, 2, 5)] == [
        ("completion", 3, ["generator"]), ("discriminator", 2, ["discriminator"]), ("joint", 5, ["discriminator", "generator"])]
    assert [(p.steps, sorted(p.trains)) for p in completion_phases(3, 2, 5, adversarial=False)] == [
        (3, ["generator"]), (0, ["discriminator"]), (5, ["generator"])]
    x, y = torch.ones(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.25)
    assert torch.equal(residual_output(x, y, True), x + y) and residual_output(x, y, False) is y
    conv = zero_layer_(torch.nn.Conv2d(1, 1, 3))
    assert not conv.weight.any() and not conv.bias.any()
