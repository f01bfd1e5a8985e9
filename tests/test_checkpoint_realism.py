"""The cheap checkpoint probe of a pre-filling model (experiments/checkpoint_realism): the cached
pre-fill is exact, the probe's fill is the model's own inference, alpha and the low-pass do what they
say."""

from __future__ import annotations

import torch

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
