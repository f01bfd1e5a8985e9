"""DeepFill v1: "Generative Image Inpainting with Contextual Attention" (Yu, Lin, Yang, Shen, Lu,
Huang, CVPR 2018), after the authors' code (github.com/JiahuiYu/generative_inpainting, v1 branch:
``inpaint_model.py``, ``inpaint_ops.py``, ``inpaint.yml``).

- **Coarse-to-fine generator** (paper Sec. 3.1, Fig. 2; code ``build_inpaint_net``). Input: the image in
  [-1, 1] with the hole zeroed, a channel of ones and the mask. Stage 1 (coarse): 5x5 conv, two
  stride-2 3x3 convs, 3x3 convs, dilated 3x3 convs with rates 2/4/8/16, two "deconvolutions" (nearest
  x2 upsampling + 3x3 conv), output clipped to [-1, 1]. Stage 2 (refinement) takes the coarse result
  pasted into the known pixels (plus ones and mask) and runs two parallel encoders, one of dilated
  convs and one ending in the contextual attention layer (Sec. 4), concatenated and decoded like
  stage 1. ELU everywhere except the outputs (none) and the layer before attention (ReLU); no
  normalisation. ``width`` is the code's ``cnum``: 32 gives 3.60M generator parameters, exactly the
  v1 code's layers (the paper quotes 2.9M).
- **No-attention variant** (``attention: false``): the paper's "baseline" coarse-to-fine network
  (Sec. 3.1, compared in Sec. 5): stage 2 keeps only its dilated-conv branch, so the decoder reads
  4w instead of 8w channels; it has no attention map (``inpaint_with_attention`` raises ValueError).
- **Critics** (Sec. 3.2; code ``build_wgan_*_discriminator``): WGAN critics, a global one on the whole
  image (5x5 stride-2 convs of 64/128/256/256 channels + dense) and a local one on the patch around
  the hole (64/128/256/512 + dense), LeakyReLU 0.2, separate losses summed, WGAN-GP with the
  gradient taken over hole pixels only (lambda 10).
- **Losses** (Sec. 3.1, code ``build_graph_with_losses``): spatially discounted L1 over the hole
  (:func:`inpaintgan.losses.spatial_discount`) and plain L1 over known pixels (the code's
  ``ae_loss``), on the coarse (weight ``coarse_l1_alpha`` 1.2) and refined outputs; total generator
  loss = l1_loss_alpha * l1 + ae_loss_alpha * ae + gan_loss_alpha * (global_wgan_loss_alpha * adv_global
  + adv_local), with the code's 1.2 / 1.2 / 0.001 / 1.
- **Schedule**: an optional reconstruction-only phase (``steps_reconstruction``, default 0; the code's
  ``PRETRAIN_COARSE_NETWORK``), then the adversarial phase in which each ``train_step`` makes
  ``n_critic`` (5) critic updates on the current batch, then one generator update on it (the code
  draws a new batch for each of its 5 critic steps; our trainer gives one batch per step).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaintgan.losses import d_loss, g_loss, gradient_penalty, masked_l1, spatial_discount
from inpaintgan.masks import crop_patches, local_crop_boxes
from inpaintgan.methods.base import InpaintMethod, Phase
from inpaintgan.nn.blocks import StridedConvDiscriminator
from inpaintgan.nn.contextual_attention import ContextualAttention, attention_to_flow, flow_to_color
from inpaintgan.registry import register_method

PADDINGS = ("zeros", "reflect")


@dataclass
class DeepFillConfig:
    width: int = 32  # generator cnum (official v1: 32 -> 3.60M parameters; the paper says 2.9M)
    d_width: int = 64  # critics' cnum (official: 64)
    padding: str = "zeros"  # zeros (the code's 'SAME') | reflect (mirror padding)
    attention_scale: float = 10.0  # softmax scale of contextual attention
    propagation_k: int = 3  # attention propagation kernel (1 = none)
    rate: int = 2  # contextual attention downscaling / background patch stride
    local_fraction: float = 0.5  # local critic patch side / image side (128 of 256 in the paper)
    coarse_l1_alpha: float = 1.2  # weight of the coarse output's reconstruction terms
    l1_loss_alpha: float = 1.2  # spatially discounted L1 over the hole
    ae_loss_alpha: float = 1.2  # L1 over known pixels
    gan_loss_alpha: float = 0.001
    global_wgan_loss_alpha: float = 1.0
    wgan_gp_lambda: float = 10.0
    gamma: float = 0.99  # spatial discount (paper 0.99)
    n_critic: int = 5  # critic updates per generator update (the code's 5 D iterations)
    steps_reconstruction: int = 0  # optional reconstruction-only pre-training phase
    reconstruction_coarse_only: bool = False  # the code's PRETRAIN_COARSE_NETWORK: only stage 1's losses
    steps_adversarial: int = 1_000_000
    attention: bool = True  # False: no contextual attention branch (the paper's baseline coarse-to-fine net)


# ------------------------------------------------------------------------------------- networks


class GenConv(nn.Module):
    """The code's ``gen_conv``: 'same' conv (zero or mirror padding), ELU (or ReLU / none)."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, act: str | None = "elu", padding: str = "zeros"):
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"unknown padding {padding!r}; known: {', '.join(PADDINGS)}")
        self.pad = dilation * (k - 1) // 2
        self.reflect = padding == "reflect"
        self.conv = nn.Conv2d(cin, cout, k, stride, 0 if self.reflect else self.pad, dilation=dilation)
        if act not in ("elu", "relu", None):
            raise ValueError(f"unknown activation {act!r}")
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        if self.reflect and self.pad:
            p = self.pad
            # mirror padding needs p < size; on maps too small for a dilated kernel, zeros instead
            x = F.pad(x, (p, p, p, p), mode="reflect" if p < min(x.shape[-2:]) else "constant")
        x = self.conv(x)
        if self.act == "elu":
            return F.elu(x)
        return F.relu(x) if self.act == "relu" else x


