"""The partial-convolution GAN's training step phase by phase, from the project report's definitions
(hole MSE + 1/6 valid MSE, both sums of squared errors divided by the total number of elements; BCE
discriminators on the whole image, the left third and the right two thirds, each ending in its own
fully connected layer; generator loss L_MSE - (1/2000) log D(G(x)); GLCIC's three phases), the "MSE
only" schedule, the valid-pixel mask fed to the partial convolutions, and the U-Net / discriminator
layouts against the report's Tables 1-2.

The layout before issue 16 (``head=fused3x3``, ``loss_norm=region``, ``d_head=fused``: what the
committed model files older than it were trained with) stays an option; each step test runs on both."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from conftest import RecordingCtx, assert_grads_close, grads_of
from inpaintgan.methods.pconv import PConvConfig, PConvGAN
from inpaintgan.nn import PartialConv2d

LEGACY = dict(head="fused3x3", loss_norm="region", d_head="fused")
LAYOUTS = pytest.mark.parametrize("layout", [{}, LEGACY], ids=["report", "legacy"])


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
    """The report's L_MSE: squared errors summed over the hole and over the valid pixels, each sum
    divided by the number of elements of the image (N C H W); loss_norm=region: by its own count."""
    c = m.cfg
    se = (pred - image) ** 2
    if c.loss_norm == "elements":
        n = image.shape[0] * image.shape[1] * image.shape[2] * image.shape[3]
        hole, valid = (se * mask).sum() / n, (se * (1 - mask)).sum() / n
    else:
        hole = (se * mask).sum() / (mask.sum() * 3)
        valid = (se * (1 - mask)).sum() / ((1 - mask).sum() * 3)
    return c.hole_weight * hole + c.valid_weight * valid


def bce_real(d, x):
    """-log D(x), averaged: with the report's heads the mean of the three discriminators' own terms."""
    return _mean_over_ds(d, x, lambda logit: F.softplus(-logit).mean())


def bce_fake(d, x):
    return _mean_over_ds(d, x, lambda logit: F.softplus(logit).mean())


def _mean_over_ds(d, x, term):
    regions = [(d.global_d, x), (d.left_d, x[..., :10]), (d.right_d, x[..., 10:])]  # 32 // 3 = 10 columns
    if d.head == "report":  # each discriminator ends in its own fully connected layer: one logit each
        return sum(term(net.fc(net.net(part).flatten(1))) for net, part in regions) / 3
    feats = torch.cat([net(part) for net, part in regions], 1)  # fused: one unit over all features
    return term(feats @ d.fuse.weight.t() + d.fuse.bias)


# ------------------------------------------------------------------------------------- the step


@LAYOUTS
def test_completion_phase_is_weighted_hole_and_valid_mse_on_the_valid_mask(layout):
    m = tiny(**layout)
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


@LAYOUTS
def test_hole_pixels_never_reach_the_output(layout):
    m = tiny(**layout).eval()
    image, mask = batch()
    noisy = torch.where(mask > 0.5, torch.rand_like(image), image)
    with torch.no_grad():
        assert torch.equal(m.complete(image, mask), m.complete(noisy, mask))


@LAYOUTS
def test_discriminator_phase_is_bce_on_real_and_composited_fakes(layout):
    m = tiny(**layout)
    m.train()
    m.generator.eval()
    image, mask = batch()
    g0, d0 = copy.deepcopy(m.generator), copy.deepcopy(m.discriminator)
    with torch.no_grad():
        fake = image * (1 - mask) + g0(image, 1 - mask) * mask
    want = bce_real(d0, image) + bce_fake(d0, fake)
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": mask}, phase(m, "discriminator"), 0, ctx)
    assert ctx.calls == ["discriminator"]
    assert logs["loss_d"] == pytest.approx(float(want.detach()), rel=1e-5)
    assert_grads_close(ctx.grads["discriminator"], grads_of(want, d0), "discriminator")


@LAYOUTS
def test_joint_phase_adds_the_weighted_non_saturating_term_after_the_discriminator_update(layout):
    m = tiny(**layout)
    m.train()
    image, mask = batch()
    g0 = copy.deepcopy(m.generator)
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": mask}, phase(m, "joint"), 0, ctx)
    assert ctx.calls == ["discriminator", "generator"]
    d1 = copy.deepcopy(m.discriminator).requires_grad_(False)
    pred = g0(image, 1 - mask)
    adv = bce_real(d1, image * (1 - mask) + pred * mask)  # -log D(G(x))
    want = rec_loss(m, pred, image, mask) + m.cfg.adv_weight * adv
    assert logs["loss_adv"] == pytest.approx(float(adv.detach()), rel=1e-5)
    assert_grads_close(ctx.grads["generator"], grads_of(want, g0), "generator")


@LAYOUTS
def test_ssim_term_is_added_with_its_weight(layout):
    m = tiny(ssim_weight=0.7, **layout)
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


def _conv_layers(g):
    """The generator's convolutions in the order the forward pass runs them (encoder, decoder from
    the deepest level up, then the full-resolution head)."""
    order = []
    hooks = [c.register_forward_hook(lambda mod, i, o: order.append(mod)) for c in g.modules() if isinstance(c, torch.nn.Conv2d)]
    image, mask = batch()
    with torch.no_grad():
        g.eval()(image[:, :, :32, :32], 1 - mask)
    for h in hooks:
        h.remove()
    return order


def test_unet_ends_as_the_reports_table_1():
    """Table 1's last two layers: a 3x3 PConv + LeakyReLU (to the image channels, as Liu et al.'s
    last layer; no BN), then a 1x1 PConv + sigmoid; they run last, in that order, on each other's output."""
    g = PConvGAN(PConvConfig(), image_size=128).generator
    last3, last1 = g.head3x3, g.output
    assert isinstance(last3.conv, PartialConv2d) and isinstance(last1.conv, PartialConv2d)
    assert (last3.conv.in_channels, last3.conv.out_channels, last3.conv.kernel_size, last3.conv.stride) == (64 + 3, 3, (3, 3), (1, 1))
    assert (last1.conv.in_channels, last1.conv.out_channels, last1.conv.kernel_size) == (3, 3, (1, 1))
    assert isinstance(last3.act, torch.nn.LeakyReLU) and last3.act.negative_slope == 0.2
    assert isinstance(last3.bn, torch.nn.Identity) and isinstance(last1.bn, torch.nn.Identity)
    assert isinstance(last1.act, torch.nn.Identity)  # the sigmoid follows, in forward
    small = tiny().generator
    convs = _conv_layers(small)
    assert [c.kernel_size[0] for c in convs[-2:]] == [3, 1] and convs[-2:] == [small.head3x3.conv, small.output.conv]
    # wiring: the 1x1 layer reads the 3x3 layer's LeakyReLU output, the sigmoid of its output is the result
    seen = {}
    small.head3x3.conv.register_forward_hook(lambda mod, i, o: seen.update(pre=o[0].clone()))  # before the in-place LeakyReLU
    small.output.conv.register_forward_hook(lambda mod, i, o: seen.update(into=i[0], out=o[0]))
    image, mask = batch()
    with torch.no_grad():
        y = small.eval()(image, 1 - mask)
    assert torch.allclose(seen["into"], F.leaky_relu(seen["pre"], 0.2))
    assert torch.allclose(y, torch.sigmoid(seen["out"]))


