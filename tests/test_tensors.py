"""The shared small helpers (inpaintgan.tensors): uint8 conversion with expected values, eval mode and
frozen blocks that restore what they found."""

from __future__ import annotations

import numpy as np
import torch

from inpaintgan.tensors import eval_mode, frozen, to_uint8


def test_to_uint8_rounds_half_up_clamps_and_moves_channels_last():
    img = torch.tensor([0.0, 0.5 / 255, 1.5 / 255, 0.2, 1.0, 1.7, -0.3]).view(1, 1, 7).expand(3, 1, 7)
    u8 = to_uint8(img)
    assert u8.dtype == np.uint8 and u8.shape == (1, 7, 3)
    assert u8[0, :, 0].tolist() == [0, 1, 2, 51, 255, 255, 0]
    batch = torch.rand(2, 3, 4, 5)
    assert to_uint8(batch).shape == (2, 4, 5, 3)
    assert np.array_equal(to_uint8(batch)[1], to_uint8(batch[1]))


def test_eval_mode_restores_each_submodules_flag():
    a = torch.nn.Sequential(torch.nn.BatchNorm1d(2), torch.nn.Dropout())
    b = torch.nn.Linear(2, 2)
    a[1].eval()  # a submodule already in eval mode stays there
    with eval_mode(a, b) as mods:
        assert mods == (a, b) and not any(m.training for m in [*a.modules(), b])
    assert [m.training for m in a.modules()] == [True, True, False] and b.training
    with eval_mode(b) as m:
        assert m is b and not b.training
    assert b.training


def test_frozen_restores_each_parameters_flag():
    net = torch.nn.Linear(2, 2)
    net.bias.requires_grad_(False)
    with frozen(net):
        assert not net.weight.requires_grad and not net.bias.requires_grad
    assert net.weight.requires_grad and not net.bias.requires_grad
