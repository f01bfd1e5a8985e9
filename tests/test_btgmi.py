"""BTGMI: block insertion is output-preserving, the fade-in and the adversarial annealing follow their
schedules and survive resume, the PatchGAN labels mark exactly the patches that see the hole, PPL
behaves, the task data generators touch only their regions, and models round-trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import write_image_folder
from inpaintgan.checkpoints import load_model, save_model
from inpaintgan.config import load_config
from inpaintgan.inpainter import Inpainter
from inpaintgan.methods.base import Phase
from inpaintgan.methods.btgmi import (
    BTGMI,
    BTGMIConfig,
    MultiscaleDiscriminator,
    ala_weight,
    block_state,
    erode,
    guided_input,
    harmonization_sample,
)
from inpaintgan.training.trainer import Trainer


def tiny_cfg(**kw) -> BTGMIConfig:
    base = dict(width=4, res_blocks=1, refine_blocks=2, d_width=4, d_layers=2, num_d=2, ppl_size=16,
                steps_head=2, steps_block=4, fade_steps=3, task_probs=(0.5, 0.25, 0.25), guide_gap=2)
    base.update(kw)
    return BTGMIConfig(**base)


def tiny(seed=0, **kw) -> BTGMI:
    torch.manual_seed(seed)
    return BTGMI(tiny_cfg(**kw), image_size=32)


def rect_mask(n=2, size=32, box=(8, 10, 20, 22)):
    m = torch.zeros(n, 1, size, size)
    m[:, :, box[0] : box[2], box[1] : box[3]] = 1
    return m


# ------------------------------------------------------------------------------- block-wise growth


def test_inserting_a_block_leaves_the_output_unchanged_at_fade_in_zero():
    m = tiny().eval()
    with torch.no_grad():  # a non-trivial network: every refinement block does something (BN statistics too)
        for p in m.generator.refine.parameters():
            p.normal_(0, 0.3)
        m.generator.out.weight.normal_(0, 0.3)
        for blk in m.generator.refine:
            blk.body[1].running_mean.normal_(0, 0.5)
    x, mask = torch.rand(2, 3, 32, 32), rect_mask()
    outs = {}
    for active, alpha in [(0, 1.0), (1, 0.0), (1, 0.01), (1, 1.0), (2, 0.0), (2, 1.0)]:
        m.generator.set_blocks(active, alpha)
        outs[active, alpha] = m.complete(x, mask)
    assert torch.allclose(outs[1, 0.0], outs[0, 1.0], atol=1e-6, rtol=0)  # block 1 inserted at weight 0
    assert torch.allclose(outs[2, 0.0], outs[1, 1.0], atol=1e-6, rtol=0)  # block 2 inserted at weight 0
    assert (outs[1, 1.0] - outs[0, 1.0]).abs().max() > 1e-3  # the blocks do something once faded in
    small = (outs[1, 0.01] - outs[0, 1.0]).abs().max()
    assert 0 < small < (outs[1, 1.0] - outs[0, 1.0]).abs().max()  # and fade in continuously

    # a bypassed block is not run: its BatchNorm statistics stay put in train mode
    m.train()
    m.generator.set_blocks(1, 0.5)
    before = m.generator.refine[1].body[1].running_mean.clone()
    m.complete(x, mask)
    assert torch.equal(before, m.generator.refine[1].body[1].running_mean)


def test_fade_in_weight_follows_the_schedule():
    m = tiny()
    phases = m.phases()
    assert [p.name for p in phases] == ["head", "block1", "block2"]
    assert dict(phases[2].info) == {"block": 2, "fade_steps": 3}
    expected = {0: (0, 1.0), 1: (0, 1.0), 2: (1, 0.0), 3: (1, 1 / 3), 4: (1, 2 / 3), 5: (1, 1.0),
                6: (2, 0.0), 7: (2, 1 / 3), 9: (2, 1.0), 50: (2, 1.0)}
    for step, (active, alpha) in expected.items():
        a, w = block_state(phases, step)
        assert a == active and w == pytest.approx(alpha), step
    # without block-wise growth every block is active, fully, from step 0
    full = tiny(blockwise=False)
    assert [p.name for p in full.phases()] == ["full"] and full.phases()[0].steps == 10
    assert block_state(full.phases(), 0) == (2, 1.0)
    assert full.generator.block_weights() == [1.0, 1.0]
    # zero-length phases never start; fade_steps 0 = no fade
    assert block_state([Phase("head", 0), Phase("block1", 5, info=(("block", 1), ("fade_steps", 0)))], 0) == (1, 1.0)
    with pytest.raises(ValueError, match="fade_steps"):
        tiny(fade_steps=5)


def test_adversarial_weight_annealing_schedule():
    cfg = dict(steps_head=10, steps_block=10, refine_blocks=2, adv_start=1.0, adv_end=0.1)
    lin, exp_, none = tiny(ala="linear", **cfg), tiny(ala="exponential", **cfg), tiny(ala="none", **cfg)
    for step, want in [(0, 1.0), (10, 1.0), (15, 0.775), (20, 0.55), (30, 0.1), (100, 0.1)]:
        assert lin.adv_weight_at(step) == pytest.approx(want), step
    for step, want in [(0, 1.0), (10, 1.0), (20, 0.1**0.5), (25, 0.1**0.75), (30, 0.1)]:
        assert exp_.adv_weight_at(step) == pytest.approx(want), step
    assert all(none.adv_weight_at(s) == 1.0 for s in (0, 15, 30))
    assert ala_weight("linear", 0.5, 0.0, 0.5) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="exponential"):
        tiny(ala="exponential", adv_end=0.0)


def _overrides(data, out, *extra):
    return [
        "method=btgmi", "model.width=4", "model.res_blocks=1", "model.refine_blocks=2", "model.d_width=4",
        "model.d_layers=2", "model.num_d=2", "model.ppl_size=16", "model.steps_head=2", "model.steps_block=4",
        "model.fade_steps=4", "model.task_probs=[0.5,0.25,0.25]", "model.guide_gap=2",
        f"data.root={data}", "data.image_size=32", "data.val_fraction=0.2", "data.test_fraction=0.0",
        "masks.kind=glcic_rect", "train.batch_size=4", f"train.out_dir={out}", "train.log_every=1",
        "train.sample_every=0", "train.ckpt_every=0", "train.val_every=0", "train.val_batches=1",
        "train.tensorboard=false", "train.lr=0.001", "train.device=cpu", *extra,
    ]


def test_resume_mid_fade_equals_straight_run(tmp_path):
    data = write_image_folder(tmp_path / "img", n=12, size=32)
    straight = Trainer(load_config(None, _overrides(data, tmp_path / "a", "train.max_steps=6")), progress=False)
    fresh = {k: v.clone() for k, v in straight.method.state_dict().items()}
    straight.run()
    first = Trainer(load_config(None, _overrides(data, tmp_path / "b", "train.max_steps=4")), progress=False)
    first.run()
    g = first.method.generator
    assert int(g.active_blocks) == 1 and float(g.fade_alpha) == pytest.approx(1 / 4)  # stopped mid-fade (step 3)
    second = Trainer(load_config(None, _overrides(data, tmp_path / "b", "train.max_steps=6")), progress=False)
    second.run(resume="auto")
    assert second.step == straight.step == 6
    for t in (straight, second):  # step 5 was the last: block 1 at 3/4
        assert int(t.method.generator.active_blocks) == 1
        assert float(t.method.generator.fade_alpha) == pytest.approx(3 / 4)
    a, b = straight.method.state_dict(), second.method.state_dict()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6, rtol=0), k
    # block 2 has not been inserted: neither trained nor its statistics moved
    for k in a:
        if k.startswith("generator.refine.1."):
            assert torch.equal(a[k], fresh[k]), k
        if k.startswith("generator.refine.0.") and k.endswith("weight"):
            assert not torch.equal(a[k], fresh[k]), k  # block 1 was trained while fading in
    x, mask = torch.rand(2, 3, 32, 32), rect_mask()
    outs = [t.method.eval().inpaint(x, mask) for t in (straight, second)]
    assert torch.allclose(outs[0], outs[1], atol=1e-6, rtol=0)


# --------------------------------------------------------------------------------- discriminator


def test_patch_labels_hand_example():
    # one PatchGAN with n_layers=1: 4x4 convs (stride 2, 1, 1; padding 2) -> output j sees input
    # pixels [2j - 10, 2j + 5]; an 8x8 input gives a 7x7 map
    d = MultiscaleDiscriminator(3, width=2, n_layers=1, num_d=1, norm="none")
    mask = torch.zeros(1, 1, 8, 8)
    mask[0, 0, 7, 7] = 1  # bottom-right pixel: patches j with 2j - 10 <= 7 <= 2j + 5, j in 1..6
    (lab,) = d.patch_labels(mask)
    want = torch.zeros(7, 7)
    want[1:7, 1:7] = 1
    assert lab.shape == (1, 1, 7, 7) and torch.equal(lab[0, 0], want)
    mask.zero_()
    mask[0, 0, 0, 0] = 1  # top-left pixel: j in 0..5
    want = torch.zeros(7, 7)
    want[0:6, 0:6] = 1
    assert torch.equal(d.patch_labels(mask)[0][0, 0], want)
    assert d(torch.zeros(1, 3, 8, 8))[0][-1].shape == (1, 1, 7, 7)


def test_patch_labels_match_each_patchs_true_receptive_field():
    """Fake iff some input pixel the patch's score depends on (its gradient support) is a hole pixel."""
    torch.manual_seed(0)
    d = MultiscaleDiscriminator(3, width=2, n_layers=2, num_d=2, norm="none")
    mask = torch.zeros(1, 1, 32, 32)
    mask[0, 0, 2:4, 27:30] = 1
    labels = d.patch_labels(mask)
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    outs = d(x)
    for scale, lab in zip(outs, labels):
        score = scale[-1]
        assert lab.shape == score.shape
        for i in range(score.shape[2]):
            for j in range(score.shape[3]):
                (g,) = torch.autograd.grad(score[0, 0, i, j], x, retain_graph=True)
                sees_hole = bool(((g.abs().sum(1) > 0) & (mask[:, 0] > 0)).any())
                assert bool(lab[0, 0, i, j] > 0) == sees_hole, (i, j)
    assert 0 < labels[0].sum() < labels[0].numel()  # both kinds of patches at the finest scale


