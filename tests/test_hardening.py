"""Issue 19: bad input and faults end in one clear error, never a traceback, a silent NaN or a lost
checkpoint. Config values typed by their field (9), one-line CLI errors (10), non-finite numbers (5),
unavailable devices and failed downloads (7), a damaged newest checkpoint (4)."""

from __future__ import annotations

import json
import math
import re
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from conftest import tiny_glcic_overrides, write_image_folder
from inpaintgan.checkpoints import CheckpointError, load_any, load_model, save_model
from inpaintgan.cli import main
from inpaintgan.config import ConfigError, load_config
from inpaintgan.finite import NonFiniteError, NonFiniteInputError
from inpaintgan.imageio import MaskError
from inpaintgan.inpainter import Inpainter
from inpaintgan.methods.glcic import GLCIC, GLCICConfig
from inpaintgan.training import state as state_mod
from inpaintgan.training.trainer import Trainer


def _cfg(data, out, *extra, steps=(3, 2, 3)):
    return load_config(None, tiny_glcic_overrides(data, out, steps) + list(extra))


def _train_argv(data, out, *extra, steps=(1, 0, 0)):
    argv = ["train", "--no-progress"]
    for o in tiny_glcic_overrides(data, out, steps) + list(extra):
        argv += ["--set", o]
    return argv


@pytest.fixture
def model_file(tmp_path) -> Path:
    torch.manual_seed(0)
    return save_model(GLCIC(GLCICConfig(width=8, d_width=8), image_size=32), tmp_path / "tiny.safetensors")


# ------------------------------------------------------------------------------- 9: config typing


def test_overrides_are_typed_by_the_field(tmp_path):
    cfg = load_config(None, ["train.lr=1e-4", "train.lr_d=2E-5", "data.root=no", "data.flip=no", "data.val_root=123",
                             "train.betas=[0.9, 0.99]", "data.crop_scale=1,2", "train.tensorboard=off", "model.width=8"])
    assert cfg.train.lr == 1e-4 and cfg.train.lr_d == 2e-5
    assert cfg.data.root == "no" and cfg.data.flip is False and cfg.data.val_root == "123"
    assert cfg.train.betas == (0.9, 0.99) and cfg.data.crop_scale == (1.0, 2.0) and cfg.train.tensorboard is False
    preset = tmp_path / "p.yaml"
    preset.write_text("train:\n  lr: 1e-4\n  batch_size: 1e1\ndata:\n  root: no\n  flip: no\nmodel:\n")
    cfg = load_config(preset, ["model.width=8"])
    assert cfg.train.lr == 1e-4 and cfg.train.batch_size == 10 and cfg.data.root == "no" and cfg.data.flip is False
    for bad, msg in [("train.lr=fast", "expected a number"), ("train.lr=nan", "finite"), ("train.batch_size=2.5", "integer"),
                     ("data.flip=maybe", "true/false"), ("train.betas=[1]", "expected 2 values")]:
        with pytest.raises(ConfigError, match=msg):
            load_config(None, [bad])


# ------------------------------------------------------------------ 10: values checked where they enter


@pytest.mark.parametrize("override, valid", [
    ("train.log_every=0", ">= 1"), ("train.amp=fp8", "one of none, bf16, fp16"), ("train.threads=-1", ">= 0"),
    ("data.image_size=7", ">= 8"), ("train.batch_size=0", ">= 1"), ("train.max_steps=-1", ">= 0"),
    ("train.time_limit_min=-5", ">= 0"), ("train.lr=0", "> 0"), ("masks.rect_min=1.5", r"in \(0, 1\]"),
    ("data.val_fraction=1", r"in \[0, 1\)"), ("train.device=gpu", "auto, cpu, cuda"), ("train.out_dir=", "not empty"),
    ("masks.kind=blobs", "one of glcic_rect"), ("data.dataset=imagenet", "one of folder"),
    ("data.repeat_epochs=-1", ">= 0"),
])
def test_config_values_out_of_range_name_the_valid_range(override, valid):
    with pytest.raises(ConfigError, match=rf"{override.split('=')[0]}=.* out of range: valid is .*{valid}"):
        load_config(None, [override])


