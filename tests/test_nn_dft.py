"""The 2-D real FFT pair as matrix products (inpaintgan.nn.dft), what the ONNX export writes for the
lama method's Fourier units: equal to torch.fft within float32 rounding at odd, even and tiny sizes."""

from __future__ import annotations

import pytest
import torch

from inpaintgan.methods.lama import FourierUnit
from inpaintgan.nn.dft import irfft2_matmul, rfft2_matmul

SIZES = [(1, 1), (1, 2), (2, 1), (5, 7), (8, 8), (33, 64), (64, 65), (84, 130)]


@pytest.mark.parametrize("h,w", SIZES)
def test_rfft2_matmul_equals_torch_fft(h, w):
    x = torch.randn(3, 2, h, w, generator=torch.Generator().manual_seed(h * 100 + w))
    ref = torch.fft.rfft2(x, norm="ortho")
    re, im = rfft2_matmul(x)
    assert re.shape == im.shape == ref.shape
    assert (re - ref.real).abs().max().item() < 1e-5
    assert (im - ref.imag).abs().max().item() < 1e-5


@pytest.mark.parametrize("h,w", SIZES)
def test_irfft2_matmul_equals_torch_fft(h, w):
    """Any half spectrum (not only a real signal's: the imaginary parts torch ignores are random here)."""
    g = torch.Generator().manual_seed(h * 100 + w + 1)
    re, im = torch.randn(3, 2, h, w // 2 + 1, generator=g), torch.randn(3, 2, h, w // 2 + 1, generator=g)
    ref = torch.fft.irfft2(torch.complex(re, im), s=(h, w), norm="ortho")
    out = irfft2_matmul(re, im, (h, w))
    assert out.shape == ref.shape
    assert (out - ref).abs().max().item() < 1e-5


def test_round_trip_is_the_identity():
    x = torch.randn(2, 4, 31, 46, generator=torch.Generator().manual_seed(3))
    assert (irfft2_matmul(*rfft2_matmul(x), (31, 46)) - x).abs().max().item() < 1e-5


def test_fourier_unit_matmul_equals_fft():
    torch.manual_seed(0)
    unit = FourierUnit(6, 6)
    x = torch.randn(2, 6, 20, 27)
    ref = unit(x)
    unit.dft = "matmul"
    out = unit(x)
    assert (out - ref).abs().max().item() < 1e-5
    assert ref.abs().max().item() > 0.1  # not a trivially zero output
