"""BTGMI's training step from its definitions: the block state and fade-in weight at the step, the
annealed adversarial weight (ALA), LSGAN multi-scale discriminators with mask-aware patch labels (a
patch is fake iff its receptive field holds a hole pixel), the generator's pixel / valid / adversarial
terms and their weights, and the networks at pix2pixHD's width. Expected values are computed here."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from conftest import RecordingCtx, assert_grads_close, grads_of
from inpaintgan.methods.btgmi import BTGMI, BTGMIConfig, ResBlock

HEAD, BLOCK, FADE = 2, 4, 3
A0, A1 = 0.5, 0.1


def tiny(**kw) -> BTGMI:
    torch.manual_seed(0)
    cfg = dict(width=4, res_blocks=1, refine_blocks=2, d_width=4, d_layers=2, num_d=2, ppl_size=16, steps_head=HEAD,
               steps_block=BLOCK, fade_steps=FADE, task_probs=(1.0, 0.0, 0.0), recon="l1", pixel_weight=1.7,
               valid_weight=0.3, ala="linear", adv_start=A0, adv_end=A1)  # fmt: skip
    cfg.update(kw)
    return BTGMI(BTGMIConfig(**cfg), image_size=32)


def batch():
    g = torch.Generator().manual_seed(5)
    image = torch.rand(2, 3, 32, 32, generator=g)
    mask = torch.zeros(2, 1, 32, 32)
    mask[0, :, 6:14, 4:12] = 1
    mask[1, :, 18:28, 20:30] = 1
    return image, mask


def schedule(step):
    """(active blocks, newest block's weight, adversarial weight) by hand for the tiny schedule."""
    active, alpha = 0, 1.0
    for k in (1, 2):
        start = HEAD + (k - 1) * BLOCK
        if step >= start:
            active, alpha = k, min(1.0, (step - start) / FADE)
    t = min(max((step - HEAD) / (2 * BLOCK), 0.0), 1.0)
    return active, alpha, A0 + (A1 - A0) * t


def labels_by_hand(mask, d_layers=2, num_d=2):
    """Per scale: 1 where the output patch's receptive-field window (clipped to the image) holds a hole
    pixel. Scale i sees the image through i average pools (3, 2, 1), then 4x4 convs (stride 2 x
    d_layers, then two of stride 1), all padding 2."""
    out = []
    h = mask.shape[-1]
    for i in range(num_d):
        layers = [(3, 2, 1)] * i + [(4, 2, 2)] * d_layers + [(4, 1, 2)] * 2
        jump, start, size, n = 1, 0, 1, h
        for k, s, p in layers:
            start -= p * jump
            size += (k - 1) * jump
            jump *= s
            n = (n + 2 * p - k) // s + 1
        lab = torch.zeros(mask.shape[0], 1, n, n)
        for y in range(n):
            for x in range(n):
                y0, x0 = max(0, y * jump + start), max(0, x * jump + start)
                y1, x1 = y * jump + start + size, x * jump + start + size
                lab[:, 0, y, x] = (mask[:, 0, y0:y1, x0:x1] > 0.5).flatten(1).any(1).float()
        out.append(lab)
    return out


def scores(d, x):
    """Each scale's patch scores (pix2pixHD: scale i sees the image average-pooled i times)."""
    res = []
    for i, net in enumerate(d.nets):
        if i:
            x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
        y = x
        for layer in net.layers:
            y = layer(y)
        res.append(y)
    return res


def forward_by_hand(g, x, active, alpha):
    """Head, then refinement blocks 1..active as h + w F(h) (w = alpha for the newest, 1 before), back end, tanh."""
    h = g.blocks(g.front(x))
    for i in range(active):
        h = h + (alpha if i == active - 1 else 1.0) * g.refine[i].body(h)
    return torch.tanh(g.out(g.back(h)))


# ------------------------------------------------------------------------------------- the step


@pytest.mark.parametrize("step", [1, 3, 7, 12])
@pytest.mark.parametrize("mask_aware", [True, False])
def test_step_losses_and_gradients_follow_the_schedule(step, mask_aware):
    m = tiny(mask_aware_d=mask_aware)
    m.train()
    image, mask = batch()
    active, alpha, w_adv = schedule(step)
    g0, d0 = copy.deepcopy(m.generator), copy.deepcopy(m.discriminator)
    g0.set_blocks(active, alpha)
    ph = next(p for p in m.phases() if p.name == ("head" if step < HEAD else "block1" if step < HEAD + BLOCK else "block2"))
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": mask}, ph, step, ctx)
    assert ctx.calls == ["discriminator", "generator"]
    assert (logs["blocks"], logs["alpha"]) == (active, pytest.approx(alpha))
    assert logs["adv_weight"] == pytest.approx(w_adv)
    assert [float(w) for w in m.generator.block_weights()] == pytest.approx([1.0 if i < active - 1 else alpha if i == active - 1 else 0.0
                                                                              for i in range(2)])  # fmt: skip
    # generator input: the image in [-1, 1] with the hole zeroed, the hole, an empty guide channel
    x = torch.cat([(image * 2 - 1) * (1 - mask), mask, torch.zeros_like(mask)], 1)
    pred = (forward_by_hand(g0, x, active, alpha) + 1) / 2
    comp = image * (1 - mask) + pred * mask
    labs = labels_by_hand(mask) if mask_aware else None
    # discriminator: LSGAN, 1/2 (real -> 1 everywhere, fake -> 1 - label: known patches are real)
    real_s, fake_s = scores(d0, image * 2 - 1), scores(d0, comp.detach() * 2 - 1)
    want_d = 0.5 * sum(((r - 1) ** 2).mean() + ((f - (1 - labs[i] if labs else 0)) ** 2).mean()
                       for i, (r, f) in enumerate(zip(real_s, fake_s)))  # fmt: skip
    assert logs["loss_d"] == pytest.approx(float(want_d.detach()), rel=1e-5)
    assert_grads_close(ctx.grads["discriminator"], grads_of(want_d, d0), "discriminator")
    # generator: pixel L1 over the hole + valid_weight x over the rest, weighted; + w_adv x LSGAN over fake patches
    d1 = copy.deepcopy(m.discriminator).requires_grad_(False)
    err = (pred - image).abs()
    pix = (err * mask).sum() / (mask.sum() * 3) + 0.3 * (err * (1 - mask)).sum() / ((1 - mask).sum() * 3)
    adv = 0
    for i, s in enumerate(scores(d1, comp * 2 - 1)):
        e = (s - 1) ** 2
        adv = adv + ((e * labs[i]).sum() / labs[i].sum() if labs else e.mean())
    want_g = 1.7 * pix + w_adv * adv
    assert logs["loss_adv"] == pytest.approx(float(adv.detach()), rel=1e-5)
    assert logs["loss_g"] == pytest.approx(float(want_g.detach()), rel=1e-5)
    assert_grads_close(ctx.grads["generator"], grads_of(want_g, g0), "generator")
    # blocks not inserted yet are neither run nor trained
    for i in range(active, 2):
        assert all(torch.equal(p, q) for p, q in zip(m.generator.refine[i].parameters(), g0.refine[i].parameters()))


def test_l2_reconstruction_and_ppl_weight():
    m = tiny(recon="l2", valid_weight=0.0, pixel_weight=2.0, adv_start=0.0, adv_end=0.0)
    m.train()
    image, mask = batch()
    g0 = copy.deepcopy(m.generator)
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": mask}, m.phases()[0], 0, ctx)
    pred = (g0(torch.cat([(image * 2 - 1) * (1 - mask), mask, torch.zeros_like(mask)], 1)) + 1) / 2
    want = 2.0 * ((pred - image) ** 2 * mask).sum() / (mask.sum() * 3)
    assert "loss_adv" not in logs and logs["loss_l2"] == pytest.approx(float(want.detach()) / 2, rel=1e-5)
    assert_grads_close(ctx.grads["generator"], grads_of(want, g0), "generator")
    # PPL: added with its weight (on the composite: no gradient to the known pixels' outputs)
    p = tiny(recon="ppl", ppl_weight=3.0, valid_weight=0.0, pixel_weight=1.0, adv_start=0.0, adv_end=0.0)
    p.train()
    logs = p.train_step({"image": image, "mask": mask}, p.phases()[0], 0, RecordingCtx(p))
    assert logs["loss_ppl"] > 0
    assert logs["loss_g"] == pytest.approx(logs["loss_l1"] + 3.0 * logs["loss_ppl"], rel=1e-5)
    pred = p.complete(image, mask)
    pred.retain_grad()
    p.ppl_loss(p.composite(pred, image, mask), image, mask).backward()
    keep = mask.expand_as(pred) < 0.5
    assert pred.grad[keep].abs().max() == 0 and pred.grad[~keep].abs().max() > 0


def test_generator_uses_the_tasks_inputs():
    """Harmonization samples: the input is the re-toned image with an empty hole and the region in the
    guide channel; the target is the original image."""
    m = tiny(task_probs=(0.0, 1.0, 0.0))
    image, mask = batch()
    t = m.sample_tasks(image, mask, torch.Generator().manual_seed(0))
    assert (t["task"] == 1).all() and t["hole"].sum() == 0 and torch.equal(t["guide"], mask)
    assert torch.equal(t["target"], image) and not torch.equal(t["x"], image)
    keep = mask.expand_as(image) < 0.5
    assert torch.equal(t["x"][keep], image[keep])


# ------------------------------------------------------------------------------------- networks


def test_generator_is_pix2pixhd_global_generator_with_dilated_blocks():
    g = BTGMI(BTGMIConfig(), image_size=128).generator
    convs = [mod for mod in g.front if isinstance(mod, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (5, 64, 7, 1), (64, 128, 3, 2), (128, 256, 3, 2), (256, 512, 3, 2)]  # fmt: skip
    assert sum(isinstance(mod, torch.nn.BatchNorm2d) for mod in g.front) == 4
    assert len(g.blocks) == 9 and len(g.refine) == 3
    for blk in list(g.blocks) + list(g.refine):
        assert isinstance(blk, ResBlock)
        c1, c2 = blk.body[0], blk.body[3]
        assert (c1.kernel_size[0], c1.dilation[0], c1.in_channels, c2.dilation[0]) == (3, 2, 512, 2)
    ups = [mod for mod in g.back if isinstance(mod, torch.nn.ConvTranspose2d)]
    assert [(u.in_channels, u.out_channels, u.kernel_size[0], u.stride[0], u.output_padding[0]) for u in ups] == [
        (512, 256, 3, 2, 1), (256, 128, 3, 2, 1), (128, 64, 3, 2, 1)]  # fmt: skip
    assert (g.out.in_channels, g.out.out_channels, g.out.kernel_size[0]) == (64, 3, 7)


def test_multiscale_discriminator_is_pix2pixhds():
    d = BTGMI(BTGMIConfig(), image_size=128).discriminator
    assert len(d.nets) == 3
    for net in d.nets:
        convs = [layer[0] for layer in net.layers]
        assert [(c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in convs] == [
            (64, 4, 2, 2), (128, 4, 2, 2), (256, 4, 2, 2), (512, 4, 1, 2), (1, 4, 1, 2)]  # fmt: skip
        assert isinstance(net.layers[1][1], torch.nn.InstanceNorm2d) and isinstance(net.layers[0][1], torch.nn.LeakyReLU)
        assert net.layers[0][1].negative_slope == 0.2
    c = BTGMIConfig()
    assert (c.adv_start, c.adv_end, c.ala, c.mask_aware_d, c.num_d, c.res_blocks, c.dilation) == (0.1, 0.01, "linear", True, 3, 9, 2)


def test_l1_without_ppl_is_the_weighted_hole_l1_alone():
    """recon=l1 (the L1-without-PPL ablation): the generator's loss is pixel_weight x mean |pred - target|
    over the hole, nothing else: no PPL term, and L1, not MSE (value and every generator gradient)."""
    image, mask = batch()
    x = torch.cat([(image * 2 - 1) * (1 - mask), mask, torch.zeros_like(mask)], 1)
    kw = dict(valid_weight=0.0, pixel_weight=2.0, adv_start=0.0, adv_end=0.0, ppl_weight=1.0)
    grads = {}
    for recon in ("l1", "ppl"):
        m = tiny(recon=recon, **kw)
        m.train()
        g0 = copy.deepcopy(m.generator)
        ctx = RecordingCtx(m)
        logs = m.train_step({"image": image, "mask": mask}, m.phases()[0], 0, ctx)
        pred = (forward_by_hand(g0, x, 0, 1.0) + 1) / 2
        want = 2.0 * ((pred - image).abs() * mask).sum() / (mask.sum() * 3)
        assert logs["loss_l1"] == pytest.approx(float(want.detach()) / 2, rel=1e-5)
        grads[recon] = (ctx.grads["generator"], grads_of(want, g0))
        if recon == "l1":
            assert "loss_ppl" not in logs and "loss_l2" not in logs and "loss_adv" not in logs
            assert logs["loss_g"] == pytest.approx(float(want.detach()), rel=1e-5)
            assert_grads_close(*grads["l1"], "generator")
            mse = 2.0 * ((pred - image) ** 2 * mask).sum() / (mask.sum() * 3)
            assert abs(float((mse - want).detach())) > 1e-3 * float(want.detach())  # MSE would be told apart
    # the same step with PPL (recon=ppl) sends other gradients: had PPL crept into recon=l1, the check fails
    got, want_l1 = grads["ppl"]
    with pytest.raises(AssertionError):
        assert_grads_close(got, want_l1, "generator")


def test_interp_upsampling_replaces_every_transposed_conv():
    """upsample=interp at the paper's width: no transposed conv left; at each former one a nearest x2
    up-sampling then a stride-1 3x3 conv with the same output channels, then BatchNorm and ReLU."""
    g = BTGMI(BTGMIConfig(upsample="interp"), image_size=128).generator
    assert not any(isinstance(mod, torch.nn.ConvTranspose2d) for mod in g.modules())
    back = list(g.back)
    assert len(back) == 12
    for i, c in enumerate((512, 256, 128)):
        up, conv, bn, act = back[4 * i : 4 * i + 4]
        assert isinstance(up, torch.nn.Upsample) and (up.scale_factor, up.mode) == (2.0, "nearest")
        assert isinstance(conv, torch.nn.Conv2d) and not isinstance(conv, torch.nn.ConvTranspose2d)
        assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.dilation, conv.bias) == (
            c, c // 2, (3, 3), (1, 1), (1, 1), None)  # fmt: skip
        assert isinstance(bn, torch.nn.BatchNorm2d) and bn.num_features == c // 2 and isinstance(act, torch.nn.ReLU)
    # everything else is the transposed generator's, tensor for tensor
    t = BTGMI(BTGMIConfig(), image_size=128).generator
    other = {k: v.shape for k, v in t.state_dict().items() if not k.startswith("back.")}
    assert {k: v.shape for k, v in g.state_dict().items() if not k.startswith("back.")} == other


def test_interp_back_end_computed_by_hand_and_sizes_unchanged():
    """Each interpolated up-sampling is nearest x2, reflection pad 1, 3x3 conv, BatchNorm, ReLU (by hand);
    the method's output has the input's size at any size, as with transposed convs."""
    torch.manual_seed(0)
    m, t = tiny(upsample="interp"), tiny()
    g = m.generator.eval()
    h = torch.randn(2, 32, 5, 7)
    want = h
    for i in range(3):
        conv, bn = g.back[4 * i + 1], g.back[4 * i + 2]
        y = F.pad(F.interpolate(want, scale_factor=2, mode="nearest"), (1, 1, 1, 1), mode="reflect")
        want = F.relu(F.batch_norm(F.conv2d(y, conv.weight), bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps))
    with torch.no_grad():
        got = g.back(h)
    assert got.shape == (2, 4, 40, 56) and torch.allclose(got, want, atol=1e-6)
    for hw in ((32, 32), (37, 45), (8, 120)):
        image = torch.rand(1, 3, *hw)
        hole = torch.zeros(1, 1, *hw)
        assert m.complete(image, hole).shape == t.complete(image, hole).shape == image.shape


def test_unknown_upsample_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown btgmi upsample 'bilinear'; known: transposed, interp"):
        tiny(upsample="bilinear")
