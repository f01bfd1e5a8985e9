"""The partial-convolution U-Net GAN (the "Image Inpainting using GANs with Partial Convolutions"
report; Liu et al. 2018): shapes, hole content ignored, known pixels kept, ablation flags change the
architecture, phases train exactly their networks, model-file round trip, Liu et al.'s loss terms
(hand-computed values, VGG16 loaded from a torchvision-layout file), the two_rect protocol."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import write_image_folder
from inpaintgan.checkpoints import load_model, save_model
from inpaintgan.config import TrainConfig, load_config
from inpaintgan.eval.protocols import PROTOCOLS, get_protocol
from inpaintgan.masks import hole_bbox
from inpaintgan.methods.base import Phase
from inpaintgan.methods.pconv import (
    PConvConfig,
    PConvGAN,
    gram_matrix,
    hole_tv_loss,
    liu_loss,
    load_vgg16,
    perceptual_loss,
    style_loss,
)
from inpaintgan.nn import PartialConv2d
from inpaintgan.registry import get_method
from inpaintgan.training.trainer import TrainContext, Trainer

TINY = dict(width=0.125, d_width=0.25, depth=3)


def _tiny(**kw) -> PConvGAN:
    torch.manual_seed(0)
    return PConvGAN(PConvConfig(**{**TINY, **kw}), image_size=32, channels=3)


def _two_holes(n: int = 2, side: int = 32) -> torch.Tensor:
    mask = torch.zeros(n, 1, side, side)
    mask[:, :, 4:12, 2:9] = 1
    mask[:, :, 18:28, 15:27] = 1
    return mask


def _n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------------- networks


def test_registered_and_generator_shapes_and_known_pixels():
    assert get_method("pconv") is PConvGAN
    m = _tiny().eval()
    assert m.size_multiple == 8
    image, mask = torch.rand(2, 3, 32, 32), _two_holes()
    pred = m.complete(image, mask)
    assert pred.shape == (2, 3, 32, 32) and 0 <= pred.min() and pred.max() <= 1
    out = m.inpaint(image, mask)
    known = mask.expand_as(image) < 0.5
    assert torch.equal(out[known], image[known])  # known pixels bit-identical
    assert torch.equal(out[~known], pred[~known])
    # fully convolutional: any multiple of 2**depth at inference, other sizes are refused
    assert m.inpaint(torch.rand(1, 3, 16, 40), torch.zeros(1, 1, 16, 40)).shape == (1, 3, 16, 40)
    with pytest.raises(ValueError, match="multiples of 8"):
        m.inpaint(torch.rand(1, 3, 20, 32), torch.zeros(1, 1, 20, 32))
    with pytest.raises(ValueError, match="multiple of 8"):
        PConvGAN(PConvConfig(**TINY), image_size=36)
    gray = PConvGAN(PConvConfig(**TINY), image_size=32, channels=1).eval()
    assert gray.inpaint(torch.rand(2, 1, 32, 32), _two_holes()).shape == (2, 1, 32, 32)


def test_generator_ignores_hole_content_and_bottleneck_mask_is_full():
    m = _tiny().eval()
    image, mask = torch.rand(2, 3, 32, 32), _two_holes()
    noisy = torch.where(mask > 0.5, torch.randn_like(image) * 50, image)
    # every layer (the skip into the last one included) multiplies its input by its mask
    assert torch.equal(m.complete(image, mask), m.complete(noisy, mask))
    first = m.generator.encoder[0].conv
    assert torch.equal(first(image, 1 - mask)[0], first(noisy, 1 - mask)[0])
    x, valid = image, 1 - mask
    holes = []
    for block in m.generator.encoder:
        x, valid = block(x, valid)
        holes.append(int((valid == 0).sum()))
    assert holes[0] > 0 and holes[-1] == 0  # the holes are closed by the 4x4 bottleneck


def test_ablation_flags_change_the_architecture():
    full = _tiny()
    convs = [mod for mod in full.generator.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert len(convs) == 2 * 3 + 1 and all(isinstance(c, PartialConv2d) for c in convs)  # + Table 1's 1x1 layer
    plain = _tiny(partial=False)
    assert not any(isinstance(mod, PartialConv2d) for mod in plain.generator.modules())
    assert plain.generator.encoder[0].conv.in_channels == 4  # image + hole mask channel
    image, mask = torch.rand(2, 3, 32, 32), _two_holes()
    assert plain.eval().inpaint(image, mask).shape == (2, 3, 32, 32)
    glob = _tiny(local_discriminators=False)
    assert any("left_d" in n for n, _ in full.discriminator.named_parameters())
    assert not any("left_d" in n or "right_d" in n for n, _ in glob.discriminator.named_parameters())
    assert _n_params(glob.discriminator) < _n_params(full.discriminator)
    assert glob.discriminator(image).shape == (2, 1)  # one logit per discriminator (Table 2)
    assert full.discriminator(image).shape == (2, 3)
    # MSE only: no discriminator phase, the generator keeps all its steps
    mse = _tiny(adv_weight=0, steps_completion=5, steps_discriminator=3, steps_joint=7)
    assert [(p.name, p.steps, set(p.trains)) for p in mse.phases()] == [
        ("completion", 5, {"generator"}),
        ("discriminator", 0, {"discriminator"}),
        ("joint", 7, {"generator"}),
    ]


def test_local_discriminators_see_their_regions_only():
    d = _tiny().discriminator.eval()
    image = torch.rand(1, 3, 32, 32)
    changed = image.clone()
    changed[..., :10] = torch.rand(1, 3, 32, 10)  # the left third (32 // 3 = 10 columns)
    assert not torch.equal(d.left_d(image[..., :10]), d.left_d(changed[..., :10]))
    assert torch.equal(d.right_d(image[..., 10:]), d.right_d(changed[..., 10:]))
    assert d.right_d.width == 22


def test_report_reconstruction_loss_value():
    image = torch.zeros(1, 1, 2, 2)
    pred = torch.tensor([[[[1.0, 2.0], [0.5, 0.0]]]])
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])  # one hole pixel of 4
    # the report (loss_norm=elements): both sums of squared errors / 4 elements
    total, logs = _tiny().reconstruction_loss(pred, image, mask)
    assert logs["loss_hole_mse"] == pytest.approx(1 / 4)
    assert logs["loss_valid_mse"] == pytest.approx(4.25 / 4)
    assert total.item() == pytest.approx(1 / 4 + 4.25 / 24)
    # loss_norm=region (the layout before issue 16): hole MSE = 1; valid MSE = (4 + 0.25 + 0) / 3
    total, logs = _tiny(loss_norm="region").reconstruction_loss(pred, image, mask)
    assert logs["loss_hole_mse"] == pytest.approx(1.0)
    assert logs["loss_valid_mse"] == pytest.approx(4.25 / 3)
    assert total.item() == pytest.approx(1 + 4.25 / 18)


# ----------------------------------------------------------------------------- training, files


def _overrides(root, out, *extra):
    return [
        "method=pconv",
        "model.width=0.125",
        "model.d_width=0.25",
        "model.depth=3",
        "model.steps_completion=1",
        "model.steps_discriminator=1",
        "model.steps_joint=1",
        "model.adv_weight=0.01",
        f"data.root={root}",
        "data.image_size=32",
        "data.val_fraction=0.2",
        "data.test_fraction=0.0",
        "masks.kind=two_rect",
        "train.batch_size=4",
        f"train.out_dir={out}",
        "train.log_every=1",
        "train.sample_every=0",
        "train.ckpt_every=0",
        "train.val_every=0",
        "train.val_batches=1",
        "train.tensorboard=false",
        "train.lr=0.001",
        *extra,
    ]


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before, after):
    return any(not torch.equal(before[k], after[k]) for k in before)


def test_phases_change_exactly_their_networks(tmp_path):
    root = write_image_folder(tmp_path / "images", n=12, size=32)
    out = tmp_path / "run"
    t = Trainer(load_config(None, _overrides(root, out, "train.max_steps=0")), progress=False)
    snaps = [(_snapshot(t.method.generator), _snapshot(t.method.discriminator))]
    for upto in (1, 2, 3):  # end of the completion, discriminator and joint phases
        tr = Trainer(load_config(None, _overrides(root, out, f"train.max_steps={upto}")), progress=False)
        tr.run(resume="auto")
        snaps.append((_snapshot(tr.method.generator), _snapshot(tr.method.discriminator)))
    (g0, d0), (g1, d1), (g2, d2), (g3, d3) = snaps
    assert _changed(g0, g1) and not _changed(d0, d1)  # completion: G only (D's BN statistics too)
    assert not _changed(g1, g2) and _changed(d1, d2)  # discriminator: D only
    assert _changed(g2, g3) and _changed(d2, d3)  # joint: both
    assert np.isfinite(tr.last_val["hole_l1"])


def test_model_file_round_trip(tmp_path):
    m = _tiny(depth=2).eval()
    image, mask = torch.rand(2, 3, 32, 32), _two_holes()
    path = save_model(m, tmp_path / "pconv.safetensors")
    loaded, meta = load_model(path)
    assert meta["method"] == "pconv" and meta["config"]["depth"] == 2 and loaded.size_multiple == 4
    assert torch.equal(loaded.inpaint(image, mask), m.inpaint(image, mask))


# --------------------------------------------------------------------------- Liu et al.'s loss


def test_style_perceptual_and_tv_terms_hand_computed():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # C = 2, H*W = 2
    gram = gram_matrix(f)  # F F^T / (C H W) = [[5, 11], [11, 25]] / 4
    torch.testing.assert_close(gram, torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4)
    zero = torch.zeros_like(f)
    assert style_loss([f], [zero]).item() == pytest.approx((5 + 11 + 11 + 25) / 4 / 4)
    assert style_loss([f, f], [zero, f]).item() == pytest.approx(3.25)  # summed over layers
    assert perceptual_loss([f, f], [zero, f + 1]).item() == pytest.approx(2.5 + 1.0)
    # TV over the hole dilated by one pixel: hole at (0, 0) of a 4x4 image -> P = the top-left 2x2;
    # x[i, j] = j + 10 i: two horizontal pairs of 1 and two vertical pairs of 10, / 16 elements
    comp = (torch.arange(4.0)[None, :] + 10 * torch.arange(4.0)[:, None]).view(1, 1, 4, 4)
    hole = torch.zeros(1, 1, 4, 4)
    hole[..., 0, 0] = 1
    assert hole_tv_loss(comp, hole).item() == pytest.approx(22 / 16)
    hole[..., 0, 0], hole[..., 1, 1] = 0, 1  # P = the top-left 3x3: 6 horizontal, 6 vertical pairs
    assert hole_tv_loss(comp, hole).item() == pytest.approx((6 + 60) / 16)


VGG_CONVS = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256), 14: (256, 256)}


def _fake_vgg_file(path):
    """A random VGG16 state_dict in torchvision's key layout (first ten layers + a classifier key)."""
    g = torch.Generator().manual_seed(0)
    sd = {}
    for i, (o, c) in VGG_CONVS.items():
        sd[f"features.{i}.weight"] = torch.randn(o, c, 3, 3, generator=g) * (2 / (9 * c)) ** 0.5
        sd[f"features.{i}.bias"] = torch.randn(o, generator=g) * 0.1
    sd["classifier.6.bias"] = torch.zeros(1000)  # the rest of the file is ignored
    torch.save(sd, path)
    return sd


