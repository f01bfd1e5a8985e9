"""Semantic inpainting with a DCGAN (Yeh, Chen, Lim, Schwing, Hasegawa-Johnson, Do, "Semantic Image
Inpainting with Deep Generative Models", CVPR 2017), refined by collaborative sampling with
discriminator shaping (Liu, Kothari, Alahi, "Collaborative Sampling in Generative Adversarial
Networks", 2019), as combined in the semantic-inpainting project report (Fashion-MNIST at 64x64).

- **DCGAN** (Radford, Metz, Chintala, ICLR 2016) at ``image_size`` (64; any power of two >= 16):
  generator z (``z_dim`` 100) -> 4x4 by a 4x4 transposed convolution, then 4x4 stride-2 transposed
  convolutions halving the width up to the image (``ngf`` * 8, 4, 2, 1 at 64 px), BatchNorm + ReLU
  after every one but the last, tanh output; discriminator: 4x4 stride-2 convolutions (``ndf`` * 1, 2,
  4, 8), BatchNorm on all but the first, LeakyReLU 0.2, and a 4x4 valid convolution to one logit
  (sigmoid via BCE-with-logits). Weights N(0, 0.02), BN scales N(1, 0.02) (the DCGAN paper). Pixels
  are in [-1, 1] inside the method, [0, 1] at its boundary.
- **Training** (phase ``gan``): each step one discriminator update (real batch vs G(z), BCE), then one
  generator update (non-saturating -log D(G(z))) on the same z; z from the prior (``z_prior``),
  drawn from the trainer's ``ctx.generator``. Adam 2e-4, betas (0.5, 0.999), batch 64 (the trainer's
  defaults).
- **Semantic inpainting** (Yeh et al. Sec. 3): find z minimising the weighted context loss
  ||W * (G(z) - y)||_1 (sum over pixels, per image) + ``lam`` * log(1 - D(G(z))) (the prior loss,
  computed from the logit l as -softplus(l)), with W the importance weights of
  :func:`importance_weights`. Adam on a batch of z, ``restarts`` random initialisations per image
  (solved together as one batch), the best z per image by total loss over all restarts and
  iterations; z ~ U(-1, 1) and clipped to [-1, 1] after every step (``z_prior=uniform``, the bamos
  code's choice; ``normal``: N(0, 1), unclipped). The result is composited with the known pixels,
  optionally Poisson-blended (``blend=poisson``, as Yeh et al.).
- **Collaborative sampling** (Liu et al.): the proposal's activations h after ``refine_layer``
  generator blocks are refined by ``refine_steps`` (50) gradient steps of size ``refine_step_size``
  (0.1) on the discriminator's loss -log D(G_rest(h)); each sample stops when D's logit reaches the
  median logit of real images (``stop_rule=median``; the median is the ``d_real_median`` buffer, set
  by :meth:`SemanticInpainting.calibrate`, at the end of the ``gan`` phase and after every shaping
  step), or is accepted at each step with probability D(x) (``probabilistic``, seeded), or never
  (``none``: all steps). The report's **masked variant** (``refine_masked``): D judges the composite
  y * (1 - M) + G_rest(h) * M, so refinement works on the hole.
- **Discriminator shaping** (phase ``shaping``, ``shaping_steps``): D alone, trained on refined
  composites (fake) against real images; G frozen.

Entry points: :meth:`~SemanticInpainting.inpaint` (the composite: refined if ``collaborative``),
:meth:`~SemanticInpainting.inpaint_detailed` (proposal, refined, heatmap, z, ...),
:func:`refinement_heatmap`, :func:`heatmap_to_rgb`, :func:`report_figure`.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from inpaintgan.losses import d_loss, g_loss
from inpaintgan.methods.base import InpaintMethod, Phase, phase_at
from inpaintgan.nn.blocks import init_gan_weights
from inpaintgan.registry import register_method
from inpaintgan.tensors import eval_mode, to_uint8

Z_PRIORS = ("uniform", "normal")
STOP_RULES = ("median", "probabilistic", "none")
BLENDS = ("none", "poisson")


@dataclass
class SemanticConfig:
    # DCGAN (Radford et al. 2016)
    z_dim: int = 100
    ngf: int = 64  # generator width: ngf * 8, 4, 2, 1 channels at 64 px
    ndf: int = 64  # discriminator width: ndf * 1, 2, 4, 8
    z_prior: str = "uniform"  # uniform: U(-1, 1), z clipped to [-1, 1] in the search | normal: N(0, 1)
    steps_gan: int = 22250  # ~25 epochs (the report) of 57,000 Fashion-MNIST images at batch 64 (890/epoch)
    shaping_steps: int = 0  # discriminator shaping; epochs * (N_train // batch_size), e.g. 0.5 epoch = 445
    calibrate_every: int = 500  # also recompute d_real_median every this many gan steps (0 = phase end only)
    # semantic inpainting (Yeh et al. 2017)
    iterations: int = 1000  # Adam steps on z (the report: 1000)
    restarts: int = 4  # random initialisations of z per image; the best by total loss is kept
    lr: float = 0.01  # Adam learning rate of the z search
    lam: float = 1e-4  # weight of the prior loss log(1 - D(G(z)))
    window: int = 7  # importance weights: side of the window around each known pixel
    blend: str = "none"  # none | poisson (Yeh et al.'s Poisson blending of the fill)
    seed: int = 0  # seed of the search's (and probabilistic stopping's) torch.Generator
    progress: bool = True  # tqdm bar over search iterations (shown on terminals only)
    val_iterations: int = 100  # iterations in training runs' validation / sample grids (0 = iterations)
    val_restarts: int = 1  # restarts in training runs' validation / sample grids (0 = restarts)
    # collaborative sampling (Liu et al. 2019)
    collaborative: bool = False  # inpaint() returns the refined composite instead of the proposal
    refine_layer: int = 2  # refine the activations after this many generator blocks (0 = z ... n = pixels)
    refine_steps: int = 50  # at most this many gradient steps per sample
    refine_step_size: float = 0.1
    refine_masked: bool = True  # the report's masked variant: D judges the composite
    stop_rule: str = "median"  # median (deterministic) | probabilistic | none
    shaping_search_iterations: int = 0  # shaping proposals: 0 = z from the prior, > 0 = that many search steps
    shaping_refine_steps: int = 0  # refinement steps per shaping step (0 = refine_steps; lower = cheaper)


# ------------------------------------------------------------------------------------------ networks


def _n_up(image_size: int) -> int:
    n = int(round(math.log2(image_size / 4))) if image_size > 0 else 0
    if image_size < 16 or 4 * 2**n != image_size:
        raise ValueError(f"the DCGAN needs a power-of-two image size >= 16 (64 in the paper), got {image_size}")
    return n


class DCGANGenerator(nn.Module):
    """z (N, z_dim) -> (N, C, S, S) in [-1, 1]. ``blocks[0]``: z -> 4x4; ``blocks[1..]``: x2 each;
    the last block ends in tanh (no BatchNorm). ``forward_from(h, k)`` runs blocks k.. on h."""

    def __init__(self, z_dim: int = 100, channels: int = 3, image_size: int = 64, ngf: int = 64):
        super().__init__()
        n = _n_up(image_size)
        widths = [ngf * 2 ** (n - 1 - i) for i in range(n)]  # 512, 256, 128, 64 at 64 px, ngf 64
        blocks = [nn.Sequential(nn.ConvTranspose2d(z_dim, widths[0], 4, 1, 0, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(True))]
        for cin, cout in zip(widths[:-1], widths[1:]):
            blocks.append(nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)))
        blocks.append(nn.Sequential(nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False), nn.Tanh()))
        self.blocks = nn.ModuleList(blocks)
        self.z_dim = z_dim
        init_gan_weights(self)

    def forward_to(self, z: Tensor, k: int) -> Tensor:
        """Activations after the first ``k`` blocks (k = 0: z as (N, z_dim, 1, 1))."""
        h = z.reshape(z.shape[0], self.z_dim, 1, 1)
        for block in self.blocks[:k]:
            h = block(h)
        return h

    def forward_from(self, h: Tensor, k: int) -> Tensor:
        """Blocks ``k``.. applied to activations ``h`` (k = len(blocks): h is the image)."""
        for block in self.blocks[k:]:
            h = block(h)
        return h

    def forward(self, z: Tensor) -> Tensor:
        return self.forward_from(self.forward_to(z, 0), 0)


class DCGANDiscriminator(nn.Module):
    """(N, C, S, S) in [-1, 1] -> (N,) logits."""

    def __init__(self, channels: int = 3, image_size: int = 64, ndf: int = 64):
        super().__init__()
        n = _n_up(image_size)
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        c = ndf
        for _ in range(n - 1):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2, True)]
            c *= 2
        layers.append(nn.Conv2d(c, 1, 4, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)
        init_gan_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).flatten()


# ---------------------------------------------------------------------------------- loss helpers


def importance_weights(mask: Tensor, window: int = 7) -> Tensor:
    """Yeh et al.'s importance weights (eq. 6) for ``mask`` (N, 1, H, W), **1 = hole**: a known pixel
    gets the fraction of hole pixels in the ``window`` x ``window`` neighbourhood around it, a hole
    pixel 0. Neighbourhoods are cut at the image border and the fraction is of the pixels inside it
    (the paper's |N(i)|), i.e. average pooling that does not count padding."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"the importance-weight window must be odd and positive, got {window}")
    hole = (mask > 0.5).to(torch.float32)
    frac = F.avg_pool2d(hole, window, stride=1, padding=window // 2, count_include_pad=False)
    return torch.where(hole > 0, torch.zeros_like(frac), frac)


def prior_loss(logits: Tensor) -> Tensor:
    """Yeh et al.'s prior (perceptual) loss log(1 - D(G(z))) from D's logits: log(1 - sigmoid(l)) =
    -softplus(l), finite for every logit."""
    return -F.softplus(logits)


def context_loss(x: Tensor, y: Tensor, weights: Tensor) -> Tensor:
    """||W * (x - y)||_1 per image: (N,). ``weights`` (N, 1, H, W) broadcast over channels."""
    return (weights * (x - y)).abs().flatten(1).sum(1)


def _not_stopped(logit: Tensor, stop_rule: str, threshold: Tensor | None, generator: torch.Generator) -> Tensor:
    """(N,) bool: the samples collaborative refinement keeps stepping, by D's ``logit`` (N,): ``median``
    stops a sample once its logit reaches ``threshold``; ``probabilistic`` accepts it with probability
    sigmoid(logit) (one uniform draw per sample from ``generator``); ``none`` never stops."""
    if stop_rule == "median":
        return logit < threshold
    if stop_rule == "probabilistic":
        u = torch.rand(logit.shape[0], generator=generator, device=generator.device).to(logit.device)
        return u >= torch.sigmoid(logit)
    return torch.ones_like(logit, dtype=torch.bool)


# ------------------------------------------------------------------------------ heatmaps, figures


def refinement_heatmap(proposal: Tensor, refined: Tensor, normalize: bool = True) -> Tensor:
    """Where refinement changed the image: |refined - proposal| averaged over channels, divided by its
    maximum per image (an unchanged image gives zeros; ``normalize=False``: the raw differences, on
    the [0, 1] pixel scale, so images can be compared). (N, C, H, W) x 2 -> (N, 1, H, W)."""
    diff = (refined.float() - proposal.float()).abs().mean(1, keepdim=True)
    if not normalize:
        return diff
    peak = diff.flatten(1).amax(1).view(-1, 1, 1, 1)
    return torch.where(peak > 0, diff / peak.clamp_min(1e-12), torch.zeros_like(diff))


def heatmap_to_rgb(heatmap: Tensor, cmap: str = "inferno") -> Tensor:
    """(N, 1, H, W) values in [0, 1] -> (N, 3, H, W) RGB in [0, 1] through a matplotlib colour map."""
    import matplotlib

    colours = matplotlib.colormaps[cmap](heatmap[:, 0].detach().float().clamp(0, 1).cpu().numpy())  # (N, H, W, 4)
    return torch.from_numpy(np.ascontiguousarray(colours[..., :3], dtype=np.float32)).permute(0, 3, 1, 2)


def _to_rgb_u8(t: Tensor) -> np.ndarray:
    """(N, 1|3, H, W) in [0, 1] -> uint8 (N, H, W, 3)."""
    return to_uint8(t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t)


REPORT_COLUMNS = ("input", "proposal", "heatmap", "refined", "original")


def report_figure(
    input: Tensor,  # noqa: A002 - the report's column name
    proposal: Tensor,
    heatmap: Tensor,
    refined: Tensor,
    original: Tensor,
    upscale: int = 2,
    cmap: str = "inferno",
    titles: bool = True,
    gap: int = 2,
):
    """The report's figure: one row per sample, columns input | proposal | heatmap | refined |
    original. Images (N, 1|3, H, W) in [0, 1] (``input`` as it should be shown, e.g. with a white
    hole: ``training.logging.masked_input_view``); a 1-channel ``heatmap`` goes through ``cmap``.
    Returns an RGB ``PIL.Image``; ``upscale`` enlarges (nearest), ``titles`` adds a header row."""
    from PIL import Image, ImageDraw

    if heatmap.shape[1] == 1:
        heatmap = heatmap_to_rgb(heatmap, cmap)
    panels = [_to_rgb_u8(t) for t in (input, proposal, heatmap, refined, original)]
    n, h, w = panels[0].shape[:3]
    for name, p in zip(REPORT_COLUMNS, panels):
        if p.shape[:3] != (n, h, w):
            raise ValueError(f"report_figure: {name} is {p.shape[0]}x{p.shape[2]}x{p.shape[1]}, expected {n}x{w}x{h}")
    s = max(1, int(upscale))
    ph, pw = h * s, w * s
    head = 14 if titles else 0
    canvas = np.full((head + n * ph + (n + 1) * gap, 5 * pw + 6 * gap, 3), 255, np.uint8)
    for col, p in enumerate(panels):
        big = p.repeat(s, axis=1).repeat(s, axis=2)
        x0 = gap + col * (pw + gap)
        for row in range(n):
            y0 = head + gap + row * (ph + gap)
            canvas[y0 : y0 + ph, x0 : x0 + pw] = big[row]
    img = Image.fromarray(canvas)
    if titles:
        draw = ImageDraw.Draw(img)
        for col, name in enumerate(REPORT_COLUMNS):
            draw.text((gap + col * (pw + gap) + 2, 1), name, fill=(0, 0, 0))
    return img


# ------------------------------------------------------------------------------------------ method


@register_method("semantic")
class SemanticInpainting(InpaintMethod):
    """DCGAN + latent search (Yeh et al.) + collaborative refinement (Liu et al.); see the module docstring."""

    Config = SemanticConfig
    inference_modules = ("generator", "discriminator")
    size_multiple = 1
    fully_convolutional = False  # fixed image_size x image_size (the Inpainter resizes / crops)

    def __init__(self, cfg: SemanticConfig | None = None, image_size: int = 64, channels: int = 3):
        cfg = cfg or SemanticConfig()
        super().__init__(cfg, image_size, channels)
        for name, value, known in (("z_prior", cfg.z_prior, Z_PRIORS), ("stop_rule", cfg.stop_rule, STOP_RULES), ("blend", cfg.blend, BLENDS)):
            if value not in known:
                raise ValueError(f"unknown model.{name} {value!r}; known: {', '.join(known)}")
        for name in ("steps_gan", "shaping_steps", "iterations", "restarts", "refine_steps", "val_iterations",
                     "val_restarts", "shaping_search_iterations", "shaping_refine_steps"):
            if getattr(cfg, name) < 0:
                raise ValueError(f"model.{name} must be >= 0, got {getattr(cfg, name)}")
        if cfg.restarts < 1:
            raise ValueError("model.restarts must be at least 1")
        importance_weights(torch.zeros(1, 1, 1, 1), cfg.window)  # odd window check, at construction
        self.generator = DCGANGenerator(cfg.z_dim, channels, image_size, cfg.ngf)
        self.discriminator = DCGANDiscriminator(channels, image_size, cfg.ndf)
        n_blocks = len(self.generator.blocks)
        if not 0 <= cfg.refine_layer <= n_blocks:
            raise ValueError(f"model.refine_layer must be in 0..{n_blocks} (generator blocks), got {cfg.refine_layer}")
        # D's median logit on real images (the deterministic stopping threshold); +inf = not calibrated
        self.register_buffer("d_real_median", torch.full((1,), float("inf")))
        self._warned_uncalibrated = False

    # ------------------------------------------------------------------ training

    def configure_optimizers(self, train_cfg) -> dict[str, torch.optim.Optimizer]:
        if train_cfg.optimizer != "adam":
            raise ValueError(f"semantic supports optimizer 'adam' only (the DCGAN's), got {train_cfg.optimizer!r}")
        return self.adam_optimizers(train_cfg)

    def phases(self) -> list[Phase]:
        return [
            Phase("gan", self.cfg.steps_gan, {"generator", "discriminator"}),
            Phase("shaping", self.cfg.shaping_steps, {"discriminator"}),
        ]

    def sample_z(self, n: int, generator: torch.Generator, device=None) -> Tensor:
        """n latent codes from the prior, drawn with ``generator`` on its device, moved to ``device``."""
        shape = (n, self.cfg.z_dim)
        if self.cfg.z_prior == "uniform":
            z = torch.rand(shape, generator=generator, device=generator.device) * 2 - 1
        else:
            z = torch.randn(shape, generator=generator, device=generator.device)
        return z.to(device) if device is not None else z

    def train_step(self, batch, phase: Phase, step: int, ctx) -> dict[str, float]:
        image = batch["image"]
        real = image * 2 - 1
        _, _, local = phase_at(self.phases(), step)
        if phase.name == "shaping":
            return self._shaping_step(real, batch["mask"], ctx)
        z = self.sample_z(real.shape[0], ctx.generator, real.device)
        with ctx.autocast():
            fake = self.generator(z)
            loss_d = d_loss(self.discriminator(real), self.discriminator(fake.detach()), "bce")
        ctx.backward_step(loss_d, "discriminator")
        ctx.freeze(self.discriminator)
        with ctx.autocast():
            loss_g = g_loss(self.discriminator(fake), "bce")  # non-saturating -log D(G(z))
        ctx.unfreeze(self.discriminator)
        ctx.backward_step(loss_g, "generator")
        logs = {"loss_d": loss_d.item(), "loss_g": loss_g.item()}
        every = self.cfg.calibrate_every
        if local == phase.steps - 1 or (every and (local + 1) % every == 0):
            logs["d_real_median"] = self._calibrate(real)
        return logs

    def _shaping_step(self, real: Tensor, mask: Tensor, ctx) -> dict[str, float]:
        """Liu et al.'s discriminator shaping on inpaintings: refined composites (fake) vs real."""
        cfg = self.cfg
        n = real.shape[0]
        with eval_mode(self.generator, self.discriminator):
            with torch.no_grad():
                threshold = self.discriminator(real).float().quantile(0.5)  # the current D's median
            if cfg.shaping_search_iterations > 0:
                seed = int(torch.randint(0, 2**62, (1,), generator=ctx.generator, device=ctx.generator.device).item())
                z = self._search(real, mask, cfg.shaping_search_iterations, 1, cfg.lam, cfg.lr, cfg.window, seed, False)["z"]
            else:
                z = self.sample_z(n, ctx.generator, real.device)
            with torch.no_grad():
                h = self.generator.forward_to(z, cfg.refine_layer)
            steps = cfg.shaping_refine_steps or cfg.refine_steps
            ref = self.refine(h, real, mask, steps=steps, threshold=threshold, generator=ctx.generator)
        fake = torch.where(mask > 0.5, ref["x"], real)
        with ctx.autocast():
            loss_d = d_loss(self.discriminator(real), self.discriminator(fake), "bce")
        ctx.backward_step(loss_d, "discriminator")
        return {
            "loss_d": loss_d.item(),
            "refine_steps": float(ref["steps"].float().mean()),
            "d_real_median": self._calibrate(real),
        }

    @torch.no_grad()
    def _calibrate(self, real: Tensor) -> float:
        with eval_mode(self.discriminator):
            med = self.discriminator(real).float().quantile(0.5)
        self.d_real_median.fill_(float(med))
        return float(med)

    def calibrate(self, real_images: Tensor) -> float:
        """Set ``d_real_median`` to the median of D's logits (eval mode) on ``real_images`` (N, C, H, W)
        in [0, 1]; returns it. Liu et al.'s deterministic stopping threshold."""
        with torch.inference_mode(False):
            return self._calibrate(real_images.detach().clone().float() * 2 - 1)

    # ------------------------------------------------------------------ semantic inpainting

    def _search(self, y: Tensor, mask: Tensor, iterations: int, restarts: int, lam: float, lr: float, window: int,
                seed: int, progress: bool) -> dict[str, Tensor]:
        """The batched z search on model-space targets ``y`` (N, C, H, W) in [-1, 1]; G and D in the
        caller's mode (eval at inference). Returns z (N, z_dim), loss / context / prior at it (N,),
        initial_loss (N,: the best over restarts at the initial z)."""
        n = y.shape[0]
        weights = importance_weights(mask, window).to(y.dtype)
        gen = torch.Generator().manual_seed(int(seed))
        z = self.sample_z(restarts * n, gen, y.device).requires_grad_(True)
        yr, wr = y.repeat(restarts, 1, 1, 1), weights.repeat(restarts, 1, 1, 1)
        opt = torch.optim.Adam([z], lr=lr)
        best = torch.full((n,), float("inf"), device=y.device)
        best_z = z.detach()[:n].clone()
        best_parts = torch.zeros(2, n, device=y.device)
        initial = best
        bar = tqdm(total=iterations, desc="z search", leave=False, disable=True if not progress else None)
        try:
            for it in range(iterations + 1):
                x = self.generator(z)
                ctx_l, prior_l = context_loss(x, yr, wr), prior_loss(self.discriminator(x))
                total = ctx_l + lam * prior_l
                with torch.no_grad():
                    per = total.detach().view(restarts, n)
                    val, idx = per.min(0)
                    if it == 0:
                        initial = val.clone()
                    better = val < best
                    pick = idx * n + torch.arange(n, device=y.device)
                    best = torch.where(better, val, best)
                    best_z = torch.where(better[:, None], z.detach()[pick], best_z)
                    parts = torch.stack([ctx_l.detach()[pick], prior_l.detach()[pick]])
                    best_parts = torch.where(better[None], parts, best_parts)
                if it == iterations:
                    break
                (grad,) = torch.autograd.grad(total.sum(), z)
                z.grad = grad
                opt.step()
                if self.cfg.z_prior == "uniform":
                    with torch.no_grad():
                        z.clamp_(-1, 1)
                bar.update(1)
                if progress and it % 50 == 0:
                    bar.set_postfix(loss=f"{float(best.mean()):.4g}", refresh=False)
        finally:
            bar.close()
        return {"z": best_z, "loss": best, "context": best_parts[0], "prior": best_parts[1], "initial_loss": initial}

    def search_latent(self, image: Tensor, mask: Tensor, **overrides: Any) -> dict[str, Tensor]:
        """Yeh et al.'s search alone: ``image`` (N, C, H, W) in [0, 1], ``mask`` 1 = hole. Returns z
        (N, z_dim), loss (N,: best total loss), context, prior, initial_loss. Options as :meth:`inpaint`."""
        o = self._options(overrides)
        with self._inference_guard():
            y, m = self._prepare(image, mask)
            return self._search(y, m, o["iterations"], o["restarts"], o["lam"], o["lr"], o["window"], o["seed"], o["progress"])

    # ------------------------------------------------------------------ collaborative sampling

    def refine(
        self,
        h: Tensor,
        y: Tensor | None = None,
        mask: Tensor | None = None,
        *,
        steps: int | None = None,
        step_size: float | None = None,
        masked: bool | None = None,
        stop_rule: str | None = None,
        threshold: float | Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Liu et al.'s refinement of activations ``h`` (after ``cfg.refine_layer`` generator blocks),
        in model space ([-1, 1]). Each step: h <- h - step_size * d(-log D(view))/dh for samples not yet
        stopped; view = the composite ``where(mask, G_rest(h), y)`` when ``masked`` (needs ``y`` and
        ``mask``), else G_rest(h). Stopping is checked before every step: ``median`` stops a sample once
        its logit >= ``threshold`` (default: the ``d_real_median`` buffer), ``probabilistic`` accepts it
        with probability sigmoid(logit) (``generator``), ``none`` never. The loss is summed over samples,
        so a sample's update does not depend on the batch. Networks in the caller's mode.

        Returns h, x (G_rest(h), bit-identical to the proposal for samples that took no step), steps
        (N,) taken, logit_initial and logit (N,) of D on the view before and after."""
        cfg = self.cfg
        steps = cfg.refine_steps if steps is None else int(steps)
        step_size = cfg.refine_step_size if step_size is None else float(step_size)
        masked = cfg.refine_masked if masked is None else bool(masked)
        stop_rule = cfg.stop_rule if stop_rule is None else stop_rule
        if stop_rule not in STOP_RULES:
            raise ValueError(f"unknown stop_rule {stop_rule!r}; known: {', '.join(STOP_RULES)}")
        if masked and (y is None or mask is None):
            raise ValueError("the masked refinement needs the image y and the mask")
        k = cfg.refine_layer
        pixel_space = k == len(self.generator.blocks)
        n = h.shape[0]
        thr = self._median_threshold(threshold, h.device) if stop_rule == "median" else None
        if generator is None:
            generator = torch.Generator().manual_seed(int(cfg.seed) + 1)

        def view(x: Tensor) -> Tensor:
            return torch.where(mask > 0.5, x, y) if masked else x

        h = h.detach()
        with torch.no_grad():
            x0 = self.generator.forward_from(h, k)
        active = torch.ones(n, dtype=torch.bool, device=h.device)
        taken = torch.zeros(n, dtype=torch.long, device=h.device)
        x, logit0, logit = x0, None, None
        for t in range(steps + 1):
            last = t == steps
            hv = h if last else h.detach().requires_grad_(True)
            with torch.no_grad() if last else torch.enable_grad():
                x = x0 if t == 0 and last else self.generator.forward_from(hv, k)
                logit = self.discriminator(view(x)).float()
            if t == 0:
                logit0 = logit.detach()
            active = active & _not_stopped(logit.detach(), stop_rule, thr, generator)
            if last or not bool(active.any()):
                break
            (grad,) = torch.autograd.grad(F.softplus(-logit).sum(), hv)
            with torch.no_grad():
                stepped = h - step_size * grad
                if pixel_space:
                    stepped = stepped.clamp(-1, 1)
                h = torch.where(active.view(-1, *([1] * (h.dim() - 1))), stepped, h)
            taken += active.long()
        x = x.detach()
        moved = (taken > 0).view(-1, *([1] * (x.dim() - 1)))
        x = torch.where(moved, x, x0)  # samples that never stepped: exactly the proposal
        return {"h": h.detach(), "x": x, "steps": taken, "logit_initial": logit0, "logit": logit.detach()}

    def _median_threshold(self, threshold: float | Tensor | None, device) -> Tensor:
        """The ``median`` stopping rule's threshold: ``threshold``, else the ``d_real_median`` buffer
        (a warning, once, when it was never calibrated: then no sample stops early)."""
        thr = self.d_real_median if threshold is None else torch.as_tensor(threshold)
        thr = thr.to(device, torch.float32).reshape(())
        if not torch.isfinite(thr) and not self._warned_uncalibrated:
            warnings.warn(
                "semantic: d_real_median is not calibrated (call calibrate(real_images) or train the gan "
                "phase to its end); refining every sample for all refine_steps", stacklevel=3)
            self._warned_uncalibrated = True
        return thr

    # ------------------------------------------------------------------ inference API

    def _options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        cfg = self.cfg
        known = ("iterations", "restarts", "lam", "lr", "window", "blend", "seed", "progress", "collaborative",
                 "refine_steps", "refine_step_size", "refine_masked", "stop_rule")
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise TypeError(f"unknown inpaint option(s) {', '.join(unknown)}; known: {', '.join(known)}")
        o = {k: getattr(cfg, k) for k in known}
        o.update({k: v for k, v in overrides.items() if v is not None})
        if o["blend"] not in BLENDS:
            raise ValueError(f"unknown blend {o['blend']!r}; known: {', '.join(BLENDS)}")
        if int(o["restarts"]) < 1 or int(o["iterations"]) < 0:
            raise ValueError("restarts must be >= 1 and iterations >= 0")
        return o

    def _inference_guard(self):
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode(False))  # the Inpainter calls inpaint in inference mode
        stack.enter_context(torch.enable_grad())  # the trainer's validation calls it under no_grad
        stack.enter_context(eval_mode(self.generator, self.discriminator))
        return stack

    def _prepare(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if image.dim() != 4 or mask.dim() != 4 or mask.shape[1] != 1:
            raise ValueError(f"expected image (N, C, H, W) and mask (N, 1, H, W), got {tuple(image.shape)} and {tuple(mask.shape)}")
        s = self.image_size
        if tuple(image.shape[-2:]) != (s, s) or tuple(mask.shape[-2:]) != (s, s):
            raise ValueError(f"semantic inpaints {s}x{s} images only (its DCGAN's size); got {tuple(image.shape[-2:])} "
                             "(the Inpainter resizes to it)")
        if image.shape[1] != self.channels:
            raise ValueError(f"this model has {self.channels} channel(s), the image {image.shape[1]}")
        # clones: inputs made in inference mode cannot enter autograd
        return image.detach().clone().float() * 2 - 1, mask.detach().clone().float()

    def _finish(self, x: Tensor, image: Tensor, mask: Tensor, blend: str) -> Tensor:
        """Model-space output -> [0, 1] composite (optionally Poisson-blended); known pixels exact."""
        out = ((x.detach() + 1) / 2).clamp(0, 1).to(image.dtype)
        if blend == "poisson":
            from inpaintgan.postprocess import poisson_blend

            blended = []
            for i in range(out.shape[0]):
                orig, fill = to_uint8(image[i]), to_uint8(out[i])  # out is already in [0, 1]
                hole = mask[i, 0].detach().cpu().numpy() > 0.5
                if orig.shape[2] == 1:
                    orig, fill = orig[:, :, 0], fill[:, :, 0]
                b = poisson_blend(orig, fill, hole).reshape(out.shape[2], out.shape[3], -1)
                blended.append(torch.from_numpy(b.astype(np.float32) / 255).permute(2, 0, 1))
            out = torch.stack(blended).to(device=out.device, dtype=out.dtype)
        return self.composite(out, image, mask)

    def _run(self, image: Tensor, mask: Tensor, refine: bool, o: dict[str, Any]) -> dict[str, Tensor]:
        cfg = self.cfg
        with self._inference_guard():
            y, m = self._prepare(image, mask)
            found = self._search(y, m, int(o["iterations"]), int(o["restarts"]), float(o["lam"]), float(o["lr"]),
                                 int(o["window"]), int(o["seed"]), bool(o["progress"]))
            with torch.no_grad():
                h0 = self.generator.forward_to(found["z"], cfg.refine_layer)
                x0 = self.generator.forward_from(h0, cfg.refine_layer)
            out = {"z": found["z"], "loss": found["loss"], "proposal_raw": x0}
            if refine:
                gen = torch.Generator().manual_seed(int(o["seed"]) + 1)
                ref = self.refine(h0, y, m, steps=int(o["refine_steps"]), step_size=float(o["refine_step_size"]),
                                  masked=bool(o["refine_masked"]), stop_rule=o["stop_rule"], generator=gen)
                out.update(refined_raw=ref["x"], steps=ref["steps"], d_proposal=ref["logit_initial"], d_refined=ref["logit"])
        return out

    def inpaint(self, image: Tensor, mask: Tensor, **overrides: Any) -> Tensor:
        """Fill the hole (``mask`` 1) of ``image`` (N, C, S, S) in [0, 1]: the z search, then (if
        ``collaborative``) the refinement; composited, known pixels exact. Keyword overrides of the
        config for this call: iterations, restarts, lam, lr, window, blend, seed, progress,
        collaborative, refine_steps, refine_step_size, refine_masked, stop_rule."""
        o = self._options(overrides)
        refine = bool(o["collaborative"])
        r = self._run(image, mask, refine, o)
        x = r["refined_raw"] if refine else r["proposal_raw"]
        return self._finish(x, image, mask, o["blend"])

    def preview_inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        """Training runs' validation and sample grids: :meth:`inpaint` with ``val_iterations`` /
        ``val_restarts`` (0 = the inference settings)."""
        cfg = self.cfg
        return self.inpaint(image, mask, iterations=cfg.val_iterations or cfg.iterations, restarts=cfg.val_restarts or cfg.restarts)

    def inpaint_detailed(self, image: Tensor, mask: Tensor, **overrides: Any) -> dict[str, Tensor]:
        """Proposal and refined result together (always both, whatever ``collaborative`` says):

        - ``proposal``, ``refined``: composites (N, C, S, S) in [0, 1] (blended if ``blend``);
        - ``heatmap``: :func:`refinement_heatmap` of the two composites (N, 1, S, S);
        - ``heatmap_raw``: the same on the raw generator images (shows changes outside the hole too);
        - ``proposal_raw``, ``refined_raw``: G's images in [0, 1], not composited;
        - ``z`` (N, z_dim), ``loss`` (N,: search loss), ``steps`` (N,: refinement steps),
          ``d_proposal``, ``d_refined`` (N,: D's logits on the judged views)."""
        o = self._options(overrides)
        r = self._run(image, mask, True, o)
        proposal = self._finish(r["proposal_raw"], image, mask, o["blend"])
        refined = self._finish(r["refined_raw"], image, mask, o["blend"])
        p01, r01 = ((r["proposal_raw"] + 1) / 2).clamp(0, 1), ((r["refined_raw"] + 1) / 2).clamp(0, 1)
        return {
            "proposal": proposal,
            "refined": refined,
            "heatmap": refinement_heatmap(proposal, refined),
            "heatmap_raw": refinement_heatmap(p01, r01),
            "proposal_raw": p01,
            "refined_raw": r01,
            "z": r["z"],
            "loss": r["loss"],
            "steps": r["steps"],
            "d_proposal": r["d_proposal"],
            "d_refined": r["d_refined"],
        }

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None) -> Tensor:
        """n unconditional DCGAN samples in [0, 1] (eval mode), from a seeded generator."""
        gen = torch.Generator().manual_seed(self.cfg.seed if seed is None else int(seed))
        dev = self.d_real_median.device
        with eval_mode(self.generator):
            return ((self.generator(self.sample_z(n, gen, dev)) + 1) / 2).clamp(0, 1)

    def extra_state_for_export(self) -> dict:
        return {"d_real_median": float(self.d_real_median)}
