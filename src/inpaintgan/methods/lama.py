"""A LaMa-style realistic inpainter: Suvorov et al., "Resolution-robust Large Mask Inpainting with
Fourier Convolutions" (WACV 2022), trained without pretrained networks, optionally refining a
classical pre-fill. The embedded default model is this method.

- **Generator** (LaMa's ``FFCResNetGenerator``, smaller): 7x7 conv, ``downsamples`` stride-2 3x3
  convs (channels doubling from ``width``), ``blocks`` residual blocks of two fast Fourier
  convolutions each (FFC: a local 3x3 branch and a global branch whose spectral transform multiplies
  in the 2-D real FFT domain, so every output pixel sees the whole image; ``global_ratio`` of the
  channels are global, LaMa's 0.75), then nearest-neighbour upsampling + 3x3 convs back (MI-GAN's
  choice: no transposed convolutions), and a 7x7 output conv. ``ffc=false`` replaces the FFC blocks
  by dilated 3x3 blocks (rates 2, 4, 8 cycling: a large but local receptive field).
  No normalisation layers (LaMa uses BatchNorm, which needs a total batch of about 20; CPU batches
  are 8). Input: the image with its hole pre-filled (``prefill``: none = zeros, telea, patchmatch)
  and the mask. ``residual=true`` adds the output to the pre-fill (last layer zero at the start, so
  an untrained model *is* its pre-fill); otherwise a sigmoid gives the image.
- **Discriminator**: pix2pixHD's NLayer PatchGAN as LaMa uses it (4x4 convs, strides 2, 2, 2, 1, 1,
  LeakyReLU 0.2, no normalisation), on the composite (known pixels from the photo: MI-GAN's choice,
  so D judges only what the generator contributes). Its intermediate features feed feature matching.
- **Losses** (LaMa's weights): non-saturating adversarial, weight ``adv_weight`` (10); the
  discriminator is *mask-aware*: on a fake image only patches whose cell touches the hole are labelled
  fake, the others real (LaMa's ``mask_as_fake_target``); R1 on real images, ``r1_gamma`` (LaMa 0.001),
  applied lazily every ``r1_every`` D steps and scaled by it (StyleGAN2); discriminator feature
  matching (L1 between D's features of the composite and of the photo), ``fm_weight`` (100); L1 on
  known pixels of the raw output, ``l1_known_weight`` (10), and on hole pixels, ``l1_hole_weight``
  (LaMa 0: it leaves the hole to the adversarial and feature-matching terms).
  LaMa's perceptual term needs an ADE20k-pretrained ResNet (not available offline; its ablation: +13%
  FID without it).
- **EMA** of the generator (``ema_decay``) is the network used for inference and exported.
- **DiffAugment** (Zhao et al. 2020) on D's inputs: ``augment`` of color (brightness, saturation,
  contrast) and translation (1/8 of the side, zero padding); a real and its fake share the same
  parameters (feature matching compares them position by position) and the mask moves with them.
- **Masks**: LaMa's wide training masks (``masks.kind: lama_wide``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaintgan.methods.base import InpaintMethod, Phase
from inpaintgan.nn.dft import irfft2_matmul, rfft2_matmul
from inpaintgan.postprocess import fill_hole
from inpaintgan.registry import register_method

PREFILLS = ("none", "telea", "patchmatch")
AUGMENTS = ("color", "translation")


@dataclass
class LaMaConfig:
    width: int = 32  # channels of the first conv (LaMa: 64); doubled by each downsampling
    downsamples: int = 3  # LaMa: 3
    blocks: int = 6  # residual blocks at the bottleneck (LaMa-Fourier 9; its shallow variant 6)
    ffc: bool = True  # Fourier (global) blocks; False: dilated 3x3 blocks
    global_ratio: float = 0.75  # share of the channels in the FFC's global branch (LaMa 0.75)
    prefill: str = "none"  # none | telea | patchmatch: what the hole holds in the network's input
    residual: bool = False  # predict a correction to the pre-fill (last layer zero at the start)
    d_width: int = 64  # discriminator's first-layer channels (LaMa 64)
    d_layers: int = 3  # stride-2 layers of the PatchGAN (pix2pixHD n_layers; LaMa 4 at 512... 3 at 256)
    adv_weight: float = 10.0
    fm_weight: float = 100.0
    l1_known_weight: float = 10.0
    l1_hole_weight: float = 0.0
    mask_aware_d: bool = True  # patches not touching the hole are "real" in a fake image
    r1_gamma: float = 0.001
    r1_every: int = 4  # lazy R1: every k-th D step, weighted by k (1 = every step, as LaMa)
    ema_decay: float = 0.999
    augment: tuple[str, ...] = ("color", "translation")
    steps: int = 100000
    # discriminator-only steps before the GAN phase (generator frozen, its fills the fakes): a fresh or
    # enlarged discriminator first learns to tell the fills from photos, so the generator's first
    # adversarial gradients carry information (the default model's PatchGAN scores PatchMatch's fills
    # like photos: experiments/discriminator_probe)
    d_warmup: int = 0
    # discriminator steps per generator step in the GAN phase (WGAN's n_critic; 1 = LaMa): the generator
    # steps only on every d_steps-th step, the steps between are discriminator-only steps on the
    # current generator's fills (each on its own batch), to keep a discriminator that barely tells
    # the fills from photos ahead of the generator
    d_steps: int = 1


# ------------------------------------------------------------------------------------------ generator


class FourierUnit(nn.Module):
    """1x1 conv in the frequency domain: rfft2 -> (real, imag) as channels -> conv -> ReLU -> irfft2.

    ``dft`` (not a weight; the ONNX export sets it): "fft" runs ``torch.fft``; "matmul" the same
    transform as real matrix products (:mod:`inpaintgan.nn.dft`), which onnxruntime runs far faster
    than its ``DFT`` operator."""

    dft = "fft"

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(2 * cin, 2 * cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        x = x.float()
        h, w = x.shape[-2:]
        if self.dft == "matmul":
            f = torch.cat(rfft2_matmul(x), 1)
        else:
            f = torch.fft.rfft2(x, norm="ortho")  # (N, C, H, W//2+1) complex
            f = torch.cat([f.real, f.imag], 1)
        with torch.autocast(x.device.type, enabled=False):
            f = F.leaky_relu(self.conv(f.float()), 0.2)
        re, im = f.chunk(2, 1)
        if self.dft == "matmul":
            return irfft2_matmul(re, im, (h, w)).to(dtype)
        return torch.fft.irfft2(torch.complex(re, im), s=(h, w), norm="ortho").to(dtype)


class SpectralTransform(nn.Module):
    """LaMa's global branch: 1x1 conv to half the channels, a Fourier unit with a residual, 1x1 out."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = max(1, cout // 2)
        self.reduce = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.LeakyReLU(0.2, True))
        self.fu = FourierUnit(mid, mid)
        self.out = nn.Conv2d(mid, cout, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = self.reduce(x)
        return self.out(x + self.fu(x))


class FFC(nn.Module):
    """Fast Fourier convolution (Chi et al. 2020) as LaMa uses it: local (l) and global (g) channel
    groups; out_l = conv(l) + conv(g), out_g = conv(l) + spectral(g); LeakyReLU 0.2 (LaMa: BatchNorm +
    ReLU; without normalisation, ReLUs die: a decoder trained here with ReLU went all-zero)."""

    def __init__(self, channels: int, global_ratio: float):
        super().__init__()
        self.cg = int(round(channels * global_ratio))
        self.cl = channels - self.cg
        cl, cg = self.cl, self.cg
        self.l2l = nn.Conv2d(cl, cl, 3, 1, 1, padding_mode="reflect")
        self.g2l = nn.Conv2d(cg, cl, 3, 1, 1, padding_mode="reflect", bias=False)
        self.l2g = nn.Conv2d(cl, cg, 3, 1, 1, padding_mode="reflect", bias=False)
        self.g2g = SpectralTransform(cg, cg)

    def forward(self, x: Tensor) -> Tensor:
        xl, xg = x[:, : self.cl], x[:, self.cl :]
        yl = self.l2l(xl) + self.g2l(xg)
        yg = self.l2g(xl) + self.g2g(xg)
        return F.leaky_relu(torch.cat([yl, yg], 1), 0.2)


class ResBlock(nn.Module):
    """Two FFCs (or two dilated 3x3 convs) and a residual connection."""

    def __init__(self, channels: int, ffc: bool, global_ratio: float, dilation: int = 1):
        super().__init__()
        if ffc:
            self.body = nn.Sequential(FFC(channels, global_ratio), FFC(channels, global_ratio))
        else:
            d = dilation
            self.body = nn.Sequential(
                nn.Conv2d(channels, channels, 3, 1, d, dilation=d, padding_mode="reflect"), nn.LeakyReLU(0.2, True),
                nn.Conv2d(channels, channels, 3, 1, 1, padding_mode="reflect"), nn.LeakyReLU(0.2, True),
            )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class LaMaGenerator(nn.Module):
    """(N, C+1, H, W) [pre-filled image in [-1, 1], mask] -> (N, C, H, W). H, W multiples of 2^downsamples."""

    def __init__(self, channels: int = 3, width: int = 32, downsamples: int = 3, blocks: int = 6, ffc: bool = True,
                 global_ratio: float = 0.75, residual: bool = False):  # fmt: skip
        super().__init__()
        act = lambda: nn.LeakyReLU(0.2, True)  # noqa: E731
        enc = [nn.Conv2d(channels + 1, width, 7, 1, 3, padding_mode="reflect"), act()]
        c = width
        for _ in range(downsamples):
            enc += [nn.Conv2d(c, 2 * c, 3, 2, 1, padding_mode="reflect"), act()]
            c *= 2
        self.encoder = nn.Sequential(*enc)
        self.blocks = nn.Sequential(*[ResBlock(c, ffc, global_ratio, (2, 4, 8)[i % 3]) for i in range(blocks)])
        dec = []
        for _ in range(downsamples):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c // 2, 3, 1, 1, padding_mode="reflect"), act()]
            c //= 2
        self.decoder = nn.Sequential(*dec)
        self.output = nn.Conv2d(c, channels, 7, 1, 3, padding_mode="reflect")
        self.residual = residual
        for mod in self.modules():  # He init for LeakyReLU 0.2, zero biases: no normalisation layers keep the scale
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, a=0.2)
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
        for block in self.blocks:  # residual branches start small, so the stack starts near the identity
            last = block.body[-1] if ffc else block.body[2]
            outs = [last.l2l, last.g2l, last.l2g, last.g2g.out] if ffc else [last]
            for conv in outs:
                conv.weight.data.mul_(0.1)
        if residual:  # the correction starts at exactly zero: the untrained model is its pre-fill
            nn.init.zeros_(self.output.weight)
            nn.init.zeros_(self.output.bias)

    def forward(self, x: Tensor) -> Tensor:
        y = self.output(self.decoder(self.blocks(self.encoder(x))))
        return y if self.residual else torch.tanh(y)


