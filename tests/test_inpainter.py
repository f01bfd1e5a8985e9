"""Inpainter: any-size inference (full / crop / resize), exact known pixels, input kinds, bad inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintgan.imageio import MaskError
from inpaintgan.inpainter import Inpainter, context_window, hole_regions, plan_crops, resolve_device
from inpaintgan.methods.glcic import GLCIC, GLCICConfig
from inpaintgan.registry import UnknownNameError


def tiny_method(image_size: int = 32, channels: int = 3, seed: int = 0) -> GLCIC:
    torch.manual_seed(seed)
    return GLCIC(GLCICConfig(width=8, d_width=8), image_size=image_size, channels=channels).eval()


@pytest.fixture(scope="module")
def inpainter() -> Inpainter:
    return Inpainter(tiny_method())


def record_calls(inp: Inpainter, monkeypatch) -> list[tuple[int, ...]]:
    """Record the shape of every tensor the network is given."""
    shapes: list[tuple[int, ...]] = []
    original = inp.method.inpaint

    def wrapped(x, m):
        shapes.append(tuple(x.shape))
        return original(x, m)

    monkeypatch.setattr(inp.method, "inpaint", wrapped)
    return shapes


def rand_u8(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def box_mask(h: int, w: int, *boxes: tuple[int, int, int, int]) -> np.ndarray:
    m = np.zeros((h, w), bool)
    for y0, x0, y1, x1 in boxes:
        m[y0:y1, x0:x1] = True
    return m


# ------------------------------------------------------------------------------ known pixels, sizes


@pytest.mark.parametrize("strategy", ["auto", "full", "crop", "resize"])
def test_uint8_known_pixels_exact_and_odd_size_kept(inpainter, strategy):
    img = rand_u8(333, 517)
    mask = box_mask(333, 517, (100, 200, 140, 260), (300, 10, 333, 30))  # one hole touches the border
    out = inpainter(img, mask, strategy=strategy)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out[~mask], img[~mask])
    assert (out[mask] != img[mask]).mean() > 0.9  # the hole was synthesized


def test_float_tensor_known_pixels_exact_batch_and_single(inpainter):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 45, 61, generator=g, dtype=torch.float64)
    m = torch.zeros(2, 1, 45, 61)
    m[0, :, 5:15, 7:30] = 1
    m[1, :, 30:44, 40:60] = 1
    y = inpainter(x, m)
    assert y.shape == x.shape and y.dtype == torch.float64
    known = (m < 0.5).expand_as(x)
    assert torch.equal(y[known], x[known])
    assert not torch.equal(y[~known], x[~known])
    single = inpainter(x[1].float(), m[1, 0])  # (C, H, W) float32 + (H, W) mask
    assert single.shape == (3, 45, 61) and single.dtype == torch.float32
    assert torch.equal(single[known[1]], x[1].float()[known[1]])


def test_full_strategy_pads_to_size_multiple(inpainter, monkeypatch):
    shapes = record_calls(inpainter, monkeypatch)
    out = inpainter(rand_u8(37, 45), box_mask(37, 45, (10, 10, 20, 20)), strategy="full")
    assert out.shape == (37, 45, 3)
    assert shapes == [(1, 3, 40, 48)]  # reflect-padded to multiples of 4, cropped back


# ------------------------------------------------------------------------------ input / output kinds


def test_input_kinds_come_back_as_they_came(inpainter, tmp_path):
    img = rand_u8(40, 50)
    mask = box_mask(40, 50, (10, 10, 25, 30))
    pil = inpainter(Image.fromarray(img), Image.fromarray(mask.astype(np.uint8) * 255))
    assert isinstance(pil, Image.Image) and pil.size == (50, 40) and pil.mode == "RGB"
    Image.fromarray(img).save(tmp_path / "a.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "m.png")
    from_path = inpainter(str(tmp_path / "a.png"), tmp_path / "m.png")
    assert isinstance(from_path, Image.Image)
    assert np.array_equal(np.asarray(from_path), np.asarray(pil))

    gray = inpainter(img[:, :, 0], mask)
    assert gray.shape == (40, 50) and np.array_equal(gray[~mask], img[:, :, 0][~mask])
    f64 = img.astype(np.float64) / 255
    out = inpainter(f64, mask.astype(np.float32))
    assert out.dtype == np.float64 and np.array_equal(out[~mask], f64[~mask])

    rgba = np.dstack([img, np.random.default_rng(1).integers(0, 256, (40, 50), dtype=np.uint8)])
    out = inpainter(Image.fromarray(rgba, "RGBA"), mask)
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[:, :, 3], rgba[:, :, 3])  # alpha untouched

    outs = inpainter([img, img[:30, :20]], [mask, mask[:30, :20]])
    assert isinstance(outs, list) and outs[1].shape == (30, 20, 3)
    batch = inpainter(np.stack([img, img]), mask)  # one mask for every image of a batch
    assert batch.shape == (2, 40, 50, 3) and np.array_equal(batch[0], batch[1])


def test_one_channel_model_on_rgb_and_rgb_model_on_gray():
    inp = Inpainter(tiny_method(channels=1))
    img = rand_u8(40, 44)
    mask = box_mask(40, 44, (5, 5, 20, 20))
    out = inp(img, mask)
    assert out.shape == img.shape and np.array_equal(out[~mask], img[~mask])
    assert np.array_equal(out[mask][:, 0], out[mask][:, 1])  # a gray fill


# ------------------------------------------------------------------------------ large images: crops


def test_crop_strategy_feeds_working_size_not_the_full_image(inpainter, monkeypatch):
    img = np.zeros((1000, 1500, 3), np.uint8)
    mask = box_mask(1000, 1500, (500, 700, 520, 730))
    assert inpainter.choose_strategy(1000, 1500) == "crop"
    shapes = record_calls(inpainter, monkeypatch)
    out = inpainter(img, mask)
    assert shapes == [(1, 3, 32, 32)]
    assert out.shape == img.shape and np.array_equal(out[~mask], img[~mask])


def test_two_distant_holes_two_crops_nearby_holes_merged(inpainter, monkeypatch):
    far = box_mask(1000, 1500, (100, 100, 110, 110), (800, 1300, 815, 1310))
    plan = plan_crops(far, 32)
    assert len(plan) == 2
    for (wy0, wx0, wy1, wx1), (by0, bx0, by1, bx1) in plan:
        assert wy0 <= by0 and wx0 <= bx0 and by1 <= wy1 and bx1 <= wx1  # each window holds its hole
    shapes = record_calls(inpainter, monkeypatch)
    inpainter(np.zeros((1000, 1500, 3), np.uint8), far)
    assert shapes == [(1, 3, 32, 32)] * 2

    near = box_mask(1000, 1500, (100, 100, 110, 110), (100, 160, 110, 170))  # 50 px apart
    plan = plan_crops(near, 32)
    assert len(plan) == 1 and plan[0][1] == (100, 100, 110, 170)  # one window on the union box


def test_context_window_margin_and_border():
    # L = 20 -> side = 20 + 2 * max(20, 64) = 148, centred on the box
    assert context_window((100, 100, 110, 120), 1000, 1500, 32) == (31, 36, 179, 184)
    # a big hole: margin = its own side; window shifted inside the image at the border
    win = context_window((0, 0, 100, 80), 1000, 1500, 32)
    assert win == (0, 0, 300, 300)
    # the working size is the smallest window; the image size the largest
    assert context_window((10, 10, 12, 12), 1000, 1500, 256)[2:] == (256, 256)
    assert context_window((10, 10, 60, 60), 100, 1500, 32) == (0, 0, 100, 178)  # clipped to the height


def test_crop_downscale_does_not_leak_hole_content(inpainter, monkeypatch):
    """Pixels the hole contributes to after area downscaling are marked hole at working scale."""
    img = np.zeros((1000, 1500, 3), np.uint8)
    mask = box_mask(1000, 1500, (400, 400, 437, 451))
    img[mask] = 255  # the "object" to remove
    seen = []
    original = inpainter.method.inpaint
    monkeypatch.setattr(inpainter.method, "inpaint", lambda x, m: seen.append((x, m)) or original(x, m))
    inpainter(img, mask)
    (x, m), = seen
    assert x.shape[-2:] == (32, 32) and m.sum() > 0
    assert float(x[(m < 0.5).expand_as(x)].max()) == 0.0


def test_many_specks_grouped(inpainter):
    rng = np.random.default_rng(0)
    mask = rng.random((600, 800)) < 0.002  # ~1000 isolated pixels
    plan = plan_crops(mask, 32)
    assert 1 <= len(plan) < 50
    covered = np.zeros_like(mask)
    for (y0, x0, y1, x1), _ in plan:
        covered[y0:y1, x0:x1] = True
    assert covered[mask].all()
    assert len(hole_regions(mask)) > 256 and len(hole_regions(mask, group_distance=64)) < 50


# ------------------------------------------------------------------------------ not fully convolutional


class FixedSizeGLCIC(GLCIC):
    """A stand-in for a fixed-size network (e.g. a 64x64 DCGAN)."""

    fully_convolutional = False


def test_fixed_size_method_only_gets_its_size(monkeypatch):
    inp = Inpainter(FixedSizeGLCIC(GLCICConfig(width=8, d_width=8), image_size=32).eval())
    shapes = record_calls(inp, monkeypatch)
    for h, w, hole in [(32, 32, (5, 5, 10, 10)), (40, 30, (5, 5, 10, 10)), (300, 400, (100, 100, 110, 120))]:
        img = rand_u8(h, w)
        mask = box_mask(h, w, hole)
        out = inp(img, mask)
        assert out.shape == img.shape and np.array_equal(out[~mask], img[~mask])
    assert shapes == [(1, 3, 32, 32)] * 3
    assert inp.choose_strategy(40, 30) == "resize" and inp.choose_strategy(300, 400) == "crop"
    with pytest.raises(ValueError, match="not fully convolutional"):
        inp(rand_u8(40, 30), box_mask(40, 30, (5, 5, 10, 10)), strategy="full")
    with pytest.raises(ValueError, match="working_size"):
        inp(rand_u8(40, 30), box_mask(40, 30, (5, 5, 10, 10)), working_size=64)


# ------------------------------------------------------------------------------ options


def test_poisson_blend_and_prefill_keep_known_pixels(inpainter):
    img = rand_u8(60, 70)
    mask = box_mask(60, 70, (0, 0, 20, 25), (30, 40, 50, 60))  # one at the corner
    for kw in ({"blend": "poisson"}, {"prefill": True}, {"blend": "poisson", "prefill": True}):
        out = inpainter(img, mask, **kw)
        assert np.array_equal(out[~mask], img[~mask]), kw
    with pytest.raises(ValueError, match="poisson"):
        inpainter(img, mask, blend="laplace")
    with pytest.raises(ValueError, match="crop"):
        inpainter(img, mask, strategy="tiles")


def test_dilate_grows_the_hole(inpainter):
    img = rand_u8(50, 50)
    mask = box_mask(50, 50, (20, 20, 30, 30))
    out = inpainter(img, mask, dilate=3)
    changed = (out != img).any(axis=2)
    assert changed[17, 25] and changed[25, 32] and not changed[10, 10]


# ------------------------------------------------------------------------------ bad inputs


def test_empty_mask_returns_input_unchanged_with_warning(inpainter):
    img = rand_u8(30, 40)
    with pytest.warns(UserWarning, match="mask is empty"):
        out = inpainter(img, np.zeros((30, 40), np.uint8))
    assert np.array_equal(out, img) and out is not img


def test_full_mask_is_an_error(inpainter):
    with pytest.raises(MaskError, match="covers the whole image"):
        inpainter(rand_u8(30, 40), np.ones((30, 40), bool))


def test_mask_size_mismatch_names_both_sizes(inpainter):
    img = rand_u8(30, 40)
    small = box_mask(15, 20, (2, 2, 8, 8))
    with pytest.raises(MaskError, match=r"20x15.*40x30"):
        inpainter(img, small)
    out = inpainter(img, small, resize_mask=True)
    changed = (out != img).any(axis=2)
    assert changed[4:16, 4:16].mean() > 0.95 and changed.sum() == changed[4:16, 4:16].sum()


def test_unreadable_file_names_it(inpainter, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        inpainter(bad, np.ones((2, 2)))


def test_unknown_model_lists_known_ones():
    with pytest.raises(UnknownNameError, match="known models: default"):
        Inpainter.from_pretrained("no-such-model")


def test_float_out_of_range_is_an_error(inpainter):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        inpainter(np.full((10, 10, 3), 200.0), box_mask(10, 10, (2, 2, 5, 5)))


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu9")


def test_no_warnings_in_normal_use(inpainter):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inpainter(rand_u8(30, 40), box_mask(30, 40, (5, 5, 10, 10)))


def test_method_in_training_mode_runs_in_eval_and_is_restored():
    method = tiny_method().train()
    img, mask = rand_u8(40, 44), box_mask(40, 44, (5, 5, 20, 20))
    out = Inpainter(method)(img, mask)
    assert method.training  # the caller's mode is left as it was
    assert np.array_equal(out, Inpainter(tiny_method().eval())(img, mask))  # BN used running statistics


def test_same_size_batch_runs_in_one_call_and_matches_single_calls(inpainter, monkeypatch):
    imgs = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    masks = torch.zeros(5, 1, 32, 32)
    for i in range(5):
        masks[i, :, 4 + i : 14 + i, 6 : 16 + i] = 1
    singles = torch.cat([inpainter(imgs[i], masks[i])[None] for i in range(5)])
    calls = record_calls(inpainter, monkeypatch)
    batched = inpainter(imgs, masks)
    assert [c[0] for c in calls] == [5]  # one network call for the whole batch
    assert torch.allclose(batched, singles, atol=1e-5)
    known = masks.expand_as(imgs) == 0
    assert torch.equal(batched[known], imgs[known])


def test_model_file_can_lower_the_auto_full_limit():
    # a model whose metadata says auto_full_factor 1 (a costly pre-fill: the lama default model) fills
    # windows around holes as soon as the short side exceeds the working size
    plain = Inpainter(tiny_method(32), {"model": "t", "image_size": 32})
    lowered = Inpainter(tiny_method(32), {"model": "t", "image_size": 32, "auto_full_factor": 1.0})
    assert plain.choose_strategy(64, 64) == "full" and lowered.choose_strategy(64, 64) == "crop"
    assert lowered.choose_strategy(32, 48) == "full"
