"""Every fill method everywhere, and masks that fit together: ``fill --model patchmatch`` (and the
other classical fills) from the CLI and the Python API; ``masks --data D -o M`` then ``fill D
--mask-dir M``; LaMa's ``NAME_mask000.png`` layout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import inpaintgan
from inpaintgan.cli import main
from inpaintgan.inpainter import Inpainter

#: the code under test, also in subprocesses (run from other folders)
ENV = {**os.environ, "PYTHONPATH": str(Path(inpaintgan.__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}


def photo(h=48, w=64, seed=0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, 128 + 60 * np.sin(xx / 5.0)], -1)
    return np.clip(base + np.random.default_rng(seed).integers(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)


def write_box_mask(path: Path, h=48, w=64, box=(14, 20, 30, 44)) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[box[0] : box[2], box[1] : box[3]] = 255
    Image.fromarray(m).save(path)
    return m > 0


def test_fill_patchmatch_as_written_in_the_issue(tmp_path):
    """`inpaintgan fill x.jpg --mask m.png --model patchmatch -o y.png`, as a user runs it."""
    img = photo()
    Image.fromarray(img).save(tmp_path / "x.jpg", quality=95)
    hole = write_box_mask(tmp_path / "m.png")
    r = subprocess.run([sys.executable, "-m", "inpaintgan", "fill", "x.jpg", "--mask", "m.png", "--model", "patchmatch",
                        "-o", "y.png"], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = np.asarray(Image.open(tmp_path / "y.png"))
    src = np.asarray(Image.open(tmp_path / "x.jpg"))
    assert out.shape == src.shape
    assert np.array_equal(out[~hole], src[~hole])  # known pixels as decoded
    assert np.abs(out[hole].astype(int) - src[hole]).sum(-1).mean() > 1  # the hole was filled


@pytest.mark.parametrize("name", ["telea", "ns", "patchmatch"])
def test_classical_fills_load_like_models(name, tmp_path, capsys):
    inp = Inpainter.from_pretrained(name)
    assert inp.name == name and inp.fully_convolutional and "classical" in inp.metadata["description"]
    img = photo()
    hole = np.zeros(img.shape[:2], bool)
    hole[10:20, 10:30] = True
    out = inp(img, hole)
    assert out.dtype == np.uint8 and np.array_equal(out[~hole], img[~hole])
    # a filled hole is close to its surroundings (unlike the black it would be if untouched)
    assert np.abs(out[hole].astype(int).mean(0) - img[~hole].mean(0)).max() < 60
    assert main(["models"]) == 0
    assert name in capsys.readouterr().out


def test_unknown_model_names_the_classical_fills(tmp_path, capsys):
    Image.fromarray(photo()).save(tmp_path / "x.png")
    write_box_mask(tmp_path / "m.png")
    assert main(["fill", str(tmp_path / "x.png"), "--mask", str(tmp_path / "m.png"), "--model", "patchmach",
                 "-o", str(tmp_path / "y.png")]) != 0
    err = capsys.readouterr().err
    assert "unknown model 'patchmach'" in err and "telea, ns, patchmatch" in err and "Traceback" not in err


def test_masks_for_a_folder_then_fill_pairs_them(tmp_path, capsys):
    data = tmp_path / "D"
    data.mkdir()
    for i, name in enumerate(["beach.jpg", "street.png", "zebra.png"]):
        Image.fromarray(photo(40 + 8 * i, 56, seed=i)).save(data / name)
    masks = tmp_path / "M"
    assert main(["masks", "--protocol", "thick", "-n", "3", "--size", "0", "--data", str(data), "-o", str(masks)]) == 0
    names = sorted(p.name for p in masks.glob("*.png"))
    assert names == ["beach.png", "street.png", "zebra.png"]  # named after their images
    manifest = json.loads((masks / "manifest.json").read_text())
    assert [e["file"] for e in manifest["masks"]] == names
    for name in names:  # native sizes: each mask fits its image
        stem = Path(name).stem
        image = next(data.glob(f"{stem}.*"))
        assert Image.open(masks / name).size == Image.open(image).size

    out = tmp_path / "R"
    capsys.readouterr()
    assert main(["fill", str(data), "--mask-dir", str(masks), "--model", "telea", "-o", str(out)]) == 0
    assert "wrote 3 of 3" in capsys.readouterr().out
    for name in ["beach.jpg", "street.png", "zebra.png"]:
        res = np.asarray(Image.open(out / name).convert("RGB")).astype(int)
        hole = np.asarray(Image.open(masks / (Path(name).stem + ".png"))) > 0
        src = np.asarray(Image.open(data / name).convert("RGB")).astype(int)
        assert hole.any() and res.shape == src.shape
        if name.endswith(".png"):
            assert np.array_equal(res[~hole], src[~hole])

    # masks of the prepared images fit those images too (OUT/images)
    m2 = tmp_path / "M2"
    assert main(["masks", "--protocol", "thick", "-n", "3", "--size", "32", "--data", str(data), "-o", str(m2)]) == 0
    assert main(["fill", str(m2 / "images"), "--mask-dir", str(m2), "--model", "telea", "-o", str(tmp_path / "R2")]) == 0


def test_lama_mask_layout_in_one_folder(tmp_path, capsys):
    """LaMa's eval layout: NAME.png beside NAME_mask000.png, NAME_mask001.png; the union is removed
    and the masks are not taken for images."""
    d = tmp_path / "lama"
    d.mkdir()
    img = photo()
    Image.fromarray(img).save(d / "scene.png")
    a = write_box_mask(d / "scene_mask000.png", box=(2, 2, 10, 12))
    b = write_box_mask(d / "scene_mask001.png", box=(30, 40, 40, 60))
    Image.fromarray(photo(seed=3)).save(d / "other.png")
    write_box_mask(d / "other_mask.png")
    out = tmp_path / "out"
    assert main(["fill", str(d), "--mask-dir", str(d), "--model", "telea", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["other.png", "scene.png"]
    res = np.asarray(Image.open(out / "scene.png"))
    hole = a | b
    assert np.array_equal(res[~hole], img[~hole])
    assert (res[a] != img[a]).any() and (res[b] != img[b]).any()


def test_a_missing_mask_names_what_was_looked_for(tmp_path, capsys):
    d = tmp_path / "D"
    d.mkdir()
    Image.fromarray(photo()).save(d / "lonely.png")
    (tmp_path / "M").mkdir()
    assert main(["fill", str(d), "--mask-dir", str(tmp_path / "M"), "--model", "telea", "-o", str(tmp_path / "R")]) == 1
    err = capsys.readouterr().err
    assert "no mask for lonely.png" in err and "lonely_mask000.png" in err
