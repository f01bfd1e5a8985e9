"""``inpaintgan fill`` and ``inpaintgan demo``: folders, bad files, pairing, no overwrites."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintgan.checkpoints import save_model
from inpaintgan.cli import main
from inpaintgan.methods.glcic import GLCIC, GLCICConfig


def pixels(path) -> np.ndarray:
    """Decoded pixels of an image file (the file is closed)."""
    with Image.open(path) as im:
        return np.array(im)


def file_format(path) -> str:
    with Image.open(path) as im:
        return im.format



@pytest.fixture
def model_file(tmp_path) -> Path:
    torch.manual_seed(0)
    return save_model(GLCIC(GLCICConfig(width=8, d_width=8), image_size=32), tmp_path / "tiny.safetensors")


def rand_u8(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_mask(path: Path, h: int, w: int, box=(10, 10, 30, 40)) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[box[0] : box[2], box[1] : box[3]] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(m).save(path)
    return m > 127


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fill_folder_subprocess_good_and_corrupt(tmp_path, model_file):
    """The CLI as users run it: one good image, one corrupt; exit 1, good one written, inputs intact."""
    images = tmp_path / "in"
    images.mkdir()
    good = rand_u8(48, 56)
    Image.fromarray(good).save(images / "good.png")
    (images / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated nonsense")
    hole = write_mask(tmp_path / "masks" / "good.png", 48, 56)
    write_mask(tmp_path / "masks" / "corrupt.png", 48, 56)
    before = {p.name: digest(p) for p in images.iterdir()}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "inpaintgan", "fill", str(images), "--mask-dir", str(tmp_path / "masks"),
         "-o", str(tmp_path / "out"), "--model", str(model_file)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "1 failed" in proc.stderr and "corrupt.jpg" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]
    out = pixels(tmp_path / "out" / "good.png")
    assert out.shape == good.shape and np.array_equal(out[~hole], good[~hole])
    assert (out[hole] != good[hole]).mean() > 0.9
    assert {p.name: digest(p) for p in images.iterdir()} == before


def test_never_overwrites_an_input(tmp_path, model_file, capsys):
    img = tmp_path / "a.png"
    Image.fromarray(rand_u8(40, 50)).save(img)
    write_mask(tmp_path / "m.png", 40, 50)
    before = digest(img)
    assert main(["fill", str(img), "--mask", str(tmp_path / "m.png"), "-o", str(img), "--model", str(model_file)]) == 1
    assert "would overwrite an input" in capsys.readouterr().err
    # the output folder is the input folder: same names, refused too
    assert main(["fill", str(img), "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path) + "/", "--model", str(model_file)]) == 1
    assert digest(img) == before
    # the mask is an input too
    assert main(["fill", str(img), "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "m.png"), "--model", str(model_file)]) == 1


def test_mask_dir_pairing_png_first_then_mask_suffix(tmp_path, model_file, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.jpg", "b.png", "c.png"):
        Image.fromarray(rand_u8(40, 50)).save(src / name, quality=95)
    masks = tmp_path / "masks"
    hole_a = write_mask(masks / "a.png", 40, 50)
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(masks / "a.jpg")  # .png wins over .jpg
    write_mask(masks / "b_mask.png", 40, 50, box=(0, 0, 5, 5))
    rc = main(["fill", str(src), "--mask-dir", str(masks), "-o", str(tmp_path / "out"), "--model", str(model_file), "-q"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "no mask for c.png" in err and "a.jpg" not in err
    a_in = pixels(src / "a.jpg")
    a_out = pixels(tmp_path / "out" / "a.jpg")
    assert file_format(tmp_path / "out" / "a.jpg") == "JPEG"  # the input's format is kept
    changed = np.abs(a_out.astype(int) - a_in).max(axis=2) > 40
    assert changed[hole_a].mean() > 0.5 and changed[~hole_a].mean() < 0.01  # JPEG noise aside
    assert (tmp_path / "out" / "b.png").is_file() and not (tmp_path / "out" / "c.png").exists()


def test_single_file_output_format_and_size_mismatch(tmp_path, model_file, capsys):
    img = tmp_path / "photo.png"
    source = rand_u8(40, 50)
    Image.fromarray(source).save(img)
    write_mask(tmp_path / "small.png", 20, 25, box=(5, 5, 10, 10))
    args = ["fill", str(img), "--mask", str(tmp_path / "small.png"), "--model", str(model_file)]
    assert main(args + ["-o", str(tmp_path / "r.png")]) == 1
    err = capsys.readouterr().err
    assert "25x20" in err and "50x40" in err and "small.png" in err and "photo.png" in err
    assert main(args + ["-o", str(tmp_path / "r.png"), "--resize-mask", "--blend", "poisson", "--dilate", "1"]) == 0
    out = pixels(tmp_path / "r.png")
    hole = np.zeros((40, 50), bool)
    hole[9:21, 9:21] = True  # the resized 10..20 box, dilated by 1
    assert np.array_equal(out[~hole], source[~hole])
    assert main(args + ["-o", str(tmp_path / "outdir"), "--resize-mask", "--format", "jpg", "--prefill"]) == 0
    assert file_format(tmp_path / "outdir" / "photo.jpg") == "JPEG"


def test_same_name_in_two_folders_and_empty_mask_warning(tmp_path, model_file, capsys):
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        Image.fromarray(rand_u8(30, 30)).save(tmp_path / d / "same.png")
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "empty.png")
    rc = main(["fill", str(tmp_path / "x"), str(tmp_path / "y"), "--mask", str(tmp_path / "empty.png"),
               "-o", str(tmp_path / "out"), "--model", str(model_file)])
    err = capsys.readouterr().err
    assert rc == 1 and "already taken" in err and "mask is empty" in err
    assert np.array_equal(pixels(tmp_path / "out" / "same.png"), pixels(tmp_path / "x" / "same.png"))


def test_fatal_errors_exit_2(tmp_path, model_file, capsys):
    Image.fromarray(rand_u8(30, 30)).save(tmp_path / "a.png")
    write_mask(tmp_path / "m.png", 30, 30)
    base = ["fill", str(tmp_path / "a.png"), "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "o.png")]
    assert main(base + ["--model", "no-such-model"]) == 2
    assert "known models: default" in capsys.readouterr().err
    assert main(base + ["--model", str(model_file), "--dilate", "-1"]) == 2
    # a missing input is a failed file (exit 1), not a crash
    missing = ["fill", str(tmp_path / "nothing.png"), "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "o")]
    assert main(missing + ["--model", str(model_file)]) == 1
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --mask and --mask-dir are exclusive (argparse exits 2)
        main(["fill", str(tmp_path / "a.png"), "--mask", "m", "--mask-dir", "d", "-o", "o"])


def test_demo_writes_comparison(tmp_path, model_file, capsys):
    assert main(["demo", "-o", str(tmp_path / "demo"), "--model", str(model_file), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    comparison = tmp_path / "demo" / "comparison.png"
    assert str(comparison) in out
    grid = pixels(comparison)
    assert grid.shape[1] > 2 * 384 and grid.shape[0] > 3 * 256  # 3 examples, input | result
    assert len(list((tmp_path / "demo").glob("*_filled.png"))) == 3
