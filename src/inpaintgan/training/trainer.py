"""The one training loop for every method (``train_step`` does the method-specific work).

Pieces are importable functions and small classes, like torchvision's reference scripts:
:class:`ResumableSampler` (data order that survives resume), :class:`TrainContext` (what a method's
``train_step`` may use: optimizers, AMP, gradient averaging, freezing), :func:`evaluate`
(validation metrics) and :class:`Trainer` (the loop, checkpoints, logs, samples).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from inpaintgan import metrics
from inpaintgan.checkpoints import CheckpointError
from inpaintgan.config import RunConfig, dump_config, to_dict
from inpaintgan.config_checks import check_image_size
from inpaintgan.data.inpainting import build_datasets
from inpaintgan.finite import NonFiniteError
from inpaintgan.masks import build_mask_generator
from inpaintgan.methods.base import InpaintMethod, Phase, phase_at
from inpaintgan.registry import get_method
from inpaintgan.tensors import eval_mode, frozen
from inpaintgan.training import distributed as D
from inpaintgan.training.logging import MetricLogger, format_postfix, make_grid, masked_input_view, save_image
from inpaintgan.training.state import checkpoint_step, find_resume, list_checkpoints, save_checkpoint


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; ``cuda`` without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from inpaintgan.devices import check_device_available

    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N ({e})") from None
    return check_device_available(dev)


class ResumableSampler(Sampler[int]):
    """Seeded per-epoch permutation, sharded across processes, that can start mid-epoch.

    Epoch ``e`` uses ``randperm(n)`` from a generator seeded with ``seed + e``; rank r takes every
    ``world``-th index. ``start`` skips the first samples of this rank's share (resume).
    """

    def __init__(self, n: int, seed: int, epoch: int, start: int = 0, rank: int = 0, world: int = 1):
        self.n, self.seed, self.epoch, self.start, self.rank, self.world = n, seed, epoch, start, rank, world

    def _indices(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        per_rank = self.n // self.world
        return perm[self.rank : per_rank * self.world : self.world]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices()[self.start :])

    def __len__(self) -> int:
        return max(0, self.n // self.world - self.start)


class TrainContext:
    """What a method's ``train_step`` may use. ``backward_step(loss, name)`` zeroes, back-propagates
    (with AMP loss scaling), averages gradients across processes, clips, and steps optimizer ``name``."""

    def __init__(self, optimizers, device, amp: str = "none", grad_clip: float = 0.0, dist_info=None, seed: int = 0):
        self.optimizers: dict[str, torch.optim.Optimizer] = optimizers
        self.device = device
        self.grad_clip = grad_clip
        self.dist = dist_info or D.DistInfo()
        self.amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
        if device.type != "cuda" and self.amp_dtype == torch.float16:
            self.amp_dtype = None  # fp16 autocast is a GPU feature here; such CPU runs stay in float32
        # bf16 autocast runs on the CPU too (convolutions in bfloat16 through oneDNN; 2x a float32
        # step on CPUs with bf16 instructions, docs/benchmarks.md; emulated, so slower, on CPUs without)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        # The methods' own randomness (latent codes, interpolation factors, noise) comes from here.
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self._frozen: dict[int, list] = {}  # id(module) -> open freeze() blocks, innermost last

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def backward_step(self, loss: Tensor, name: str, retain_graph: bool = False) -> None:
        if name not in self.optimizers:
            raise KeyError(f"no optimizer named {name!r}; this method has: {', '.join(self.optimizers)}")
        opt = self.optimizers[name]
        if not bool(torch.isfinite(loss.detach()).all()):  # stop before a NaN reaches the weights
            raise NonFiniteError(f"the {name} loss is {float(loss.detach().float().mean())} (not finite)")
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward(retain_graph=retain_graph)
        params = [p for g in opt.param_groups for p in g["params"]]
        D.average_gradients(params, self.dist)
        if self.grad_clip > 0:
            self.scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        self.scaler.step(opt)
        self.scaler.update()

    def freeze(self, module: nn.Module) -> None:
        """Stop gradients into ``module`` (e.g. the discriminator during the generator's step) until
        :meth:`unfreeze`; each parameter's ``requires_grad`` is remembered. Calls may nest."""
        block = frozen(module)
        block.__enter__()
        self._frozen.setdefault(id(module), []).append(block)

    def unfreeze(self, module: nn.Module) -> None:
        """Undo the latest :meth:`freeze` of ``module``: every parameter gets back the ``requires_grad``
        it had then (a network the phase froze stays frozen). Without a matching freeze: all on."""
        blocks = self._frozen.get(id(module))
        if not blocks:
            module.requires_grad_(True)
            return
        blocks.pop().__exit__(None, None, None)
        if not blocks:
            del self._frozen[id(module)]


def lr_factor(schedule: str, step: int, total: int, min_factor: float) -> float:
    """Multiplier of the base learning rate at ``step`` of ``total`` (a pure function of the step, so
    resuming needs no scheduler state)."""
    if schedule == "constant" or total <= 1:
        return 1.0
    t = min(1.0, step / (total - 1))
    if schedule == "cosine":
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * t))
    if schedule == "linear":
        return 1.0 - (1 - min_factor) * t
    raise ValueError(f"unknown lr_schedule {schedule!r}; known: constant, cosine, linear")


