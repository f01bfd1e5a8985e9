"""DeepFill without contextual attention (issue #6) and the DeepFill report runner: the no-attention
generator, its model files and refusal of attention maps; replicated images, the texture classifier,
hole growth, CLI errors, and an end-to-end run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintgan.checkpoints import load_model, save_model
from inpaintgan.cli import main as cli_main
from inpaintgan.config import load_config
from inpaintgan.experiments.deepfill_report import (
    JUNCTION,
    UNIFORM,
    attention_maps,
    classify,
    luma,
    main,
    parse_args,
    pick_texture_holes,
    replicate,
    run_report,
)
from inpaintgan.methods.deepfill import DeepFill, DeepFillConfig, DeepFillGenerator
from inpaintgan.training.trainer import Trainer

S = 32


def tiny(attention: bool = True, width: int = 4, image_size: int = S) -> DeepFill:
    torch.manual_seed(0)
    return DeepFill(DeepFillConfig(width=width, d_width=4, attention=attention), image_size=image_size).eval()


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def smooth(h: int, w: int, k: int = 0) -> np.ndarray:
    """A smooth, non-constant colour image (low-frequency sinusoids), uint8 (h, w, 3)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = [0.5 + 0.35 * np.sin(2 * np.pi * (xx / (2.5 * w) + yy / (3.0 * h)) + c + 0.7 * k) for c in range(3)]
    return (np.clip(np.stack(chans, -1), 0, 1) * 255).round().astype(np.uint8)


def write_folder(root, images) -> str:
    root.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(images):
        Image.fromarray(a).save(root / f"img_{i:02d}.png")
    return str(root)


def holes(n: int, h: int, w: int) -> torch.Tensor:
    m = torch.zeros(n, 1, h, w)
    m[:, :, 6:16, 8:20] = 1
    return m


# ------------------------------------------------------------------------------ no-attention DeepFill


def test_no_attention_generator_layout_inference_and_model_file(tmp_path):
    att, base = tiny(True, 8), tiny(False, 8)
    g, ga = base.generator, att.generator
    assert att.has_attention and not base.has_attention and not g.has_attention
    for name in ("attention_encoder", "contextual_attention", "attention_decoder"):
        assert hasattr(ga, name) and not hasattr(g, name)
    assert not any(k.startswith(("attention_", "contextual_")) for k in g.state_dict())
    # the decoder reads the dilated branch's 4w channels instead of 8w
    assert g.decoder[0].conv.in_channels == 4 * 8 and ga.decoder[0].conv.in_channels == 8 * 8
    branch = count(ga.attention_encoder) + count(ga.attention_decoder) + (8 * 8 - 4 * 8) * 4 * 8 * 3 * 3
    assert count(g) == count(ga) - branch and count(g) < count(ga)
    assert count(DeepFillGenerator(3, 32)) == 3_601_542  # the default layout is untouched
    assert DeepFillConfig().attention is True

    image, mask = torch.rand(2, 3, 30, 37), holes(2, 30, 37)  # padded to 32x40 inside
    _, _, x1, x2, a = base.run_generator(image, mask)
    assert a is None and x1.shape == x2.shape == image.shape
    out = base.inpaint(image, mask)
    known = mask.expand_as(image) == 0
    assert torch.equal(out[known], image[known]) and not torch.equal(out, image)
    with pytest.raises(ValueError, match="no contextual attention.*attention: false"):
        base.inpaint_with_attention(image, mask)

    loaded, meta = load_model(save_model(base, tmp_path / "noatt.safetensors"))
    assert meta["config"]["attention"] is False and loaded.cfg.attention is False and not loaded.has_attention
    assert count(loaded.generator) == count(g)
    assert torch.equal(loaded.inpaint(image, mask), out)
    loaded_att, meta_att = load_model(save_model(att, tmp_path / "att.safetensors"))
    assert meta_att["config"]["attention"] is True and loaded_att.has_attention


