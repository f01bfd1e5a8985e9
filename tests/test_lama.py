"""The lama method (the default model's method): networks, losses and one training step, each
checked against a computation written here from the definitions."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from conftest import FakeTrainContext
from inpaintgan.checkpoints import load_model, save_model
from inpaintgan.config import load_config
from inpaintgan.masks import LAMA_MAX_AREA, build_mask_generator
from inpaintgan.methods.lama import (
    FFC,
    LaMa,
    LaMaConfig,
    LaMaGenerator,
    PatchDiscriminator,
    diff_augment,
    ema_update,
    fake_patch_labels,
    feature_matching,
    r1_penalty,
)
from inpaintgan.postprocess import prefill_telea_tensor


class _Ctx(FakeTrainContext):
    def __init__(self, method, lr=1e-3):
        super().__init__(method, lr, betas=(0.9, 0.999))


def tiny(**kw) -> LaMa:
    torch.manual_seed(0)
    cfg = dict(width=4, downsamples=2, blocks=1, d_width=4, d_layers=2, augment=(), prefill="telea", residual=False)
    cfg.update(kw)
    return LaMa(LaMaConfig(**cfg), image_size=16)


def batch(n=2, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, size, size, generator=g)
    mask = torch.zeros(n, 1, size, size)
    mask[:, :, 4:10, 5:12] = 1
    return image, mask


# ------------------------------------------------------------------------------------ networks


def test_generator_layer_list_at_the_preset_width():
    g = LaMaGenerator(3, width=32, downsamples=3, blocks=6, ffc=True)
    convs = [m for m in g.encoder if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (4, 32, 7, 1), (32, 64, 3, 2), (64, 128, 3, 2), (128, 256, 3, 2)]  # fmt: skip
    assert len(g.blocks) == 6 and all(len(b.body) == 2 and isinstance(b.body[0], FFC) for b in g.blocks)
    ffc = g.blocks[0].body[0]
    assert (ffc.cl, ffc.cg) == (64, 192)  # LaMa's 0.75 of the channels in the global branch
    ups = [m for m in g.decoder if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in ups] == [(256, 128), (128, 64), (64, 32)]
    assert sum(isinstance(m, torch.nn.Upsample) for m in g.decoder) == 3
    assert (g.output.in_channels, g.output.out_channels, g.output.kernel_size[0]) == (32, 3, 7)
    dil = LaMaGenerator(3, 8, 2, blocks=3, ffc=False)
    assert [b.body[0].dilation[0] for b in dil.blocks] == [2, 4, 8]


def test_fourier_blocks_see_the_whole_image_and_dilated_ones_do_not():
    torch.manual_seed(0)
    x = torch.zeros(1, 4, 64, 64)
    y = x.clone()
    y[:, :, 0, 0] = 1  # one corner pixel
    for ffc, reaches in ((True, True), (False, False)):
        g = LaMaGenerator(3, 4, downsamples=1, blocks=1, ffc=ffc).eval()
        with torch.no_grad():
            far = (g(y) - g(x))[..., 48:, 48:].abs().max()  # the opposite corner
        assert (far > 1e-7) == reaches


def test_residual_generator_starts_as_its_prefill_and_keeps_known_pixels():
    m = tiny(residual=True).eval()
    image, mask = batch()
    with torch.no_grad():
        out = m.inpaint(image, mask)
    assert torch.equal(out, prefill_telea_tensor(image, mask))
    assert torch.equal(out[mask.expand_as(out) < 0.5], image[mask.expand_as(image) < 0.5])


def test_discriminator_layers_and_patch_labels():
    d = PatchDiscriminator(3, 8, 3)
    strides = [layer[0].stride[0] for layer in d.features] + [d.head.stride[0]]
    assert strides == [2, 2, 2, 1, 1] and all(layer[0].kernel_size[0] == 4 for layer in d.features)
    assert [layer[0].out_channels for layer in d.features] == [8, 16, 32, 64]
    mask = torch.zeros(1, 1, 8, 8)
    mask[0, 0, 1, 6] = 1  # one hole pixel in the top-right 4x4 cell
    lab = fake_patch_labels(mask, (2, 2))
    assert lab[0, 0].tolist() == [[0.0, 1.0], [0.0, 0.0]]


def test_feature_matching_r1_and_ema_from_their_definitions():
    a = [torch.ones(1, 2, 2, 2), torch.zeros(1, 1, 3, 3)]
    assert feature_matching(a, [t.clone() for t in a]) == 0
    b = [a[0] + 0.5, a[1] - 1.0]
    assert feature_matching(b, a).item() == pytest.approx((0.5 + 1.0) / 2)
    w = torch.randn(1, 3, 4, 4)
    real = torch.rand(2, 3, 4, 4)
    # D(x) = <w, x> per sample: the gradient is w for every sample, so the penalty is |w|^2
    assert r1_penalty(lambda x: (x * w).flatten(1).sum(1), real).item() == pytest.approx(float(w.pow(2).sum()), rel=1e-5)
    ema, model = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    e0, m0 = ema.weight.detach().clone(), model.weight.detach().clone()
    ema_update(ema, model, 0.9)
    assert torch.allclose(ema.weight, 0.9 * e0 + 0.1 * m0)


def test_diff_augment_moves_images_and_mask_together():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    mask = torch.zeros(3, 1, 16, 16)
    mask[:, :, 6:9, 6:9] = 1
    (a, b), m = diff_augment([x, x.clone()], mask, ("color", "translation"), torch.Generator().manual_seed(1))
    assert torch.equal(a, b)  # one set of parameters for the pair
    assert torch.equal(m.sum((1, 2, 3)), mask.sum((1, 2, 3))) or (m.sum() < mask.sum())  # moved, maybe cut by the border
    assert not torch.equal(m, mask)
    (c,), m2 = diff_augment([x], mask, (), torch.Generator())
    assert torch.equal(c, x) and torch.equal(m2, mask)


def test_wide_training_masks_are_large_and_bounded():
    gen = build_mask_generator(load_config("configs/default_lama.yaml").masks)
    import numpy as np

    ratios = [gen(np.random.default_rng(i), 128, 128).mean() for i in range(200)]
    assert max(ratios) <= LAMA_MAX_AREA and min(ratios) > 0
    assert np.mean(ratios) > 0.15  # wide: LaMa's training masks cover a large part of the image


# ------------------------------------------------------------------------------------ the training step


@pytest.mark.parametrize("mask_aware", [True, False])
def test_train_step_losses_equal_their_definitions(mask_aware):
    m = tiny(mask_aware_d=mask_aware, r1_every=1, r1_gamma=0.5, l1_hole_weight=3.0)
    m.train()
    image, mask = batch()
    g0, d0 = copy.deepcopy(m.generator), copy.deepcopy(m.discriminator)
    ema0 = copy.deepcopy(m.generator_ema)
    # expected, from the definitions, with the networks as they were before the step
    pre = prefill_telea_tensor(image, mask)
    pred = (g0(torch.cat([pre * 2 - 1, mask], 1)) + 1) / 2
    fake = torch.where(mask > 0.5, pred, image) * 2 - 1
    real = image * 2 - 1
    lf, ff = d0(fake)
    lr_, fr = d0(real)
    fm = sum((a - b).abs().mean() for a, b in zip(ff, fr)) / len(ff)
    err = (pred - image).abs()
    cfg = m.cfg
    want_g = (cfg.adv_weight * F.softplus(-lf).mean() + cfg.fm_weight * fm + cfg.l1_known_weight * (err * (1 - mask)).mean()
              + cfg.l1_hole_weight * (err * mask).mean())  # fmt: skip
    lab = F.adaptive_max_pool2d(mask, lf.shape[-2:]) if mask_aware else torch.ones_like(lf)
    want_fake = (F.softplus(lf) * lab + F.softplus(-lf) * (1 - lab)).mean()
    want_real = F.softplus(-lr_).mean()
    real_g = real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(d0(real_g)[0].sum(), real_g)
    want_r1 = grad.pow(2).flatten(1).sum(1).mean()
    want_g, want_fake, want_real, want_r1 = (t.detach() for t in (want_g, want_fake, want_real, want_r1))

    logs = m.train_step({"image": image, "mask": mask}, None, 0, _Ctx(m))
    assert logs["loss_g"] == pytest.approx(float(want_g), rel=1e-5)
    assert logs["d_fake"] == pytest.approx(float(want_fake), rel=1e-5)
    assert logs["d_real"] == pytest.approx(float(want_real), rel=1e-5)
    assert logs["r1"] == pytest.approx(float(want_r1), rel=1e-4)
    assert logs["loss_d"] == pytest.approx(float(want_fake + want_real + cfg.r1_gamma / 2 * want_r1), rel=1e-5)
    # the step changed G and D, and moved the EMA by (1 - decay) towards the new G
    changed = lambda a, b: any(not torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # noqa: E731
    assert changed(m.generator, g0) and changed(m.discriminator, d0)
    for pe, pe0, pg in zip(m.generator_ema.parameters(), ema0.parameters(), m.generator.parameters()):
        assert torch.allclose(pe, cfg.ema_decay * pe0 + (1 - cfg.ema_decay) * pg, atol=1e-7)


def test_r1_is_lazy_and_only_on_real_images():
    m = tiny(r1_every=3, r1_gamma=1.0)
    m.train()
    image, mask = batch()
    ctx = _Ctx(m)
    with_r1 = [("r1" in m.train_step({"image": image, "mask": mask}, None, s, ctx)) for s in range(4)]
    assert with_r1 == [True, False, False, True]
    # the penalty is taken on the real batch: a fake-independent value (same real, another mask)
    m2 = tiny(r1_every=1, r1_gamma=1.0)
    a = m2.train_step({"image": image, "mask": mask}, None, 0, _Ctx(m2))["r1"]
    m3 = tiny(r1_every=1, r1_gamma=1.0)
    other = torch.zeros_like(mask)
    other[:, :, 0:3, 0:3] = 1
    b = m3.train_step({"image": image, "mask": other}, None, 0, _Ctx(m3))["r1"]
    assert a == pytest.approx(b, rel=1e-6)


def test_exported_model_loads_and_infers_with_the_ema_generator(tmp_path):
    m = tiny(residual=True, prefill="telea")
    m.train()
    image, mask = batch()
    ctx = _Ctx(m)
    for s in range(2):
        m.train_step({"image": image, "mask": mask}, None, s, ctx)
    path = save_model(m, tmp_path / "m.safetensors", half=False)
    loaded, meta = load_model(path)
    assert meta["method"] == "lama"
    with torch.no_grad():
        out = loaded.inpaint(image, mask)
        want = torch.where(mask > 0.5, (m.predict(image, mask, m.generator_ema)).clamp(0, 1), image)
    assert torch.equal(out, want)
    keep = mask.expand_as(out) < 0.5
    assert torch.equal(out[keep], image[keep])
    assert not torch.equal(out, loaded.composite(loaded.predict(image, mask, m.generator).clamp(0, 1), image, mask))


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="prefill"):
        tiny(prefill="magic")
    with pytest.raises(ValueError, match="residual needs a pre-fill"):
        tiny(prefill="none", residual=True)
    with pytest.raises(ValueError, match="augment"):
        tiny(augment=("cutout",))


def test_the_embedded_default_model_loads_offline_and_keeps_known_pixels():
    import numpy as np

    from inpaintgan.checkpoints import MODEL_ZOO
    from inpaintgan.inpainter import Inpainter

    inp = Inpainter.from_pretrained("default", device="cpu")
    assert inp.method.name == "lama" and inp.method.cfg.prefill == "patchmatch" and inp.method.cfg.residual
    assert inp.working_size == MODEL_ZOO["default"]["image_size"] == 256 and inp.auto_full_factor == 1.0
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:80]
    img = np.stack([(xx * 3) % 256, (yy * 2) % 256, ((xx + yy) * 5) % 256], -1).astype(np.uint8)
    img = np.clip(img.astype(int) + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8)
    hole = np.zeros((96, 80), bool)
    hole[30:60, 20:50] = True
    out = inp(img, hole)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out[~hole], img[~hole])  # known pixels bit for bit
    assert np.abs(out[hole].astype(int) - img[hole].mean(0)).mean() > 5  # a textured fill, not a flat colour
    smooth = Inpainter.from_pretrained("smooth", device="cpu")
    assert smooth.method.name == "pconv"


@pytest.mark.parametrize("prefill", ["telea", "patchmatch"])
def test_dataset_prefill_equals_the_training_steps_own(prefill, tmp_path):
    """The training dataset computes the method's pre-fill per sample (in the loader's workers); the
    step gives the same losses with it as when it computes the pre-fill itself."""
    import numpy as np

    from conftest import write_image_folder
    from inpaintgan.data.folder import ImageFolder
    from inpaintgan.data.inpainting import InpaintingDataset
    from inpaintgan.masks import lama_wide

    root = write_image_folder(tmp_path / "d", n=4, size=24)
    ds = InpaintingDataset(ImageFolder(root), 16, lama_wide, prefill=LaMa.dataset_prefill(LaMaConfig(prefill=prefill)))
    samples = [ds[i] for i in range(2)]
    b = {k: torch.stack([s[k] for s in samples]) for k in ("image", "mask", "prefill")}
    keep = b["mask"].expand_as(b["image"]) < 0.5
    assert torch.equal(b["prefill"][keep], b["image"][keep]) and not torch.equal(b["prefill"], b["image"])
    logs = []
    for with_prefill in (True, False):
        m = tiny(prefill=prefill, residual=True)
        m.train()
        batch = b if with_prefill else {"image": b["image"], "mask": b["mask"]}
        logs.append(m.train_step(batch, None, 0, _Ctx(m)))
    assert logs[0] == pytest.approx(logs[1], rel=1e-6)
    assert np.isfinite(list(logs[0].values())).all()
    assert LaMa.dataset_prefill(LaMaConfig(prefill="none")) == "none"


def test_gpu_script_runs_end_to_end_on_cpu_with_a_tiny_config(tmp_path):
    """scripts/gpu_default_model.sh (the lent-GPU run of the default model): pack a shard, train
    warm-started from the shipped model, export; here on the CPU with a tiny config."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from conftest import write_image_folder
    from inpaintgan.data.shard import pack

    root = Path(__file__).resolve().parents[1]
    photos = write_image_folder(tmp_path / "photos", n=10, size=40)
    info = pack(photos, tmp_path / "shard.zip", size=32, max_mb=1, seed=1)
    assert info["written"] == 10 and info["skipped"] == 0
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path / "out"),
           "EXTRA": "--set data.image_size=32 --set train.batch_size=2 --set data.num_workers=0 --set model.steps=2 "
                    "--set model.d_warmup=1 --set train.device=cpu"}  # fmt: skip
    r = subprocess.run(["bash", "scripts/gpu_default_model.sh", str(tmp_path / "shard.zip"), "1"], cwd=root, env=env,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    model, meta = load_model(tmp_path / "out" / "default.safetensors")
    assert meta["method"] == "lama" and meta["image_size"] == 256 and meta["training"]["steps"] == 3  # 1 D-only + 2
    assert meta["auto_full_factor"] == 1.0
