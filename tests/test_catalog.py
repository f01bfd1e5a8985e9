"""``inpaintgan models --all`` and task options naming the models that support them, from model
files' metadata (tiny models written here, found through INPAINTGAN_MODEL_DIRS)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintgan import catalog
from inpaintgan.checkpoints import save_model
from inpaintgan.cli import main
from inpaintgan.methods.glcic import GLCIC, GLCICConfig


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
    d = tmp_path / "zoo"
    d.mkdir()
    torch.manual_seed(0)
    save_model(GLCIC(GLCICConfig(width=8, d_width=8), image_size=32), d / "tiny_glcic.safetensors",
               {"training": {"data": "my_photos", "dataset": "folder", "steps": 7}})
    save_model(GLCIC(GLCICConfig(width=8, d_width=8), image_size=32), d / "fake_harmonizer.safetensors",
               {"tasks": ["inpaint", "harmonize"], "training": {"dataset": "cifar10", "steps": 3}})
    monkeypatch.setenv("INPAINTGAN_MODEL_DIRS", str(d))
    return d


def test_research_models_are_described_from_their_metadata(model_dir):
    rows = {r["name"]: r for r in catalog.research_models() if r["path"].startswith(str(model_dir))}
    assert set(rows) == {"tiny_glcic", "fake_harmonizer"}
    t = rows["tiny_glcic"]
    assert t["method"] == "glcic" and t["image_size"] == 32 and t["data"] == "my_photos" and t["steps"] == 7
    assert t["tasks"] == ["inpaint"] and t["file_mb"] >= 0
    assert rows["fake_harmonizer"]["data"] == "cifar10"
    assert catalog.models_for("harmonize")[0] == str(model_dir / "fake_harmonizer.safetensors")


def test_models_all_and_task_errors_name_them(model_dir, tmp_path, capsys):
    assert main(["models", "--all"]) == 0
    out = capsys.readouterr().out
    assert "tiny_glcic" in out and "tasks: inpaint, harmonize" in out and "data: my_photos, 7 steps" in out
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "x.png")
    m = np.zeros((16, 16), np.uint8)
    m[4:8, 4:8] = 255
    Image.fromarray(m).save(tmp_path / "m.png")
    assert main(["fill", str(tmp_path / "x.png"), "--mask", str(tmp_path / "m.png"), "--model", "telea",
                 "--task", "harmonize", "-o", str(tmp_path / "y.png")]) == 2
    err = capsys.readouterr().err
    assert "cannot harmonize; models that can:" in err and "fake_harmonizer.safetensors" in err