def test_no_attention_trains_through_the_trainer(tmp_path):
    data = write_folder(tmp_path / "images", [smooth(36, 36, k) for k in range(10)])
    cfg = load_config(None, [
        "method=deepfill", "model.attention=false", "model.width=4", "model.d_width=4", "model.n_critic=1",
        "model.steps_reconstruction=1", "model.steps_adversarial=1", f"data.root={data}", "data.image_size=32",
        "data.val_fraction=0.2", "data.test_fraction=0.0", "masks.kind=center", "train.batch_size=2",
        f"train.out_dir={tmp_path / 'run'}", "train.log_every=1", "train.sample_every=0", "train.ckpt_every=0",
        "train.val_every=0", "train.val_batches=1", "train.tensorboard=false",
    ])  # fmt: skip
    assert cfg.model.attention is False
    t = Trainer(cfg, progress=False)
    assert not t.method.has_attention
    before = {k: v.clone() for k, v in t.method.generator.state_dict().items()}
    assert t.run().step == 2
    after = t.method.generator.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_fill_attention_map_refuses_a_model_without_attention(tmp_path, capsys):
    model = save_model(tiny(False), tmp_path / "noatt.safetensors")
    img = tmp_path / "a.png"
    Image.fromarray(smooth(32, 32)).save(img)
    hole = np.zeros((32, 32), np.uint8)
    hole[8:20, 8:20] = 255
    Image.fromarray(hole).save(tmp_path / "m.png")
    att = tmp_path / "att.png"
    rc = cli_main(["fill", str(img), "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "out.png"),
                   "--model", str(model), "--attention-map", str(att), "-q"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "without its contextual attention" in err and "Traceback" not in err
    assert not att.exists() and not (tmp_path / "out.png").exists()


# ------------------------------------------------------------------------------------- replicated


def test_replicated_image_halves_identical_and_hole_in_one_copy():
    torch.manual_seed(1)
    images = torch.rand(12, 3, S, S)
    rep, rep_masks, orig_masks, boxes = replicate(images, 8, seed=3)
    assert rep.shape == (12, 3, S, 2 * S) and rep_masks.shape == (12, 1, S, 2 * S) and orig_masks.shape == (12, 1, S, S)
    assert torch.equal(rep[..., :S], images) and torch.equal(rep[..., S:], images)
    for i, b in enumerate(boxes):
        halves = rep_masks[i, 0, :, :S], rep_masks[i, 0, :, S:]
        assert halves[b["copy"]].sum() == 64 and halves[1 - b["copy"]].sum() == 0  # one 8x8 hole, one copy
        assert torch.equal(orig_masks[i, 0], halves[b["copy"]])  # the reference: the same hole on the original
    assert {b["copy"] for b in boxes} == {0, 1}  # both copies get holes over the set
    again = replicate(images, 8, seed=3)
    assert again[3] == boxes and torch.equal(again[1], rep_masks)
    assert replicate(images, 8, seed=4)[3] != boxes

    # the attention map: DeepFill's own colour coding; the flow finds the copy for identical content
    method = tiny(True)
    color, flow = attention_maps(method, rep[:2], rep_masks[:2])
    assert torch.equal(color, method.inpaint_with_attention(rep[:2], rep_masks[:2])[1])
    assert flow.shape == (2, 2, S, 2 * S)


# ---------------------------------------------------------------------------------------- texture


def test_texture_classifier_flat_region_uniform_checkerboard_junction():
    assert classify(0.0, 0.01, 0.1) == UNIFORM and classify(0.2, 0.01, 0.1) == JUNCTION
    assert classify(0.05, 0.01, 0.1) == "neither" and classify(0.3, 0.3, 0.3) == UNIFORM

    # left half flat grey, right half a 4-px checkerboard
    gray = np.full((64, 64), 0.5, np.float32)
    yy, xx = np.mgrid[0:64, 32:64]
    gray[:, 32:] = np.where(((yy // 4) + (xx // 4)) % 2 == 0, 0.1, 0.9)
    picks, info = pick_texture_holes([gray], side=16, ring=4, stride=4, percentiles=(25, 75))
    (u,) = [p for p in picks if p["category"] == UNIFORM]
    (j,) = [p for p in picks if p["category"] == JUNCTION]
    assert u["left"] + 16 + 4 <= 32 - 2 and u["score"] < 1e-6  # hole and ring in the flat half
    assert j["left"] + 16 + 4 > 32 and j["score"] > 0.05  # the ring reaches into the checkerboard
    assert info["uniform_max"] < info["junction_min"] and info["picked"] == {UNIFORM: 1, JUNCTION: 1}

    # four flat quadrants: the most structured ring holds the junction of the edges; via luma()
    q = torch.zeros(3, 64, 64)
    q[:, :32, :32], q[:, :32, 32:], q[:, 32:, :32], q[:, 32:, 32:] = 0.1, 0.9, 0.6, 0.3
    picks, _ = pick_texture_holes([luma(q)], side=16, ring=4, stride=2, percentiles=(25, 75), seed=1)
    (j,) = [p for p in picks if p["category"] == JUNCTION]
    assert j["top"] - 4 <= 32 < j["top"] + 20 and j["left"] - 4 <= 32 < j["left"] + 20
    assert not (j["top"] <= 32 < j["top"] + 16 and j["left"] <= 32 < j["left"] + 16)  # not inside the hole
    (u,) = [p for p in picks if p["category"] == UNIFORM]
    assert u["score"] < 1e-6

    # a featureless image has nothing structured: no junction
    picks, _ = pick_texture_holes([np.full((48, 48), 0.3, np.float32)], side=12, ring=3, stride=3, percentiles=(25, 75))
    assert [p["category"] for p in picks] == [UNIFORM]


# ----------------------------------------------------------------------------------------- growth


def test_growth_one_row_per_model_and_size_telea_degrades(tmp_path):
    data = write_folder(tmp_path / "data", [smooth(64, 64, k) for k in range(3)])
    args = parse_args(["--model", "telea", "--model", "mean", "--data", data, "--size", "64", "-n", "3",
                       "--experiments", "growth", "--fractions", "0.1", "0.2", "0.4", "0.6",
                       "--out", str(tmp_path / "out"), "--figure-rows", "0", "--no-progress"])  # fmt: skip
    rep = run_report(args)
    growth = [e for e in rep.table if e["experiment"] == "growth"]
    assert [(e["setting"], e["model"]) for e in growth] == [(f, m) for f in ("0.1", "0.2", "0.4", "0.6") for m in ("telea", "mean")]
    assert all(e["count"] == 3 for e in growth)
    assert [e["hole_side"] for e in growth if e["model"] == "telea"] == [6, 13, 26, 38]
    assert len(rep.rows) == 4 * 2 * 3 and {r["experiment"] for r in rep.rows} == {"growth"}
    psnr = [e["psnr_hole"] for e in growth if e["model"] == "telea"]
    assert all(a >= b for a, b in zip(psnr, psnr[1:])) and psnr[0] > psnr[-1] + 3, psnr
    assert all(e["psnr_hole"] > m["psnr_hole"] for e, m in zip(growth[::2], growth[1::2]))  # telea beats mean
    assert not list((tmp_path / "out").glob("*.png"))  # --figure-rows 0


# --------------------------------------------------------------------------------------------- CLI


def test_cli_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    data = write_folder(tmp_path / "data", [smooth(32, 32)])
    (tmp_path / "empty").mkdir()
    out = str(tmp_path / "out")
    cases = [
        (["--model", "telea", "--data", str(tmp_path / "missing")], "data folder not found"),
        (["--model", "telea", "--data", str(tmp_path / "empty")], "holds no images"),
        (["--model", "nosuchmodel", "--data", data], "unknown model 'nosuchmodel'"),
        (["--model", "x=" + str(tmp_path / "nope.safetensors"), "--data", data], "model file not found"),
        (["--model", "telea", "--data", data, "--hole-fraction", "1.5"], "not in (0, 1)"),
        (["--model", "telea", "--data", data, "--fractions", "0.2", "0"], "not in (0, 1)"),
        (["--data", data], "no models"),
        (["--model", "telea", "--model", "telea", "--data", data], "repeated: telea"),
    ]
    for argv, msg in cases:
        rc = main([*argv, "--size", "32", "--out", out, "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2, argv
        assert err.startswith("deepfill_report: error:") and msg in err and err.strip().count("\n") == 0, err


def test_end_to_end_cli_outputs_and_determinism(tmp_path, capsys):
    imgs = []
    for k in range(4):
        a = smooth(40, 48, k)
        a[:, 30:] = (40 + 30 * k, 90, 120)  # a flat band beside the smooth part
        imgs.append(a)
    data = write_folder(tmp_path / "data", imgs)
    att = save_model(tiny(True), tmp_path / "att.safetensors")
    noatt = save_model(tiny(False), tmp_path / "noatt.safetensors")

    def run(out):
        argv = ["--model", "telea", "--model", f"att={att}", "--model", str(noatt), "--data", data, "--size", "32",
                "-n", "4", "--out", str(out), "--figure-rows", "2", "--batch-size", "3", "--no-progress"]  # fmt: skip
        assert main(argv) == 0
        return out

    out = run(tmp_path / "out")
    capsys.readouterr()
    md = (out / "results.md").read_text()
    for section in ("## growth", "## texture", "## replicated"):
        assert section in md
    res = json.loads((out / "results.json").read_text())
    assert {"settings", "models", "experiments", "results", "texture", "figures", "timing", "machine"} <= set(res)
    assert list(res["experiments"]) == ["growth", "texture", "replicated"]
    assert res["settings"]["command"].startswith("python -m inpaintgan.experiments.deepfill_report")
    models = {m["label"]: m for m in res["models"]}
    assert list(models) == ["telea", "att", "noatt"] and models["telea"]["kind"] == "baseline"
    assert models["att"]["attention"] is True and models["noatt"]["attention"] is False
    growth = res["experiments"]["growth"]
    assert len(growth) == 6 * 3 and {e["setting"] for e in growth} == {"0.1", "0.2", "0.3", "0.4", "0.5", "0.6"}
    repl = {(e["setting"], e["model"]): e for e in res["experiments"]["replicated"]}
    assert set(repl) == {(s, m) for s in ("replicated", "original") for m in models}
    assert 0 <= repl["replicated", "att"]["attention_hit"] <= 1
    assert repl["replicated", "noatt"]["attention_hit"] is None and repl["replicated", "telea"]["attention_hit"] is None
    assert all(repl["replicated", m]["psnr_gain"] is not None for m in models)
    assert {e["setting"] for e in res["experiments"]["texture"]} <= {UNIFORM, JUNCTION}
    # figures: the attention column for the attention model only
    assert res["figures"]["replicated.png"] == ["input", "telea", "att", "noatt", "att: attention", "original"]
    assert {"growth_plot.png", "growth_strip.png", "replicated.png"} <= set(res["figures"])
    for name in res["figures"]:
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.size[0] > 100
    for name in ("results.csv", "per_image.csv"):
        assert (out / name).stat().st_size > 0
    # deterministic: a second run writes the same tables
    out2 = run(tmp_path / "out2")
    for name in ("results.csv", "per_image.csv"):
        assert (out / name).read_bytes() == (out2 / name).read_bytes()
