"""Image-quality metrics for inpainting, on [0, 1] pixels, batched, on any device.

Every per-image metric takes ``pred`` and ``target`` of shape (N, C, H, W) and an optional ``mask``
(N, 1, H, W) with 1 = hole. ``mask=None`` scores the whole image; with a mask only hole pixels count
(the "hole-only" numbers inpainting papers report). Each returns a per-image tensor (N,) so a runner
can bucket images by hole ratio; :func:`compute_all` returns them all at once.

- L1 / L2 (MSE) and PSNR = 10 log10(R^2 / MSE) with the data range R explicit. Hole PSNR comes from
  the hole MSE. MSE is clamped at 1e-10, so identical images give a finite PSNR (100 dB at R = 1).
- SSIM (Wang et al. 2004, "Image quality assessment: from error visibility to structural
  similarity"): 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, population covariance -- the
  settings of ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False)``. The whole-image value equals scikit-image's: the mean of the SSIM map
  without its 5-pixel border (scikit-image drops it "to avoid edge effects"). The hole-only value is
  the SSIM map of the full image (border pixels filtered with symmetric padding, as scipy's 'reflect')
  averaged over hole pixels.
- Total variation: mean |x[i+1, j] - x[i, j]| + mean |x[i, j+1] - x[i, j]|, the "TV loss" column of
  DeepFill v1's Table 1 (Yu et al. 2018, "Generative Image Inpainting with Contextual Attention",
  Sec. 5.1, where it is printed in percent). Hole-only: over the neighbour pairs with at least one
  pixel in the hole, so the seam between fill and context counts.
- Frechet distance (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule...", the FID
  formula) between two Gaussians, computed by us; :class:`FID` takes any feature extractor
  (a callable images -> (N, D) features), so it needs no InceptionV3 here.
- LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
  Metric", v0.1 with AlexNet): the network is defined here and loads a torchvision-layout AlexNet
  state_dict plus LPIPS's linear-layer weights from local files. Without them it is reported as
  unavailable with the reason (:func:`available_metrics`), never skipped silently.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

MSE_FLOOR = 1e-10
SSIM_WIN = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03

#: the per-image metric names :func:`compute_all` returns (``_hole`` = over hole pixels only)
METRIC_NAMES = ("l1_hole", "l2_hole", "psnr_hole", "ssim_hole", "l1", "l2", "psnr", "ssim", "tv")
#: for each metric, True if higher is better
HIGHER_IS_BETTER = {"l1": False, "l2": False, "psnr": True, "ssim": True, "tv": False, "lpips": False, "fid": False,
                    "kid": False}


def _check(pred: Tensor, target: Tensor, mask: Tensor | None) -> None:
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"pred and target must both be (N, C, H, W); got {tuple(pred.shape)} and {tuple(target.shape)}")
    if mask is not None:
        n, _, h, w = pred.shape
        if mask.dim() != 4 or mask.shape[0] != n or mask.shape[1] != 1 or mask.shape[2:] != (h, w):
            raise ValueError(f"mask must be (N, 1, H, W) = ({n}, 1, {h}, {w}); got {tuple(mask.shape)}")


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Per-image mean of (N, C, H, W) values, over all pixels or over the hole (all channels)."""
    if mask is None:
        return values.flatten(1).mean(1)
    w = (mask > 0.5).to(values.dtype).expand_as(values)
    return (values * w).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1)


