"""``train.amp=bf16`` on the CPU: bf16 autocast really runs (it was silently float32 before), and a tiny
GLCIC run trains to the loss of the float32 run within tolerance (same data, masks and seed)."""

from __future__ import annotations

import csv

import torch

from conftest import tiny_glcic_overrides
from inpaintgan.config import load_config
from inpaintgan.training.trainer import TrainContext, train


def test_bf16_autocast_runs_on_the_cpu_and_fp16_stays_float32():
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.rand(1, 3, 8, 8)
    bf = TrainContext({}, torch.device("cpu"), "bf16")
    with bf.autocast():
        assert conv(x).dtype == torch.bfloat16
    half = TrainContext({}, torch.device("cpu"), "fp16")  # fp16 autocast: GPU only
    with half.autocast():
        assert conv(x).dtype == torch.float32
    assert not half.scaler.is_enabled()


def _losses(folder, out, amp):
    cfg = load_config(None, tiny_glcic_overrides(folder, out, (60, 5, 15)) + [
        "data.limit=4", "data.flip=false", f"train.amp={amp}", "train.channels_last=true", "train.threads=1"])
    cfg.masks.kind = "center"  # the same hole every step: a fixed batch to overfit, losses comparable
    result = train(cfg, progress=False)
    assert result.step == 80
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return [float(r["train/loss_mse"]) for r in rows if r.get("train/loss_mse")]


def test_bf16_training_reaches_the_float32_loss(image_folder, tmp_path):
    fp32 = _losses(image_folder, tmp_path / "fp32", "none")
    bf16 = _losses(image_folder, tmp_path / "bf16", "bf16")
    assert len(fp32) == len(bf16) == 75  # phases 1 and 3 log the reconstruction loss
    assert fp32 != bf16  # bf16 really ran (not the float32 step again)
    first, last = sum(fp32[:5]) / 5, sum(fp32[-10:]) / 10
    assert last < 0.5 * first  # it trains
    last_bf16 = sum(bf16[-10:]) / 10
    assert abs(last_bf16 - last) <= 0.1 * (first - last) + 0.05 * last  # within 10% of the fall, 5% of the level
