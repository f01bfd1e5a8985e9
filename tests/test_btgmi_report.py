"""The BTGMI task report (issue 8): Reinhard colour transfer, the seam and detail measures, the
guided-inpainting baselines, CLI errors, and an end-to-end run with a tiny model."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from inpaintgan import metrics
from inpaintgan.checkpoints import save_model
from inpaintgan.experiments.btgmi_report import (
    detail_psnr,
    main,
    parse_args,
    reinhard,
    run_guided,
    run_report,
    seam_score,
)
from inpaintgan.methods.btgmi import BTGMI, BTGMIConfig, harmonization_sample

S = 32


def noise_image(seed: int, size: int = S) -> np.ndarray:
    """Stationary colour texture (blurred noise): a region and its ring share colour statistics."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0.5, 0.15, (size, size, 3))
    a = (a + np.roll(a, 1, 0) + np.roll(a, 1, 1)) / 3 + np.array([0.1, -0.05, 0.0])
    return (np.clip(a, 0, 1) * 255).round().astype(np.uint8)


def box(size: int = S, lo: int = 8, hi: int = 24) -> np.ndarray:
    m = np.zeros((size, size), bool)
    m[lo:hi, lo:hi] = True
    return m


def tiny_btgmi() -> BTGMI:
    torch.manual_seed(0)
    cfg = BTGMIConfig(width=4, n_down=2, res_blocks=1, refine_blocks=1, d_width=4, num_d=1, d_layers=2,
                      steps_head=1, steps_block=1, fade_steps=1)  # fmt: skip
    return BTGMI(cfg, image_size=S).eval()


def test_reinhard_restores_a_colour_cast_and_leaves_the_rest():
    img = noise_image(0)
    reg = box()
    cast = img.astype(np.float32)
    cast[reg] = cast[reg] * np.array([1.3, 0.8, 0.9]) + np.array([20, -10, 15])
    cast = np.clip(cast, 0, 255).astype(np.uint8)
    fixed = reinhard(cast, reg)
    assert np.array_equal(fixed[~reg], cast[~reg])  # only the region changes
    err = lambda a: float(((a[reg].astype(float) - img[reg]) ** 2).mean())  # noqa: E731
    assert err(fixed) < 0.2 * err(cast)
    assert np.array_equal(reinhard(cast, np.zeros_like(reg)), cast)  # empty region: nothing to do


def test_seam_is_low_only_when_the_border_is_as_busy_as_the_photo():
    reg = box()
    tex = noise_image(1)
    assert seam_score(tex, reg, ~reg) < 0.4  # a seamless texture: the border as busy as the rest
    step = tex.copy()
    step[reg] = np.clip(step[reg].astype(int) + 90, 0, 255).astype(np.uint8)  # a visible edge at the border
    assert seam_score(step, reg, ~reg) > seam_score(tex, reg, ~reg) + 0.5
    band = box(S, 5, 27) & ~box(S, 11, 21)
    smeared = tex.copy()
    smeared[band] = 128  # the border band made flat: blur does not pass for seamless
    assert seam_score(smeared, reg, ~box(S, 5, 27)) > seam_score(tex, reg, ~reg) + 0.5


def test_detail_keeps_the_guide_and_drops_for_blur():
    g = noise_image(2)
    reg = box()
    blurred = np.where(reg[..., None], np.full_like(g, 128), g)
    assert detail_psnr(g, g, reg) > 90
    assert detail_psnr(blurred, g, reg) < detail_psnr(g, g, reg) - 40


def test_guided_baselines_keep_known_pixels_and_paste_the_guide():
    imgs = torch.stack([torch.from_numpy(noise_image(i)).permute(2, 0, 1).float() / 255 for i in range(3)])
    holes = torch.zeros(3, 1, S, S)
    holes[:, :, 6:26, 6:26] = 1
    scores, out = run_guided([], imgs, holes, gap=3)
    known = holes.expand_as(imgs) < 0.5
    for name in ("paste", "poisson"):
        assert torch.allclose(out[name][known], imgs[known], atol=1 / 255 + 1e-6), name
    gm = out["guide_mask"].expand_as(imgs) > 0.5
    guides = torch.roll(imgs, -1, 0)
    assert torch.allclose(out["paste"][gm], guides[gm], atol=1 / 255 + 1e-6)  # paste keeps the guide exactly
    assert min(scores["paste"]["detail"]) > 40
    assert np.mean(scores["poisson"]["detail"]) < np.mean(scores["paste"]["detail"])


def test_report_end_to_end(tmp_path):
    data = tmp_path / "photos"
    data.mkdir()
    for i in range(4):
        Image.fromarray(noise_image(10 + i)).save(data / f"p{i}.png")
    model = save_model(tiny_btgmi(), tmp_path / "tiny.safetensors")
    out = tmp_path / "rep"
    argv = ["--model", f"tiny={model}", "--data", str(data), "-n", "4", "--size", str(S), "--region", "0.4", "0.6",
            "--gap", "2", "--rows", "2", "--out", str(out)]  # fmt: skip
    res = run_report(parse_args(argv), argv)
    saved = json.loads((out / "results.json").read_text())
    assert saved["settings"]["n"] == 4 and [m["label"] for m in saved["models"]] == ["tiny"]
    assert set(saved["harmonization"]) == {"identity", "reinhard", "tiny"}
    assert set(saved["guided"]) == {"paste", "poisson", "tiny"}
    # identity's error is the perturbation itself, recomputed here from the same seeded draw
    imgs = torch.stack([torch.from_numpy(noise_image(10 + i)).permute(2, 0, 1).float() / 255 for i in range(4)])
    from inpaintgan.experiments.btgmi_report import rect_masks

    regions = rect_masks(4, S, 0.4, 0.6, 0)
    pert, regions = harmonization_sample(imgs, regions, torch.Generator().manual_seed(0))
    want = metrics.mse(pert, imgs, regions).tolist()
    assert np.allclose(res["harmonization"]["identity"]["mse"], want, atol=1e-6)
    assert np.allclose(saved["harmonization"]["identity"]["mean_mse"], np.mean(want), atol=1e-6)
    for fig in ("harmonize.png", "guided.png"):
        with Image.open(out / fig) as im:
            assert im.width > 4 * S and im.height > 2 * S
    assert "| tiny |" in (out / "tables.md").read_text()


def test_cli_errors_are_one_line(tmp_path, capsys):
    data = tmp_path / "photos"
    data.mkdir()
    for i in range(2):
        Image.fromarray(noise_image(i)).save(data / f"p{i}.png")
    base = ["--data", str(data), "--size", str(S), "--gap", "2", "--out", str(tmp_path / "o")]
    assert main(base) == 2
    assert "no models" in capsys.readouterr().err
    assert main(["--model", "telea", *base]) == 2
    assert "telea: a baseline cannot harmonize" in capsys.readouterr().err
    torch.manual_seed(0)
    gray = BTGMI(BTGMIConfig(width=4, n_down=2, res_blocks=1, refine_blocks=1, d_width=4, num_d=1, d_layers=2,
                             steps_head=1, steps_block=1, fade_steps=1), image_size=S, channels=1)  # fmt: skip
    assert main(["--model", "g=" + str(save_model(gray, tmp_path / "gray.safetensors")), *base]) == 2
    assert "g: a 1-channel model" in capsys.readouterr().err
    assert main(["--model", "m=" + str(tmp_path / "missing.safetensors"), *base]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["--model", "telea", *base, "--gap", "9"]) == 2
    assert "--gap 9 px leaves no guide patch" in capsys.readouterr().err
