"""Plain collaborative sampling (issue #16: the collaborative-sampling report's experiment without
inpainting): proposals refined by the plain and a shaped discriminator, set-level scores, outputs,
refusal of a shaped file with another generator."""

from __future__ import annotations

import copy
import csv
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import write_fashion_mnist
from inpaintgan.checkpoints import save_model
from inpaintgan.experiments import collab_sampling as CS
from inpaintgan.methods.semantic import SemanticConfig, SemanticInpainting

S, N = 16, 6


def write_fmnist(root, n: int) -> np.ndarray:
    """Both splits; the training split is the test split shifted by 2 px, so the two sets differ."""
    return write_fashion_mnist(root, n, (("t10k", 0), ("train", 2)))


def pixel_features(x: torch.Tensor) -> np.ndarray:
    """A cheap stand-in for the Inception features (the realism module has its own tests): 4x4 means."""
    return F.adaptive_avg_pool2d(x.float(), 4).flatten(1).double().numpy()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("collab")
    images = write_fmnist(root / "fmnist", N)
    torch.manual_seed(0)
    base = SemanticInpainting(SemanticConfig(ngf=16, ndf=16, progress=False), S, channels=1).eval()
    x = F.interpolate(torch.from_numpy(images)[:, None].float() / 255, size=S, mode="bicubic", align_corners=False)
    base.calibrate(x.clamp(0, 1))
    shaped = copy.deepcopy(base)
    with torch.no_grad():
        for p in shaped.discriminator.parameters():
            p.add_(0.05 * torch.randn_like(p))
    bad = copy.deepcopy(base)
    with torch.no_grad():
        next(bad.generator.parameters()).view(-1)[0] += 1e-3
    paths = {k: save_model(m, root / f"{k}.safetensors") for k, m in (("base", base), ("shaped", shaped), ("bad", bad))}
    return root, paths, base


def _args(root, paths, out, *extra):
    return CS.parse_args(["--base", str(paths["base"]), "--shaped", f"s1={paths['shaped']}", "-n", str(N),
                          "--data-root", str(root / "fmnist"), "--steps", "5", "--stop-rule", "none",
                          "--batch-size", "4", "--figure-rows", "3", "--out", str(out), *extra])  # fmt: skip


def test_refinement_raises_d_and_outputs_are_written(setup, tmp_path):
    root, paths, base = setup
    res = CS.run(_args(root, paths, tmp_path / "out"), features=pixel_features)
    rows = {r["variant"]: r for r in res["refinement"]}
    assert set(rows) == {"collab", "shaped-s1"}
    for r in rows.values():  # every sample took all 5 steps (stop rule none) and D's logit rose
        assert r["mean_steps"] == 5 and r["stopped_at_once"] == 0
        assert r["d_logit_after"] > r["d_logit_before"]
    # the shaped variant is judged by its own discriminator: other logits on the same proposals
    assert rows["shaped-s1"]["d_logit_before"] != rows["collab"]["d_logit_before"]
    scores = res["realism"]
    assert list(scores) == ["t10k vs train (reference)", "proposal", "collab", "shaped-s1"]
    assert all(np.isfinite(s["fid"]) and np.isfinite(s["kid"]) for s in scores.values())
    assert scores["collab"]["fid"] != scores["proposal"]["fid"]  # refinement changed the samples
    out = tmp_path / "out"
    for name in ("results.json", "results.md", "per_sample.csv", "figure_collab.png", "figure_shaped-s1.png"):
        assert (out / name).is_file(), name
    with open(out / "per_sample.csv", newline="") as f:
        per = list(csv.DictReader(f))
    assert len(per) == N and all(float(p["collab_steps"]) == 5 for p in per)
    assert "| proposal |" in (out / "results.md").read_text()
    assert json.loads((out / "results.json").read_text())["settings"]["n"] == N


def test_samples_that_start_above_the_median_stay_the_proposal(setup, tmp_path):
    """Stop rule median with the threshold below every logit: no sample steps, so the refined samples
    are the proposals and score exactly as they do."""
    root, paths, base = setup
    h, x0 = CS.propose(base, N, 0)
    low = copy.deepcopy(base)
    low.d_real_median.fill_(-1e9)
    r = CS.refine_all(low, h, 4, 5, 0.1, "median")
    assert torch.equal(r["steps"], torch.zeros(N, dtype=torch.long))
    assert torch.equal(r["x"], x0)


def test_a_shaped_file_with_another_generator_is_refused(setup, tmp_path, capsys):
    root, paths, _ = setup
    argv = ["--base", str(paths["base"]), "--shaped", f"x={paths['bad']}", "-n", str(N), "--data-root",
            str(root / "fmnist"), "--out", str(tmp_path / "o")]  # fmt: skip
    assert CS.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "generator" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o" / "results.json").exists()