def module_for(method: InpaintMethod, opt_name: str) -> nn.Module:
    """The network an optimizer trains: by convention the method's attribute of the same name."""
    mod = getattr(method, opt_name, None)
    if not isinstance(mod, nn.Module):
        raise AttributeError(f"method {method.name!r} has no network {opt_name!r} for its optimizer of that name")
    return mod


def set_phase_modes(method: InpaintMethod, optimizers: dict, phase: Phase) -> None:
    """Networks trained in ``phase``: train mode, gradients on. Others: eval mode, frozen, so their
    parameters and BatchNorm statistics stay bit-identical through the phase."""
    for name in optimizers:
        mod = module_for(method, name)
        trained = name in phase.trains
        mod.train(trained)
        for p in mod.parameters():
            p.requires_grad_(trained)


@torch.no_grad()
def evaluate(method: InpaintMethod, loader, device, max_batches: int = 0, preview: bool = False) -> dict[str, float]:
    """Validation: hole L1, hole MSE and PSNR (per image, from hole MSE, averaged), on [0, 1] pixels.
    ``preview``: fill with :meth:`~InpaintMethod.preview_inpaint` (a training run's cheaper settings)."""
    fill = method.preview_inpaint if preview else method.inpaint
    l1s, mses, psnrs = [], [], []
    for i, batch in enumerate(loader):
        if max_batches and i >= max_batches:
            break
        image, mask = batch["image"].to(device), batch["mask"].to(device)
        with eval_mode(method):
            out = fill(image, mask).float()
        l1s.append(metrics.l1(out, image, mask).cpu())
        mses.append(metrics.mse(out, image, mask).cpu())
        psnrs.append(metrics.psnr(out, image, mask).cpu())
    if not l1s:
        return {}
    return {
        "hole_l1": float(torch.cat(l1s).mean()),
        "hole_mse": float(torch.cat(mses).mean()),
        "psnr": float(torch.cat(psnrs).mean()),
    }


