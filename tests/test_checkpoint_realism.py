"""The cheap checkpoint probe of a pre-filling model (experiments/checkpoint_realism): the cached
pre-fill is exact, the probe's fill is the model's own inference, alpha and the low-pass do what they
say."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from inpaintgan.experiments.checkpoint_realism import CachedPrefillModel, PrefillCache
from inpaintgan.methods.lama import LaMa, LaMaConfig


def tiny_residual() -> LaMa:
    torch.manual_seed(0)
    m = LaMa(LaMaConfig(width=4, downsamples=2, blocks=1, d_width=4, d_layers=2, augment=(), prefill="telea",
                        residual=True), image_size=16)  # fmt: skip
    with torch.no_grad():  # a trained-looking EMA: the zero-initialised output layer made non-zero
        for p in m.generator_ema.parameters():
            p.add_(0.03 * torch.randn_like(p))
    return m.eval()


def batch(n=3, size=16):
    g = torch.Generator().manual_seed(1)
    image = (torch.rand(n, 3, size, size, generator=g) * 255).round() / 255  # 8-bit pixels, as photos
    mask = torch.zeros(n, 1, size, size)
    mask[:, :, 3:11, 4:13] = 1
    return image, mask


def test_cached_prefill_is_exact_and_survives_a_reload(tmp_path):
    image, mask = batch()
    cache = PrefillCache(tmp_path / "prefill_telea.npz", "telea")
    first = cache(image, mask)
    from inpaintgan.postprocess import fill_hole

    assert torch.equal(first, fill_hole(image, mask, "telea", 0.0))
    cache.save()
    again = PrefillCache(tmp_path / "prefill_telea.npz", "telea")
    assert len(again.store) == len(image)
    again._fill = None  # a reloaded cache must not compute anything
    assert torch.equal(again(image, mask), first)


def test_probe_fill_is_the_models_inference_alpha_zero_is_the_prefill(tmp_path):
    m = tiny_residual()
    image, mask = batch()
    cache = PrefillCache(tmp_path / "p.npz", "telea")
    with torch.no_grad():
        ref = m.inpaint(image, mask)
    assert torch.equal(CachedPrefillModel(m, cache, 1.0)(image, mask), ref)
    pre = cache(image, mask)
    zero = CachedPrefillModel(m, cache, 0.0)(image, mask)
    assert torch.equal(zero, m.composite(pre, image, mask))
    assert not torch.equal(zero, ref)  # the correction is not zero, so alpha matters
    half = CachedPrefillModel(m, cache, 0.5)(image, mask)
    assert not torch.equal(half, ref) and not torch.equal(half, zero)


def test_lowpass_keeps_one_colour_shift_per_channel_at_full_cell(tmp_path):
    m = tiny_residual()
    image, mask = batch()
    cache = PrefillCache(tmp_path / "p.npz", "telea")
    pre = cache(image, mask)
    out = CachedPrefillModel(m, cache, 1.0, lowpass=16)(image, mask)  # one 16x16 cell: a constant correction
    hole = mask.expand_as(image) > 0.5
    inside = hole & (out > 0) & (out < 1)
    d = out - pre
    for i in range(image.shape[0]):
        for c in range(3):
            vals = d[i, c][inside[i, c]]
            assert vals.numel() > 10 and float(vals.max() - vals.min()) < 1e-5
    assert torch.equal(out[~hole], image[~hole])  # known pixels untouched
    full = CachedPrefillModel(m, cache, 1.0, lowpass=1)(image, mask)
    assert not torch.equal(full, out)


def test_gate_takes_whichever_fill_the_discriminator_scores_higher_in_the_hole(tmp_path):
    from inpaintgan.experiments.checkpoint_realism import DiscriminatorGate

    m = tiny_residual()
    image, mask = batch()
    cache = PrefillCache(tmp_path / "p.npz", "telea")
    net = CachedPrefillModel(m, cache, 1.0)(image, mask)
    pre = m.composite(cache(image, mask), image, mask)
    # a stand-in discriminator whose logit per cell is the cell's mean brightness, known pixels scored -100:
    # only the cells touching the hole can decide
    def brightness_d(x):
        logits = F.avg_pool2d(x.mean(1, keepdim=True), 4)
        hole_cells = F.adaptive_max_pool2d(mask, logits.shape[-2:])
        return logits * hole_cells - 100 * (1 - hole_cells), []

    m.discriminator.forward = brightness_d
    brighter_net = (net * mask).sum((1, 2, 3)) > (pre * mask).sum((1, 2, 3))
    assert 0 < int(brighter_net.sum()) < len(image)  # both choices occur in this batch
    gate = DiscriminatorGate(m, cache, margin=0.0)
    out = gate(image, mask)
    for i in range(len(image)):
        assert torch.equal(out[i], net[i] if brighter_net[i] else pre[i])
    assert gate.chosen == int(brighter_net.sum()) and gate.seen == len(image)
    # a margin larger than any difference in the hole keeps the pre-fill everywhere
    assert torch.equal(DiscriminatorGate(m, cache, margin=10.0)(image, mask), pre)
