"""lama's training step, term by term: the gradient each loss term sends to the generator and to the
discriminator, the mask-aware patch labels after augmentation, lazy R1 and its k scaling, DiffAugment
and the network layout at LaMa's width. Every expectation is computed here from the definitions
(LaMa, Suvorov et al. 2022; StyleGAN2's lazy R1; DiffAugment, Zhao et al. 2020), not with the
method's helpers."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import FakeTrainContext
from inpaintgan.methods.lama import FFC, LaMa, LaMaConfig, LaMaGenerator, PatchDiscriminator
from inpaintgan.postprocess import prefill_telea_tensor


class RecordingCtx(FakeTrainContext):
    """Records each network's gradient at its backward_step (then steps, as the trainer does)."""

    def __init__(self, method):
        super().__init__(method, 1e-3, betas=(0.9, 0.999))
        self.grads: dict[str, list[torch.Tensor]] = {}
        self.method = method

    def backward_step(self, loss, name):
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        params = list(getattr(self.method, name).parameters())
        self.grads[name] = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in params]
        opt.step()


def tiny(**kw) -> LaMa:
    torch.manual_seed(0)
    cfg = dict(width=4, downsamples=2, blocks=1, d_width=4, d_layers=2, augment=(), prefill="telea", residual=False)
    cfg.update(kw)
    return LaMa(LaMaConfig(**cfg), image_size=16)


def batch(n=2, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, size, size, generator=g)
    mask = torch.zeros(n, 1, size, size)
    mask[0, :, 4:10, 5:12] = 1
    mask[1, :, 9:15, 1:6] = 1
    return image, mask


# ------------------------------------------------------------------ independent re-implementations


