"""Multi-process data-parallel training on PyTorch's own distributed package, launched by
``torchrun`` (gloo on CPU, NCCL on GPU).

Gradients are averaged with one ``all_reduce`` per optimizer step over exactly the parameters that
step updates, as StyleGAN2-ADA's training loop does. Wrapping each network in
``DistributedDataParallel`` instead would need ``find_unused_parameters`` and per-phase re-wrapping,
because GAN phases freeze and unfreeze networks and one network's output feeds another's loss.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_kind: str) -> DistInfo:
    """Join the process group if launched by torchrun (``WORLD_SIZE`` > 1); otherwise single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" and dist.is_nccl_available() else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def average_gradients(params, info: DistInfo) -> None:
    """All-reduce (mean) the gradients of ``params`` across processes, flattened into one buffer."""
    if not info.enabled:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= info.world_size
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


def broadcast_module(module: torch.nn.Module, info: DistInfo) -> None:
    """Make every process start from rank 0's parameters and buffers."""
    if not info.enabled:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def broadcast_object(obj, info: DistInfo):
    """Rank 0's ``obj`` (picklable) on every process; ``obj`` itself when not distributed."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