def _rng_state(ctx: TrainContext) -> dict[str, Any]:
    # Library code never uses numpy's global RNG (data randomness is seeded per sample), so only
    # torch's generators are saved; the file then holds tensors and plain containers only.
    st = {"torch": torch.get_rng_state(), "ctx": ctx.generator.get_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(ctx: TrainContext, st: dict[str, Any], rank: int = 0, seed: int = 0, step: int = 0) -> None:
    """Restore the RNG states saved by rank 0. A checkpoint loaded with map_location=cuda holds them on
    the GPU, and set_rng_state takes CPU byte tensors. Other ranks (their own states are not saved) and
    a generator of another kind than the saved one (a CPU run resumed on a GPU, or back) are reseeded
    from (seed, rank, step) instead: deterministic, and different on every rank."""
    saved_ctx = st["ctx"].cpu()
    if rank != 0 or saved_ctx.numel() != ctx.generator.get_state().numel():
        fresh = seed + 7919 * rank + 104729 * step
        torch.manual_seed(fresh)
        ctx.generator.manual_seed(fresh + 1)
        return
    torch.set_rng_state(st["torch"].cpu())
    ctx.generator.set_state(saved_ctx)
    cuda = st.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([t.cpu() for t in cuda])


@dataclass
class TrainResult:
    step: int
    out_dir: Path
    last_checkpoint: Path | None
    val: dict[str, float]
    skipped_images: int


class Trainer:
    """Builds data, method and optimizers from a :class:`RunConfig` and runs the phases."""

    def __init__(self, cfg: RunConfig, progress: bool = True):
        self.cfg = cfg
        tc = cfg.train
        self.device = resolve_device(tc.device)
        self.dist = D.init_distributed(self.device.type)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        if tc.threads:
            torch.set_num_threads(tc.threads)
        torch.manual_seed(tc.seed)  # weight initialisation; identical on every rank
        self.out_dir = Path(tc.out_dir)
        if self.out_dir.exists() and not self.out_dir.is_dir():
            from inpaintgan.config import ConfigError

            raise ConfigError(f"train.out_dir / --out {self.out_dir} is an existing file; the run folder must be a folder")
        self.progress = progress and self.dist.is_main
        mask_fn = build_mask_generator(cfg.masks)
        prefill = get_method(cfg.method).dataset_prefill(cfg.model)  # computed in the loader's workers
        self.train_ds, self.val_ds = build_datasets(cfg.data, mask_fn, seed=tc.seed, prefill=prefill)
        channels = 1 if cfg.data.grayscale or cfg.data.dataset == "fashion_mnist" else 3
        self.method: InpaintMethod = get_method(cfg.method)(cfg.model, image_size=cfg.data.image_size, channels=channels)
        check_image_size(cfg.data.image_size, self.method)
        if tc.init_from:  # warm start from exported weights (a resumed checkpoint still wins)
            from inpaintgan.checkpoints import load_weights_into, resolve_model

            skipped = load_weights_into(self.method, resolve_model(tc.init_from), strict=tc.init_strict)
            if skipped and self.dist.is_main:
                print(f"init_from {tc.init_from}: not loaded as is: {'; '.join(skipped)}", flush=True)
        self.method.to(self.device)
        self.memory_format = torch.channels_last if tc.channels_last else torch.contiguous_format
        if tc.channels_last:
            self.method.to(memory_format=torch.channels_last)
        D.broadcast_module(self.method, self.dist)
        self.optimizers = self.method.configure_optimizers(tc)
        # Base learning rates come from the config, also after resuming (so a resumed run may change them).
        self.base_lrs = {k: [g["lr"] for g in o.param_groups] for k, o in self.optimizers.items()}
        lr_factor(tc.lr_schedule, 0, 2, tc.lr_min_factor)  # unknown schedule names fail here, not mid-run
        self.ctx = TrainContext(self.optimizers, self.device, tc.amp, tc.grad_clip, self.dist, seed=tc.seed + 7919 * self.dist.rank)
        self.phases = self.method.phases()
        self.total = self.schedule_total = sum(p.steps for p in self.phases)
        if tc.max_steps:
            self.total = min(self.total, tc.max_steps)
        self.per_rank_bs = max(1, tc.batch_size // self.dist.world_size)
        self.batches_per_epoch = len(self.train_ds) // self.dist.world_size // self.per_rank_bs
        if self.batches_per_epoch < 1:
            raise ValueError(
                f"the training split has {len(self.train_ds)} images, fewer than one batch of {tc.batch_size}: "
                "lower train.batch_size or add images"
            )
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.last_val: dict[str, float] = {}

    # -------------------------------------------------------------------------------- checkpoints

    def state_payload(self) -> dict[str, Any]:
        return {
            "format": "inpaintgan-train-1",
            "method": self.cfg.method,
            "config": to_dict(self.cfg),
            "model": self.method.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scaler": self.ctx.scaler.state_dict(),
            "progress": {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch},
            "rng": _rng_state(self.ctx),
            "val": dict(self.last_val),
        }

    def load_payload(self, payload: dict[str, Any], source: str | Path = "checkpoint") -> None:
        from inpaintgan.checkpoints import check_training_payload

        check_training_payload(payload, source)
        if payload.get("method") != self.cfg.method:
            raise ValueError(f"checkpoint is for method {payload.get('method')!r}, config says {self.cfg.method!r}")
        changed = _config_changes(payload["config"].get("model"), to_dict(self.cfg.model))
        try:
            self.method.load_state_dict(payload["model"])
            for k, o in self.optimizers.items():
                o.load_state_dict(payload["optimizers"][k])
        except (RuntimeError, ValueError, KeyError) as e:
            hint = f" (changed since: {', '.join(changed)})" if changed else ""
            raise CheckpointError(
                f"{source} does not fit this run's networks{hint}: resume with the run's own model settings, or "
                f"start a new run (--out) / warm-start with train.init_from; {' '.join(str(e).split())[:300]}"
            ) from None
        if payload.get("scaler"):
            self.ctx.scaler.load_state_dict(payload["scaler"])
        prog = payload["progress"]
        self.step, self.epoch, self.batch_in_epoch = prog["step"], prog["epoch"], prog["batch_in_epoch"]
        _set_rng_state(self.ctx, payload["rng"], self.dist.rank, self.cfg.train.seed, self.step)
        self.last_val = dict(payload.get("val") or {})

    def save(self) -> Path | None:
        if not self.dist.is_main:
            return None
        return save_checkpoint(self.out_dir, self.step, self.state_payload(), self.cfg.train.keep_last)

    # ----------------------------------------------------------------------------------- the loop

    def _loader(self, ds, sampler, shuffle_epoch: int | None = None) -> DataLoader:
        if shuffle_epoch is not None:
            ds.set_epoch(shuffle_epoch)
        return DataLoader(
            ds,
            batch_size=self.per_rank_bs,
            sampler=sampler,
            drop_last=sampler is not None,
            num_workers=self.cfg.data.num_workers,
            pin_memory=self.device.type == "cuda",
        )

    def _batches(self) -> Iterator[dict[str, Tensor]]:
        """Endless stream of batches that continues from (epoch, batch_in_epoch). The position is
        advanced before a batch is handed out, so a checkpoint taken after the step that used it
        resumes with the next batch."""
        while True:
            if self.batch_in_epoch >= self.batches_per_epoch:
                self.epoch += 1
                self.batch_in_epoch = 0
                self.on_epoch_end()
            sampler = ResumableSampler(
                len(self.train_ds), self.cfg.train.seed, self.epoch, self.batch_in_epoch * self.per_rank_bs,
                self.dist.rank, self.dist.world_size,
            )
            for batch in self._loader(self.train_ds, sampler, self.epoch):
                self.batch_in_epoch += 1
                yield {k: self._to_device(v) for k, v in batch.items()}
                if self.batch_in_epoch >= self.batches_per_epoch:
                    break

    def _to_device(self, v):
        if not isinstance(v, Tensor):
            return v
        v = v.to(self.device, non_blocking=True)
        return v.contiguous(memory_format=self.memory_format) if v.dim() == 4 else v

    def on_epoch_end(self) -> None:
        if self.cfg.train.val_every == 0:
            self.validate()

    def val_loader(self) -> DataLoader:
        return self._loader(self.val_ds, None)

    def validate(self) -> dict[str, float]:
        if not self.dist.is_main:
            return {}
        self.last_val = evaluate(self.method, self.val_loader(), self.device, self.cfg.train.val_batches, preview=True)
        self.last_val_step = self.step
        self.logger.log(self.step, self.last_val, prefix="val/")
        return self.last_val

    def write_samples(self) -> Path | None:
        if not self.dist.is_main:
            return None
        batch = next(iter(DataLoader(self.val_ds, batch_size=min(8, len(self.val_ds)))))
        image, mask = batch["image"].to(self.device), batch["mask"].to(self.device)
        with torch.no_grad(), eval_mode(self.method):
            out = self.method.preview_inpaint(image, mask)
        grid = make_grid([masked_input_view(image, mask), out, image])
        upscale = max(1, 128 // self.cfg.data.image_size)
        return save_image(grid, self.out_dir / "samples" / f"step_{self.step:08d}.png", upscale=upscale)

    def _resume_decision(self, resume: str) -> tuple[str | None, list[str], str | None]:
        """(checkpoint to load or None, names of the run folder's checkpoints, error message or None).
        With ``auto``, newer checkpoints that could not be read are set aside as ``*.damaged`` (kept,
        but no longer in the way of the fallback, nor of pruning)."""
        try:
            ckpt = find_resume(self.out_dir, resume)
        except CheckpointError as e:
            return None, [], str(e)
        if resume == "auto" and ckpt is not None:
            for p in list_checkpoints(self.out_dir):
                if checkpoint_step(p) > checkpoint_step(ckpt):
                    aside = p.with_name(p.name + ".damaged")
                    p.replace(aside)
                    tqdm.write(f"warning: {p} could not be read; kept as {aside.name}, resuming from {ckpt.name}")
        existing = [p.name for p in list_checkpoints(self.out_dir)]
        error = None
        if ckpt is None and not resume and existing:
            error = (
                f"run folder {self.out_dir} already holds checkpoints (newest: {existing[-1]}); pass --resume "
                "to continue that run, --resume none to start it over (deleting those checkpoints), or choose "
                "another folder with --out"
            )
        elif ckpt is None and resume == "auto" and existing:
            error = (
                f"none of the {len(existing)} checkpoints in {self.out_dir} could be read; pass --resume PATH to "
                "a good one, --resume none to start over, or choose another folder with --out"
            )
        return (str(ckpt) if ckpt else None), existing, error

    def run(self, resume: str = "") -> TrainResult:
        """Resume or start (:meth:`_open_run`), step through the phases, then validate, write samples and
        a last checkpoint (:meth:`_close_run`)."""
        ckpt, replaced = self._open_run(resume)
        last_ckpt = ckpt
        start_time = time.time()
        from inpaintgan.progress import progress  # a bar on a terminal, plain lines in a log

        bar = progress(total=self.total, initial=self.step, quiet=not self.progress, desc=self.cfg.method, unit="step")
        stream = self._batches()
        current_phase = None
        try:
            while self.step < self.total:
                _, phase, _ = phase_at(self.phases, self.step)
                if phase is not current_phase:
                    set_phase_modes(self.method, self.optimizers, phase)
                    current_phase = phase
                batch = next(stream)
                logs = self._step(batch, phase, last_ckpt)
                for p in replaced:  # the new run has started: the replaced run's checkpoints go now
                    p.unlink(missing_ok=True)
                replaced = []
                bar.update(1)
                if self.progress:
                    bar.set_postfix({"phase": phase.name, **format_postfix(logs)}, refresh=False)
                last_ckpt = self._after_step(logs) or last_ckpt
                if self._time_up(start_time):
                    break
        finally:
            bar.close()
        return self._close_run(last_ckpt)

    def _open_run(self, resume: str) -> tuple[Path | None, list[Path]]:
        """Decide what to resume from and load it, prepare the run folder and the logger. Returns the
        checkpoint resumed from (or None) and the checkpoints of a run being replaced (``--resume
        none``), deleted once the new run has made its first step."""
        # Rank 0 decides what to resume from and every process follows (the same checkpoint, or the
        # same error on all ranks rather than one rank failing while the others wait in a collective).
        decision = self._resume_decision(resume) if self.dist.is_main else None
        ckpt_name, existing, error = D.broadcast_object(decision, self.dist)
        if error:
            raise CheckpointError(error)
        ckpt = Path(ckpt_name) if ckpt_name else None
        replaced = list_checkpoints(self.out_dir) if resume == "none" and self.dist.is_main else []
        if ckpt is not None:
            from inpaintgan.checkpoints import load_training_state

            self.load_payload(load_training_state(ckpt, map_location=self.device), ckpt)
            newer = [name for name in existing if checkpoint_step(name) > self.step]
            if newer:  # saving would prune the new, lower-numbered checkpoints and keep the old ones
                raise CheckpointError(
                    f"{ckpt} is at step {self.step} but run folder {self.out_dir} holds later checkpoints "
                    f"({', '.join(newer)}); resume the newest (--resume), move those away, or choose another "
                    "folder with --out"
                )
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.dist.is_main:
            _remove_stale_temp_files(self.out_dir)
            (self.out_dir / "config.yaml").write_text(dump_config(self.cfg))
        self.logger = MetricLogger(self.out_dir, self.cfg.train.tensorboard and self.dist.is_main)
        self.logger.truncate_after(self.step)
        if ckpt is not None and self.dist.is_main:
            tqdm.write(f"resumed from {ckpt} at step {self.step}")
        return ckpt, replaced

    def _step(self, batch: dict[str, Tensor], phase: Phase, last_ckpt: Path | None) -> dict[str, float]:
        """One optimisation step at the scheduled learning rates; a non-finite loss stops the run with
        what to do about it. Advances ``self.step``."""
        tc = self.cfg.train
        factor = lr_factor(tc.lr_schedule, self.step, self.schedule_total, tc.lr_min_factor)
        for name, opt in self.optimizers.items():
            for group, base in zip(opt.param_groups, self.base_lrs[name]):
                group["lr"] = base * factor
        try:
            logs = self.method.train_step(batch, phase, self.step, self.ctx)
            bad = [k for k, v in logs.items() if not math.isfinite(v)]
            if bad:
                raise NonFiniteError(f"non-finite {', '.join(bad)}")
        except NonFiniteError as e:
            raise NonFiniteError(
                f"training stopped at step {self.step + 1} (phase {phase.name}): {e}; nothing was saved after "
                f"the last good checkpoint ({last_ckpt or 'none yet'}); lower train.lr or set train.grad_clip, "
                "then --resume"
            ) from None
        self.step += 1
        return logs

    def _after_step(self, logs: dict[str, float]) -> Path | None:
        """Logs, validation, samples and checkpoints due at this step; the checkpoint written, if any."""
        tc = self.cfg.train
        if self.dist.is_main and (self.step % tc.log_every == 0 or self.step == self.total):
            self.logger.log(self.step, {**logs, "epoch": self.epoch}, prefix="train/")
        if tc.val_every and self.step % tc.val_every == 0:
            self.validate()
        if tc.sample_every and self.step % tc.sample_every == 0:
            self.write_samples()
        if tc.ckpt_every and self.step % tc.ckpt_every == 0:
            return self.save()
        return None

    def _close_run(self, last_ckpt: Path | None) -> TrainResult:
        """The end of a run (or of its time limit): validation, samples and a checkpoint at the last step."""
        if self.dist.is_main:
            if getattr(self, "last_val_step", None) != self.step:
                self.validate()
            self.write_samples()
            last_ckpt = self.save() or last_ckpt
            self.logger.close()
        D.barrier(self.dist)
        skipped = self.train_ds.skipped + self.val_ds.skipped
        if skipped and self.dist.is_main:
            tqdm.write(f"warning: {skipped} unreadable image(s) were skipped (see warnings above)")
        return TrainResult(self.step, self.out_dir, last_ckpt, self.last_val, skipped)

    def _time_up(self, start: float) -> bool:
        limit = getattr(self.cfg.train, "time_limit_min", 0.0)
        return bool(limit) and (time.time() - start) / 60 >= limit


def _config_changes(old: Any, new: dict[str, Any]) -> list[str]:
    """``model.KEY`` names whose value differs between a checkpoint's config and this run's."""
    if not isinstance(old, dict):
        return []
    return [f"model.{k}: {old[k]!r} -> {v!r}" for k, v in new.items() if k in old and to_dict(old[k]) != v]


def _remove_stale_temp_files(out_dir: Path) -> None:
    """Temp files of an atomic write that a killed process left behind (``.NAME.XXXX.tmp``)."""
    for folder in (out_dir, out_dir / "checkpoints"):
        if folder.is_dir():
            for p in folder.glob(".*.tmp"):
                p.unlink(missing_ok=True)


def train(cfg: RunConfig, resume: str = "", progress: bool = True) -> TrainResult:
    """Train ``cfg`` (optionally resuming: ``"auto"`` or a checkpoint path)."""
    trainer = Trainer(cfg, progress=progress)
    try:
        return trainer.run(resume)
    finally:
        D.cleanup(trainer.dist)
