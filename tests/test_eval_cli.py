"""``inpaintgan eval`` end to end as a subprocess on a tiny folder with baselines: the table holds every
model and its bucket counts add up; CSV/JSON/figures are written; a rerun resumes; ``--outputs``
scores a folder of finished results; runner pieces give the numbers the metrics give."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintgan import metrics as M
from inpaintgan.eval.protocols import get_protocol
from inpaintgan.eval.runner import EvalImages, load_batch, prepare_image, summarize


def _write_images(root, n=6, size=32):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        a = rng.uniform(0.2, 1, (3, 2))
        img = np.stack([a[c, 0] * xx + a[c, 1] * yy for c in range(3)], -1) / 2
        sub = root / f"class{i % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * 255).astype(np.uint8)).save(sub / f"img_{i}.png")
    return root


def _cli(*args, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "inpaintgan", *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data = _write_images(root / "data")
    out = root / "out"
    args = ["eval", "--model", "telea", "--model", "mean", "--data", str(data), "--protocol", "freeform_buckets",
            "--size", "32", "--seed", "3", "--out", str(out), "--batch-size", "4", "--no-progress", "--device", "cpu"]
    res = _cli(*args)
    assert res.returncode == 0, res.stderr
    return data, out, res, args


def test_eval_table_counts_and_files(eval_run):
    data, out, res, _ = eval_run
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("| ")]
    assert lines[0].startswith("| model | bucket | n | l1_hole")
    body = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[1:]]
    for model in ("telea", "mean"):
        mine = [r for r in body if r[0] == model]
        buckets = {r[1]: int(r[2]) for r in mine}
        assert buckets.pop("all") == 6
        assert sum(buckets.values()) == 6  # 6 images over buckets 0-10 .. 30-40%: 2, 2, 1, 1
        assert buckets == {"0-10%": 2, "10-20%": 2, "20-30%": 1, "30-40%": 1}
    from inpaintgan import metrics as M

    assert "lpips: unavailable" in res.stdout
    if M.available_metrics()["fid"].available:  # FID / KID columns when the [metrics] extra is installed
        assert "| FID ↓ | KID×1000 ↓ |" in lines[0] and "fid: unavailable" not in res.stdout
    else:
        assert "fid: unavailable" in res.stdout
    for name in ("per_image.csv", "results.csv", "results.json", "comparison.png", "ratio_plot.png", "settings.json"):
        assert (out / name).is_file(), name
    per_image = list(csv.DictReader(open(out / "per_image.csv")))
    assert len(per_image) == 12
    results = json.loads((out / "results.json").read_text())
    assert results["models"] == ["telea", "mean"] and "lpips" in results["unavailable"]
    all_rows = {r["model"]: r for r in results["results"] if r["bucket"] == "all"}
    assert all_rows["telea"]["l1_hole"] < all_rows["mean"]["l1_hole"]  # smooth images: Telea wins
    assert len(list(csv.DictReader(open(out / "results.csv")))) == len(results["results"])


def test_eval_values_match_metrics(eval_run):
    """The per-image CSV holds the numbers metrics.py gives for the same images and masks."""
    data, out, _, _ = eval_run
    from inpaintgan.baselines import get_baseline

    images, masks = load_batch(EvalImages(data, 32), get_protocol("freeform_buckets", 3), list(range(6)), "cpu")
    vals = M.compute_all(get_baseline("mean")(images, masks), images, masks)
    rows = [r for r in csv.DictReader(open(out / "per_image.csv")) if r["model"] == "mean"]
    for r in rows:
        i = int(r["index"])
        assert float(r["psnr_hole"]) == pytest.approx(float(vals["psnr_hole"][i]), rel=1e-4)
        assert float(r["hole_ratio"]) == pytest.approx(float(masks[i].mean()), abs=1e-6)


def test_eval_resume_and_outputs_scoring(eval_run, tmp_path, capsys):
    from inpaintgan.baselines import get_baseline
    from inpaintgan.cli import main

    data, out, _, args = eval_run
    # a rerun with the same --out skips what is done (no new rows) and still prints the table
    assert main(args) == 0
    assert "| telea | all | 6 |" in capsys.readouterr().out
    assert len(list(csv.DictReader(open(out / "per_image.csv")))) == 12
    # another tool's outputs: here Telea's results written as files with the data images' names
    ds = EvalImages(data, 32)
    images, masks = load_batch(ds, get_protocol("freeform_buckets", 3), list(range(len(ds))), "cpu")
    filled = get_baseline("telea")(images, masks)
    outputs = tmp_path / "tool"
    for i in range(len(ds)):
        p = outputs / ds.rel(i)
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((filled[i].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save(p)
    assert main(["eval", "--outputs", str(outputs), "--data", str(data), "--protocol", "freeform_buckets", "--size", "32",
                 "--seed", "3", "--out", str(tmp_path / "o2"), "--no-progress", "--figure-rows", "2"]) == 0  # fmt: skip
    results = json.loads((tmp_path / "o2" / "results.json").read_text())
    mine = {r["bucket"]: r for r in results["results"] if r["model"] == "outputs:tool"}
    ref = {r["bucket"]: r for r in json.loads((out / "results.json").read_text())["results"] if r["model"] == "telea"}
    assert mine["all"]["count"] == 6
    assert mine["all"]["psnr_hole"] == pytest.approx(ref["all"]["psnr_hole"], abs=1e-3)
    assert (tmp_path / "o2" / "comparison.png").is_file()
    # a different protocol into the same --out is refused with a clear message
    capsys.readouterr()
    assert main(["eval", "--model", "mean", "--data", str(data), "--protocol", "center", "--size", "32", "--out", str(out)]) == 2
    assert "different evaluation" in capsys.readouterr().err


def test_eval_errors_are_one_line(tmp_path, capsys):
    from inpaintgan.cli import main

    data = _write_images(tmp_path / "d", n=2)
    assert main(["eval", "--model", "nope", "--data", str(data), "--size", "32", "--out", str(tmp_path / "o")]) == 2
    assert "telea" in capsys.readouterr().err
    assert main(["eval", "--outputs", str(tmp_path / "missing"), "--data", str(data), "--out", str(tmp_path / "o")]) == 2
    assert "outputs folder not found" in capsys.readouterr().err
    (tmp_path / "partial").mkdir()
    assert main(["eval", "--outputs", str(tmp_path / "partial"), "--data", str(data), "--out", str(tmp_path / "o")]) == 2
    assert "lacks 2 of 2 results" in capsys.readouterr().err


def test_prepare_and_summarize():
    arr = np.arange(40 * 60 * 3, dtype=np.uint8).reshape(40, 60, 3)
    assert prepare_image(arr, 40).shape == (40, 40, 3)
    assert np.array_equal(prepare_image(arr, 40), arr[:, 10:50])
    assert prepare_image(arr, 0) is arr and prepare_image(arr, 20).shape == (20, 20, 3)
    rows = [{"model": "a", "bucket": b, "hole_ratio": r, "l1": v} for b, r, v in
            [("0-10%", 0.05, 1.0), ("0-10%", 0.07, 3.0), ("10-20%", 0.15, 5.0)]]  # fmt: skip
    t = summarize(rows, ["a"], ["0-10%", "10-20%"], ["l1"])
    assert [(e["bucket"], e["count"], e["l1"]) for e in t] == [("0-10%", 2, 2.0), ("10-20%", 1, 5.0), ("all", 3, 3.0)]
    assert torch.is_tensor(get_protocol("center").masks([0, 1], 8))


def test_eval_native_size(tmp_path, capsys):
    """--size 0 keeps native sizes; images of different sizes go in separate batches."""
    from inpaintgan.cli import main

    data = _write_images(tmp_path / "d", n=2, size=32)
    Image.fromarray(np.full((24, 40, 3), 128, np.uint8)).save(data / "wide.png")
    assert main(["eval", "--model", "mean", "--data", str(data), "--size", "0", "--protocol", "center",
                 "--out", str(tmp_path / "o"), "--no-progress"]) == 0  # fmt: skip
    rows = list(csv.DictReader(open(tmp_path / "o" / "per_image.csv")))
    assert len(rows) == 3 and all(abs(float(r["hole_ratio"]) - 0.25) < 0.02 for r in rows)


def test_eval_rescores_a_changed_model_file_under_the_same_name(tmp_path, capsys):
    """A rerun into the same --out keeps rows of unchanged models but re-scores a model file that
    was replaced (retrained) under the same name, instead of reporting the old model's numbers."""
    from inpaintgan.checkpoints import save_model
    from inpaintgan.cli import main
    from inpaintgan.methods.pconv import PConvConfig, PConvGAN

    data = _write_images(tmp_path / "data", n=4)
    model = tmp_path / "net.safetensors"
    torch.manual_seed(0)
    save_model(PConvGAN(PConvConfig(width=0.125, d_width=0.25, depth=2), image_size=32), model)
    args = ["eval", "--model", str(model), "--model", "mean", "--data", str(data), "--protocol", "center",
            "--size", "32", "--out", str(tmp_path / "out"), "--no-progress", "--figure-rows", "2"]  # fmt: skip

    def scores(label):
        rows = csv.DictReader(open(tmp_path / "out" / "per_image.csv"))
        return sorted((r["file"], r["l1_hole"]) for r in rows if r["model"] == label)

    assert main(args) == 0
    first, mean_first = scores("net"), scores("mean")
    assert main(args) == 0  # same files: resumed, nothing re-scored
    assert "re-scoring" not in capsys.readouterr().out and scores("net") == first
    torch.manual_seed(1)  # "retrain": other weights under the same file name
    save_model(PConvGAN(PConvConfig(width=0.125, d_width=0.25, depth=2), image_size=32), model)
    assert main(args) == 0
    assert "re-scoring net" in capsys.readouterr().out
    assert len(scores("net")) == 4 and scores("net") != first and scores("mean") == mean_first