# ------------------------------------------------------------------------------ patch perceptual loss


def test_ppl_with_discriminator_features():
    m = tiny()
    target = torch.rand(2, 3, 32, 32)
    mask = rect_mask()
    assert m.ppl_loss(target.clone(), target, mask).item() == 0.0
    pred = target.clone()
    pred[mask.expand_as(pred) > 0] = torch.rand(int(mask.sum().item()) * 3)
    pred.requires_grad_(True)
    loss = m.ppl_loss(pred, target, mask)
    assert loss.item() > 0
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in m.discriminator.parameters())  # the fixed net is not trained
    assert all(p.requires_grad for p in m.discriminator.parameters())  # and its flags are restored
    empty = m.ppl_loss(pred, target, torch.zeros_like(mask))  # no hole: nothing to compare
    assert empty.item() == 0.0


def _alexnet_file(path):
    shapes = {0: (64, 3, 11, 11), 3: (192, 64, 5, 5), 6: (384, 192, 3, 3), 8: (256, 384, 3, 3), 10: (256, 256, 3, 3)}
    g = torch.Generator().manual_seed(0)
    sd = {}
    for i, s in shapes.items():
        sd[f"features.{i}.weight"] = torch.randn(s, generator=g) * (2 / (s[1] * s[2] * s[3])) ** 0.5
        sd[f"features.{i}.bias"] = torch.zeros(s[0])
    torch.save(sd, path)
    return path


