"""PartialConv2d (Liu et al. 2018, eq. 1-2): equals a plain convolution on all-valid input, ignores
holes, re-scales by window size / valid count with the bias added after, zero output and mask where a
window sees no valid pixel, mask growth, multi-channel masks. Mask convention here: 1 = valid."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inpaintgan.nn import PartialConv2d


def _pair(cin, cout, k, **kw):
    torch.manual_seed(0)
    pc = PartialConv2d(cin, cout, k, **kw)
    conv = nn.Conv2d(cin, cout, k, **kw)
    conv.load_state_dict(pc.state_dict())  # same parameter names: weight, bias
    return pc, conv


@pytest.mark.parametrize(
    "k,stride,dilation,padding",
    [(3, 1, 1, 0), (3, 2, 1, 0), (5, 1, 2, 0), (4, 3, 1, 0), (3, 1, 1, 1), (5, 2, 1, 2), (3, 1, 2, 2), (3, 1, 1, "same")],
)
def test_all_valid_mask_equals_plain_convolution(k, stride, dilation, padding):
    pc, conv = _pair(3, 4, k, stride=stride, dilation=dilation, padding=padding)
    x = torch.randn(2, 3, 13, 11)
    out, new_mask = pc(x, torch.ones(2, 1, 13, 11))
    ref = conv(x)
    assert out.shape == ref.shape and new_mask.shape == (2, 1, *ref.shape[2:])
    assert torch.all(new_mask == 1)
    # Zero padding counts as hole (NVIDIA's convention), so equality holds wherever the window lies
    # inside the image: everywhere without padding, away from the border with it.
    p = (dilation * (k - 1)) // 2 if padding == "same" else padding
    b = -(-p // stride)  # output rows/cols whose window touches the padding
    inner = (slice(None), slice(None), slice(b, ref.shape[2] - b), slice(b, ref.shape[3] - b))
    assert ref[inner].numel() > 0
    torch.testing.assert_close(out[inner], ref[inner], rtol=1e-5, atol=1e-5)
    if p:  # the border is re-weighted, not equal
        assert not torch.allclose(out, ref, atol=1e-4)
    assert torch.equal(pc(x, None)[0], out)  # mask=None means all valid


def test_hand_computed_3x3_example():
    x = torch.tensor([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]]).view(1, 1, 3, 3)
    valid = torch.tensor([[1.0, 1, 0], [1, 0, 0], [1, 1, 1]]).view(1, 1, 3, 3)  # 6 of 9 valid
    pc = PartialConv2d(1, 2, 3, padding=0)
    with torch.no_grad():
        pc.weight[0] = 1.0  # box filter
        pc.weight[1] = torch.tensor([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]])  # Sobel x
        pc.bias.copy_(torch.tensor([0.5, 0.5]))
    out, m = pc(x, valid)
    # box: valid sum 1+2+4+7+8+9 = 31, scaled by 9/6 = 1.5 -> 46.5, then + 0.5 bias
    # sobel: 1*1 + 4*2 + 7*1 + 9*(-1) = 7 -> 10.5 + 0.5
    assert out.flatten().tolist() == [47.0, 11.0]
    assert m.flatten().tolist() == [1.0]
    # with padding 1, the top-left window holds 4 image pixels, 3 of them valid (1, 2, 4): 9/3 = 3
    pc.padding = (1, 1)
    out, m = pc(x, valid)
    assert out[0, 0, 0, 0].item() == pytest.approx((1 + 2 + 4) * 3 + 0.5)
    # the centre window sees the whole image: same as without padding
    assert out[0, 0, 1, 1].item() == pytest.approx(47.0)
    assert torch.all(m == 1)


def test_fully_holed_window_gives_zero_output_and_mask():
    pc = PartialConv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        pc.bias.fill_(0.7)  # the bias must not leak into holes either
    x = torch.randn(1, 2, 8, 8)
    valid = torch.ones(1, 1, 8, 8)
    valid[:, :, 2:7, 2:7] = 0  # 5x5 hole: the 3x3 windows centred on its inner 3x3 see no valid pixel
    out, m = pc(x, valid)
    assert torch.all(out[:, :, 3:6, 3:6] == 0) and torch.all(m[:, :, 3:6, 3:6] == 0)
    assert m.sum() == 64 - 9 and torch.all(out[:, :, 0, 0] != 0)


def test_mask_becomes_all_valid_after_enough_layers():
    layers = [PartialConv2d(1, 1, 3, padding=1) for _ in range(3)]
    x, valid = torch.randn(1, 1, 16, 16), torch.ones(1, 1, 16, 16)
    valid[:, :, 5:9, 6:10] = 0  # 4x4 hole: each 3x3 layer shrinks it by one pixel per side
    holes = []
    for layer in layers:
        x, valid = layer(x, valid)
        holes.append(int((valid == 0).sum()))
    assert holes == [4, 0, 0]


def test_hole_content_is_ignored():
    torch.manual_seed(1)
    pc = PartialConv2d(3, 5, 5, stride=2, padding=2)
    x = torch.rand(2, 3, 16, 16)
    valid = torch.ones(2, 1, 16, 16)
    valid[0, :, 3:10, 4:12] = 0
    valid[1, :, 8:16, 0:5] = 0
    noisy = torch.where(valid > 0, x, torch.randn_like(x) * 100)
    a, ma = pc(x, valid)
    b, mb = pc(noisy, valid)
    assert torch.equal(a, b) and torch.equal(ma, mb)
    assert not torch.equal(noisy, x)


def test_multi_channel_masks():
    torch.manual_seed(2)
    pc = PartialConv2d(2, 3, 3, padding=0)
    x = torch.randn(1, 2, 6, 6)
    # the same hole in both channels == a single-channel mask (window 2*9 / count 2*n == 9 / n)
    single = torch.ones(1, 1, 6, 6)
    single[:, :, 1:4, 2:5] = 0
    out1, m1 = pc(x, single)
    out2, m2 = pc(x, single.expand(1, 2, 6, 6).clone())
    torch.testing.assert_close(out1, out2)
    assert m2.shape == (1, 3, 4, 4) and torch.equal(m2, m1.expand(1, 3, 4, 4))
    # channel 1 all hole: window 18, count 9 -> the channel-0 response doubled, bias added after
    valid = torch.stack([torch.ones(6, 6), torch.zeros(6, 6)])[None]
    out, m = pc(x, valid)
    w0 = pc.weight.detach().clone()
    w0[:, 1] = 0
    expected = 2 * F.conv2d(x, w0) + pc.bias.detach().view(1, -1, 1, 1)
    torch.testing.assert_close(out, expected)
    assert torch.all(m == 1)
    with pytest.raises(ValueError, match="expected 1 .shared. or 2"):
        pc(x, torch.ones(1, 3, 6, 6))


def test_gradients_flow_and_bad_arguments():
    pc = PartialConv2d(2, 2, 3, padding=1)
    x = torch.randn(1, 2, 5, 5, requires_grad=True)
    valid = torch.ones(1, 1, 5, 5)
    valid[:, :, 2, 2] = 0
    out, _ = pc(x, valid)
    out.sum().backward()
    assert x.grad[0, :, 2, 2].abs().sum() == 0  # a hole pixel gets no gradient
    assert torch.isfinite(pc.weight.grad).all() and pc.weight.grad.abs().sum() > 0
    assert set(pc.state_dict()) == {"weight", "bias"}  # the ones kernel is not saved
    with pytest.raises(ValueError, match="padding_mode='zeros' only"):
        PartialConv2d(1, 1, 3, padding=1, padding_mode="reflect")
    with pytest.raises(ValueError, match="mask must be"):
        pc(x, torch.ones(1, 1, 4, 5))