def test_fused3x3_head_is_one_3x3_layer_into_the_sigmoid():
    g = PConvGAN(PConvConfig(head="fused3x3"), image_size=128).generator
    assert g.head3x3 is None and g.output.conv.kernel_size == (3, 3) and g.output.conv.in_channels == 64 + 3
    assert _conv_layers(tiny(head="fused3x3").generator)[-1].kernel_size == (3, 3)


def test_discriminators_at_the_reports_width():
    """Table 2: 5x5 stride-2 convolutions, 32/64/64/128/128 filters (one layer fewer locally), ReLU;
    each discriminator ends in its own fully connected layer with one output."""
    d = PConvGAN(PConvConfig(), image_size=128).discriminator
    rows = lambda stack: [(layer[0].out_channels, layer[0].kernel_size[0], layer[0].stride[0]) for layer in stack.net]  # noqa: E731
    assert rows(d.global_d) == [(32, 5, 2), (64, 5, 2), (64, 5, 2), (128, 5, 2), (128, 5, 2)]
    assert rows(d.left_d) == rows(d.right_d) == [(32, 5, 2), (64, 5, 2), (64, 5, 2), (128, 5, 2)]
    assert (d.third, d.left_d.width, d.right_d.width) == (42, 42, 86)
    for net in (d.global_d, d.left_d, d.right_d):
        assert all(type(layer[-1]) is torch.nn.ReLU for layer in net.net)
        assert isinstance(net.fc, torch.nn.Linear) and net.fc.out_features == 1
    assert (d.global_d.fc.in_features, d.left_d.fc.in_features, d.right_d.fc.in_features) == (128 * 4 * 4, 128 * 8 * 3, 128 * 8 * 6)
    assert d.fuse is None and not any(n.startswith("fuse") for n, _ in d.named_parameters())
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        d.eval()
        want = [net.fc(net.net(part).flatten(1)) for net, part in ((d.global_d, x), (d.left_d, x[..., :42]), (d.right_d, x[..., 42:]))]
        assert torch.equal(d(x), torch.cat(want, 1))  # (N, 3): each discriminator's own logit


def test_fused_discriminators_keep_the_old_layout():
    d = PConvGAN(PConvConfig(d_head="fused"), image_size=128).discriminator
    assert all(isinstance(layer[-1], torch.nn.LeakyReLU) for layer in d.global_d.net)
    assert d.global_d.fc is None and d.fuse.in_features == d.global_d.out_features + d.left_d.out_features + d.right_d.out_features
    assert d.global_d.out_features == 128 * 4 * 4 and d(torch.rand(2, 3, 128, 128)).shape == (2, 1)