def l1(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean absolute error per image (N,), over the hole if ``mask`` is given."""
    _check(pred, target, mask)
    return _masked_mean((pred.float() - target.float()).abs(), mask)


def mse(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error (the papers' "L2") per image (N,), over the hole if ``mask`` is given."""
    _check(pred, target, mask)
    return _masked_mean((pred.float() - target.float()) ** 2, mask)


l2 = mse


def psnr(pred: Tensor, target: Tensor, mask: Tensor | None = None, data_range: float = 1.0) -> Tensor:
    """PSNR in dB per image (N,) = 10 log10(data_range^2 / MSE); hole PSNR uses the hole MSE."""
    err = mse(pred, target, mask).double().clamp_min(MSE_FLOOR)
    return (10 * torch.log10(data_range**2 / err)).float()


def _gaussian_window(size: int = SSIM_WIN, sigma: float = SSIM_SIGMA) -> np.ndarray:
    r = size // 2
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def _filter_symmetric(x: Tensor, win: Tensor) -> Tensor:
    """Separable filtering of (B, 1, H, W) with 'symmetric' borders (scipy.ndimage's 'reflect')."""
    r = win.numel() // 2
    h, w = x.shape[-2:]
    rows = torch.as_tensor(np.pad(np.arange(h), r, mode="symmetric"), device=x.device)
    cols = torch.as_tensor(np.pad(np.arange(w), r, mode="symmetric"), device=x.device)
    x = x[:, :, rows][:, :, :, cols]  # (B, 1, H+2r, W+2r)
    x = F.conv2d(x, win.view(1, 1, -1, 1))  # (B, 1, H, W+2r)
    return F.conv2d(x, win.view(1, 1, 1, -1))  # (B, 1, H, W)


def ssim_map(pred: Tensor, target: Tensor, data_range: float = 1.0, dtype: torch.dtype | None = None) -> Tensor:
    """The SSIM map (N, C, H, W), same size as the input (borders use symmetric padding).

    Computed in float64 for agreement with scikit-image (``dtype`` overrides it: training losses use
    float32); differentiable; needs H, W >= 11 (the window).
    """
    _check(pred, target, None)
    n, c, h, w = pred.shape
    if h < SSIM_WIN or w < SSIM_WIN:
        raise ValueError(f"SSIM needs images of at least {SSIM_WIN}x{SSIM_WIN} pixels (the Gaussian window); got {h}x{w}")
    if dtype is None:
        dtype = torch.float32 if pred.device.type == "mps" else torch.float64
    x = pred.to(dtype).reshape(n * c, 1, h, w)
    y = target.to(dtype).reshape(n * c, 1, h, w)
    win = torch.as_tensor(_gaussian_window(), dtype=dtype, device=pred.device)
    # one filtering pass over the five statistics: (5*B, 1, H, W)
    stats = _filter_symmetric(torch.cat([x, y, x * x, y * y, x * y]), win).chunk(5)
    ux, uy, uxx, uyy, uxy = stats
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.reshape(n, c, h, w)


def ssim(pred: Tensor, target: Tensor, mask: Tensor | None = None, data_range: float = 1.0) -> Tensor:
    """SSIM per image (N,).

    Whole image (``mask=None``): mean of the SSIM map without its 5-pixel border, exactly
    scikit-image's ``structural_similarity`` (channels averaged). Hole only: the SSIM map is
    computed on the full image and averaged over the hole pixels (border included).
    """
    _check(pred, target, mask)
    s = ssim_map(pred, target, data_range)
    if mask is None:
        r = SSIM_WIN // 2
        return s[:, :, r:-r, r:-r].flatten(1).mean(1).float()
    return _masked_mean(s, mask.to(s.dtype)).float()


def total_variation(image: Tensor, mask: Tensor | None = None) -> Tensor:
    """Anisotropic total variation per image (N,): mean |vertical diff| + mean |horizontal diff|.

    With ``mask``, only neighbour pairs that touch the hole (either pixel is hole) count.
    """
    if image.dim() != 4:
        raise ValueError(f"image must be (N, C, H, W); got {tuple(image.shape)}")
    _check(image, image, mask)
    x = image.float()
    dv = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs()  # (N, C, H-1, W)
    dh = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs()  # (N, C, H, W-1)
    if mask is None:
        return dv.flatten(1).mean(1) + dh.flatten(1).mean(1)
    m = (mask > 0.5).float()
    mv = torch.maximum(m[:, :, 1:, :], m[:, :, :-1, :])
    mh = torch.maximum(m[:, :, :, 1:], m[:, :, :, :-1])
    return _masked_mean(dv, mv) + _masked_mean(dh, mh)


def compute_all(pred: Tensor, target: Tensor, mask: Tensor, data_range: float = 1.0) -> dict[str, Tensor]:
    """Every per-image metric of :data:`METRIC_NAMES` as (N,) CPU tensors.

    ``tv`` is the total variation of ``pred`` over the whole image (DeepFill v1's column).
    """
    s = ssim_map(pred, target, data_range)
    r = SSIM_WIN // 2
    hole_mse = mse(pred, target, mask)
    full_mse = mse(pred, target)
    to_psnr = lambda e: (10 * torch.log10(data_range**2 / e.double().clamp_min(MSE_FLOOR))).float()  # noqa: E731
    out = {
        "l1_hole": l1(pred, target, mask),
        "l2_hole": hole_mse,
        "psnr_hole": to_psnr(hole_mse),
        "ssim_hole": _masked_mean(s, mask.to(s.dtype)).float(),
        "l1": l1(pred, target),
        "l2": full_mse,
        "psnr": to_psnr(full_mse),
        "ssim": s[:, :, r:-r, r:-r].flatten(1).mean(1).float(),
        "tv": total_variation(pred),
    }
    return {k: v.detach().cpu() for k, v in out.items()}


# ---------------------------------------------------------------------------------- Frechet distance


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2):
    ``|mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``.

    Tr((S1 S2)^(1/2)) is computed as the sum of square roots of the eigenvalues of the symmetric
    PSD matrix S1^(1/2) S2 S1^(1/2) (same eigenvalues as S1 S2), which avoids the complex parts
    and failures ``scipy.linalg.sqrtm`` shows on near-singular covariances.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes do not fit: mu {mu1.shape}, {mu2.shape}; sigma {s1.shape}, {s2.shape}")
    w1, v1 = np.linalg.eigh((s1 + s1.T) / 2)
    sqrt_s1 = (v1 * np.sqrt(np.clip(w1, 0, None))) @ v1.T
    m = sqrt_s1 @ s2 @ sqrt_s1
    eig = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def feature_statistics(features: np.ndarray | Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (rows = samples, unbiased like numpy.cov) of (N, D) features."""
    f = features.detach().cpu().double().numpy() if isinstance(features, Tensor) else np.asarray(features, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need (N, D) features with N >= 2; got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


FeatureFn = Callable[[Tensor], Tensor]


class FID:
    """Frechet distance between the feature distributions of real and generated images.

    ``feature_fn`` maps images (N, C, H, W) in [0, 1] to features (N, D). With the FID Inception
    network's pool3 features this is FID (Heusel et al. 2017); with any other extractor it is a
    Frechet distance in that feature space and should be labelled as such::

        fid = FID(my_features)
        fid.update(real_batch, real=True); fid.update(fake_batch, real=False)
        value = fid.compute()
    """

    def __init__(self, feature_fn: FeatureFn):
        self.feature_fn = feature_fn
        self.real: list[Tensor] = []
        self.fake: list[Tensor] = []

    @torch.no_grad()
    def update(self, images: Tensor, real: bool) -> None:
        feats = self.feature_fn(images)
        if feats.dim() != 2 or feats.shape[0] != images.shape[0]:
            raise ValueError(f"feature_fn must return (N, D) features; got {tuple(feats.shape)}")
        (self.real if real else self.fake).append(feats.detach().double().cpu())

    def compute(self) -> float:
        if not self.real or not self.fake:
            raise ValueError("FID needs both real and generated images (call update with real=True and real=False)")
        mu1, s1 = feature_statistics(torch.cat(self.real))
        mu2, s2 = feature_statistics(torch.cat(self.fake))
        return frechet_distance(mu1, s1, mu2, s2)

    def reset(self) -> None:
        self.real.clear()
        self.fake.clear()


# ------------------------------------------------------------------------------------ LPIPS (optional)

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's ImageNet AlexNet weights
LPIPS_LIN_FILE = "alex.pth"  # LPIPS v0.1 linear layers (lpips/weights/v0.1/alex.pth in the lpips package)


def cache_dir() -> Path:
    """Where optional metric weights are looked for: ``$INPAINTGAN_CACHE/metrics`` or
    ``~/.cache/inpaintgan/metrics``."""
    base = os.environ.get("INPAINTGAN_CACHE") or Path.home() / ".cache" / "inpaintgan"
    return Path(base) / "metrics"


def _shown(path: Path) -> str:
    """``path`` with the home folder written as ``~``: messages end up in committed result files."""
    try:
        return "~/" + str(Path(path).relative_to(Path.home()))
    except ValueError:
        return str(path)


def _lpips_package_dirs() -> list[Path]:
    """Folders of an installed ``lpips`` package, found without importing it."""
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        return []
    return [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []


def _find_lpips_weights() -> tuple[Path | None, Path | None, str]:
    """(alexnet file, lpips linear file, reason if either is missing). Looks at the environment
    variables INPAINTGAN_LPIPS_ALEXNET / INPAINTGAN_LPIPS_LIN, then :func:`cache_dir`, then torch's
    hub cache (where torchvision keeps AlexNet) and an installed lpips package's weights folder
    (found without importing it: importing lpips would import torchvision)."""
    alex_candidates = [os.environ.get("INPAINTGAN_LPIPS_ALEXNET"), cache_dir() / ALEXNET_FILE]
    lin_candidates = [os.environ.get("INPAINTGAN_LPIPS_LIN"), cache_dir() / "lpips_alex_v0.1.pth"]
    try:
        alex_candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE)
    except Exception:  # pragma: no cover - hub dir is best effort
        pass
    for loc in _lpips_package_dirs():
        lin_candidates.append(loc / "weights" / "v0.1" / LPIPS_LIN_FILE)
    alex = next((Path(p) for p in alex_candidates if p and Path(p).is_file()), None)
    lin = next((Path(p) for p in lin_candidates if p and Path(p).is_file()), None)
    missing = []
    if alex is None:
        missing.append(f"AlexNet weights ({ALEXNET_FILE}; set INPAINTGAN_LPIPS_ALEXNET or put it in {_shown(cache_dir())})")
    if lin is None:
        missing.append(f"LPIPS linear weights (v0.1 {LPIPS_LIN_FILE}; set INPAINTGAN_LPIPS_LIN or put it in {_shown(cache_dir())} as lpips_alex_v0.1.pth)")
    return alex, lin, ("no " + " and no ".join(missing)) if missing else ""


class LPIPS(nn.Module):
    """LPIPS v0.1 with an AlexNet trunk (Zhang et al. 2018), defined without torchvision.

    Loads a torchvision-layout AlexNet state_dict (keys ``features.N.weight``; the classifier is
    ignored) and LPIPS's linear layers (keys ``linK.model.1.weight``). Images in [0, 1]; returns
    (N,) distances (spatially averaged, summed over the five ReLU layers).
    """

    CHANNELS = (64, 192, 384, 256, 256)

    def __init__(self, alexnet_path: str | Path, lin_path: str | Path):
        super().__init__()
        conv = lambda i, o, k, s, p: nn.Conv2d(i, o, k, s, p)  # noqa: E731
        # torchvision's alexnet.features indices, so its state_dict loads as is
        self.features = nn.Sequential(
            conv(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),  # 0-2
            conv(64, 192, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(3, 2),  # 3-5
            conv(192, 384, 3, 1, 1), nn.ReLU(),  # 6-7
            conv(384, 256, 3, 1, 1), nn.ReLU(),  # 8-9
            conv(256, 256, 3, 1, 1), nn.ReLU(),  # 10-11
        )  # fmt: skip
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in self.CHANNELS)
        # LPIPS's ScalingLayer: inputs in [-1, 1] are normalised with these constants
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        alex = torch.load(alexnet_path, map_location="cpu", weights_only=True)
        feats = {k[len("features.") :]: v for k, v in alex.items() if k.startswith("features.")}
        self.features.load_state_dict(feats, strict=True)
        lin = torch.load(lin_path, map_location="cpu", weights_only=True)
        for k in range(len(self.CHANNELS)):
            key = f"lin{k}.model.1.weight"
            if key not in lin:
                raise ValueError(f"{lin_path} has no {key!r}: not an LPIPS v0.1 linear-layer file")
            self.lins[k].weight.data.copy_(lin[key])
        self.requires_grad_(False).eval()

    def _taps(self, x: Tensor) -> list[Tensor]:
        x = ((x * 2 - 1) - self.shift) / self.scale
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in (1, 4, 7, 9, 11):  # relu1 .. relu5
                taps.append(x)
        return taps

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.shape[1] == 1:
            pred, target = pred.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
        total = 0
        for lin, a, b in zip(self.lins, self._taps(pred.float()), self._taps(target.float())):
            a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)  # unit-normalise across channels
            b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + lin((a - b) ** 2).mean(dim=(2, 3))  # (N, 1)
        return total.flatten()


def load_lpips(device: str | torch.device = "cpu") -> LPIPS:
    """The LPIPS network from local weights; raises ``FileNotFoundError`` naming what is missing."""
    alex, lin, reason = _find_lpips_weights()
    if reason:
        raise FileNotFoundError(f"LPIPS unavailable: {reason}")
    return LPIPS(alex, lin).to(device)


@dataclass(frozen=True)
class MetricStatus:
    """Whether an optional metric can run here, and why not."""

    available: bool
    reason: str = ""


def available_metrics() -> dict[str, MetricStatus]:
    """Status of every metric. The pixel metrics always run; LPIPS needs local weight files; FID and
    KID need the FID Inception network (the ``[metrics]`` extra, or a local file:
    :mod:`inpaintgan.eval.realism`)."""
    status = {name: MetricStatus(True) for name in ("l1", "l2", "psnr", "ssim", "tv", "frechet_distance")}
    _, _, reason = _find_lpips_weights()
    status["lpips"] = MetricStatus(not reason, reason)
    from inpaintgan.eval.realism import availability

    ok, reason = availability()
    status["fid"] = status["kid"] = MetricStatus(ok, reason)
    return status