def test_image_size_must_fit_the_network(image_folder, tmp_path):
    with pytest.raises(ConfigError, match=r"data.image_size=18 does not fit method 'glcic': valid is a multiple of 4 .*e.g. 16 or 20"):
        Trainer(_cfg(image_folder, tmp_path / "r", "data.image_size=18"), progress=False)


def _one_line_error(capsys, argv, code):
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    lines = [ln for ln in err.splitlines() if ": error: " in ln or "Traceback" in ln]
    assert rc == code, err
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def test_cli_bad_values_and_files_are_one_line_errors(capsys, tmp_path, model_file):
    images = write_image_folder(tmp_path / "imgs")
    for override in ("train.log_every=0", "data.image_size=7", "train.amp=fp8", "train.threads=-1"):
        assert "out of range" in _one_line_error(capsys, _train_argv(images, tmp_path / "r", override), 2)
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert "is an existing file" in _one_line_error(capsys, _train_argv(images, afile), 2)
    unreadable = tmp_path / "junk"
    unreadable.mkdir()
    for i in range(6):
        (unreadable / f"x{i}.png").write_bytes(b"not an image")
    with pytest.warns(UserWarning):
        assert "no readable image" in _one_line_error(capsys, _train_argv(unreadable, tmp_path / "r2"), 2)
    # export of a plain-dict .pt
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    assert "not an inpaintgan training checkpoint" in _one_line_error(capsys, ["export", plain, "-o", tmp_path / "m.safetensors"], 2)
    # model files whose metadata lacks 'method', is not an object, is not JSON
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(tmp_path / "mask.png")
    for name, meta, msg in [("nometh", {"a": 1}, "names no method"), ("list", [1, 2], "must be a JSON object"),
                            ("notjson", "{{", "not valid JSON")]:
        bad = tmp_path / f"{name}.safetensors"
        save_file({"x": torch.zeros(1)}, bad, metadata={"inpaintgan": meta if isinstance(meta, str) else json.dumps(meta)})
        with pytest.raises(CheckpointError, match=msg):
            load_model(bad)
        line = _one_line_error(capsys, ["fill", images / "class0", "--mask", tmp_path / "mask.png", "-o", tmp_path / "o", "--model", bad], 2)
        assert msg in line
    # fill into a folder that cannot be created (a file is in the way)
    line = _one_line_error(capsys, ["fill", images / "class0", "--mask", tmp_path / "mask.png", "-o", afile / "sub", "--model", model_file], 2)
    assert "cannot create the output folder" in line


def test_resume_after_changing_the_network_is_one_line(capsys, tmp_path):
    images = write_image_folder(tmp_path / "imgs")
    out = tmp_path / "run"
    assert main(_train_argv(images, out)) == 0
    capsys.readouterr()
    line = _one_line_error(capsys, _train_argv(images, out, "model.width=16") + ["--resume"], 2)
    assert "does not fit this run's networks (changed since: model.width: 8 -> 16)" in line


def test_unexpected_errors_are_one_line_with_exit_1(capsys, monkeypatch, tmp_path):
    import inpaintgan.training.cli as tcli

    def boom(args):
        raise RuntimeError("something\ndeep inside")

    monkeypatch.setattr(tcli, "cmd_methods", boom)
    line = _one_line_error(capsys, ["methods"], 1)
    assert "RuntimeError: something deep inside" in line and "INPAINTGAN_DEBUG" in line


# ------------------------------------------------------------------------------ 7: devices, downloads


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_is_one_line(capsys, tmp_path, model_file):
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(tmp_path / "m.png")
    line = _one_line_error(capsys, ["fill", tmp_path / "a.png", "--mask", tmp_path / "m.png", "-o", tmp_path / "o.png",
                                    "--model", model_file, "--device", "cuda"], 2)
    assert "'cuda' was requested" in line and "--device cpu" in line
    line = _one_line_error(capsys, ["serve", "--model", model_file, "--device", "cuda:1", "--port", "0"], 2)
    assert "'cuda:1' was requested" in line
    with pytest.raises(ValueError, match="was requested"):
        Inpainter.from_pretrained(model_file, device="cuda")


def test_failed_download_is_one_line(capsys, monkeypatch, tmp_path):
    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    line = _one_line_error(capsys, _train_argv(tmp_path / "cifar", tmp_path / "r", "data.dataset=cifar10",
                                               "data.download=true"), 1)
    assert "could not download" in line and "place the file at" in line