def test_vgg16_loads_torchvision_layout_and_computes_pool_features(tmp_path):
    sd = _fake_vgg_file(tmp_path / "vgg16.pth")
    vgg = load_vgg16(tmp_path / "vgg16.pth")
    assert torch.equal(vgg.features[14].weight, sd["features.14.weight"])
    assert not any(p.requires_grad for p in vgg.parameters())
    x = torch.rand(2, 3, 16, 16)
    p1, p2, p3 = vgg(x)
    assert p1.shape == (2, 64, 8, 8) and p2.shape == (2, 128, 4, 4) and p3.shape == (2, 256, 2, 2)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h = F.relu(F.conv2d((x - mean) / std, sd["features.0.weight"], sd["features.0.bias"], padding=1))
    h = F.relu(F.conv2d(h, sd["features.2.weight"], sd["features.2.bias"], padding=1))
    torch.testing.assert_close(p1, F.max_pool2d(h, 2))
    assert torch.equal(vgg(x[:, :1])[0], vgg(x[:, :1].expand(-1, 3, -1, -1))[0])  # grayscale -> 3 channels
    del sd["features.12.weight"]
    torch.save(sd, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="lacks features.12.weight"):
        load_vgg16(tmp_path / "broken.pth")


def test_liu_loss_values_and_missing_weights_error(tmp_path, monkeypatch):
    _fake_vgg_file(tmp_path / "vgg16.pth")
    vgg = load_vgg16(tmp_path / "vgg16.pth")
    image, mask = torch.rand(2, 3, 16, 16), _two_holes(2, 16)
    total, terms = liu_loss(image.clone(), image, mask, vgg)
    # a perfect prediction leaves only the composite's total variation around the holes
    assert all(terms[k].item() == 0 for k in ("valid", "hole", "perceptual", "style"))
    assert total.item() == pytest.approx(0.1 * hole_tv_loss(image, mask).item())
    pred = image + 0.1 * mask  # off by 0.1 in the hole only
    total, terms = liu_loss(pred, image, mask, vgg)
    assert terms["hole"].item() == pytest.approx(0.1 * mask.mean().item(), rel=1e-4)
    assert terms["valid"].item() == 0
    parts = [terms[k] for k in ("valid", "hole", "perceptual", "style", "tv")]
    expected = sum(w * t for w, t in zip((1, 6, 0.05, 120, 0.1), parts))
    assert total.item() == pytest.approx(expected.item())
    # no weights anywhere: a clear error when training is set up, naming where the file goes
    monkeypatch.delenv("INPAINTGAN_VGG16", raising=False)
    monkeypatch.setenv("INPAINTGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(FileNotFoundError, match="INPAINTGAN_VGG16.*vgg16-397923af.pth"):
        _tiny(loss="liu").configure_optimizers(TrainConfig())
    with pytest.raises(FileNotFoundError, match="not found"):
        _tiny(loss="liu", vgg_weights=str(tmp_path / "nope.pth")).configure_optimizers(TrainConfig())
    monkeypatch.setenv("INPAINTGAN_VGG16", str(tmp_path / "vgg16.pth"))
    assert _tiny(loss="liu").perceptual_network() is not None


def test_liu_loss_train_step_updates_generator_only(tmp_path):
    _fake_vgg_file(tmp_path / "vgg16.pth")
    m = _tiny(loss="liu", vgg_weights=str(tmp_path / "vgg16.pth"))
    opts = m.configure_optimizers(TrainConfig(lr=1e-3))
    ctx = TrainContext(opts, torch.device("cpu"))
    g0, d0 = _snapshot(m.generator), _snapshot(m.discriminator)
    m.discriminator.eval().requires_grad_(False)  # what the trainer does in the completion phase
    logs = m.train_step({"image": torch.rand(2, 3, 32, 32), "mask": _two_holes()}, Phase("completion", 1, {"generator"}), 0, ctx)
    assert set(logs) >= {"loss_liu", "loss_hole", "loss_valid", "loss_perceptual", "loss_style", "loss_tv"}
    assert all(np.isfinite(v) for v in logs.values())
    assert _changed(g0, _snapshot(m.generator)) and not _changed(d0, _snapshot(m.discriminator))
    assert not any("vgg" in k or "features" in k for k in m.state_dict())  # VGG stays out of checkpoints


# ------------------------------------------------------------------------------ two_rect protocol


def test_two_rect_protocol():
    assert "two_rect" in PROTOCOLS
    a, b = get_protocol("two_rect", seed=1), get_protocol("two_rect", seed=1)
    masks = [a.mask(i, 64, 64) for i in range(8)]
    assert all(np.array_equal(masks[i], b.mask(i, 64, 64)) for i in reversed(range(8)))
    assert any(not np.array_equal(masks[i], get_protocol("two_rect", seed=2).mask(i, 64, 64)) for i in range(8))
    for m in masks:
        n, labels = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
        assert n - 1 == 2
        boxes = sorted((hole_bbox((labels == k).astype(np.float32)) for k in (1, 2)), key=lambda bb: bb[1])
        assert boxes[0][3] <= 64 // 3 <= boxes[1][1]  # left third / right two thirds
        for y0, x0, y1, x1 in boxes:
            assert 10 <= y1 - y0 <= 24 and x1 - x0 <= 24  # 5-12 px at 32, scaled x2


# ------------------------------------------------------------------ pre-fill + residual (the default model)


def test_telea_prefill_residual_starts_at_the_prefill_and_checks_flags():
    from inpaintgan.postprocess import prefill_telea, prefill_telea_tensor

    m = _tiny(partial=False, prefill="telea", residual=True).eval()
    image = torch.rand(2, 3, 32, 32).mul(255).round().div(255)  # 8-bit values: the pre-fill is exact
    mask = _two_holes()
    pre = prefill_telea_tensor(image, mask)
    # the batch helper is the array function image by image; known pixels untouched
    u8 = (image[1].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    ref = prefill_telea(u8, mask[1, 0].numpy())
    assert np.array_equal((pre[1].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), ref)
    assert torch.equal(pre[mask.expand_as(pre) < 0.5], image[mask.expand_as(image) < 0.5])
    assert not torch.allclose(pre, image)  # the hole did change
    # zero-initialised correction: the untrained model returns exactly the fast-marching fill
    assert torch.equal(m.inpaint(image, mask), pre)
    # one training step moves it off the pre-fill, towards lower loss
    m.train()
    opt = torch.optim.Adam(m.generator.parameters(), 1e-2)
    losses = []
    for _ in range(15):
        loss, _ = m.reconstruction_loss(m.complete(image, mask), image, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    with pytest.raises(ValueError, match="partial=false"):
        _tiny(partial=True, prefill="telea")
    with pytest.raises(ValueError, match="unknown pconv prefill 'ns'"):
        _tiny(partial=False, prefill="ns")


def test_hole_ssim_loss_is_the_metric_and_ignores_known_pixels():
    from inpaintgan.losses import hole_ssim_loss
    from inpaintgan.metrics import ssim

    torch.manual_seed(1)
    target = torch.rand(2, 3, 32, 32)
    mask = _two_holes()
    pred = (target + 0.2 * torch.randn_like(target)).clamp(0, 1).requires_grad_(True)
    loss = hole_ssim_loss(pred, target, mask)
    comp = torch.where(mask > 0.5, pred.detach(), target)
    # the loss is 1 - the evaluation's hole SSIM (pooled over the batch's hole pixels; equal holes here)
    assert loss.item() == pytest.approx(1 - ssim(comp, target, mask).mean().item(), abs=1e-5)
    assert hole_ssim_loss(target.clone(), target, mask).item() == pytest.approx(0.0, abs=1e-6)
    (grad,) = torch.autograd.grad(loss, pred)
    assert grad[mask.expand_as(grad) < 0.5].abs().max() == 0  # known pixels come from the target
    assert grad[mask.expand_as(grad) > 0.5].abs().max() > 0


def test_partial_warm_start_from_a_different_architecture(tmp_path):
    from inpaintgan.checkpoints import CheckpointError, load_weights_into

    src = _tiny()  # partial convolutions, 3 input channels, sigmoid output
    with torch.no_grad():
        for p in src.generator.parameters():
            p.add_(1.0)  # distinguishable from a fresh initialisation
    path = save_model(src, tmp_path / "v1.safetensors")
    dst = _tiny(partial=False, prefill="telea", residual=True)  # 4 input channels, residual
    with pytest.raises(CheckpointError, match="do not fit"):
        load_weights_into(dst, path)
    skipped = load_weights_into(dst, path, strict=False)
    assert any("encoder.0.conv.weight (input channels 3 -> 4" in s for s in skipped)
    assert any("re-zeroed" in s for s in skipped)
    s_sd, d_sd = src.generator.state_dict(), dst.generator.state_dict()
    assert torch.equal(d_sd["encoder.1.conv.weight"], s_sd["encoder.1.conv.weight"])
    w = d_sd["encoder.0.conv.weight"]
    assert torch.equal(w[:, :3], s_sd["encoder.0.conv.weight"]) and w[:, 3:].abs().max() == 0
    assert d_sd["output.conv.weight"].abs().max() == 0  # the residual still starts at the pre-fill


def test_width_multiplier_is_width_mult_and_the_old_name_still_reads():
    """pconv's width is a multiplier (a channel count in every other method): ``width_mult`` /
    ``d_width_mult``; the old names still load, with a DeprecationWarning, from keywords, overrides
    and model files."""
    from inpaintgan.config import ConfigError, from_dict

    with pytest.warns(DeprecationWarning, match="renamed to 'width_mult'"):
        cfg = PConvConfig(width=0.125, d_width=0.25)
    assert (cfg.width_mult, cfg.d_width_mult) == (0.125, 0.25) and cfg.width == 0.125
    with pytest.warns(DeprecationWarning):
        run = load_config(None, ["method=pconv", "model.width=0.5", "model.d_width=0.75"])
    assert (run.model.width_mult, run.model.d_width_mult) == (0.5, 0.75)
    with pytest.raises(ConfigError, match="keep one"):
        from_dict(PConvConfig, {"width": 0.5, "width_mult": 0.5}, "model")
    assert "width" not in TrainConfig.__dataclass_fields__ and "width_mult" in PConvConfig.__dataclass_fields__