# ------------------------------------------------------------------------------------- discriminator


class PatchDiscriminator(nn.Module):
    """pix2pixHD's NLayerDiscriminator without normalisation: returns (logits (N, 1, h, w), features)."""

    def __init__(self, channels: int = 3, width: int = 64, layers: int = 3):
        super().__init__()
        seq = [nn.Sequential(nn.Conv2d(channels, width, 4, 2, 2), nn.LeakyReLU(0.2, True))]
        c = width
        for _ in range(1, layers):
            seq.append(nn.Sequential(nn.Conv2d(c, min(2 * c, 512), 4, 2, 2), nn.LeakyReLU(0.2, True)))
            c = min(2 * c, 512)
        seq.append(nn.Sequential(nn.Conv2d(c, min(2 * c, 512), 4, 1, 2), nn.LeakyReLU(0.2, True)))
        c = min(2 * c, 512)
        self.features = nn.ModuleList(seq)
        self.head = nn.Conv2d(c, 1, 4, 1, 2)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        feats = []
        for layer in self.features:
            x = layer(x)
            feats.append(x)
        return self.head(x), feats


def fake_patch_labels(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """(N, 1, h, w): 1 where a logit's cell of the image (an even split of H x W into h x w cells)
    holds at least one hole pixel, else 0 (LaMa's mask-as-fake-target, "touching" = max pooling)."""
    return F.adaptive_max_pool2d((mask > 0.5).float(), size)


def labelled_cell_losses(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-cell non-saturating discriminator loss on a fake image's logits: softplus(+logit) where the
    label says fake (1), softplus(-logit) where it says real (0)."""
    return F.softplus(logits) * labels + F.softplus(-logits) * (1 - labels)


# -------------------------------------------------------------------------------------- augmentation


def diff_augment(images: list[Tensor], mask: Tensor, kinds: tuple[str, ...], generator: torch.Generator) -> tuple[list[Tensor], Tensor]:
    """DiffAugment (Zhao et al. 2020) with one set of random parameters per sample, applied alike to
    every tensor of ``images`` (each (N, C, H, W) in [-1, 1]) and, for translation, to ``mask``."""
    n, dev = mask.shape[0], mask.device

    def rand(*shape):
        return torch.rand(*shape, generator=generator, device=generator.device).to(dev)

    out = list(images)
    if "color" in kinds:
        b = (rand(n, 1, 1, 1) - 0.5)  # brightness in [-0.5, 0.5) on [0, 1] images = [-1, 1) here
        s = rand(n, 1, 1, 1) * 2  # saturation x [0, 2)
        c = rand(n, 1, 1, 1) + 0.5  # contrast x [0.5, 1.5)
        res = []
        for x in out:
            x = x + 2 * b
            m = x.mean(1, keepdim=True)
            x = (x - m) * s + m
            m = x.mean((1, 2, 3), keepdim=True)
            res.append((x - m) * c + m)
        out = res
    if "translation" in kinds:
        h, w = mask.shape[-2:]
        shift = ((rand(n, 2) * 2 - 1) * 0.125 * torch.tensor([w, h], device=dev)).round()  # pixels (x, y)
        theta = torch.zeros(n, 2, 3, device=dev)
        theta[:, 0, 0] = theta[:, 1, 1] = 1
        theta[:, 0, 2] = -2 * shift[:, 0] / w
        theta[:, 1, 2] = -2 * shift[:, 1] / h
        grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
        out = [F.grid_sample(x, grid.to(x.dtype), mode="nearest", padding_mode="zeros", align_corners=False) for x in out]
        mask = F.grid_sample(mask, grid.to(mask.dtype), mode="nearest", padding_mode="zeros", align_corners=False)
    return out, mask


def feature_matching(fake_feats: list[Tensor], real_feats: list[Tensor]) -> Tensor:
    """Mean over D's layers of the L1 distance between the fake's and the real's features."""
    return sum(F.l1_loss(a.float(), b.float()) for a, b in zip(fake_feats, real_feats)) / len(fake_feats)


def r1_penalty(logits_fn, real: Tensor) -> Tensor:
    """Mean over samples of ||d sum(D(real)) / d real||^2 (Mescheder et al. 2018), in float32."""
    real = real.detach().float().requires_grad_(True)
    with torch.autocast(real.device.type, enabled=False):
        logits = logits_fn(real)
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, for every parameter; buffers copied."""
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm.detach().to(pe.dtype), 1 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


# ------------------------------------------------------------------------------------------ method


@register_method("lama")
class LaMa(InpaintMethod):
    """A LaMa-style inpainter (see the module docstring): one phase, G and D alternating every step."""

    Config = LaMaConfig
    name = "lama"
    inference_modules = ("generator_ema",)
    size_multiple = 8  # 2 ** downsamples (set per instance)

    def __init__(self, cfg: LaMaConfig, image_size: int = 256, channels: int = 3):
        super().__init__(cfg, image_size, channels)
        if cfg.prefill not in PREFILLS:
            raise ValueError(f"unknown lama prefill {cfg.prefill!r}; known: {', '.join(PREFILLS)}")
        if cfg.residual and cfg.prefill == "none":
            raise ValueError("model.residual needs a pre-fill (model.prefill: telea or patchmatch) to correct")
        unknown = sorted(set(cfg.augment) - set(AUGMENTS))
        if unknown:
            raise ValueError(f"unknown lama augment {', '.join(unknown)}; known: {', '.join(AUGMENTS)}")
        if not 0 < cfg.global_ratio < 1 or cfg.width < 4 or cfg.downsamples < 1 or cfg.r1_every < 1 or cfg.d_steps < 1:
            raise ValueError("lama needs 0 < global_ratio < 1, width >= 4, downsamples >= 1, r1_every >= 1 and d_steps >= 1")
        self.generator = LaMaGenerator(channels, cfg.width, cfg.downsamples, cfg.blocks, cfg.ffc, cfg.global_ratio, cfg.residual)
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False).eval()
        self.discriminator = PatchDiscriminator(channels, cfg.d_width, cfg.d_layers)
        self.size_multiple = 2**cfg.downsamples  # the Inpainter pads to this

    def configure_optimizers(self, train_cfg) -> dict[str, torch.optim.Optimizer]:
        return self.adam_optimizers(train_cfg)

    def phases(self) -> list[Phase]:
        warmup = [Phase("d_warmup", self.cfg.d_warmup, {"discriminator"})] if self.cfg.d_warmup > 0 else []
        return warmup + [Phase("gan", self.cfg.steps, {"generator", "discriminator"})]

    def after_warm_start(self, meta) -> list[str]:
        """A model file holds the EMA generator only: the trained generator starts from it."""
        self.generator.load_state_dict(self.generator_ema.state_dict())
        return ["generator (copied from the file's EMA generator)"]

    def extra_state_for_export(self) -> dict:
        """A PatchMatch pre-fill costs time in proportion to the pixels it sees, and the model is trained
        at its working scale: the Inpainter's ``auto`` fills whole images only up to the working size
        (``auto_full_factor`` 1) and windows around the holes beyond it."""
        return {"auto_full_factor": 1.0} if self.cfg.prefill == "patchmatch" else {}

    # ------------------------------------------------------------------ forward

    @classmethod
    def dataset_prefill(cls, cfg: LaMaConfig) -> str:
        return cfg.prefill if cfg.prefill in ("telea", "patchmatch") else "none"

    def network_input(self, image: Tensor, mask: Tensor, pre: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(pre-fill in [0, 1], network input (N, C+1, H, W) in [-1, 1] with the mask channel); ``pre``:
        the pre-fill when already computed (the training dataset's ``prefill``)."""
        if pre is None:
            pre = fill_hole(image, mask, self.cfg.prefill, 0.0)
        return pre, torch.cat([pre * 2 - 1, mask], 1)

    def to_image(self, pre: Tensor, y: Tensor) -> Tensor:
        """Network output ([-1, 1] scale) -> image space: a correction of the pre-fill, or the image."""
        return pre + y / 2 if self.cfg.residual else (y + 1) / 2

    def predict(self, image: Tensor, mask: Tensor, net: nn.Module | None = None) -> Tensor:
        """The raw output in [0, 1] space (not composited, may leave [0, 1] when residual)."""
        net = self.generator if net is None else net
        pre, x = self.network_input(image, mask)
        return self.to_image(pre, net(x))

    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        return self.composite(self.predict(image, mask, self.generator_ema).clamp(0, 1), image, mask)

    # ------------------------------------------------------------------ training

    def d_input(self, x: Tensor) -> Tensor:
        return x * 2 - 1

    def train_step(self, batch, phase, step, ctx):
        cfg = self.cfg
        image, mask = batch["image"], batch["mask"]
        with torch.no_grad():
            pre, x = self.network_input(image, mask, batch.get("prefill") if cfg.prefill != "none" else None)
        real = self.d_input(image)
        warmup = phase is not None and phase.name == "d_warmup"
        if warmup or step % cfg.d_steps != 0:  # the discriminator alone, on the (frozen) generator's fills
            with torch.no_grad(), ctx.autocast():
                fake = self.d_input(self.composite(self.to_image(pre, self.generator(x)), image, mask))
            return self.discriminator_step(fake, real, mask, step, ctx)

        # ---- generator
        ctx.freeze(self.discriminator)
        with ctx.autocast():
            y = self.generator(x)
            pred = self.to_image(pre, y)
            fake = self.d_input(self.composite(pred, image, mask))
            (fake_a, real_a), _ = diff_augment([fake, real], mask, cfg.augment, ctx.generator)
            logits_f, feats_f = self.discriminator(fake_a)
            with torch.no_grad():
                _, feats_r = self.discriminator(real_a)
            adv_g = F.softplus(-logits_f.float()).mean()
            fm = feature_matching(feats_f, feats_r)
            err = (pred.float() - image.float()).abs()
            l1_known = (err * (1 - mask)).mean()
            l1_hole = (err * mask).mean()
            loss_g = cfg.adv_weight * adv_g + cfg.fm_weight * fm + cfg.l1_known_weight * l1_known + cfg.l1_hole_weight * l1_hole
        ctx.backward_step(loss_g, "generator")
        ctx.unfreeze(self.discriminator)
        d_logs = self.discriminator_step(fake.detach(), real, mask, step, ctx)
        ema_update(self.generator_ema, self.generator, cfg.ema_decay)
        terms = {"loss_g": loss_g, "adv_g": adv_g, "fm": fm, "l1_known": l1_known, "l1_hole": l1_hole}
        logs = {"r1": d_logs.pop("r1")} if "r1" in d_logs else {}  # the log's column order as before
        logs.update({k: float(v.detach()) for k, v in terms.items()})
        return {**logs, **d_logs}

    def discriminator_step(self, fake_d: Tensor, real: Tensor, mask: Tensor, step: int, ctx) -> dict[str, float]:
        """One discriminator update on (fake, real) in D's input range: the non-saturating loss with
        mask-aware patch labels, lazy R1 on the real images; same augmentation parameters for the pair,
        fresh ones each step."""
        cfg = self.cfg
        with ctx.autocast():
            (fake_a, real_a), mask_a = diff_augment([fake_d, real], mask, cfg.augment, ctx.generator)
            logits_r, _ = self.discriminator(real_a)
            logits_f, _ = self.discriminator(fake_a)
            loss_real = F.softplus(-logits_r.float()).mean()
            if cfg.mask_aware_d:
                loss_fake = labelled_cell_losses(logits_f.float(), fake_patch_labels(mask_a, logits_f.shape[-2:])).mean()
            else:
                loss_fake = F.softplus(logits_f.float()).mean()
        loss_d = loss_real + loss_fake
        logs = {}
        if cfg.r1_gamma > 0 and step % cfg.r1_every == 0:
            r1 = r1_penalty(lambda r: self.discriminator(r)[0], real_a)
            loss_d = loss_d + cfg.r1_gamma / 2 * cfg.r1_every * r1
            logs["r1"] = float(r1.detach())
        ctx.backward_step(loss_d, "discriminator")
        logs.update({"loss_d": float(loss_d.detach()), "d_real": float(loss_real.detach()), "d_fake": float(loss_fake.detach())})
        return logs


def n_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["LaMa", "LaMaConfig", "LaMaGenerator", "PatchDiscriminator", "fake_patch_labels", "labelled_cell_losses", "diff_augment",
           "r1_penalty", "ema_update", "feature_matching", "n_parameters"]