# --------------------------------------------------------------------------------- 5: non-finite


def test_non_finite_weights_are_refused_at_load(model_file, tmp_path):
    tensors = load_file(str(model_file))
    from safetensors import safe_open

    with safe_open(str(model_file), framework="pt") as f:
        meta = f.metadata()
    key = next(k for k, v in tensors.items() if k.startswith("generator.") and v.is_floating_point() and v.numel() > 1)
    tensors[key].view(-1)[0] = float("nan")
    bad = tmp_path / "nan.safetensors"
    save_file(tensors, bad, metadata=meta)
    with pytest.raises(CheckpointError, match=rf"tensor {re.escape(key)} holds 1 NaN/Inf"):
        load_model(bad)
    # a trainer checkpoint with an Inf weight
    method = GLCIC(GLCICConfig(width=8, d_width=8), image_size=32)
    sd = method.state_dict()
    first = next(k for k, v in sd.items() if v.is_floating_point())
    sd[first] = sd[first].clone().fill_(float("inf"))
    cfg = load_config(None, ["model.width=8", "model.d_width=8", "data.image_size=32"])
    from inpaintgan.config import to_dict

    torch.save({"config": to_dict(cfg), "model": sd, "method": "glcic"}, tmp_path / "inf.pt")
    with pytest.raises(CheckpointError, match="NaN/Inf"):
        load_any(tmp_path / "inf.pt")


def test_non_finite_inputs_are_refused(model_file):
    inp = Inpainter.from_pretrained(model_file, device="cpu")
    img = np.full((32, 32, 3), 0.5, np.float32)
    hole = np.zeros((32, 32), bool)
    hole[8:16, 8:16] = True
    img[7, 8, 0] = np.nan  # next to the hole
    with pytest.raises(NonFiniteInputError, match="NaN/Inf"):
        inp(img, hole)
    with pytest.raises(NonFiniteInputError, match="NaN/Inf"):
        inp(torch.from_numpy(img).permute(2, 0, 1), hole)
    mask = hole.astype(np.float32)
    mask[0, 0] = np.inf
    with pytest.raises(MaskError, match="NaN/Inf"):
        inp(np.full((32, 32, 3), 0.5, np.float32), mask)


def test_non_finite_output_is_an_error_and_nothing_is_written(model_file, tmp_path, monkeypatch, capsys):
    def nan_inpaint(self, image, mask):
        return torch.full_like(image, float("nan"))

    monkeypatch.setattr(GLCIC, "inpaint", nan_inpaint)
    inp = Inpainter.from_pretrained(model_file, device="cpu")
    hole = np.zeros((32, 32), bool)
    hole[8:16, 8:16] = True
    with pytest.raises(NonFiniteError, match="NaN/Inf"):
        inp(np.zeros((32, 32, 3), np.uint8), hole)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "m.png")
    rc = main(["fill", str(tmp_path / "a.png"), "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "out.png"),
               "--model", str(model_file), "-q"])
    assert rc == 1 and "NaN/Inf" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists() and not list(tmp_path.glob(".out.png*"))


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(image_folder, tmp_path, monkeypatch):
    import inpaintgan.methods.glcic as glcic

    real, calls = glcic.masked_mse, {"n": 0}

    def mse_going_nan(*a, **k):
        calls["n"] += 1
        out = real(*a, **k)
        return out * float("nan") if calls["n"] >= 3 else out

    monkeypatch.setattr(glcic, "masked_mse", mse_going_nan)
    out = tmp_path / "run"
    trainer = Trainer(_cfg(image_folder, out, "train.ckpt_every=1"), progress=False)
    with pytest.raises(NonFiniteError, match=r"training stopped at step 3 .*generator loss is nan.*last good checkpoint .*step_00000002\.pt"):
        trainer.run()
    names = [p.name for p in state_mod.list_checkpoints(out)]
    assert names[-1] == "step_00000002.pt"
    from inpaintgan.checkpoints import load_training_state

    payload = load_training_state(out / "checkpoints" / "step_00000002.pt")
    assert all(torch.isfinite(t).all() for t in payload["model"].values() if t.is_floating_point())
    assert all(torch.isfinite(p).all() for p in trainer.method.parameters())  # the NaN never reached the weights