def test_ppl_with_alexnet_from_a_local_file(tmp_path, monkeypatch):
    from inpaintgan.config import TrainConfig

    # missing weights: a clear error at configure_optimizers naming where to put them
    monkeypatch.delenv("INPAINTGAN_LPIPS_ALEXNET", raising=False)
    monkeypatch.setenv("INPAINTGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(FileNotFoundError, match="model.ppl_alexnet=PATH.*alexnet-owt-7be5be79.pth"):
        tiny(ppl_net="alexnet", ppl_size=32).configure_optimizers(TrainConfig())
    with pytest.raises(FileNotFoundError, match="not found"):
        tiny(ppl_net="alexnet", ppl_size=32, ppl_alexnet=str(tmp_path / "nope.pth")).configure_optimizers(TrainConfig())

    m = tiny(ppl_net="alexnet", ppl_size=32, ppl_alexnet=str(_alexnet_file(tmp_path / "alex.pth")))
    assert set(m.configure_optimizers(TrainConfig())) == {"generator", "discriminator"}
    assert not any(k.startswith("alexnet") for k in m.state_dict())  # kept out of checkpoints
    target, mask = torch.rand(2, 3, 32, 32), rect_mask()
    assert m.ppl_loss(target.clone(), target, mask).item() == 0.0
    pred = (target + 0.3 * torch.randn_like(target) * mask).clamp(0, 1).requires_grad_(True)
    loss = m.ppl_loss(pred, target, mask)
    loss.backward()
    assert loss.item() > 0 and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in m.alexnet().parameters())
    assert m.extra_state_for_export()["ppl_net"] == "alexnet"