def shift_images(x: torch.Tensor, sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """Move each sample's content by (sx, sy) whole pixels, zeros coming in: out[y, x] = in[y - sy, x - sx]."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    for i in range(x.shape[0]):
        dx, dy = int(sx[i]), int(sy[i])
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[i, :, yd, xd] = x[i, :, ys, xs]
    return out


def augment(images, mask, kinds, g):
    """DiffAugment as its paper defines it, drawing from ``g`` in the order brightness, saturation,
    contrast, translation; one draw per sample, shared by every image of the list."""
    n = mask.shape[0]
    out = list(images)
    if "color" in kinds:
        b = torch.rand(n, 1, 1, 1, generator=g) - 0.5  # brightness shift on [0, 1] = 2x on [-1, 1]
        s = torch.rand(n, 1, 1, 1, generator=g) * 2
        c = torch.rand(n, 1, 1, 1, generator=g) + 0.5
        res = []
        for x in out:
            x = x + 2 * b
            gray = x.mean(1, keepdim=True)
            x = gray + s * (x - gray)
            avg = x.mean((1, 2, 3), keepdim=True)
            res.append(avg + c * (x - avg))
        out = res
    if "translation" in kinds:
        h, w = mask.shape[-2:]
        u = torch.rand(n, 2, generator=g)
        sx = torch.round((u[:, 0] * 2 - 1) * w / 8)
        sy = torch.round((u[:, 1] * 2 - 1) * h / 8)
        out = [shift_images(x, sx, sy) for x in out]
        mask = shift_images(mask, sx, sy)
    return out, mask


def touching_labels(mask: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """1 for each of the h x w logit cells (adaptive split of the image) holding any hole pixel."""
    n, _, hh, ww = mask.shape
    lab = torch.zeros(n, 1, h, w)
    for i in range(h):
        y0, y1 = (i * hh) // h, -((-(i + 1) * hh) // h)
        for j in range(w):
            x0, x1 = (j * ww) // w, -((-(j + 1) * ww) // w)
            lab[:, 0, i, j] = (mask[:, 0, y0:y1, x0:x1] > 0.5).flatten(1).any(1).float()
    return lab


def softplus(x):
    return torch.log1p(torch.exp(x))


def expected_losses(m: LaMa, image, mask, step: int, seed: int = 0):
    """(G loss terms, D loss terms) of one step from the definitions, with the networks as they are now."""
    cfg = m.cfg
    g0, d0 = copy.deepcopy(m.generator), copy.deepcopy(m.discriminator)
    g = torch.Generator().manual_seed(seed)  # the FakeTrainContext's generator
    pre = prefill_telea_tensor(image, mask)
    y = g0(torch.cat([pre * 2 - 1, mask], 1))
    pred = pre + y / 2 if cfg.residual else (y + 1) / 2
    fake = torch.where(mask > 0.5, pred, image) * 2 - 1
    real = image * 2 - 1
    (fa, ra), _ = augment([fake, real], mask, cfg.augment, g)
    lf, ff = d0(fa)
    _, fr = d0(ra)
    fr = [t.detach() for t in fr]
    gt = {
        "adv_g": -torch.log(torch.sigmoid(lf)).mean(),  # non-saturating: -log D(fake)
        "fm": sum((a - b).abs().mean() for a, b in zip(ff, fr)) / len(ff),
        "l1_known": ((pred - image).abs() * (1 - mask)).sum() / pred.numel(),
        "l1_hole": ((pred - image).abs() * mask).sum() / pred.numel(),
    }
    # discriminator: a fresh augmentation, the fake detached, labels from the moved mask
    (fa, ra), ma = augment([fake.detach(), real], mask, cfg.augment, g)
    lr_, _ = d0(ra)
    lf, _ = d0(fa)
    lab = touching_labels(ma, *lf.shape[-2:]) if cfg.mask_aware_d else torch.ones_like(lf)
    dt = {"d_real": softplus(-lr_).mean(), "d_fake": (lab * softplus(lf) + (1 - lab) * softplus(-lf)).mean()}
    if cfg.r1_gamma > 0 and step % cfg.r1_every == 0:
        rg = ra.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(d0(rg)[0].sum(), rg, create_graph=True)
        dt["r1"] = (grad**2).sum((1, 2, 3)).mean()
    return g0, d0, gt, dt


def grads_of(loss, module):
    params = list(module.parameters())
    gs = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if gr is None else gr for p, gr in zip(params, gs)]


def assert_grads_close(got, want, what):
    assert len(got) == len(want)
    scale = max(float(w.abs().max()) for w in want)
    assert scale > 0, f"{what}: the expected gradient is zero, the test would be vacuous"
    for i, (a, b) in enumerate(zip(got, want)):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5 * scale), f"{what}: parameter {i} differs"


WEIGHTS = ("adv_weight", "fm_weight", "l1_known_weight", "l1_hole_weight")
TERM = {"adv_weight": "adv_g", "fm_weight": "fm", "l1_known_weight": "l1_known", "l1_hole_weight": "l1_hole"}


# ------------------------------------------------------------------------------------- the step


@pytest.mark.parametrize(
    "weights",
    [dict(adv_weight=2.0, fm_weight=3.0, l1_known_weight=5.0, l1_hole_weight=7.0)]
    + [{w: (1.0 if w == only else 0.0) for w in WEIGHTS} for only in WEIGHTS],
    ids=["all", "adv_only", "fm_only", "l1_known_only", "l1_hole_only"],
)
@pytest.mark.parametrize("residual", [False, True])
def test_generator_gradient_is_the_weighted_sum_of_its_terms(weights, residual):
    """The gradient the step sends to G equals that of sum(weight * term) computed here, with
    colour + translation augmentation on D's inputs; each term alone too (so a term wired to the
    wrong tensor, or a weight swapped, cannot hide in the total)."""
    m = tiny(residual=residual, augment=("color", "translation"), r1_gamma=0.0, **weights)
    if residual:  # a residual G starts with a zero last layer; give it a non-zero one
        torch.manual_seed(3)
        torch.nn.init.normal_(m.generator.output.weight, std=0.05)
    m.train()
    image, mask = batch()
    g0, _, gt, _ = expected_losses(m, image, mask, step=1)
    want = sum(weights[w] * gt[TERM[w]] for w in WEIGHTS)
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": mask}, None, 1, ctx)
    for w in WEIGHTS:
        assert logs[TERM[w]] == pytest.approx(float(gt[TERM[w]].detach()), rel=1e-4, abs=1e-7), TERM[w]
    assert logs["loss_g"] == pytest.approx(float(want.detach()), rel=1e-4)
    assert_grads_close(ctx.grads["generator"], grads_of(want, g0), "generator")


@pytest.mark.parametrize("mask_aware", [True, False])
@pytest.mark.parametrize("step,r1_every", [(0, 1), (6, 3), (7, 3)])
def test_discriminator_gradient_labels_and_lazy_r1(mask_aware, step, r1_every):
    """D's gradient = that of softplus(-D(real)) + label-weighted softplus(+-D(fake)) (+ gamma/2 * k *
    R1 on the real images at every k-th step), with patch labels from the mask moved by the same
    translation as the images."""
    gamma = 0.7
    m = tiny(augment=("color", "translation"), mask_aware_d=mask_aware, r1_gamma=gamma, r1_every=r1_every)
    m.train()
    image, mask = batch()
    _, d0, _, dt = expected_losses(m, image, mask, step=step)
    assert ("r1" in dt) == (step % r1_every == 0)
    want = dt["d_real"] + dt["d_fake"] + (gamma / 2 * r1_every * dt["r1"] if "r1" in dt else 0)
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": mask}, None, step, ctx)
    assert logs["d_real"] == pytest.approx(float(dt["d_real"].detach()), rel=1e-5)
    assert logs["d_fake"] == pytest.approx(float(dt["d_fake"].detach()), rel=1e-5)
    assert ("r1" in logs) == ("r1" in dt)
    if "r1" in dt:
        assert logs["r1"] == pytest.approx(float(dt["r1"].detach()), rel=1e-4)
    assert logs["loss_d"] == pytest.approx(float(want.detach()), rel=1e-5)
    assert_grads_close(ctx.grads["discriminator"], grads_of(want, d0), "discriminator")


def test_patch_labels_follow_the_translated_mask():
    """A precondition of the test above: with these draws the translation moves the labels, so labels
    from the unmoved mask would give another loss."""
    image, mask = batch()
    g = torch.Generator().manual_seed(0)
    augment([image], mask, ("color", "translation"), g)  # the generator step's draws
    _, moved = augment([image], mask, ("color", "translation"), g)
    assert not torch.equal(touching_labels(moved, 7, 7), touching_labels(mask, 7, 7))
    m = tiny(augment=("color", "translation"), r1_gamma=0.0)
    logs = m.train_step({"image": image, "mask": mask}, None, 1, RecordingCtx(m))
    assert logs["d_fake"] > 0


def test_mask_aware_labels_make_untouched_cells_real():
    """With the whole image known except one pixel, a fake's cells away from it are trained as real:
    the fake loss falls when D scores those cells higher (LaMa's mask_as_fake_target)."""
    m = tiny(r1_gamma=0.0)
    image = batch()[0][:1]
    mask = torch.zeros(1, 1, 16, 16)
    mask[0, 0, 0, 0] = 1
    _, _, _, dt = expected_losses(m, image, mask, step=1)
    logs = m.train_step({"image": image, "mask": mask}, None, 1, RecordingCtx(m))
    assert logs["d_fake"] == pytest.approx(float(dt["d_fake"].detach()), rel=1e-5)
    lab = touching_labels(mask, 7, 7)
    assert lab.sum() == 1 and lab[0, 0, 0, 0] == 1


def test_ema_follows_the_generator_with_its_decay():
    m = tiny(ema_decay=0.75, r1_gamma=0.0)
    m.train()
    image, mask = batch()
    ema0 = [p.clone() for p in m.generator_ema.parameters()]
    m.train_step({"image": image, "mask": mask}, None, 1, RecordingCtx(m))
    for pe, p0, pg in zip(m.generator_ema.parameters(), ema0, m.generator.parameters()):
        assert torch.allclose(pe, 0.75 * p0 + 0.25 * pg, atol=1e-7)
    assert any(not torch.equal(pe, p0) for pe, p0 in zip(m.generator_ema.parameters(), ema0))


def test_diff_augment_matches_its_definition():
    from inpaintgan.methods.lama import diff_augment

    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    y = torch.rand(4, 3, 16, 16) * 2 - 1
    mask = (torch.rand(4, 1, 16, 16) > 0.7).float()
    for kinds in (("color",), ("translation",), ("color", "translation")):
        (a, b), ma = diff_augment([x, y], mask, kinds, torch.Generator().manual_seed(5))
        (wa, wb), wm = augment([x, y], mask, kinds, torch.Generator().manual_seed(5))
        assert torch.allclose(a, wa, atol=1e-6) and torch.allclose(b, wb, atol=1e-6), kinds
        assert torch.equal(ma, wm), kinds


# ------------------------------------------------------------------------------------- networks


def test_config_defaults_are_lamas_weights():
    c = LaMaConfig()
    assert (c.adv_weight, c.fm_weight, c.l1_known_weight, c.l1_hole_weight) == (10.0, 100.0, 10.0, 0.0)
    assert c.r1_gamma == 0.001 and c.mask_aware_d is True and c.global_ratio == 0.75
    assert c.ema_decay == 0.999 and c.downsamples == 3 and c.d_width == 64 and c.d_layers == 3
    assert set(c.augment) == {"color", "translation"}
    assert c.ffc is True and c.r1_every == 4 and c.residual is False and c.prefill == "none"  # Fourier blocks; lazy R1


def test_generator_at_lamas_width_layer_by_layer():
    """LaMa's FFCResNetGenerator (its Table/config: ngf 64, 3 downsamplings, 9 FFC blocks, ratio 0.75)."""
    g = LaMaGenerator(3, width=64, downsamples=3, blocks=9, ffc=True, global_ratio=0.75)
    enc = [mod for mod in g.encoder if isinstance(mod, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in enc] == [
        (4, 64, (7, 7), (1, 1), (3, 3)), (64, 128, (3, 3), (2, 2), (1, 1)), (128, 256, (3, 3), (2, 2), (1, 1)),
        (256, 512, (3, 3), (2, 2), (1, 1))]  # fmt: skip
    acts = [mod for mod in g.encoder if not isinstance(mod, torch.nn.Conv2d)]
    assert len(acts) == 4 and all(isinstance(a, torch.nn.LeakyReLU) and a.negative_slope == 0.2 for a in acts)
    assert len(g.blocks) == 9
    for block in g.blocks:
        for ffc in block.body:
            assert isinstance(ffc, FFC) and (ffc.cl, ffc.cg) == (128, 384)
            assert [(c.in_channels, c.out_channels, c.kernel_size) for c in (ffc.l2l, ffc.g2l, ffc.l2g)] == [
                (128, 128, (3, 3)), (384, 128, (3, 3)), (128, 384, (3, 3))]  # fmt: skip
            st = ffc.g2g
            assert (st.reduce[0].in_channels, st.reduce[0].out_channels, st.reduce[0].kernel_size) == (384, 192, (1, 1))
            assert (st.fu.conv.in_channels, st.fu.conv.out_channels, st.fu.conv.kernel_size) == (384, 384, (1, 1))
            assert (st.out.in_channels, st.out.out_channels, st.out.kernel_size) == (192, 384, (1, 1))
            assert isinstance(st.reduce[1], torch.nn.LeakyReLU) and st.reduce[1].negative_slope == 0.2
            # LaMa's cross-branch and spectral 1x1 convs have no bias (its BatchNorm follows them)
            assert ffc.g2l.bias is None and ffc.l2g.bias is None and st.reduce[0].bias is None and st.out.bias is None
            assert ffc.l2l.bias is not None and ffc.l2l.padding_mode == "reflect"
    dec = list(g.decoder)
    assert [type(mod).__name__ for mod in dec] == ["Upsample", "Conv2d", "LeakyReLU"] * 3
    assert all(mod.mode == "nearest" and mod.scale_factor == 2 for mod in dec[::3])
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in dec[1::3]] == [
        (512, 256, (3, 3)), (256, 128, (3, 3)), (128, 64, (3, 3))]  # fmt: skip
    assert (g.output.in_channels, g.output.out_channels, g.output.kernel_size, g.output.padding) == (64, 3, (7, 7), (3, 3))
    # ffc=false: dilated blocks, rates 2, 4, 8 cycling, padding = dilation (same size), second conv plain
    d = LaMaGenerator(3, width=64, downsamples=3, blocks=6, ffc=False)
    assert [(b.body[0].dilation[0], b.body[0].padding[0], b.body[2].dilation[0]) for b in d.blocks] == [
        (2, 2, 1), (4, 4, 1), (8, 8, 1), (2, 2, 1), (4, 4, 1), (8, 8, 1)]  # fmt: skip


def test_generator_forward_is_the_residual_stack_and_tanh():
    torch.manual_seed(0)
    g = LaMaGenerator(3, width=4, downsamples=1, blocks=1, ffc=True).eval()
    x = torch.rand(1, 4, 8, 8)
    with torch.no_grad():
        h = g.encoder(x)
        want = torch.tanh(g.output(g.decoder(h + g.blocks[0].body(h))))
        assert torch.allclose(g(x), want, atol=1e-6)
        ffc = g.blocks[0].body[0]
        xl, xg = h[:, : ffc.cl], h[:, ffc.cl :]
        st = ffc.g2g
        r = st.reduce(xg)
        f = torch.fft.rfft2(r, norm="ortho")
        fu = F.leaky_relu(st.fu.conv(torch.cat([f.real, f.imag], 1)), 0.2)
        re, im = fu.chunk(2, 1)
        spec = st.out(r + torch.fft.irfft2(torch.complex(re, im), s=r.shape[-2:], norm="ortho"))
        want_ffc = F.leaky_relu(torch.cat([ffc.l2l(xl) + ffc.g2l(xg), ffc.l2g(xl) + spec], 1), 0.2)
        assert torch.allclose(ffc(h), want_ffc, atol=1e-6)


def test_patch_discriminator_at_lamas_width():
    """pix2pixHD's NLayerDiscriminator (ndf 64, n_layers 3): 4x4 convs, padding 2, strides 2, 2, 2, 1
    and a stride-1 head; channels 64, 128, 256, 512, 1; LeakyReLU 0.2; intermediate features out."""
    d = PatchDiscriminator(3, 64, 3)
    convs = [layer[0] for layer in d.features] + [d.head]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (3, 64, (4, 4), (2, 2), (2, 2)), (64, 128, (4, 4), (2, 2), (2, 2)), (128, 256, (4, 4), (2, 2), (2, 2)),
        (256, 512, (4, 4), (1, 1), (2, 2)), (512, 1, (4, 4), (1, 1), (2, 2))]  # fmt: skip
    assert all(isinstance(layer[1], torch.nn.LeakyReLU) and layer[1].negative_slope == 0.2 for layer in d.features)
    assert PatchDiscriminator(3, 300, 3).features[-1][0].out_channels == 512  # capped at 512
    small = PatchDiscriminator(3, 4, 2)
    x = torch.rand(1, 3, 16, 16)
    logits, feats = small(x)
    size = 16
    for stride in (2, 2, 1, 1):
        size = math.floor((size + 4 - 4) / stride) + 1
    assert logits.shape[-1] == size and len(feats) == 3


