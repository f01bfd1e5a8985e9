"""Contextual attention (DeepFill v1): copies a matching background patch into the hole, never attends
to the hole, propagation, per-sample masks on odd sizes, agreement with a naive reference, and the
flow-colour rendering."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inpaintgan.nn import ContextualAttention
from inpaintgan.nn.contextual_attention import attention_to_flow, flow_to_color, propagate_scores


def repeated_scene(h: int, w: int, hole: tuple[slice, slice], c: int = 16, seed: int = 0):
    """Random features where the 8x8 block at (12, 12) repeats the one at (2, 2); the hole lies inside
    the copy, so its surroundings match the source exactly. Returns (features with the hole zeroed,
    mask, ground truth)."""
    g = torch.Generator().manual_seed(seed)
    truth = torch.randn(1, c, h, w, generator=g)
    truth[:, :, 12:20, 12:20] = truth[:, :, 2:10, 2:10]
    mask = torch.zeros(1, 1, h, w)
    mask[:, :, hole[0], hole[1]] = 1
    return truth * (1 - mask), mask, truth


@pytest.mark.parametrize("rate, hole", [(1, (slice(15, 17), slice(15, 17))), (2, (slice(14, 18), slice(14, 18)))])
@pytest.mark.parametrize("size", [(24, 24), (23, 25)])
def test_copies_the_matching_background_patch_into_the_hole(rate, hole, size):
    f, mask, truth = repeated_scene(*size, hole)
    y, attention = ContextualAttention(rate=rate)(f, mask=mask)  # defaults: scale 10, propagation 3
    target = truth[:, :, hole[0], hole[1]]
    err = (y[:, :, hole[0], hole[1]] - target).abs().mean()
    # conv-only style fills: zeros, the mean background feature, a blur of the surroundings
    known = (1 - mask).expand_as(f)
    mean_fill = (f * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True)
    blur = F.avg_pool2d(f, 5, 1, 2) / F.avg_pool2d(1 - mask, 5, 1, 2).clamp_min(1e-6)
    baselines = [target.abs().mean(), (mean_fill - target).abs().mean(), (blur[:, :, hole[0], hole[1]] - target).abs().mean()]
    assert min(baselines) > 0.5
    assert err < 1e-3 * min(baselines), (float(err), [float(b) for b in baselines])
    # the flow points from the hole to the source, 10 pixels up and left
    flow = attention_to_flow(attention, cell=rate, out_size=size)
    assert torch.equal(flow[0, :, hole[0], hole[1]], torch.full_like(flow[0, :, hole[0], hole[1]], -10.0))


def _naive(f, b, mask, scale, eps=1e-4):
    """Direct transcription of the layer at rate 1 without propagation: loops over positions."""
    _, c, h, w = f.shape
    fp, bp, mp = F.pad(f, (1, 1, 1, 1)), F.pad(b, (1, 1, 1, 1)), F.pad(mask, (1, 1, 1, 1))
    positions = list(itertools.product(range(h), range(w)))
    patch = lambda t, y, x: t[0, :, y : y + 3, x : x + 3]  # noqa: E731 - (C, 3, 3) around (y, x) of the unpadded map
    valid = torch.tensor([bool(patch(mp, y, x).sum() == 0) for y, x in positions])
    out, cover = torch.zeros(c, h + 2, w + 2), torch.zeros(1, h + 2, w + 2)
    for py, px in positions:
        fpat = patch(fp, py, px)
        scores = torch.stack([(fpat * patch(bp, y, x)).sum() / patch(bp, y, x).norm().clamp_min(eps) for y, x in positions])
        att = torch.softmax(torch.where(valid, scores * scale, torch.tensor(-1e30)), 0) * valid
        out[:, py : py + 3, px : px + 3] += sum(a * patch(bp, y, x) for a, (y, x) in zip(att, positions))
        cover[:, py : py + 3, px : px + 3] += 1
    return (out / cover)[:, 1:-1, 1:-1]


def test_rate1_without_propagation_equals_the_naive_definition():
    g = torch.Generator().manual_seed(1)
    f = torch.randn(1, 3, 5, 6, generator=g)
    mask = torch.zeros(1, 1, 5, 6)
    mask[:, :, 1:3, 2:4] = 1
    y, _ = ContextualAttention(rate=1, scale=3.0, propagation_k=1)(f, mask=mask)
    assert torch.allclose(y[0], _naive(f, f, mask, 3.0), atol=1e-5)


def test_propagation_k1_is_none_and_k3_is_the_diagonal_sum():
    s = torch.randn(2, 3, 4, 5, 2)  # (N, hb, wb, hf, wf)
    assert propagate_scores(s, 1) is s  # (and the layer with k = 1 is the naive definition, test above)

    def at(t, i, yb, xb, yf, xf):
        ok = 0 <= yb < t.shape[1] and 0 <= xb < t.shape[2] and 0 <= yf < t.shape[3] and 0 <= xf < t.shape[4]
        return float(t[i, yb, xb, yf, xf]) if ok else 0.0

    lr = torch.zeros_like(s)  # left-right: x of background and foreground shifted together
    for i, yb, xb, yf, xf in itertools.product(*(range(n) for n in s.shape)):
        lr[i, yb, xb, yf, xf] = sum(at(s, i, yb, xb + d, yf, xf + d) for d in (-1, 0, 1))
    td = torch.zeros_like(s)  # then top-down
    for i, yb, xb, yf, xf in itertools.product(*(range(n) for n in s.shape)):
        td[i, yb, xb, yf, xf] = sum(at(lr, i, yb + d, xb, yf + d, xf) for d in (-1, 0, 1))
    assert torch.allclose(propagate_scores(s, 3), td, atol=1e-5)
    with pytest.raises(ValueError, match="odd"):
        propagate_scores(s, 2)


def test_odd_sizes_batch_with_per_sample_masks_and_attention_only_on_background():
    g = torch.Generator().manual_seed(2)
    n, h, w = 3, 13, 17
    f = torch.randn(n, 8, h, w, generator=g)
    mask = torch.zeros(n, 1, h, w)
    mask[0, :, 2:6, 3:9] = 1
    mask[1, :, 7:12, 10:16] = 1
    mask[2, :, 0:4, 0:17] = 1  # touches the border
    ca = ContextualAttention(rate=2)
    y, att = ca(f, mask=mask)
    assert y.shape == f.shape and torch.isfinite(y).all()
    hf, wf = (h + 1) // 2, (w + 1) // 2
    assert att.shape == (n, hf * wf, hf, wf)
    # each sample alone gives the same result: masks and kernels are per sample
    for i in range(n):
        yi, ai = ca(f[i : i + 1], mask=mask[i : i + 1])
        assert torch.allclose(yi, y[i : i + 1], atol=1e-5) and torch.allclose(ai, att[i : i + 1], atol=1e-6)
    # background = 3x3 neighbourhoods (on the rate-2 grid, edge-padded) free of hole pixels
    md = F.max_pool2d(F.pad(mask, (0, w % 2, 0, h % 2), mode="replicate"), 2)
    background = (F.max_pool2d(md, 3, 1, 1) == 0).flatten(1)  # (N, L)
    assert (~background).any(1).all() and background.any(1).all()
    assert (att * ~background[:, :, None, None]).abs().max() == 0  # no weight on hole patches
    assert torch.allclose(att.sum(1), torch.ones(n, hf, wf), atol=1e-5)
    target = att.argmax(1).flatten(1)  # (N, hf*wf)
    assert torch.gather(background, 1, target).all()
    # a mask given at another resolution (here 4x) is pooled: a feature pixel touched by a hole is hole
    big = F.interpolate(mask, scale_factor=4, mode="nearest")
    assert torch.allclose(ca(f, mask=big)[0], y, atol=1e-6)
    # gradients reach the features through matching and reconstruction
    fg = f.clone().requires_grad_(True)
    ca(fg, mask=mask)[0].square().sum().backward()
    assert torch.isfinite(fg.grad).all() and fg.grad.abs().sum() > 0


def test_no_background_gives_zeros_and_errors_name_the_problem():
    f = torch.randn(2, 4, 8, 8)
    mask = torch.ones(2, 1, 8, 8)
    mask[1, :, :2, :2] = 0
    y, att = ContextualAttention()(f, mask=mask)
    assert torch.isfinite(y).all() and y[0].abs().max() == 0 and att[0].abs().max() == 0
    with pytest.raises(ValueError, match="mask batch 3"):
        ContextualAttention()(f, mask=torch.zeros(3, 1, 8, 8))
    with pytest.raises(ValueError, match="odd"):
        ContextualAttention(propagation_k=2)


def test_flow_to_color_follows_the_middlebury_wheel():
    flow = np.zeros((2, 3, 3), np.float32)  # (dy, dx)
    flow[1, 0, 2] = 1.0  # right
    flow[1, 0, 0] = -1.0  # left
    flow[0, 2, 1] = 0.5  # down, half length
    img = flow_to_color(flow)
    assert img.shape == (3, 3, 3) and img.dtype == np.uint8
    assert (img[1, 1] == 255).all()  # no motion: white
    right, left, down = img[0, 2].astype(int), img[0, 0].astype(int), img[2, 1].astype(int)
    assert right[0] == 255 and right[1] < 30  # red
    assert left[0] < 30 and left[2] == 255  # cyan/blue
    assert down.min() > 100  # half length: half saturated
    batch = flow_to_color(torch.from_numpy(np.stack([flow, 2 * flow])))
    assert batch.shape == (2, 3, 3, 3) and np.array_equal(batch[0], batch[1])  # per-image normalisation
    with pytest.raises(ValueError, match="2, H, W"):
        flow_to_color(np.zeros((3, 4, 4)))


def test_attention_to_flow_offsets():
    att = torch.zeros(1, 6, 2, 3)  # background grid 2x3, every position attends to (0, 0) ...
    att[0, 0] = 1.0
    att[0, :, 1, 2] = 0.0  # ... except one with no background at all
    flow = attention_to_flow(att)
    assert flow[0, 0].tolist() == [[0, 0, 0], [-1, -1, 0]]
    assert flow[0, 1].tolist() == [[0, -1, -2], [0, -1, 0]]
    up = attention_to_flow(att, cell=2, out_size=(3, 5))
    assert up.shape == (1, 2, 3, 5) and up[0, 1, 0, 4] == -4
