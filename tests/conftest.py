"""Shared fixtures: tiny image folders and tiny configs, so the suite runs in minutes on 2 cores."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

torch.set_num_threads(1)


def write_image_folder(root, n: int = 24, size: int = 16, seed: int = 0):
    """Smooth random colour images (gradients + blobs), so inpainting is learnable."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        a = rng.uniform(0, 1, (3, 3))
        img = np.stack([a[c, 0] * xx + a[c, 1] * yy + a[c, 2] * 0.3 for c in range(3)], -1)
        img = np.clip(img / max(img.max(), 1e-6), 0, 1)
        sub = root / f"class{i % 2}"
        sub.mkdir(exist_ok=True)
        Image.fromarray((img * 255).astype(np.uint8)).save(sub / f"img_{i:03d}.png")
    return root


@pytest.fixture
def image_folder(tmp_path):
    return write_image_folder(tmp_path / "images")


def tiny_glcic_overrides(data_root, out_dir, steps=(3, 2, 3)) -> list[str]:
    return [
        "method=glcic",
        "model.width=8",
        "model.d_width=8",
        f"model.steps_completion={steps[0]}",
        f"model.steps_discriminator={steps[1]}",
        f"model.steps_joint={steps[2]}",
        "model.adv_loss=lsgan",
        "model.alpha=0.01",
        f"data.root={data_root}",
        "data.image_size=16",
        "data.val_fraction=0.2",
        "data.test_fraction=0.0",
        "masks.kind=glcic_rect",
        "train.batch_size=4",
        f"train.out_dir={out_dir}",
        "train.log_every=1",
        "train.sample_every=0",
        "train.ckpt_every=0",
        "train.val_every=0",
        "train.val_batches=1",
        "train.tensorboard=false",
        "train.lr=0.001",
    ]


class FakeTrainContext:
    """The parts of the trainer's TrainContext that a method's train_step uses: one Adam per network,
    a seeded generator, no AMP, plain backward + step."""

    def __init__(self, method, lr=2e-3, betas=(0.5, 0.999), names=("generator", "discriminator")):
        import torch

        self.optimizers = {name: torch.optim.Adam(getattr(method, name).parameters(), lr, betas=betas) for name in names}
        self.generator = torch.Generator().manual_seed(0)

    def autocast(self):
        import contextlib

        return contextlib.nullcontext()

    def backward_step(self, loss, name):
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    @staticmethod
    def freeze(m):
        m.requires_grad_(False)

    @staticmethod
    def unfreeze(m):
        m.requires_grad_(True)


class RecordingCtx(FakeTrainContext):
    """FakeTrainContext that also records, per backward step, which network stepped and the gradient
    each of its parameters received (the training-step tests compare them with hand-computed ones)."""

    def __init__(self, method):
        super().__init__(method, 1e-3)
        self.method = method
        self.calls: list[str] = []
        self.grads: dict[str, list[torch.Tensor]] = {}

    def backward_step(self, loss, name):
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        net = getattr(self.method, name)
        self.grads[name] = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in net.parameters()]
        self.calls.append(name)
        opt.step()


def grads_of(loss, module):
    """d loss / d each parameter of ``module`` (zeros where unused); the graph is kept."""
    params = list(module.parameters())
    gs = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, gs)]


def assert_grads_close(got, want, what):
    """Each gradient in ``got`` equals ``want`` (relative 1e-3, absolute 1e-5 of the largest)."""
    scale = max(float(w.abs().max()) for w in want)
    assert scale > 0, f"{what}: the expected gradient is zero"
    for i, (a, b) in enumerate(zip(got, want)):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5 * scale), f"{what}: parameter {i} differs"


def write_fashion_mnist(root, n: int, splits=(("t10k", 0),)) -> np.ndarray:
    """Fashion-MNIST IDX files (gzip, big-endian headers) with ``n`` smooth blob images, as in the real
    set: one (images, labels) pair per ``(split, shift)``, the split's images rolled ``shift`` px
    sideways (so two splits differ). Returns the unshifted images (n, 28, 28) uint8."""
    import gzip
    import struct

    def idx(arr: np.ndarray, magic: int) -> bytes:
        return struct.pack(f">I{arr.ndim}I", magic, *arr.shape) + arr.astype(np.uint8).tobytes()

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:28, 0:28]
    images = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        cy, cx, r = rng.uniform(9, 19), rng.uniform(9, 19), rng.uniform(5, 9)
        images[i] = np.clip(255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)), 0, 255)
    for split, shift in splits:
        arr = np.roll(images, shift, axis=2)
        for name, a, magic in (("images-idx3-ubyte", arr, 2051), ("labels-idx1-ubyte", np.arange(n) % 10, 2049)):
            with gzip.open(root / f"{split}-{name}.gz", "wb") as f:
                f.write(idx(a, magic))
    return images