# ----------------------------------------------------------------------------- loss normalisation


def _uniform_error(hole_px: int):
    """A 20x20 image, an error of 0.1 on every element, ``hole_px`` hole pixels of 400."""
    image = torch.rand(1, 3, 20, 20, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(1, 1, 20, 20)
    mask.view(-1)[:hole_px] = 1
    pred = (image + 0.1).requires_grad_(True)
    return pred, image, mask


def test_loss_normalisation_is_by_all_elements_so_hole_to_valid_is_6_to_1():
    """L_MSE = (sum over the hole + 1/6 sum over valid pixels of squared errors) / (N C H W): with a
    uniform error e and hole ratio r it is e^2 (r + (1 - r) / 6), and a hole element's gradient is
    6 times a valid element's whatever the hole ratio."""
    m = PConvGAN(PConvConfig(), image_size=32)
    for hole_px, r in ((60, 0.15), (200, 0.5)):
        pred, image, mask = _uniform_error(hole_px)
        total, logs = m.reconstruction_loss(pred, image, mask)
        assert total.item() == pytest.approx(0.01 * (r + (1 - r) / 6), rel=1e-4)
        assert logs["loss_hole_mse"] == pytest.approx(0.01 * r, rel=1e-4)
        (grad,) = torch.autograd.grad(total, pred)
        hole_g, valid_g = grad[0, 0].view(-1)[0], grad[0, 0].view(-1)[-1]
        assert (hole_g / valid_g).item() == pytest.approx(6.0, rel=1e-4)
        assert hole_g.item() == pytest.approx(2 * 0.1 / (3 * 400), rel=1e-4)  # d/dpred of e^2 / (N C H W)


def test_region_normalisation_moves_the_weighting_to_about_34_to_1_at_15_percent_holes():
    m = PConvGAN(PConvConfig(loss_norm="region"), image_size=32)
    pred, image, mask = _uniform_error(60)  # 15 % holes
    total, _ = m.reconstruction_loss(pred, image, mask)
    assert total.item() == pytest.approx(0.01 * (1 + 1 / 6), rel=1e-4)
    (grad,) = torch.autograd.grad(total, pred)
    ratio = (grad[0, 0].view(-1)[0] / grad[0, 0].view(-1)[-1]).item()
    assert ratio == pytest.approx(6 * 0.85 / 0.15, rel=1e-4)  # 34


def test_train_step_loss_is_the_reports_l_mse_by_elements():
    """The method's completion step on a tiny net reports and descends exactly the report's L_MSE,
    computed here from its definition (not with rec_loss)."""
    m = tiny(hole_weight=1.0, valid_weight=1 / 6)
    m.train()
    image, mask = batch()
    g0 = copy.deepcopy(m.generator)
    pred = g0(image, 1 - mask)
    se = ((pred - image) ** 2).flatten()
    in_hole = mask.expand_as(image).flatten() > 0.5
    want = (se[in_hole].sum() + se[~in_hole].sum() / 6) / se.numel()
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": mask}, phase(m, "completion"), 0, ctx)
    assert logs["loss_mse"] == pytest.approx(float(want.detach()), rel=1e-5)
    assert_grads_close(ctx.grads["generator"], grads_of(want, g0), "generator")


# ------------------------------------------------------------------------- stored configs


def test_stored_configs_without_the_layout_keys_keep_the_old_layout(tmp_path):
    """Model files written before issue 16 have no head / loss_norm / d_head in their metadata: they
    load as the layout they were trained with (outputs bit-identical); files written now name theirs;
    presets without the keys get the report's layout."""
    from inpaintgan.checkpoints import load_model, read_metadata, save_model
    from inpaintgan.config import load_config

    old = tiny(**LEGACY).eval()
    path = save_model(old, tmp_path / "old.safetensors")
    meta = read_metadata(path)
    assert {k: meta["config"][k] for k in LEGACY} == LEGACY
    stripped = {k: v for k, v in meta["config"].items() if k not in LEGACY}  # as the old code wrote it
    meta_v1 = json.dumps({**meta, "config": stripped})
    save_file(load_file(str(path)), str(tmp_path / "v1.safetensors"), metadata={"inpaintgan": meta_v1})
    loaded, _ = load_model(tmp_path / "v1.safetensors")
    assert (loaded.cfg.head, loaded.cfg.loss_norm, loaded.cfg.d_head) == ("fused3x3", "region", "fused")
    image, mask = batch()
    with torch.no_grad():
        assert torch.equal(loaded.complete(image, mask), old.complete(image, mask))
    new = save_model(tiny().eval(), tmp_path / "new.safetensors")
    assert load_model(new)[0].cfg.head == "report"
    assert PConvGAN.upgrade_config({"head": "report"}) == {"head": "report"}
    assert load_config(None, ["method=pconv"]).model.head == "report"


def test_unknown_layout_names_are_one_line_errors():
    for key in ("head", "loss_norm", "d_head"):
        with pytest.raises(ValueError, match=f"unknown pconv {key} 'x'; known: "):
            tiny(**{key: "x"})
