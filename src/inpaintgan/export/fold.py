"""Inference-time rewrites of a network that keep its function: BatchNorm folded into the convolution
before it, channels_last memory format.

A BatchNorm in eval mode is an affine map per channel, ``y = (x - mean) / sqrt(var + eps) * gamma +
beta``; after a convolution it folds into that convolution's weights and bias (for a transposed
convolution the output channels are the weight's second axis). The folded network equals the
unfolded one up to float rounding (tested within 1e-5) and runs one pass over memory less per layer.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def _fold_pair(conv: nn.Module, bn: nn.BatchNorm2d) -> None:
    """Fold ``bn`` (eval statistics) into ``conv`` in place."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics (track_running_stats=False)")
    with torch.no_grad():
        scale = torch.rsqrt(bn.running_var.double() + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight.double()
        shift = -bn.running_mean.double() * scale
        if bn.bias is not None:
            shift = shift + bn.bias.double()
        w = conv.weight.double()
        if isinstance(conv, nn.ConvTranspose2d):  # (in, out / groups, kh, kw)
            if conv.groups != 1:
                raise ValueError("folding into a grouped transposed convolution is not supported")
            w = w * scale.view(1, -1, 1, 1)
        else:  # (out, in / groups, kh, kw)
            w = w * scale.view(-1, 1, 1, 1)
        b = conv.bias.double() if conv.bias is not None else torch.zeros_like(shift)
        conv.weight.copy_(w.to(conv.weight.dtype))
        conv.bias = nn.Parameter((b * scale + shift).to(conv.weight.dtype), requires_grad=conv.weight.requires_grad)


def fold_batchnorm(module: nn.Module, inplace: bool = False) -> tuple[nn.Module, int]:
    """A copy of ``module`` (or ``module`` itself with ``inplace``) in which every ``BatchNorm2d`` that
    directly follows a ``Conv2d`` / ``ConvTranspose2d`` inside an ``nn.Sequential`` is folded into it
    and replaced by ``nn.Identity``. Returns (module, number of BatchNorms folded). The module should be
    used for inference only (eval mode): training would update statistics that no longer exist."""
    m = module if inplace else copy.deepcopy(module)
    n = 0
    for seq in m.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, _CONVS) and type(bn) is nn.BatchNorm2d and bn.num_features == conv.out_channels:
                _fold_pair(conv, bn)
                seq._modules[b] = nn.Identity()
                n += 1
    return m, n


def count_batchnorms(module: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def optimize_for_inference(method: nn.Module, channels_last: bool = True) -> nn.Module:
    """A copy of a method for inference: eval mode, BatchNorm folded into the convolutions of its
    inference networks, weights in channels_last (oneDNN's fast layout on CPU) when asked. The copy
    fills like the original (within float rounding); it must not be trained."""
    m = copy.deepcopy(method).eval()
    for name in getattr(m, "inference_modules", ()):
        net = getattr(m, name, None)
        if isinstance(net, nn.Module):
            fold_batchnorm(net, inplace=True)
            if channels_last:
                net.to(memory_format=torch.channels_last)
    m.inference_optimized = True
    return m


__all__ = ["fold_batchnorm", "count_batchnorms", "optimize_for_inference"]
