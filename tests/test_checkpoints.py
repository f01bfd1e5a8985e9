"""Model files and the model zoo: round trips, refused pickles, names, cache, downloads."""

from __future__ import annotations

import hashlib

import pytest
import torch

from inpaintgan import checkpoints
from inpaintgan.checkpoints import (
    CheckpointError,
    load_any,
    load_model,
    read_metadata,
    resolve_model,
    save_model,
)
from inpaintgan.config import load_config, to_dict
from inpaintgan.inpainter import Inpainter, list_models
from inpaintgan.methods.glcic import GLCIC, GLCICConfig
from inpaintgan.registry import UnknownNameError


class Payload:
    """A custom class: pickling it into a checkpoint must make the checkpoint unloadable."""

    def __init__(self):
        self.x = 1


def tiny_method(seed: int = 0) -> GLCIC:
    torch.manual_seed(seed)
    m = GLCIC(GLCICConfig(width=8, d_width=8), image_size=32).eval()
    with torch.no_grad():  # non-trivial BN statistics, so the round trip checks them too
        for mod in m.generator.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    return m


def batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, 32, 32, generator=g)
    m = torch.zeros(2, 1, 32, 32)
    m[:, :, 8:20, 10:24] = 1
    return x, m


def test_round_trip_same_outputs_and_fp16_close(tmp_path):
    method = tiny_method()
    x, m = batch()
    ref = method.inpaint(x, m)
    path = save_model(method, tmp_path / "m.safetensors", {"note": "test"})
    loaded, meta = load_model(path)
    assert meta["method"] == "glcic" and meta["image_size"] == 32 and meta["note"] == "test"
    assert torch.equal(loaded.inpaint(x, m), ref)
    half = save_model(method, tmp_path / "h.safetensors", half=True)
    assert half.stat().st_size < 0.6 * path.stat().st_size
    out16 = load_model(half)[0].inpaint(x, m)
    assert (out16 - ref).abs().max() < 2e-2
    inp = Inpainter.from_pretrained(path, device="cpu")
    assert inp.name == "m" and inp.working_size == 32
    assert torch.allclose(inp(x, m), ref, atol=1e-5)  # per-image calls: float noise only


def test_training_checkpoint_pt_is_loaded_with_weights_only(tmp_path):
    method = tiny_method()
    cfg = load_config(None, ["method=glcic", "model.width=8", "model.d_width=8", "data.image_size=32"])
    torch.save({"config": to_dict(cfg), "model": method.state_dict(), "progress": {"step": 3}}, tmp_path / "ck.pt")
    loaded, meta = load_any(tmp_path / "ck.pt")
    x, m = batch()
    assert meta["image_size"] == 32 and torch.equal(loaded.inpaint(x, m), method.inpaint(x, m))


def test_checkpoint_with_pickled_objects_is_refused(tmp_path):
    method = tiny_method()
    cfg = load_config(None, ["method=glcic", "model.width=8", "model.d_width=8", "data.image_size=32"])
    torch.save({"config": to_dict(cfg), "model": method.state_dict(), "extra": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="pickled objects"):
        Inpainter.from_pretrained(tmp_path / "evil.pt")
    torch.save({"config": to_dict(cfg), "model": method.state_dict()}, tmp_path / "evil.safetensors")  # a pickle in disguise
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        Inpainter.from_pretrained(tmp_path / "evil.safetensors")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an inpaintgan training checkpoint"):
        Inpainter.from_pretrained(tmp_path / "other.pt")


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        resolve_model(tmp_path / "nope.safetensors")
    with pytest.raises(UnknownNameError, match=r"unknown model 'nope'; known models: default"):
        resolve_model("nope")


def test_default_model_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "WEIGHTS_DIR", tmp_path / "weights")
    with pytest.raises(CheckpointError, match=r"embedded model 'default' is missing.*weights/default\.safetensors"):
        Inpainter.from_pretrained("default")
    (tmp_path / "weights").mkdir()
    save_model(tiny_method(), tmp_path / "weights" / "default.safetensors")
    assert Inpainter.from_pretrained("default", device="cpu").name == "default"
    row = next(r for r in list_models() if r["name"] == "default")
    assert row["installed"] and row["image_size"] == 32 and row["embedded"]


@pytest.fixture
def zoo_entry(tmp_path, monkeypatch):
    """A non-embedded zoo model served from a file:// URL, with the cache in tmp_path."""
    src = save_model(tiny_method(), tmp_path / "served" / "tiny.safetensors")
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    entry = dict(url=src.as_uri(), sha256=sha, filename="tiny-v1.safetensors", description="tiny test model",
                 method="glcic", embedded=False, image_size=32)
    monkeypatch.setitem(checkpoints.MODEL_ZOO, "tiny", entry)
    monkeypatch.setenv("INPAINTGAN_CACHE", str(tmp_path / "cache"))
    return entry


def test_not_downloaded_model_says_where_to_put_it(zoo_entry, tmp_path):
    with pytest.raises(CheckpointError, match="inpaintgan download tiny") as e:
        Inpainter.from_pretrained("tiny")
    assert str(tmp_path / "cache" / "models" / "tiny-v1.safetensors") in str(e.value)
    assert zoo_entry["url"] in str(e.value)
    assert not (tmp_path / "cache").exists()  # nothing is downloaded implicitly


def test_download_verifies_checksum(zoo_entry, tmp_path):
    path = checkpoints.download_model("tiny", progress=False)
    assert path == tmp_path / "cache" / "models" / "tiny-v1.safetensors"
    assert read_metadata(path)["method"] == "glcic"
    assert Inpainter.from_pretrained("tiny").name == "tiny"
    path.unlink()
    zoo_entry["sha256"] = "0" * 64
    with pytest.raises(ValueError, match="checksum mismatch"):
        checkpoints.download_model("tiny", progress=False)
    assert not path.exists() and list(path.parent.iterdir()) == []  # no partial file left


def test_models_and_download_commands(zoo_entry, tmp_path, capsys):
    from inpaintgan.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "default" in out and "tiny" in out and "not downloaded" in out
    assert main(["download", "tiny", "--quiet"]) == 0
    assert (tmp_path / "cache" / "models" / "tiny-v1.safetensors").is_file()
    assert main(["download", "tiny"]) == 0 and "already downloaded" in capsys.readouterr().out
    assert main(["download", "nope"]) == 2
    assert "known models" in capsys.readouterr().err
