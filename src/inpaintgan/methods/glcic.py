"""GLCIC: "Globally and Locally Consistent Image Completion" (Iizuka, Simo-Serra, Ishikawa,
SIGGRAPH 2017), as reproduced on CIFAR-10 in the GLCIC project report.

- Completion network (Table 1 of the paper): 5x5 conv, two stride-2 downsamplings, dilated 3x3
  convs with rates 2/4/8/16, two 4x4 deconvolutions, sigmoid output. BN + ReLU everywhere else.
- Context discriminators (Table 2): a global one on the whole image and a local one on a fixed-size
  crop centred on the hole (half the image side: 128 of 256 in the paper, 16 of 32 in the report);
  their 1024-d outputs are concatenated and fused by a fully connected layer into one logit.
- Loss: masked MSE + alpha * adversarial (alpha = 0.0004 in the paper, 0.0005 in the CIFAR report),
  BCE as in the paper or least squares as in the report.
- Three phases (Sec. 3.4): the completion network alone on MSE (T_C steps), the discriminators alone
  with the generator frozen (T_D), then both jointly (T_train).
- Input: the image with its hole filled by the dataset's mean pixel, concatenated with the mask.
  Ours (options): ``prefill=telea`` fills the hole by fast marching instead, and ``output=residual``
  makes the network predict a correction to that input (zero-initialised last layer).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from inpaintgan.losses import ADV_LOSSES, masked_mse
from inpaintgan.masks import crop_patches, local_crop_boxes
from inpaintgan.methods.base import Phase
from inpaintgan.methods.completion_gan import CompletionGAN, completion_phases, residual_output, zero_layer_
from inpaintgan.nn.blocks import ConvBNAct, DownsamplingDiscriminator
from inpaintgan.postprocess import fill_hole
from inpaintgan.registry import register_method


@dataclass
class GLCICConfig:
    width: int = 64  # channels of the first layer (64 in the paper); 4x this at the bottleneck
    d_width: int = 64  # discriminators' first-layer channels
    dilations: tuple[int, ...] = (2, 4, 8, 16)
    alpha: float = 0.0004  # adversarial weight (paper 0.0004; CIFAR report 0.0005)
    adv_loss: str = "bce"  # bce (paper) | lsgan (CIFAR report) | hinge
    output: str = "sigmoid"  # sigmoid | clip | residual (a correction added to the input, last layer zero at start)
    # "mean": the hole holds the dataset's mean pixel (the paper); "telea": OpenCV's fast-marching fill
    # (the paper's post-processing step moved in front of the network, as the default model does)
    prefill: str = "mean"
    local_fraction: float = 0.5  # local discriminator crop side / image side
    fill_mean: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)  # CIFAR-10 mean pixel
    steps_completion: int = 90000  # T_C (paper: 90k at batch 96)
    steps_discriminator: int = 10000  # T_D
    steps_joint: int = 400000  # T_train


class CompletionNetwork(nn.Module):
    """Iizuka et al. 2017, Table 1; ``width`` = 64 reproduces the paper's channel counts."""

    def __init__(self, channels: int = 3, width: int = 64, dilations=(2, 4, 8, 16), output: str = "sigmoid"):
        super().__init__()
        w = width
        layers = [
            ConvBNAct(channels + 1, w, 5),
            ConvBNAct(w, 2 * w, 3, 2),
            ConvBNAct(2 * w, 2 * w, 3),
            ConvBNAct(2 * w, 4 * w, 3, 2),
            ConvBNAct(4 * w, 4 * w, 3),
            ConvBNAct(4 * w, 4 * w, 3),
        ]
        layers += [ConvBNAct(4 * w, 4 * w, 3, dilation=d) for d in dilations]
        layers += [
            ConvBNAct(4 * w, 4 * w, 3),
            ConvBNAct(4 * w, 4 * w, 3),
            ConvBNAct(4 * w, 2 * w, transpose=True),
            ConvBNAct(2 * w, 2 * w, 3),
            ConvBNAct(2 * w, w, transpose=True),
            ConvBNAct(w, w // 2, 3),
            nn.Conv2d(w // 2, channels, 3, 1, 1),
        ]
        self.net = nn.Sequential(*layers)
        self.output = output
        if output == "residual":  # the correction starts at exactly zero: the model starts as its pre-fill
            zero_layer_(layers[-1])

    def forward(self, x: Tensor) -> Tensor:  # (N, C+1, H, W) -> (N, C, H, W), H and W multiples of 4
        y = self.net(x)
        if self.output == "residual":
            return y  # the caller adds it to its input
        return torch.sigmoid(y) if self.output == "sigmoid" else y.clamp(0, 1)


class ContextDiscriminator(nn.Module):
    """Global + local discriminators fused by one fully connected layer into a single logit."""

    def __init__(self, channels: int, image_size: int, local_size: int, width: int = 64):
        super().__init__()
        self.global_d = DownsamplingDiscriminator(channels, image_size, width)
        self.local_d = DownsamplingDiscriminator(channels, local_size, width)
        self.fuse = nn.Linear(2048, 1)
        self.local_size = local_size

    def forward(self, image: Tensor, corners: Tensor) -> Tensor:  # -> (N, 1) logits
        local = crop_patches(image, corners, self.local_size)
        return self.fuse(torch.cat([self.global_d(image), self.local_d(local)], dim=1))


@register_method("glcic")
class GLCIC(CompletionGAN):
    Config = GLCICConfig
    size_multiple = 4

    def __init__(self, cfg: GLCICConfig | None = None, image_size: int = 32, channels: int = 3):
        cfg = cfg or GLCICConfig()
        super().__init__(cfg, image_size, channels)
        if cfg.adv_loss not in ADV_LOSSES:
            raise ValueError(f"unknown adversarial loss {cfg.adv_loss!r}; known: {', '.join(ADV_LOSSES)}")
        if cfg.output not in ("sigmoid", "clip", "residual"):
            raise ValueError(f"unknown GLCIC output {cfg.output!r}; known: sigmoid, clip, residual")
        if cfg.prefill not in ("mean", "telea"):
            raise ValueError(f"unknown GLCIC prefill {cfg.prefill!r}; known: mean, telea")
        self.generator = CompletionNetwork(channels, cfg.width, tuple(cfg.dilations), cfg.output)
        self.local_size = max(4, int(round(image_size * cfg.local_fraction)))
        self.discriminator = ContextDiscriminator(channels, image_size, self.local_size, cfg.d_width)
        mean = torch.tensor(list(cfg.fill_mean)[:channels], dtype=torch.float32)
        if mean.numel() < channels:
            mean = mean.mean().repeat(channels)
        self.register_buffer("fill_value", mean.view(1, channels, 1, 1))

    def configure_optimizers(self, train_cfg) -> dict[str, torch.optim.Optimizer]:
        if train_cfg.optimizer == "adadelta":  # the paper's optimizer, default settings
            return {
                "generator": torch.optim.Adadelta(self.generator.parameters()),
                "discriminator": torch.optim.Adadelta(self.discriminator.parameters()),
            }
        if train_cfg.optimizer != "adam":
            raise ValueError(f"unknown optimizer {train_cfg.optimizer!r}; known: adam, adadelta")
        return self.adam_optimizers(train_cfg)

    def phases(self) -> list[Phase]:
        c = self.cfg
        return completion_phases(c.steps_completion, c.steps_discriminator, c.steps_joint)

    # the parts of the shared training step (methods.completion_gan)
    adv_loss = property(lambda self: self.cfg.adv_loss)
    adv_weight = property(lambda self: self.cfg.alpha)
    residual = property(lambda self: self.cfg.output == "residual")

    def complete(self, image: Tensor, mask: Tensor) -> Tensor:
        """Raw completion-network output (not composited)."""
        x = fill_hole(image, mask, self.cfg.prefill, self.fill_value)
        return residual_output(x, self.generator(torch.cat([x, mask], dim=1)), self.residual)

    def reconstruction_loss(self, pred: Tensor, image: Tensor, mask: Tensor) -> tuple[Tensor, dict[str, float]]:
        """The paper's masked MSE over the hole."""
        mse = masked_mse(pred, image, mask)
        return mse, {"loss_mse": mse.item()}

    def discriminator_inputs(self, mask: Tensor) -> tuple[Tensor]:
        """The local discriminator's crop corners, centred on the holes (reals are cropped there too)."""
        return (local_crop_boxes(mask, self.local_size),)

    def residual_layer(self) -> tuple[nn.Module, str]:
        return self.generator.net[-1], "generator.net (last layer re-zeroed: the source model was not residual)"

    def source_was_residual(self, config: dict) -> bool:
        return config.get("output", "sigmoid") == "residual"

    def extra_state_for_export(self) -> dict:
        return {"fill_mean": [float(v) for v in self.fill_value.flatten()]}
