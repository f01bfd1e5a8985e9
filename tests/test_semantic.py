"""Semantic inpainting (Yeh et al. 2017) + collaborative sampling (Liu et al. 2019): importance
weights, the z search, refinement and its stopping rule, the masked variant, shaping, model files."""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest
import torch

from conftest import FakeTrainContext, write_image_folder
from inpaintgan.checkpoints import load_model, save_model
from inpaintgan.config import ConfigError, load_config
from inpaintgan.inpainter import Inpainter
from inpaintgan.methods.semantic import (
    SemanticConfig,
    SemanticInpainting,
    context_loss,
    heatmap_to_rgb,
    importance_weights,
    prior_loss,
    refinement_heatmap,
    report_figure,
)
from inpaintgan.training.trainer import Trainer

S = 64  # the DCGAN's size


class _Ctx(FakeTrainContext):
    """The parts of the trainer's TrainContext that train_step uses."""


def shapes(n: int, seed: int = 0) -> torch.Tensor:
    """Grey squares and discs on a dark background, (n, 1, 64, 64) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(S * 1.0), torch.arange(S * 1.0), indexing="ij")
    out = torch.zeros(n, 1, S, S)
    for i in range(n):
        cx, cy, r = (torch.rand(3, generator=g) * torch.tensor([24.0, 24.0, 10.0]) + torch.tensor([20.0, 20.0, 8.0])).tolist()
        if i % 2:
            out[i, 0] = (((xx - cx) ** 2 + (yy - cy) ** 2) < r * r).float()
        else:
            out[i, 0] = (((xx - cx).abs() < r) & ((yy - cy).abs() < r)).float()
    return out * 0.8 + 0.1


def center_mask(n: int) -> torch.Tensor:
    m = torch.zeros(n, 1, S, S)
    m[:, :, 16:48, 16:48] = 1  # the centred square of 25% area
    return m


@pytest.fixture(scope="module")
def trained():
    """A tiny DCGAN trained for 30 steps on shapes (eval mode, d_real_median calibrated)."""
    torch.manual_seed(0)
    method = SemanticInpainting(SemanticConfig(ngf=8, ndf=8, steps_gan=30, lr=0.05, progress=False), S, channels=1)
    ctx, data = _Ctx(method), shapes(256)
    phase = method.phases()[0]
    method.train()
    for step in range(30):
        idx = torch.randint(0, len(data), (16,), generator=ctx.generator)
        logs = method.train_step({"image": data[idx], "mask": center_mask(16)}, phase, step, ctx)
    assert set(logs) == {"loss_d", "loss_g", "d_real_median"}  # the last gan step calibrates
    assert torch.isfinite(method.d_real_median).all()
    method._preview = False  # this test calls inpaint as a user would
    return method.eval()


def test_importance_weights_hand_computed():
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, 0, :2] = 1  # hole: the two top-left pixels
    # each known pixel: hole pixels / pixels of its 3x3 neighbourhood inside the image; the hole: 0
    expected = torch.tensor(
        [
            [0, 0, 1 / 6, 0],  # (0,2): 2x3 window holding (0,1); (0,3): 2x2 window, no hole
            [1 / 3, 2 / 9, 1 / 9, 0],  # (1,0): 3x2 window, both; (1,1): 3x3, both; (1,2): 3x3, (0,1)
            [0, 0, 0, 0],  # rows 1-3 hold no hole
            [0, 0, 0, 0],
        ]
    )
    assert torch.allclose(importance_weights(mask, 3)[0, 0], expected, atol=1e-7)
    assert torch.equal(importance_weights(mask, 1), torch.zeros_like(mask))  # a 1x1 window sees itself only
    with pytest.raises(ValueError, match="odd"):
        importance_weights(mask, 4)


def test_prior_loss_is_log_one_minus_d_and_stable():
    logits = torch.tensor([-5.0, 0.0, 3.0])
    assert torch.allclose(prior_loss(logits), torch.log(1 - torch.sigmoid(logits)), atol=1e-6)
    big = prior_loss(torch.tensor([200.0, -200.0]))
    assert torch.isfinite(big).all() and big[0] == -200.0  # log(1 - sigmoid(200)) in float32 would be -inf


def test_search_lowers_the_loss_and_more_iterations_never_raise_it(trained):
    x, mask = shapes(6, seed=5), center_mask(6)
    r20 = trained.search_latent(x, mask, iterations=20, restarts=2)
    r40 = trained.search_latent(x, mask, iterations=40, restarts=2)
    assert (r20["loss"] < r20["initial_loss"]).all()
    assert torch.equal(r20["initial_loss"], r40["initial_loss"])  # the same seeded starting points
    assert (r40["loss"] <= r20["loss"]).all()
    # the reported loss is the total loss of the returned z
    with torch.no_grad():
        g = trained.generator(r40["z"])
        total = context_loss(g, x * 2 - 1, importance_weights(mask, 7)) + 1e-4 * prior_loss(trained.discriminator(g))
    assert torch.allclose(total, r40["loss"], rtol=1e-5, atol=1e-4)
    assert r40["z"].abs().max() <= 1  # the uniform prior's clipping


def test_inpaint_keeps_known_pixels_is_seeded_and_leaves_global_rng_alone(trained):
    x, mask = shapes(3, seed=7), center_mask(3)
    mask[2, :, 2:9, 50:60] = 1  # a second hole
    known = (mask < 0.5).expand_as(x)
    state = torch.get_rng_state()
    a = trained.inpaint(x, mask, iterations=4, restarts=2, collaborative=True, refine_steps=3, stop_rule="none")
    b = trained.inpaint(x, mask, iterations=4, restarts=2, collaborative=True, refine_steps=3, stop_rule="none")
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b)
    assert torch.equal(a[known], x[known]) and not torch.equal(a, x)
    blended = trained.inpaint(x, mask, iterations=2, restarts=1, blend="poisson")
    assert torch.equal(blended[known], x[known])
    with torch.inference_mode():  # how the Inpainter calls it; the search still needs gradients
        xi, mi = x.clone(), mask.clone()
        out = trained.inpaint(xi, mi, iterations=2, restarts=1)
    assert torch.equal(out[known], x[known])
    with pytest.raises(TypeError, match="unknown inpaint option"):
        trained.inpaint(x, mask, iterationz=3)
    with pytest.raises(ValueError, match="64x64"):
        trained.inpaint(x[..., :32, :32], mask[..., :32, :32])


def test_zero_refinement_steps_return_the_proposal_exactly(trained):
    x, mask = shapes(4, seed=3), center_mask(4)
    d = trained.inpaint_detailed(x, mask, iterations=3, restarts=1, refine_steps=0, stop_rule="none")
    assert torch.equal(d["refined"], d["proposal"]) and torch.equal(d["refined_raw"], d["proposal_raw"])
    assert torch.equal(d["heatmap"], torch.zeros(4, 1, S, S)) and (d["steps"] == 0).all()
    assert torch.equal(d["d_refined"], d["d_proposal"])
    # collaborative=False: inpaint returns the proposal composite
    assert torch.equal(trained.inpaint(x, mask, iterations=3, restarts=1), d["proposal"])


def test_masked_refinement_changes_the_hole_far_more_than_the_known_region(trained):
    x, mask = shapes(4, seed=11), center_mask(4)
    hole = mask.bool().expand_as(x)
    ratios = {}
    for masked in (True, False):
        d = trained.inpaint_detailed(
            x, mask, iterations=3, restarts=1, refine_steps=15, stop_rule="none", refine_masked=masked
        )
        assert (d["steps"] == 15).all()
        assert (d["d_refined"] > d["d_proposal"]).all()  # refinement raises D's realness
        assert torch.equal(d["refined"][~hole], x[~hole])  # the composite keeps known pixels exactly
        change = (d["refined_raw"] - d["proposal_raw"]).abs()
        ratios[masked] = float(change[hole].mean() / change[~hole].mean())
    assert ratios[True] > 5 and ratios[True] > 2 * ratios[False]


class _HoleMeanCritic(torch.nn.Module):
    """A discriminator whose logit is known in closed form: 10 x (mean of the hole + mean of the
    known pixels). Its gradient raises every hole pixel by the same amount, so the refinement's
    trajectory can be simulated on scalars."""

    def __init__(self, mask):
        super().__init__()
        self.register_buffer("m", mask)

    def forward(self, x):
        m = self.m
        hole = (x * m).flatten(1).sum(1) / m.flatten(1).sum(1)
        known = (x * (1 - m)).flatten(1).sum(1) / (1 - m).flatten(1).sum(1)
        return 10 * (hole + known)


def test_median_rule_stops_each_sample_when_d_reaches_the_threshold():
    # pixel-space refinement (refine_layer = every block: h is the image) against a critic with a
    # closed-form logit, so the step at which each sample must stop is computed independently here
    n_blocks = 5  # 64 px: 4x4 -> 8 -> 16 -> 32 -> 64
    method = SemanticInpainting(SemanticConfig(ngf=4, ndf=4, refine_layer=n_blocks, progress=False), S, 1).eval()
    mask = center_mask(5)
    n_hole = float(mask[0].sum())
    known = [0.0, 0.0, 0.0, -0.5, -0.9]  # the known pixels' value (model space, [-1, 1]) per sample
    start = [0.5, 0.0, -0.5, -1.0, 0.0]  # the hole's initial value per sample
    y = torch.stack([torch.full((1, S, S), k) for k in known])
    h = torch.where(mask > 0.5, torch.stack([torch.full((1, S, S), c) for c in start]), y)
    method.discriminator = _HoleMeanCritic(center_mask(1))  # the same hole in every sample
    thr, step_size, max_steps = 2.0, 0.02 * n_hole, 50

    def expected_steps(k, c):
        # the rule, simulated: stop before a step once logit >= thr; each step moves every hole pixel by
        # step_size * sigmoid(-logit) * 10 / n_hole (d softplus(-logit) / dx), clamped to [-1, 1]
        for t in range(max_steps):
            logit = 10 * (c + k)
            if logit >= thr:
                return t
            c = min(1.0, c + step_size * (1 / (1 + math.exp(logit))) * 10 / n_hole)
        return max_steps

    want = [expected_steps(k, c) for k, c in zip(known, start)]
    assert want[0] == 0 and 0 < want[1] < want[2] < max_steps and want[4] == max_steps  # the cases covered
    r = method.refine(h, y, mask, steps=max_steps, step_size=step_size, stop_rule="median", threshold=thr)
    assert r["steps"].tolist() == want
    assert torch.equal(r["x"][0], h[0])  # a sample that passed at once is the proposal, bit for bit
    final = r["logit"]
    assert (final[:4] >= thr).all() and final[4] < thr  # stopped samples reached it; the last never can
    for i in (1, 2, 3):  # ... and each stopped at the first step where it did
        before = method.refine(h[i : i + 1], y[i : i + 1], mask[i : i + 1], steps=want[i] - 1,
                               step_size=step_size, stop_rule="none")
        assert before["logit"][0] < thr


def test_calibrate_sets_the_median_of_real_logits(trained):
    x = shapes(8, seed=2)
    med = trained.calibrate(x)
    with torch.no_grad():
        expected = trained.discriminator(x * 2 - 1).quantile(0.5)
    assert med == pytest.approx(float(expected), abs=1e-6) and float(trained.d_real_median) == pytest.approx(med)


def test_probabilistic_rule_is_seeded(trained):
    x, mask = shapes(6, seed=4), center_mask(6)
    kw = dict(iterations=2, restarts=1, refine_steps=10, stop_rule="probabilistic")
    a, b = trained.inpaint_detailed(x, mask, **kw), trained.inpaint_detailed(x, mask, **kw)
    assert torch.equal(a["steps"], b["steps"]) and torch.equal(a["refined"], b["refined"])


def test_heatmap_and_report_figure():
    p = torch.zeros(2, 1, 8, 8)
    r = p.clone()
    r[0, 0, 2, 3] = 0.5
    r[0, 0, 4, 4] = 0.25
    hm = refinement_heatmap(p, r)
    assert hm.shape == (2, 1, 8, 8) and hm[0, 0, 2, 3] == 1 and hm[0, 0, 4, 4] == 0.5 and hm[1].abs().sum() == 0
    assert torch.equal(refinement_heatmap(p, r, normalize=False), r)
    rgb = heatmap_to_rgb(hm)
    assert rgb.shape == (2, 3, 8, 8) and 0 <= rgb.min() and rgb.max() <= 1
    img = report_figure(p, p, hm, r, r, upscale=2, titles=False, gap=2)
    assert img.mode == "RGB" and img.size == (5 * 16 + 6 * 2, 2 * 16 + 3 * 2)
    assert report_figure(p, p, hm, r, r, upscale=1).size[1] > 2 * 8 + 3 * 2  # header row
    with pytest.raises(ValueError, match="heatmap"):
        report_figure(p, p, hm[:1], r, r)


def test_config_errors():
    with pytest.raises(ValueError, match="stop_rule"):
        SemanticInpainting(SemanticConfig(ngf=4, ndf=4, stop_rule="sometimes"), S, 1)
    with pytest.raises(ValueError, match="refine_layer"):
        SemanticInpainting(SemanticConfig(ngf=4, ndf=4, refine_layer=9), S, 1)
    with pytest.raises(ValueError, match="power-of-two"):
        SemanticInpainting(SemanticConfig(ngf=4, ndf=4), 48, 1)
    with pytest.raises(ConfigError, match="valid keys here"):
        load_config(None, ["method=semantic", "model.shaping_epochs=1"])


def test_shaping_phase_trains_d_only(tmp_path):
    data = write_image_folder(tmp_path / "images", n=12, size=S)
    out = tmp_path / "run"

    def cfg(max_steps):
        return load_config(None, [
            "method=semantic", "model.ngf=8", "model.ndf=8", "model.steps_gan=2", "model.shaping_steps=2",
            "model.refine_steps=3", "model.val_iterations=2", "model.val_restarts=1", "model.progress=false",
            f"data.root={data}", "data.grayscale=true", f"data.image_size={S}", "data.resize=resize",
            "data.flip=false", "data.val_fraction=0.2", "data.test_fraction=0.0", "masks.kind=center",
            "train.batch_size=4", f"train.out_dir={out}", "train.log_every=1", "train.sample_every=0",
            "train.ckpt_every=0", "train.val_every=0", "train.val_batches=1", "train.tensorboard=false",
            f"train.max_steps={max_steps}",
        ])  # fmt: skip

    def snap(module):
        return {k: v.detach().clone() for k, v in module.state_dict().items()}

    def changed(a, b):
        return any(not torch.equal(a[k], b[k]) for k in a)

    t0 = Trainer(cfg(0), progress=False)
    g0, d0 = snap(t0.method.generator), snap(t0.method.discriminator)
    t1 = Trainer(cfg(2), progress=False)  # the gan phase
    t1.run()
    g1, d1 = snap(t1.method.generator), snap(t1.method.discriminator)
    median_gan = float(t1.method.d_real_median)
    t2 = Trainer(cfg(4), progress=False)  # + the shaping phase, resumed from the gan checkpoint
    t2.run(resume="auto")
    g2, d2 = snap(t2.method.generator), snap(t2.method.discriminator)
    assert t1.method.channels == 1 and t2.step == 4
    assert changed(g0, g1) and changed(d0, d1)  # gan: both networks
    assert not changed(g1, g2) and changed(d1, d2)  # shaping: D only, G bit-identical (BN statistics too)
    assert torch.isfinite(torch.tensor(median_gan)) and float(t2.method.d_real_median) != median_gan
    assert (out / "samples").is_dir()  # the trainer's sample grid went through inpaint


def test_model_file_round_trip(trained, tmp_path):
    trained.d_real_median.fill_(0.375)
    path = save_model(trained, tmp_path / "semantic.safetensors")
    loaded, meta = load_model(path)
    assert meta["method"] == "semantic" and meta["image_size"] == S and meta["channels"] == 1
    assert float(loaded.d_real_median) == 0.375
    ref, got = trained.state_dict(), loaded.state_dict()
    assert ref.keys() == got.keys() and all(torch.equal(ref[k], got[k]) for k in ref)
    x, mask = shapes(2, seed=9), center_mask(2)
    kw = dict(iterations=3, restarts=1, collaborative=True, refine_steps=4)
    assert torch.equal(loaded.inpaint(x, mask, **kw), trained.inpaint(x, mask, **kw))
    # the Inpainter: a 28x28 Fashion-MNIST-sized uint8 image, resized to 64 and back, in inference mode
    quick = copy.deepcopy(trained)
    quick.cfg = dataclasses.replace(trained.cfg, iterations=2, restarts=1, collaborative=True)
    small = save_model(quick, tmp_path / "small.safetensors")
    img = (shapes(1, seed=1)[0, 0, ::2, ::2][:28, :28] * 255).to(torch.uint8).numpy()
    hole = np.zeros((28, 28), bool)
    hole[9:19, 9:19] = True
    out = Inpainter.from_pretrained(small, device="cpu")(img, hole)
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert np.array_equal(out[~hole], img[~hole]) and not np.array_equal(out, img)


def test_inference_does_not_depend_on_training_setup():
    """configure_optimizers and train_step used to switch inpaint() to the validation settings; now
    only preview_inpaint (the trainer's validation and sample grids) uses them."""
    from types import SimpleNamespace

    cfg = SemanticConfig(ngf=4, ndf=4, iterations=3, restarts=2, val_iterations=1, val_restarts=1, progress=False)
    torch.manual_seed(0)
    fresh = SemanticInpainting(cfg, S, channels=1).eval()
    torch.manual_seed(0)
    trained = SemanticInpainting(cfg, S, channels=1).eval()
    trained.configure_optimizers(SimpleNamespace(optimizer="adam", lr=1e-3, lr_d=None, betas=(0.5, 0.999)))
    x, mask = shapes(2), center_mask(2)
    assert torch.equal(fresh.inpaint(x, mask), trained.inpaint(x, mask))
    assert torch.equal(fresh.preview_inpaint(x, mask), fresh.inpaint(x, mask, iterations=1, restarts=1))
    assert not torch.equal(fresh.preview_inpaint(x, mask), fresh.inpaint(x, mask))
