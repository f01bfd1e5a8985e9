"""Packaged presets: ``config --list``, ``-c NAME``, ``--data DIR``, and a wheel (``pip install .``,
not editable) that trains ``-c glcic_cifar10 --data DIR`` on a folder of images, away from the
repository."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaintgan.cli import main
from inpaintgan.presets import find_preset, list_presets

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.width=8", "model.d_width=8", "model.steps_completion=2", "model.steps_discriminator=1",
        "model.steps_joint=1", "train.batch_size=4", "train.log_every=1", "train.sample_every=0", "train.ckpt_every=0",
        "train.val_every=0", "train.val_batches=1", "train.tensorboard=false", "data.num_workers=0"]


def photos(root: Path, n: int = 12, size: int = 40) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size + 4, 3), dtype=np.uint8)).save(root / f"holiday_{i:02d}.jpg")
    return root


def test_config_list_names_every_shipped_preset(capsys):
    assert main(["config", "--list"]) == 0
    out = capsys.readouterr().out
    files = sorted(p.stem for p in (ROOT / "configs").glob("*.yaml"))
    assert len(files) >= 5 and [n for n, _ in list_presets()] == files
    for name in files:
        assert name in out
    assert "GLCIC (Iizuka et al. 2017) on CIFAR-10" in out


def test_a_preset_by_name_with_data_as_an_option(tmp_path, capsys):
    same = {find_preset(n).resolve() for n in ("glcic_cifar10", "glcic_cifar10.yaml", ROOT / "configs/glcic_cifar10.yaml")}
    assert same == {(ROOT / "configs/glcic_cifar10.yaml").resolve()}
    assert main(["config", "-c", "default_lama", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"root: {tmp_path}" in out and "val_root: ''" in out  # the preset's own validation folder is dropped
    assert main(["config", "-c", "default_lama", "--data", str(tmp_path), "--val-data", "v"]) == 0
    assert "val_root: v" in capsys.readouterr().out


def test_unknown_presets_and_missing_data_are_one_line_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the presets' own ../shared paths do not exist here
    assert main(["config", "-c", "glcic_cifar"]) == 2
    err = capsys.readouterr().err.strip()
    assert "neither a YAML file nor a preset" in err and "glcic_cifar10" in err and "\n" not in err
    assert main(["train", "-c", "glcic_cifar10"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not found" in err and "--data DIR" in err and "\n" not in err


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="needs setuptools (pip install -e '.[dev]')")
def test_an_installed_wheel_trains_a_preset_on_a_folder_of_images(tmp_path):
    # a copy of the tree (the build writes build/ and *.egg-info next to the sources)
    src = tmp_path / "src_tree"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "configs", src / "configs")
    shutil.copytree(ROOT / "src", src / "src", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
           "--target", str(site), str(src)]
    r = subprocess.run(pip, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (site / "inpaintgan" / "configs" / "glcic_cifar10.yaml").is_file()
    assert not (site / "inpaintgan" / "configs").is_symlink()

    work = tmp_path / "elsewhere"  # no configs/ folder here: the preset comes from the package
    data = photos(work / "my photos")
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    sets = [a for s in TINY for a in ("--set", s)]
    cmd = [sys.executable, "-m", "inpaintgan", "train", "-c", "glcic_cifar10", "--data", str(data), "-o", "run",
           "--no-progress", *sets]
    r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (work / "run" / "config.yaml").is_file() and list((work / "run" / "checkpoints").glob("step_*.pt"))
    assert "run folder:" in r.stdout
    where = subprocess.run([sys.executable, "-c", "import inpaintgan, sys; print(inpaintgan.__file__)"], cwd=work,
                           env=env, capture_output=True, text=True).stdout
    assert where.startswith(str(site))  # the installed copy ran, not this checkout