def test_no_r1_at_gamma_zero_and_half_valued_mask_pixels_are_known():
    """r1_gamma 0 switches the penalty off (not computed, not logged); a mask value of exactly 0.5 is a
    known pixel for the composite (``mask > 0.5``), so it does not make its patch fake either."""
    m = tiny(r1_gamma=0.0, r1_every=1)
    image, mask = batch()
    assert "r1" not in m.train_step({"image": image, "mask": mask}, None, 0, RecordingCtx(m))
    from inpaintgan.methods.lama import fake_patch_labels

    half = torch.zeros(1, 1, 8, 8)
    half[0, 0, 1, 1] = 0.5
    half[0, 0, 6, 6] = 1.0
    assert fake_patch_labels(half, (2, 2))[0, 0].tolist() == [[0.0, 0.0], [0.0, 1.0]]


def test_discriminator_warmup_is_a_phase_of_its_own_only_when_asked():
    from inpaintgan.methods.base import phase_at

    assert [(p.name, p.steps, set(p.trains)) for p in tiny(steps=5).phases()] == [("gan", 5, {"generator", "discriminator"})]
    phases = tiny(steps=5, d_warmup=3).phases()
    assert [(p.name, p.steps, set(p.trains)) for p in phases] == [
        ("d_warmup", 3, {"discriminator"}), ("gan", 5, {"generator", "discriminator"})]  # fmt: skip
    assert phase_at(phases, 2)[1].name == "d_warmup" and phase_at(phases, 3)[1].name == "gan"


