"""The discriminator probe (experiments/discriminator_probe): its AUC, its hole-cell scores, and that a
discriminator trained alone learns an obvious fill and nothing from a fill that equals the photo."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintgan.experiments.discriminator_probe import auc, hole_scores, main, train_probe


def test_auc_orders_pairs_and_counts_ties_half():
    assert auc(torch.tensor([2.0, 3.0]), torch.tensor([1.0, 2.0])) == pytest.approx(3.5 / 4)
    assert auc(torch.tensor([0.0]), torch.tensor([1.0])) == 0.0
    assert auc(torch.ones(5), torch.ones(3)) == 0.5


class CellMeans(torch.nn.Module):
    """A stand-in discriminator: 4x4 logits = the mean of the first input channel per cell (and it
    records the channel count it was given)."""

    def forward(self, x):
        self.channels = x.shape[1]
        return torch.nn.functional.adaptive_avg_pool2d(x[:, :1], (4, 4)), []


def test_hole_scores_average_the_cells_touching_the_hole_only():
    x = torch.zeros(1, 3, 16, 16)
    x[..., :4, :4] = 1.0  # cell (0, 0) holds 1 (logit +1 after the [-1, 1] scaling), the rest -1
    m = torch.zeros(1, 1, 16, 16)
    m[..., 2:6, 2:3] = 1  # touches cells (0, 0) and (1, 0)
    d = CellMeans()
    assert hole_scores(d, x, m).tolist() == pytest.approx([0.0])  # (+1 + -1) / 2
    assert d.channels == 3
    hole_scores(d, x, m, mask_channel=True)
    assert d.channels == 4


def waves(n: int, g: torch.Generator, size: int = 32) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    f = torch.rand(n, 3, 1, 1, generator=g) * 6 + 2
    ph = torch.rand(n, 3, 1, 1, generator=g) * 6
    return (0.5 + 0.4 * torch.sin(f * xx + ph) * torch.cos(f * yy)).clamp(0, 1)


def squares(n: int, g: torch.Generator, size: int = 32) -> torch.Tensor:
    m = torch.zeros(n, 1, size, size)
    for i in range(n):
        a, b = torch.randint(0, size // 2, (2,), generator=g).tolist()
        m[i, :, a : a + size // 2, b : b + size // 2] = 1
    return m


def mean_fill(x, m):
    return torch.where(m > 0.5, x.mean((2, 3), keepdim=True), x)


def test_a_discriminator_alone_learns_a_flat_fill_and_nothing_from_the_photo_itself():
    g = torch.Generator().manual_seed(0)
    x, m, xd, md = waves(64, g), squares(64, g), waves(32, g), squares(32, g)
    learnt = train_probe("mask_bal", (x, mean_fill(x, m), m), (xd, mean_fill(xd, md), md), 400, 1e-3, 400, 8, 2)
    assert learnt[-1]["auc"] > 0.8  # 0.93 when written; an untrained or blind D gives 0.5
    same = train_probe("rgb", (x, x, m), (xd, xd, md), 100, 1e-3, 100, 8, 2)
    assert same[-1]["auc"] == 0.5  # a "fill" equal to the photo scores exactly like it


def test_cli_trains_on_the_configs_data_and_writes_rows(tmp_path):
    rng = np.random.default_rng(0)
    photos, dev = tmp_path / "train", tmp_path / "dev"
    for folder in (photos, dev):
        folder.mkdir()
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"method: lama\ndata:\n  dataset: folder\n  root: {photos}\n  val_root: {dev}\n  image_size: 32\n"
                   "  num_workers: 0\nmasks:\n  kind: lama_wide\n")  # fmt: skip
    out = tmp_path / "rows.json"
    rc = main(["--data", str(dev), "-n", "4", "--size", "32", "--crop", "32", "--fake", "telea", "--config", str(cfg),
               "--train", "rgb", "--pool", "6", "--steps", "3", "--every", "2", "--d-width", "4", "--d-layers", "2",
               "--out", str(out)])  # fmt: skip
    assert rc == 0
    rows = json.loads(out.read_text())
    assert [r["step"] for r in rows] == [2, 3]
    assert all(0.0 <= r["auc"] <= 1.0 for r in rows)


def test_cli_refuses_nothing_to_do_and_model_files_in_one_line(tmp_path, capsys):
    d = tmp_path / "dev"
    d.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(d / "a.png")
    assert main(["--data", str(d), "-n", "1", "--size", "32", "--crop", "32", "--fake", "telea"]) == 2
    assert "nothing to do" in capsys.readouterr().err
    assert main(["--data", str(d), "-n", "1", "--size", "32", "--crop", "32", "--fake", "telea",
                 "--checkpoints", str(tmp_path / "m.safetensors")]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert "holds no discriminator" in err and len(err.splitlines()) == 1


def test_fill_cache_gives_the_same_fills_and_is_read_back(tmp_path, monkeypatch):
    """--fill-cache: the development fills equal the baseline's, are written once, and a second run reads
    them back instead of filling again."""
    import inpaintgan.postprocess as post
    from inpaintgan.experiments.discriminator_probe import classical_fill

    g = torch.Generator().manual_seed(1)
    x, m = (waves(4, g) * 255).round() / 255, squares(4, g)  # photos are 8-bit
    direct = classical_fill("telea", x, m)
    cache = tmp_path / "fills.npz"
    assert torch.allclose(classical_fill("telea", x, m, cache), direct, atol=1 / 255 + 1e-6) and cache.is_file()
    monkeypatch.setattr(post, "fill_hole", lambda *a: pytest.fail("filled again despite the cache"))
    assert torch.equal(classical_fill("telea", x, m, cache), classical_fill("telea", x, m, cache))
