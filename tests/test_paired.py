"""``inpaintgan compare``: paired differences against a reference model, with confidence intervals."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from inpaintgan.cli import main as cli_main
from inpaintgan.eval.paired import paired_differences, read_per_image

COLS = ["model", "index", "file", "hole_ratio", "bucket", "l2_hole", "psnr_hole"]


def write_table(folder, per_model: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "per_image.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLS)
        for m, vals in per_model.items():
            for i, v in enumerate(vals):
                w.writerow([m, i, f"im{i:03d}.png", 0.1, "10-20%", 10 ** (-v / 10), v])


def test_paired_differences_separate_a_small_consistent_gain_from_noise(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.normal(18, 3, 200)  # images differ a lot from each other ...
    write_table(tmp_path, {
        "ref": base,
        "better": base + 0.1 + rng.normal(0, 0.05, 200),  # ... a small gain on every image is still clear
        "noise": base + rng.normal(0, 1.0, 200),  # no gain, just noise
    })  # fmt: skip
    rows = read_per_image(tmp_path)
    out = {e["model"]: e for e in paired_differences(rows, "ref", "psnr_hole")}
    assert out["better"]["significant"] and out["better"]["mean_diff"] == pytest.approx(0.1, abs=0.02)
    assert out["better"]["better"] > 0.95
    assert not out["noise"]["significant"]
    assert out["noise"]["ci95"] == pytest.approx(1.97 / np.sqrt(200), rel=0.2)  # t(0.975, 199) = 1.97
    # a lower-is-better metric: the better model has the lower MSE, and counts as better
    mse = {e["model"]: e for e in paired_differences(rows, "ref", "l2_hole")}
    assert mse["better"]["mean_diff"] < 0 and mse["better"]["better"] > 0.95


def test_lpips_counts_as_lower_is_better(tmp_path):
    (tmp_path / "per_image.csv").write_text(
        "model,index,file,hole_ratio,bucket,lpips\n" + "".join(f"a,{i},f{i},0.1,b,0.30\nb,{i},f{i},0.1,b,0.20\n" for i in range(4))
    )
    (e,) = paired_differences(read_per_image(tmp_path), "a", "lpips")
    assert e["mean_diff"] == pytest.approx(-0.1) and e["better"] == 1.0 and e["worse"] == 0.0


def test_compare_cli_table_and_errors(tmp_path, capsys):
    write_table(tmp_path / "ev", {"a": np.full(5, 20.0), "b": np.array([21, 22, 21, 22, 21.0])})
    assert cli_main(["compare", str(tmp_path / "ev"), "--ref", "a", "--out", str(tmp_path / "t.md")]) == 0
    text = (tmp_path / "t.md").read_text()
    assert "| b | 5 | +1.4 |" in text and "| yes |" in text
    # n = 5: the interval uses t(0.975, 4) = 2.78, not 1.96 (differences 1, 2, 1, 2, 1: sd 0.548)
    assert "±0.68 |" in text
    assert cli_main(["compare", str(tmp_path / "ev"), "--ref", "zzz"]) == 2
    assert "unknown reference model 'zzz'; models in the table: a, b" in capsys.readouterr().err
    assert cli_main(["compare", str(tmp_path / "ev"), "--ref", "a", "--metric", "fid"]) == 2
    assert "unknown metric 'fid'" in capsys.readouterr().err
    assert cli_main(["compare", str(tmp_path / "nothing"), "--ref", "a"]) == 2
    assert "no per_image.csv" in capsys.readouterr().err