def test_a_warmup_step_trains_the_discriminator_alone_on_the_frozen_generators_fills():
    """The warm-up's D gradient is the GAN phase's D loss (mask-aware labels after the same
    augmentation, lazy R1) on the current generator's fills, drawn first from the step's generator;
    the generator and its EMA do not move and no generator step is taken."""
    from inpaintgan.methods.base import Phase

    gamma = 0.7
    m = tiny(augment=("color", "translation"), r1_gamma=gamma, r1_every=2, d_warmup=4)
    m.train()
    with torch.no_grad():  # a generator whose fills differ from the pre-fill's
        for p in m.generator.parameters():
            p.add_(0.05 * torch.randn_like(p))
    image, mask = batch()
    g0, d0 = copy.deepcopy(m.generator), copy.deepcopy(m.discriminator)
    ema0 = copy.deepcopy(m.generator_ema)
    pre = prefill_telea_tensor(image, mask)
    with torch.no_grad():
        pred = (g0(torch.cat([pre * 2 - 1, mask], 1)) + 1) / 2
    fake, real = torch.where(mask > 0.5, pred, image) * 2 - 1, image * 2 - 1
    (fa, ra), ma = augment([fake, real], mask, m.cfg.augment, torch.Generator().manual_seed(0))
    lf = d0(fa)[0]
    lab = touching_labels(ma, *lf.shape[-2:])
    rg = ra.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(d0(rg)[0].sum(), rg, create_graph=True)
    want = (softplus(-d0(ra)[0]).mean() + (lab * softplus(lf) + (1 - lab) * softplus(-lf)).mean()
            + gamma / 2 * 2 * (grad**2).sum((1, 2, 3)).mean())  # fmt: skip
    ctx = RecordingCtx(m)
    logs = m.train_step({"image": image, "mask": mask}, Phase("d_warmup", 4, {"discriminator"}), 2, ctx)
    assert set(ctx.grads) == {"discriminator"}
    assert set(logs) == {"r1", "loss_d", "d_real", "d_fake"}
    assert logs["loss_d"] == pytest.approx(float(want.detach()), rel=1e-5)
    assert_grads_close(ctx.grads["discriminator"], grads_of(want, d0), "discriminator")
    assert all(torch.equal(a, b) for a, b in zip(m.generator.parameters(), g0.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(m.generator_ema.parameters(), ema0.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(m.discriminator.parameters(), d0.parameters()))


def test_d_steps_gives_the_discriminator_k_steps_per_generator_step():
    """With d_steps = 3 the GAN phase's generator (and its EMA) moves only on steps 0 and 3; the
    discriminator moves on every step; a step between is the warm-up's discriminator-only step (same
    loss on the current generator's fills, no generator gradient)."""
    from inpaintgan.methods.base import Phase

    gan = Phase("gan", 6, {"generator", "discriminator"})
    m = tiny(d_steps=3, r1_gamma=0.0)
    m.train()
    differ = lambda a, b: any(not torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # noqa: E731
    moved_g, moved_d, keys = [], [], []
    for step in range(6):
        image, mask = batch(seed=step)
        before = copy.deepcopy(m)
        ctx = RecordingCtx(m)
        logs = m.train_step({"image": image, "mask": mask}, gan, step, ctx)
        moved_g.append(differ(m.generator, before.generator) or differ(m.generator_ema, before.generator_ema))
        moved_d.append(differ(m.discriminator, before.discriminator))
        keys.append("loss_g" in logs)
        if step == 1:  # the D-only step's loss is the warm-up's: computed here on the same batch and networks
            warm = before.train_step({"image": image, "mask": mask}, Phase("d_warmup", 1, {"discriminator"}), step, RecordingCtx(before))
            assert logs == pytest.approx(warm, rel=1e-6)
            assert set(ctx.grads) == {"discriminator"}
    assert moved_g == [True, False, False, True, False, False]
    assert keys == moved_g
    assert all(moved_d)
    with pytest.raises(ValueError, match="d_steps"):
        tiny(d_steps=0)
