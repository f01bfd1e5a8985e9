"""GLCIC's pre-filled residual option (ours): an untrained model returns exactly the fast-marching
fill, training moves it, and unknown option values are refused."""

from __future__ import annotations

import pytest
import torch

from inpaintgan.losses import masked_mse
from inpaintgan.methods.glcic import GLCIC, GLCICConfig
from inpaintgan.postprocess import prefill_telea_tensor


def _hole(n: int = 2, side: int = 16) -> torch.Tensor:
    mask = torch.zeros(n, 1, side, side)
    mask[:, :, 4:10, 5:12] = 1
    return mask


def test_telea_residual_starts_at_the_prefill_and_learns():
    torch.manual_seed(0)
    m = GLCIC(GLCICConfig(width=8, d_width=8, prefill="telea", output="residual"), image_size=16).eval()
    image = torch.rand(2, 3, 16, 16).mul(255).round().div(255)
    mask = _hole()
    assert torch.equal(m.inpaint(image, mask), prefill_telea_tensor(image, mask))
    mean_fill = GLCIC(GLCICConfig(width=8, d_width=8), image_size=16).eval()
    assert not torch.equal(mean_fill.inpaint(image, mask), prefill_telea_tensor(image, mask))
    m.train()
    opt = torch.optim.Adam(m.generator.parameters(), 1e-2)
    losses = []
    for _ in range(15):
        loss = masked_mse(m.complete(image, mask), image, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_unknown_glcic_options_are_refused():
    with pytest.raises(ValueError, match="unknown GLCIC prefill 'ns'; known: mean, telea"):
        GLCIC(GLCICConfig(width=8, d_width=8, prefill="ns"), image_size=16)
    with pytest.raises(ValueError, match="unknown GLCIC output 'tanh'"):
        GLCIC(GLCICConfig(width=8, d_width=8, output="tanh"), image_size=16)


def test_warm_start_of_a_residual_model_from_a_sigmoid_one(tmp_path):
    from inpaintgan.checkpoints import load_weights_into, save_model

    torch.manual_seed(0)
    src = GLCIC(GLCICConfig(width=8, d_width=8), image_size=16)
    path = save_model(src, tmp_path / "glcic.safetensors")
    dst = GLCIC(GLCICConfig(width=8, d_width=8, prefill="telea", output="residual"), image_size=16)
    notes = load_weights_into(dst, path)  # every tensor fits: a strict load
    assert any("re-zeroed" in n for n in notes)
    s_sd, d_sd = src.generator.state_dict(), dst.generator.state_dict()
    assert torch.equal(d_sd["net.0.0.weight"], s_sd["net.0.0.weight"])
    last = len(dst.generator.net) - 1
    assert d_sd[f"net.{last}.weight"].abs().max() == 0
    image, mask = torch.rand(2, 3, 16, 16).mul(255).round().div(255), _hole()
    assert torch.equal(dst.eval().inpaint(image, mask), prefill_telea_tensor(image, mask))
