"""nn.blocks.DilatedConv2d: the centre-tap shortcut equals the full dilated convolution, forward and
backward, and is not taken where it would be wrong (a map larger than the dilation) or frozen into a
traced graph."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from inpaintgan.methods.glcic import CompletionNetwork
from inpaintgan.nn.blocks import ConvBNAct, DilatedConv2d


def pair(d: int, cin: int = 5, cout: int = 7):
    torch.manual_seed(0)
    fast = DilatedConv2d(cin, cout, 3, 1, d, dilation=d)
    ref = nn.Conv2d(cin, cout, 3, 1, d, dilation=d)
    ref.load_state_dict(fast.state_dict())
    return fast, ref


@pytest.mark.parametrize("d,size", [(8, 8), (16, 8), (8, (5, 8)), (2, 8), (4, 8)])
def test_equals_the_dilated_convolution_forward_and_backward(d, size):
    fast, ref = pair(d)
    h, w = (size, size) if isinstance(size, int) else size
    x = torch.randn(3, 5, h, w, requires_grad=True)
    xr = x.detach().clone().requires_grad_(True)
    y, yr = fast(x), ref(xr)
    torch.testing.assert_close(y, yr, rtol=0, atol=1e-5)
    g = torch.randn_like(y)
    y.backward(g)
    yr.backward(g)
    torch.testing.assert_close(x.grad, xr.grad, rtol=0, atol=1e-5)
    torch.testing.assert_close(fast.weight.grad, ref.weight.grad, rtol=0, atol=1e-4)
    torch.testing.assert_close(fast.bias.grad, ref.bias.grad, rtol=0, atol=1e-4)
    if d >= max(h, w):  # the shortcut: no gradient reaches the off-centre taps
        off = fast.weight.grad.clone()
        off[:, :, 1, 1] = 0
        assert torch.count_nonzero(off) == 0


def test_the_shortcut_is_taken_only_when_every_off_centre_tap_reads_padding(monkeypatch):
    calls = []
    real = nn.functional.conv2d

    def spy(x, w, *a, **k):
        calls.append(tuple(w.shape[-2:]))
        return real(x, w, *a, **k)

    monkeypatch.setattr(nn.functional, "conv2d", spy)
    fast, _ = pair(8)
    fast(torch.randn(1, 5, 8, 8))
    assert calls == [(1, 1)]
    calls.clear()
    fast(torch.randn(1, 5, 9, 8))  # one row more than the dilation: taps reach the image
    assert calls == [(3, 3)]  # the full dilated kernel, not the centre-tap shortcut


def test_a_trace_at_a_small_size_stays_right_at_a_large_one():
    fast, ref = pair(8)
    traced = torch.jit.trace(fast, torch.randn(1, 5, 8, 8))
    x = torch.randn(1, 5, 24, 24)
    torch.testing.assert_close(traced(x), ref(x), rtol=0, atol=1e-5)


def test_glcic_uses_it_for_its_dilated_layers_with_unchanged_parameter_names():
    net = CompletionNetwork(3, 8)
    dil = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.dilation[0] > 1]
    assert len(dil) == 4 and all(isinstance(m, DilatedConv2d) for m in dil)
    assert list(ConvBNAct(4, 4, 3, dilation=2).state_dict()) == list(ConvBNAct(4, 4, 3).state_dict())
