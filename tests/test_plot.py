"""``inpaintgan plot``: training curves from metrics.csv, with the method's phase boundaries."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_glcic_overrides
from inpaintgan.cli import main as cli_main
from inpaintgan.config import dump_config, load_config
from inpaintgan.training.plot import moving_average, phase_starts, plot_runs, read_metrics


def write_run(folder, rows: list[str], steps=(3, 2, 3), data="unused"):
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text("step,train/loss_mse,val/psnr\n" + "\n".join(rows) + "\n")
    (folder / "config.yaml").write_text(dump_config(load_config(None, tiny_glcic_overrides(data, folder, steps))))
    return folder


def test_read_metrics_skips_empty_cells_and_phases_come_from_the_config(tmp_path):
    run = write_run(tmp_path / "r", ["1,0.5,", "2,0.4,", "2,,17.5", "4,0.3,", "4,,18.0", "6,nan,"])
    m = read_metrics(run)
    assert np.array_equal(m["train/loss_mse"][0], [1, 2, 4]) and np.allclose(m["train/loss_mse"][1], [0.5, 0.4, 0.3])
    assert np.array_equal(m["val/psnr"][0], [2, 4]) and np.allclose(m["val/psnr"][1], [17.5, 18.0])
    assert phase_starts(run) == [(3, "discriminator"), (5, "joint")]  # GLCIC phases of 3 / 2 / 3 steps
    (run / "config.yaml").unlink()
    assert phase_starts(run) == []  # no config: curves without phase lines


def test_moving_average():
    v = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert np.allclose(moving_average(v, 2), [1.0, 1.5, 2.5, 3.5, 4.5])
    assert np.allclose(moving_average(v, 1), v)
    assert np.allclose(moving_average(v, 10), [1.0, 1.5, 2.0, 2.5, 3.0])


def test_plot_writes_a_png_and_names_unknown_metrics(tmp_path):
    a = write_run(tmp_path / "a", ["1,0.5,", "2,0.4,17.0", "3,0.35,17.4"])
    b = write_run(tmp_path / "b", ["1,0.6,", "2,0.45,16.8"])
    out = plot_runs([str(a), str(b / "metrics.csv")], tmp_path / "c.png", smooth=2, log_y=True)
    with Image.open(out) as im:
        assert im.width > im.height > 100  # two default panels side by side: val/psnr and the loss
    with pytest.raises(ValueError, match=r"unknown metric\(s\) val/fid; the runs log: train/loss_mse, val/psnr"):
        plot_runs([str(a)], tmp_path / "d.png", metrics=["val/fid"])
    with pytest.raises(ValueError, match="--label was given 1 time"):
        plot_runs([str(a), str(b)], tmp_path / "d.png", labels=["x"])
    assert not (tmp_path / "d.png").exists()


def test_plot_cli(tmp_path, capsys):
    a = write_run(tmp_path / "a", ["1,0.5,", "2,0.4,17.0"])
    assert cli_main(["plot", str(a), "--label", "mine", "-o", str(tmp_path / "p.png"), "--metric", "val/psnr"]) == 0
    assert (tmp_path / "p.png").is_file()
    assert cli_main(["plot", str(tmp_path / "missing"), "-o", str(tmp_path / "q.png")]) == 2
    assert "no metrics.csv at" in capsys.readouterr().err