# -------------------------------------------------------------------------------- tasks and data


def test_harmonization_sample_changes_only_its_region():
    image = torch.rand(3, 3, 24, 24)
    region = torch.zeros(3, 1, 24, 24)
    region[0, :, 2:10, 3:12] = 1
    region[1, :, 12:24, 0:5] = 1  # sample 2: empty region
    out, reg = harmonization_sample(image, region, torch.Generator().manual_seed(1))
    inside = reg.expand_as(image) > 0.5
    assert torch.equal(reg, region)
    assert torch.equal(out[~inside], image[~inside])  # bit-identical outside
    assert torch.equal(out[2], image[2])
    for i in (0, 1):
        assert (out[i] - image[i]).abs()[inside[i]].mean() > 1e-3  # and really changed inside
    assert out.min() >= 0 and out.max() <= 1
    again, _ = harmonization_sample(image, region, torch.Generator().manual_seed(1))
    assert torch.equal(out, again)  # seeded


def test_guided_input_puts_the_guide_only_inside_the_eroded_hole():
    image, guide_img = torch.rand(1, 3, 20, 20), torch.rand(1, 3, 20, 20)
    hole = torch.zeros(1, 1, 20, 20)
    hole[0, 0, 3:15, 5:17] = 1
    x, gap, guide = guided_input(image, hole, guide_img, gap=3)
    want = torch.zeros_like(hole)
    want[0, 0, 6:12, 8:14] = 1  # the 12x12 hole eroded by 3 px on each side
    assert torch.equal(guide, want) and torch.equal(erode(hole, 3), want)
    assert torch.equal(gap, hole - want)
    g, k = guide.expand_as(x) > 0.5, hole.expand_as(x) < 0.5
    assert torch.equal(x[g], guide_img[g])  # the guide inside the eroded hole
    assert torch.equal(x[k], image[k])  # known pixels untouched
    assert (x[(gap.expand_as(x) > 0.5)] == 0).all()  # nothing in the gap
    # a hole thinner than 2 gap + 1 gets no guide: plain inpainting
    thin = torch.zeros(1, 1, 20, 20)
    thin[0, 0, 5:9, 2:18] = 1
    _, gap2, guide2 = guided_input(image, thin, guide_img, gap=3)
    assert guide2.sum() == 0 and torch.equal(gap2, thin)