# ------------------------------------------------------------------------ 4: damaged newest checkpoint


def test_resume_falls_back_past_a_damaged_newest_checkpoint(image_folder, tmp_path):
    out = tmp_path / "run"
    Trainer(_cfg(image_folder, out, "train.max_steps=3", "train.ckpt_every=1", "train.keep_last=5"), progress=False).run()
    newest = state_mod.list_checkpoints(out)[-1]
    assert newest.name == "step_00000003.pt"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated on disk
    (out / "checkpoints" / ".step_00000004.pt.abc123.tmp").write_bytes(b"half")  # a killed write's leftover
    trainer = Trainer(_cfg(image_folder, out, "train.ckpt_every=1", "train.keep_last=2"), progress=False)
    with pytest.warns(UserWarning, match="skipping unusable checkpoint"):
        result = trainer.run(resume="auto")
    assert result.step == 8
    assert [p.name for p in state_mod.list_checkpoints(out)] == ["step_00000007.pt", "step_00000008.pt"]
    assert (out / "checkpoints" / "step_00000003.pt.damaged").is_file()  # kept aside, not deleted
    assert not list((out / "checkpoints").glob(".*.tmp"))
    lines = (out / "metrics.csv").read_text().splitlines()
    steps = [int(float(r.split(",")[0])) for r in lines[1:] if r.split(",")[0].replace(".", "").isdigit()]
    assert 3 in steps and math.isfinite(steps[-1])


def test_options_are_checked_where_they_enter(tmp_path, model_file, capsys):
    from inpaintgan.imageio import read_image

    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match="max_pixels must be an integer >= 0"):
        read_image(tmp_path / "a.png", max_pixels=-1)
    base = ["fill", str(tmp_path / "a.png"), "--mask", str(tmp_path / "a.png"), "-o", str(tmp_path / "o.png"), "--model", str(model_file)]
    for extra, msg in [(["--max-pixels", "-1"], "must be >= 0, got -1"), (["--working-size", "0"], "must be >= 1, got 0")]:
        with pytest.raises(SystemExit) as e:
            main(base + extra)
        assert e.value.code == 2 and msg in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--max-pixels", "-5"])
    assert "must be >= 1" in capsys.readouterr().err


def test_temp_files_of_a_killed_writer_go_at_the_next_write(tmp_path):
    import os

    from inpaintgan.checkpoints import atomic_write

    dead = tmp_path / ".out.png.999999999.abc.tmp"  # no such process
    live = tmp_path / f".out.png.{os.getpid()}.def.tmp"  # a write of this process, still going
    other = tmp_path / ".other.png.999999999.x.tmp"  # another file's
    for p in (dead, live, other):
        p.write_bytes(b"half")
    atomic_write(tmp_path / "out.png", lambda tmp: Path(tmp).write_bytes(b"done"))
    assert (tmp_path / "out.png").read_bytes() == b"done"
    assert not dead.exists() and live.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".other.png.999999999.x.tmp", live.name, "out.png"])


@pytest.mark.parametrize("argv, msg", [
    (["eval", "--model", "telea", "--data", "x", "--size", "-1"], "must be >= 0, got -1"),
    (["eval", "--model", "telea", "--data", "x", "--batch-size", "0"], "must be >= 1, got 0"),
    (["masks", "-n", "0", "--out", "x"], "must be >= 1, got 0"),
])
def test_eval_options_are_checked_where_they_enter(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and msg in capsys.readouterr().err


def test_api_errors_are_the_projects_own(model_file):
    from inpaintgan.errors import InpaintInputError

    inp = Inpainter.from_pretrained(model_file, device="cpu")
    img, hole = np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32), bool)
    hole[4:8, 4:8] = True
    for call, msg in [(lambda: inp(img, hole, strategy="nope"), "unknown strategy"),
                      (lambda: inp(object(), hole), "unsupported image type"),
                      (lambda: inp(np.zeros((32, 32, 3), np.int64), hole), "unsupported dtype"),
                      (lambda: inp(img, hole, working_size=-4), "working")]:
        with pytest.raises(InpaintInputError, match=msg) as e:
            call()
        assert isinstance(e.value, ValueError) and isinstance(e.value, TypeError)
    with pytest.raises(MaskError):  # the more specific project errors pass through as they are
        inp(img, np.ones((32, 32), bool))