class GenDeconv(nn.Module):
    """The code's ``gen_deconv``: nearest-neighbour x2 upsampling, then a 3x3 ``gen_conv``."""

    def __init__(self, cin: int, cout: int, padding: str = "zeros"):
        super().__init__()
        self.conv = GenConv(cin, cout, 3, padding=padding)

    def forward(self, x: Tensor) -> Tensor:  # (N, C, H, W) -> (N, cout, 2H, 2W)
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


def _encoder(cin: int, w: int, padding: str, widths: tuple[int, int, int, int]) -> list[nn.Module]:
    """5x5 conv, stride-2, 3x3, stride-2, 3x3: (N, cin, H, W) -> (N, widths[3], H/4, W/4)."""
    a, b, c, d = widths
    return [
        GenConv(cin, a, 5, padding=padding),
        GenConv(a, b, 3, 2, padding=padding),
        GenConv(b, c, 3, padding=padding),
        GenConv(c, d, 3, 2, padding=padding),
    ]


def _dilated(w: int, padding: str) -> list[nn.Module]:
    return [GenConv(w, w, 3, dilation=r, padding=padding) for r in (2, 4, 8, 16)]


def _decoder(cin: int, w: int, channels: int, padding: str) -> list[nn.Module]:
    """Two 3x3 convs, up x2, 3x3, up x2, 3x3 to w/2, 3x3 to the image channels (no activation)."""
    return [
        GenConv(cin, 4 * w, 3, padding=padding),
        GenConv(4 * w, 4 * w, 3, padding=padding),
        GenDeconv(4 * w, 2 * w, padding),
        GenConv(2 * w, 2 * w, 3, padding=padding),
        GenDeconv(2 * w, w, padding),
        GenConv(w, w // 2, 3, padding=padding),
        GenConv(w // 2, channels, 3, act=None, padding=padding),
    ]


class DeepFillGenerator(nn.Module):
    """Coarse network + refinement network with contextual attention (code: ``build_inpaint_net``).

    ``forward(x, mask)``: ``x`` (N, C, H, W) in [-1, 1] with the hole zeroed, ``mask`` (N, 1, H, W), H and
    W multiples of 4. Returns (coarse, refined, attention): both outputs (N, C, H, W) clipped to
    [-1, 1], not composited; attention (N, L, H/(4 rate), W/(4 rate)) (see ContextualAttention), or
    None with ``attention=False`` (no attention branch: the refinement stage is the dilated-conv
    branch alone and the decoder reads its 4w channels).
    """

    def __init__(self, channels: int = 3, width: int = 32, padding: str = "zeros", rate: int = 2, scale: float = 10.0,
                 propagation_k: int = 3, attention: bool = True):  # fmt: skip
        super().__init__()
        w, p, cin = width, padding, channels + 2
        self.has_attention = bool(attention)
        self.coarse = nn.Sequential(
            *_encoder(cin, w, p, (w, 2 * w, 2 * w, 4 * w)),
            GenConv(4 * w, 4 * w, 3, padding=p),
            GenConv(4 * w, 4 * w, 3, padding=p),
            *_dilated(4 * w, p),
            *_decoder(4 * w, w, channels, p),
        )
        self.hallucination = nn.Sequential(
            *_encoder(cin, w, p, (w, w, 2 * w, 2 * w)),
            GenConv(2 * w, 4 * w, 3, padding=p),
            GenConv(4 * w, 4 * w, 3, padding=p),
            *_dilated(4 * w, p),
        )
        if self.has_attention:
            self.attention_encoder = nn.Sequential(
                *_encoder(cin, w, p, (w, w, 2 * w, 4 * w)),
                GenConv(4 * w, 4 * w, 3, padding=p),
                GenConv(4 * w, 4 * w, 3, act="relu", padding=p),
            )
            self.contextual_attention = ContextualAttention(3, rate, scale, propagation_k)
            self.attention_decoder = nn.Sequential(GenConv(4 * w, 4 * w, 3, padding=p), GenConv(4 * w, 4 * w, 3, padding=p))
        self.decoder = nn.Sequential(*_decoder((8 if self.has_attention else 4) * w, w, channels, p))

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        ones = torch.ones_like(mask)
        x1 = self.coarse(torch.cat([x, ones, mask], dim=1)).clamp(-1, 1)  # (N, C+2, H, W) -> (N, C, H, W)
        pasted = x1 * mask + x * (1 - mask)  # stage 2 input: the coarse fill in the hole only
        xnow = torch.cat([pasted, ones, mask], dim=1)
        hallu = self.hallucination(xnow)  # (N, 4w, H/4, W/4)
        if not self.has_attention:  # the baseline: the dilated-conv branch alone, (N, 4w, H/4, W/4)
            return x1, self.decoder(hallu).clamp(-1, 1), None
        feat = self.attention_encoder(xnow)  # (N, 4w, H/4, W/4)
        feat, attention = self.contextual_attention(feat, feat, mask)
        feat = self.attention_decoder(feat)
        x2 = self.decoder(torch.cat([hallu, feat], dim=1)).clamp(-1, 1)  # (N, 8w, H/4, W/4) -> (N, C, H, W)
        return x1, x2, attention


class WGANCritic(StridedConvDiscriminator):
    """The code's WGAN critics, the family's configuration: 5x5 stride-2 convs with LeakyReLU 0.2 (no
    normalisation), flattened, one dense output; layers listed flat under ``features``."""

    def __init__(self, channels: int, size: int, widths: tuple[int, ...]):
        super().__init__(channels, widths, size, act="lrelu", bn_from=None, out_features=1, grouped=False, what="critic")


class DeepFillCritics(nn.Module):
    """Global critic on the whole image, local critic on the patch around the hole."""

    def __init__(self, channels: int, image_size: int, local_size: int, width: int = 64):
        super().__init__()
        w = width
        self.global_critic = WGANCritic(channels, image_size, (w, 2 * w, 4 * w, 4 * w))
        self.local_critic = WGANCritic(channels, local_size, (w, 2 * w, 4 * w, 8 * w))

    def forward(self, image: Tensor, local: Tensor) -> tuple[Tensor, Tensor]:
        return self.global_critic(image), self.local_critic(local)


# ------------------------------------------------------------------------------------- method


@register_method("deepfill")
class DeepFill(InpaintMethod):
    Config = DeepFillConfig
    size_multiple = 4  # two stride-2 convs; contextual attention pads odd feature maps itself

    def __init__(self, cfg: DeepFillConfig | None = None, image_size: int = 256, channels: int = 3):
        cfg = cfg or DeepFillConfig()
        super().__init__(cfg, image_size, channels)
        if cfg.padding not in PADDINGS:
            raise ValueError(f"unknown padding {cfg.padding!r}; known: {', '.join(PADDINGS)}")
        if cfg.width < 2 or cfg.d_width < 1:
            raise ValueError(f"width must be >= 2 and d_width >= 1, got {cfg.width} and {cfg.d_width}")
        if cfg.n_critic < 0:
            raise ValueError(f"n_critic must be >= 0, got {cfg.n_critic}")
        self.generator = DeepFillGenerator(
            channels, cfg.width, cfg.padding, cfg.rate, cfg.attention_scale, cfg.propagation_k, attention=cfg.attention
        )
        self.local_size = max(4, int(round(image_size * cfg.local_fraction)))
        self.discriminator = DeepFillCritics(channels, image_size, self.local_size, cfg.d_width)

    @property
    def has_attention(self) -> bool:
        """False for the no-attention variant (``attention: false``): no attention map to show."""
        return self.generator.has_attention

    def configure_optimizers(self, train_cfg) -> dict[str, torch.optim.Optimizer]:
        if train_cfg.optimizer != "adam":  # the code: Adam, lr 1e-4, betas (0.5, 0.9)
            raise ValueError(f"DeepFill trains with adam (the official code's optimizer), not {train_cfg.optimizer!r}")
        return self.adam_optimizers(train_cfg)

    def phases(self) -> list[Phase]:
        c = self.cfg
        return [
            Phase("reconstruction", c.steps_reconstruction, {"generator"}),
            Phase("adversarial", c.steps_adversarial, {"generator", "discriminator"}),
        ]

    # ------------------------------------------------------------------------------- forward

    def run_generator(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]:
        """Image (N, C, H, W) in [0, 1], mask (N, 1, H, W) -> (x, mask, coarse, refined, attention), all
        images in [-1, 1], not composited. Sizes that are not multiples of 4 are edge-padded and the
        outputs cropped back (the attention stays on the padded grid; None without attention)."""
        mask = (mask > 0.5).to(image.dtype)
        x = image * 2 - 1
        h, w = image.shape[-2:]
        ph, pw = (-h) % self.size_multiple, (-w) % self.size_multiple
        xin = x * (1 - mask)
        if ph or pw:
            xin_p = F.pad(xin, (0, pw, 0, ph), mode="replicate")
            mask_p = F.pad(mask, (0, pw, 0, ph), mode="replicate")
            x1, x2, att = self.generator(xin_p, mask_p)
            x1, x2 = x1[..., :h, :w], x2[..., :h, :w]
        else:
            x1, x2, att = self.generator(xin, mask)
        return x, mask, x1, x2, att

    @torch.no_grad()
    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        _, _, _, x2, _ = self.run_generator(image, mask)
        return self.composite(((x2 + 1) / 2).clamp(0, 1), image, mask)

    @torch.no_grad()
    def inpaint_with_attention(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """(composited result (N, C, H, W), attention as the paper's colour-coded flow (N, 3, H, W) in
        [0, 1]: hue = direction, saturation = distance to the most attended background position).
        A model built with ``attention: false`` has no attention: ValueError."""
        if not self.has_attention:
            raise ValueError(
                "this DeepFill model has no contextual attention (config attention: false, the baseline "
                "coarse-to-fine network), so it has no attention map; use a model trained with attention: true"
            )
        _, _, _, x2, att = self.run_generator(image, mask)
        h, w = image.shape[-2:]
        flow = attention_to_flow(att, cell=4 * self.cfg.rate, out_size=(h, w))  # (N, 2, H, W) in pixels
        color = torch.from_numpy(flow_to_color(flow)).permute(0, 3, 1, 2).float() / 255  # (N, 3, H, W)
        result = self.composite(((x2 + 1) / 2).clamp(0, 1), image, mask)
        return result, color.to(image.device)

    # ------------------------------------------------------------------------------- training

    def reconstruction_losses(self, x: Tensor, mask: Tensor, x1: Tensor, x2: Tensor | None) -> tuple[Tensor, Tensor]:
        """(l1, ae): spatially discounted L1 over the hole and L1 over known pixels, each summed over the
        coarse (weight ``coarse_l1_alpha``) and refined outputs (``x2`` None: coarse only)."""
        c = self.cfg
        weight = spatial_discount(mask, c.gamma).expand_as(x)  # (N, C, H, W), 0 at known pixels
        n_hole = mask.expand_as(x).sum().clamp_min(1.0)

        def l1(pred: Tensor) -> Tensor:
            return ((pred - x).abs() * weight).sum() / n_hole

        def ae(pred: Tensor) -> Tensor:
            return masked_l1(pred, x, 1 - mask)

        loss_l1, loss_ae = c.coarse_l1_alpha * l1(x1), c.coarse_l1_alpha * ae(x1)
        if x2 is not None:
            loss_l1, loss_ae = loss_l1 + l1(x2), loss_ae + ae(x2)
        return loss_l1, loss_ae

    def train_step(self, batch, phase: Phase, step: int, ctx) -> dict[str, float]:
        c = self.cfg
        image, mask = batch["image"], batch["mask"]
        train_g, train_d = "generator" in phase.trains, "discriminator" in phase.trains
        adversarial = phase.name == "adversarial"
        logs: dict[str, float] = {}
        with ctx.autocast():
            x, mask, x1, x2, _ = self.run_generator(image, mask)
        completed = self.composite(x2, x, mask)  # [-1, 1]
        corners = local_crop_boxes(mask, self.local_size)
        if train_d and adversarial and c.n_critic > 0:
            # n_critic critic updates on this batch; the generator has not changed in between, so its
            # output is computed once (above) and only re-drawn interpolates differ between updates.
            fake = completed.detach()
            real_local, fake_local = crop_patches(x, corners, self.local_size), crop_patches(fake, corners, self.local_size)
            mask_local = crop_patches(mask, corners, self.local_size)
            critics = self.discriminator
            for _ in range(c.n_critic):
                with ctx.autocast():
                    rg, rl = critics(x, real_local)
                    fg, fl = critics(fake, fake_local)
                    loss_w = d_loss(rg, fg, "wgan") + d_loss(rl, fl, "wgan")
                gp = gradient_penalty(critics.global_critic, x, fake, mask, ctx.generator) + gradient_penalty(
                    critics.local_critic, real_local, fake_local, mask_local, ctx.generator
                )
                loss_d = loss_w + c.wgan_gp_lambda * gp
                ctx.backward_step(loss_d, "discriminator")
            logs.update(loss_d=loss_d.item(), loss_gp=gp.item(), w_distance=-loss_w.item())
        if train_g:
            coarse_only = not adversarial and c.reconstruction_coarse_only
            with ctx.autocast():
                loss_l1, loss_ae = self.reconstruction_losses(x, mask, x1, None if coarse_only else x2)
                loss_g = c.l1_loss_alpha * loss_l1 + c.ae_loss_alpha * loss_ae
                if adversarial and c.gan_loss_alpha > 0:
                    ctx.freeze(self.discriminator)
                    fg, fl = self.discriminator(completed, crop_patches(completed, corners, self.local_size))
                    ctx.unfreeze(self.discriminator)
                    adv = c.global_wgan_loss_alpha * g_loss(fg, "wgan") + g_loss(fl, "wgan")
                    loss_g = loss_g + c.gan_loss_alpha * adv
                    logs["loss_adv"] = adv.item()
            ctx.backward_step(loss_g, "generator")
            logs.update(loss_g=loss_g.item(), loss_l1=loss_l1.item(), loss_ae=loss_ae.item())
        return logs