def test_training_tasks_inputs_are_consistent():
    m = tiny(task_probs=(1, 1, 1))
    image, mask = torch.rand(16, 3, 32, 32), rect_mask(16)
    t = m.sample_tasks(image, mask, torch.Generator().manual_seed(0))
    assert set(t["task"].tolist()) == {0, 1, 2}
    for i, task in enumerate(t["task"].tolist()):
        known = mask[i].expand(3, -1, -1) < 0.5
        assert torch.equal(t["x"][i][known], image[i][known]) and torch.equal(t["target"][i][known], image[i][known])
        assert torch.equal(t["hole"][i] + t["guide"][i], mask[i]) and torch.equal(t["region"][i], mask[i])
        if task == 0:
            assert t["guide"][i].sum() == 0 and torch.equal(t["target"][i], image[i])
        if task == 1:
            assert t["hole"][i].sum() == 0 and torch.equal(t["guide"][i], mask[i])
        if task == 2:
            assert 0 < t["guide"][i].sum() < mask[i].sum()
    only = tiny(task_probs=(1, 0, 0)).sample_tasks(image, mask, torch.Generator().manual_seed(0))
    assert (only["task"] == 0).all()


def test_inference_preserves_known_pixels_at_any_size():
    m = tiny().eval()
    m.generator.set_blocks(2, 0.5)
    image = torch.rand(2, 3, 30, 27)  # not a multiple of 8: padded inside
    mask = torch.zeros(2, 1, 30, 27)
    mask[:, :, 5:18, 4:20] = 1
    guide_mask = torch.zeros_like(mask)
    guide_mask[:, :, 8:14, 8:15] = 1
    outs = {
        "inpaint": (m.inpaint(image, mask), mask),
        "harmonize": (m.harmonize(image, mask), mask),
        "guided": (m.guided_inpaint(image, mask, torch.rand_like(image), guide_mask), mask),
    }
    for name, (out, written) in outs.items():
        known = written.expand_as(image) < 0.5
        assert out.shape == image.shape, name
        assert torch.equal(out[known], image[known]), name
        assert not torch.equal(out[~known], image[~known]), name
    # the Inpainter API: numpy in, numpy out, exact outside the region
    inp = Inpainter(m)
    img = (np.random.default_rng(0).random((30, 27, 3)) * 255).astype(np.uint8)
    hole = np.zeros((30, 27), bool)
    hole[5:18, 4:20] = True
    gmask = np.zeros((30, 27), bool)
    gmask[8:14, 8:15] = True
    for res in (inp.harmonize(img, hole), inp.guided(img, hole, img[::-1].copy(), gmask), inp(img, hole)):
        assert res.dtype == np.uint8 and res.shape == img.shape
        assert np.array_equal(res[~hole], img[~hole])


def test_model_round_trip_keeps_active_blocks_and_alpha(tmp_path):
    m = tiny().eval()
    m.generator.set_blocks(2, 0.37)
    path = save_model(m, tmp_path / "b.safetensors", m.extra_state_for_export())
    loaded, meta = load_model(path)
    assert meta["method"] == "btgmi" and meta["ppl_net"] == "discriminator" and meta["active_blocks"] == 2
    assert int(loaded.generator.active_blocks) == 2
    assert float(loaded.generator.fade_alpha) == pytest.approx(0.37)
    x, mask = torch.rand(2, 3, 32, 32), rect_mask()
    assert torch.allclose(loaded.inpaint(x, mask), m.inpaint(x, mask), atol=1e-6, rtol=0)
    # a model of another method has no harmonize: the CLI refuses clearly
    from inpaintgan.cli import main
    from inpaintgan.methods.glcic import GLCIC, GLCICConfig

    other = save_model(GLCIC(GLCICConfig(width=4, d_width=4), image_size=16), tmp_path / "g.safetensors")
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)).save(tmp_path / "i.png")
    Image.fromarray(np.pad(np.full((4, 4), 255, np.uint8), 6)).save(tmp_path / "m.png")
    assert main(["fill", str(tmp_path / "i.png"), "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "o.png"),
                 "--model", str(other), "--task", "harmonize", "-q"]) == 2
    assert main(["fill", str(tmp_path / "i.png"), "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "o.png"),
                 "--model", str(path), "--task", "harmonize", "-q"]) == 0
    assert main(["fill", str(tmp_path / "i.png"), "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "o2.png"),
                 "--model", str(path), "--guide", str(tmp_path / "i.png"), "--guide-mask", str(tmp_path / "m.png"), "-q"]) == 0
