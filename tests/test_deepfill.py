"""DeepFill v1: spatial discount, hole-only gradient penalty, generator shapes and compositing, the
official layout's parameter count, training through the shared Trainer, model files, and
``inpaintgan fill --attention-map``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import write_image_folder
from inpaintgan.checkpoints import load_model, save_model
from inpaintgan.cli import main
from inpaintgan.config import load_config
from inpaintgan.losses import gradient_penalty, spatial_discount
from inpaintgan.methods.deepfill import DeepFill, DeepFillConfig, DeepFillGenerator
from inpaintgan.methods.glcic import GLCIC, GLCICConfig
from inpaintgan.training.trainer import Trainer


def tiny(image_size: int = 32, **kw) -> DeepFill:
    torch.manual_seed(0)
    return DeepFill(DeepFillConfig(width=8, d_width=8, **kw), image_size=image_size)


def two_masks(h: int, w: int) -> torch.Tensor:
    m = torch.zeros(2, 1, h, w)
    m[0, :, 4:12, 6:16] = 1
    m[1, :, h - 10 : h - 2, 2:9] = 1
    m[1, :, 3:6, w - 8 : w - 1] = 1
    return m


def test_spatial_discount_hand_computed():
    # everything is hole but the top-left pixel: l = Euclidean distance to (0, 0)
    m = torch.ones(3, 1, 4, 5)
    m[0, 0, 0, 0] = 0
    m[1] = 0
    m[1, 0, 1:4, 1:4] = 1  # 3x3 hole touching the bottom edge, which does not count as known
    m[2] = 1  # no known pixel at all
    wts = spatial_discount(m, gamma=0.5)
    yy, xx = np.mgrid[0:4, 0:5]
    expect0 = 0.5 ** np.sqrt(yy**2 + xx**2)
    expect0[0, 0] = 0.0
    assert np.allclose(wts[0, 0].numpy(), expect0, atol=1e-6)
    expect1 = np.zeros((4, 5))
    expect1[1:4, 1:4] = 0.5
    expect1[2, 2] = expect1[3, 2] = 0.25  # 2 px from the nearest known pixel
    assert np.allclose(wts[1, 0].numpy(), expect1, atol=1e-7)
    assert torch.equal(wts[2], torch.ones(1, 4, 5))
    assert spatial_discount(m, 0.99)[0, 0, 3, 4] == pytest.approx(0.99**5, abs=1e-6)
    with pytest.raises(ValueError, match="N, 1, H, W"):
        spatial_discount(torch.ones(4, 5), 0.5)


def test_gradient_penalty_ignores_known_pixels():
    """With the hole mask, the penalty sees the critic's gradient only at hole pixels: a linear critic
    w . x has gradient w, the penalty is (||w * mask|| - 1)^2, and its gradient with respect to w is
    exactly zero at known pixels (and not in the hole; without the mask it is everywhere)."""
    torch.manual_seed(0)
    real, fake = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:5, 3:7] = 1
    w = torch.randn(1, 3, 8, 8, requires_grad=True)

    def critic(x):
        return (x * w).flatten(1).sum(1, keepdim=True)

    gp = gradient_penalty(critic, real, fake, mask)
    assert gp.item() == pytest.approx(((w * mask).flatten(1).norm(dim=1) - 1).square().mean().item(), rel=1e-5)
    (grad,) = torch.autograd.grad(gp, w)
    known = (mask[:1] == 0).expand_as(grad)
    assert grad[known].abs().max() == 0 and grad[~known].abs().min() > 0
    (grad_all,) = torch.autograd.grad(gradient_penalty(critic, real, fake), w)
    assert grad_all[known].abs().min() > 0
    # DeepFill's local critic: adding any term that only reads known pixels leaves the penalty unchanged
    crit = tiny().discriminator.local_critic
    x_real, x_fake = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    m16 = torch.zeros(2, 1, 16, 16)
    m16[0, :, 4:10, 5:12] = 1
    m16[1, :, 9:15, 1:7] = 1

    def crit2(x):
        return crit(x) + (x * (1 - m16)).square().flatten(1).sum(1, keepdim=True) * 3

    def gp(c, m):
        return gradient_penalty(c, x_real, x_fake, m, torch.Generator().manual_seed(3)).item()

    assert gp(crit2, m16) == pytest.approx(gp(crit, m16), rel=1e-6)
    assert gp(crit2, None) != pytest.approx(gp(crit, None), rel=1e-2)


def test_forward_shapes_known_pixels_exact_any_size():
    method = tiny().eval()
    for h, w in ((32, 32), (30, 37)):  # 30x37 is padded to 32x40 inside and cropped back
        image = torch.rand(2, 3, h, w)
        mask = two_masks(h, w)
        x, m, x1, x2, att = method.run_generator(image, mask)
        assert x1.shape == x2.shape == image.shape
        assert x1.abs().max() <= 1 and x2.abs().max() <= 1
        hp, wp = h + (-h) % 4, w + (-w) % 4
        cells = (math.ceil(hp / 8), math.ceil(wp / 8))
        assert att.shape == (2, cells[0] * cells[1], *cells)
        out = method.inpaint(image, mask)
        known = mask.expand_as(image) == 0
        assert out.shape == image.shape and torch.equal(out[known], image[known])
        assert out.min() >= 0 and out.max() <= 1
        result, flow = method.inpaint_with_attention(image, mask)
        assert torch.equal(result, out) and flow.shape == (2, 3, h, w) and 0 <= flow.min() and flow.max() <= 1
    method.to(memory_format=torch.channels_last)
    assert torch.allclose(method.inpaint(image, mask), out, atol=1e-5)
    # reflect padding works, also on feature maps smaller than the dilation
    assert tiny(padding="reflect").inpaint(torch.rand(1, 3, 16, 16), two_masks(16, 16)[:1]).shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="unknown padding 'mirror'"):
        tiny(padding="mirror")


def test_official_layout_parameter_count():
    # width 32 = the official v1 code's cnum; its layers give 1,448,227 (coarse) + 2,153,315 (refinement)
    g = DeepFillGenerator(3, 32)
    assert sum(p.numel() for p in g.coarse.parameters()) == 1_448_227
    assert sum(p.numel() for p in g.parameters()) == 3_601_542


def _overrides(data, out, steps=(1, 2)) -> list[str]:
    return [
        "method=deepfill", "model.width=8", "model.d_width=8", "model.n_critic=2",
        f"model.steps_reconstruction={steps[0]}", f"model.steps_adversarial={steps[1]}",
        f"data.root={data}", "data.image_size=32", "data.val_fraction=0.2", "data.test_fraction=0.0",
        "masks.kind=mixed", "train.batch_size=4", f"train.out_dir={out}", "train.log_every=1",
        "train.sample_every=0", "train.ckpt_every=0", "train.val_every=0", "train.val_batches=1",
        "train.tensorboard=false", "train.lr=0.001",
    ]


def _snap(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(a, b):
    return any(not torch.equal(a[k], b[k]) for k in a)


def test_trainer_phases_change_the_right_networks_and_model_file_round_trip(tmp_path):
    data = write_image_folder(tmp_path / "images", n=20, size=40)
    out = tmp_path / "run"
    t0 = Trainer(load_config(None, _overrides(data, out) + ["train.max_steps=0"]), progress=False)
    g0, d0 = _snap(t0.method.generator), _snap(t0.method.discriminator)
    t1 = Trainer(load_config(None, _overrides(data, out) + ["train.max_steps=1"]), progress=False)
    t1.run()
    g1, d1 = _snap(t1.method.generator), _snap(t1.method.discriminator)
    assert _changed(g0, g1) and not _changed(d0, d1)  # reconstruction: the critics stay bit-identical
    t2 = Trainer(load_config(None, _overrides(data, out)), progress=False)
    result = t2.run(resume="auto")
    assert result.step == 3 and set(result.val) >= {"hole_l1", "psnr"}
    g2, d2 = _snap(t2.method.generator), _snap(t2.method.discriminator)
    assert _changed(g1, g2) and _changed(d1, d2)
    logs = (out / "metrics.csv").read_text()
    assert "train/loss_gp" in logs and "train/loss_adv" in logs
    # model file: the generator only; the reloaded model inpaints identically
    method = t2.method.eval()
    path = save_model(method, tmp_path / "deepfill.safetensors", {"training": {"steps": 3}})
    loaded, meta = load_model(path)
    assert meta["method"] == "deepfill" and meta["config"]["width"] == 8
    image, mask = torch.rand(2, 3, 32, 32), two_masks(32, 32)
    assert torch.equal(loaded.inpaint(image, mask), method.inpaint(image, mask))
    assert torch.equal(loaded.inpaint_with_attention(image, mask)[1], method.inpaint_with_attention(image, mask)[1])


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def test_fill_cli_attention_map(tmp_path):
    model = save_model(tiny(), tmp_path / "df.safetensors")
    rng = np.random.default_rng(0)
    img = _write(tmp_path / "in" / "a.png", rng.integers(0, 256, (40, 44, 3), dtype=np.uint8))
    _write(tmp_path / "in" / "b.png", rng.integers(0, 256, (40, 44, 3), dtype=np.uint8))
    hole = np.zeros((40, 44), np.uint8)
    hole[10:22, 12:30] = 255
    mask = _write(tmp_path / "m.png", hole)
    att = tmp_path / "att.png"
    assert main(["fill", str(img), "--mask", str(mask), "-o", str(tmp_path / "a_out.png"), "--model", str(model),
                 "--attention-map", str(att), "-q"]) == 0
    with Image.open(att) as im:
        assert im.size == (44, 40) and im.mode == "RGB"
    # a folder: <stem>_attention.png beside each output
    assert main(["fill", str(tmp_path / "in"), "--mask", str(mask), "-o", str(tmp_path / "out"), "--model", str(model),
                 "-q", "--attention-map"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "a_attention.png", "b.png", "b_attention.png"]
    # several inputs and one path, or a model without attention: clear errors
    assert main(["fill", str(tmp_path / "in"), "--mask", str(mask), "-o", str(tmp_path / "o2"), "--model", str(model),
                 "--attention-map", str(att)]) == 2
    glcic = save_model(GLCIC(GLCICConfig(width=8, d_width=8), image_size=32), tmp_path / "g.safetensors")
    assert main(["fill", str(img), "--mask", str(mask), "-o", str(tmp_path / "g.png"), "--model", str(glcic),
                 "--attention-map", str(att)]) == 2
