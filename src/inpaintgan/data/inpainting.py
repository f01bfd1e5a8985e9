"""The training dataset: any :class:`ImageSource` -> dict(image, mask) samples.

Randomness (crop position, flip, mask) comes from a ``numpy.random.Generator`` seeded by
``(seed, epoch, index)``, so a sample is the same whatever the worker count, and a resumed run sees
exactly the samples the uninterrupted run would have seen.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from inpaintgan.data.folder import ImageFolder, ImageSource, list_images


def fit_to_size(
    img: np.ndarray, size: int, mode: str, rng: np.random.Generator | None, scale: tuple[float, float] = (1.0, 1.0)
) -> np.ndarray:
    """uint8 (H, W, C) -> (size, size, C). ``crop``: random crop (the short side is first resized up
    to ``size`` if smaller; with ``scale`` = (a, b) and a random generator, the short side is first
    resized to ``size * U(a, b)``, so crops show more or less of the scene); ``center``: centre crop;
    ``resize``: the whole image resized."""
    h, w = img.shape[:2]
    if mode == "crop" and rng is not None and tuple(scale) != (1.0, 1.0):
        target = size * rng.uniform(scale[0], scale[1])
        f = max(target, size) / min(h, w)
        nh, nw = max(size, round(h * f)), max(size, round(w * f))
        interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
        img = cv2.resize(img, (nw, nh), interpolation=interp).reshape(nh, nw, -1)
        h, w = nh, nw
    if mode == "resize":
        if (h, w) != (size, size):
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if min(h, w) > size else cv2.INTER_CUBIC)
        return img.reshape(size, size, -1)
    if mode not in ("crop", "center"):
        raise ValueError(f"unknown resize mode {mode!r}; known: crop, center, resize")
    if min(h, w) < size:
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_CUBIC).reshape(nh, nw, -1)
        h, w = nh, nw
    if mode == "center" or rng is None:
        y, x = (h - size) // 2, (w - size) // 2
    else:
        y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return img[y : y + size, x : x + size]


class InpaintingDataset(Dataset):
    """Wraps an image source: fit to ``size``, random flip, draw a mask; returns
    ``{"image": (C, S, S) float in [0, 1], "mask": (1, S, S) float, 1 = hole, "index": int}``.

    Unreadable images are skipped (the next readable index is used) and counted in
    :attr:`skipped`; the source's own warning names the file.
    """

    def __init__(
        self,
        source: ImageSource,
        size: int,
        mask_fn,
        indices: list[int] | None = None,
        resize: str = "crop",
        flip: bool = True,
        seed: int = 0,
        train: bool = True,
        crop_scale: tuple[float, float] = (1.0, 1.0),
        prefill: str = "none",
        repeat_epochs: int = 0,
        prefill_cache: str | Path | None = None,
    ):
        if repeat_epochs < 0:
            raise ValueError(f"data.repeat_epochs must be 0 (off) or a positive number of epochs, got {repeat_epochs}")
        self.source, self.size, self.mask_fn = source, size, mask_fn
        #: "telea" / "patchmatch": also return the sample's classically pre-filled image ("prefill"),
        #: computed here (in the loader's workers) instead of in the training step
        self.prefill = prefill
        #: training samples (crop, flip, mask) repeat every ``repeat_epochs`` epochs (0: never)
        self.repeat_epochs = int(repeat_epochs)
        #: folder of computed pre-fills, keyed by the sample's pixels and mask (None: not kept)
        self.prefill_cache = Path(prefill_cache) if prefill_cache else None
        self.indices = list(range(len(source))) if indices is None else list(indices)
        if not self.indices:
            raise ValueError("dataset split is empty")
        self.resize, self.flip, self.seed, self.train = resize, flip, seed, train
        self.crop_scale = tuple(crop_scale)
        self.epoch = 0
        self.skipped = 0

    def set_epoch(self, epoch: int) -> None:
        """Training samples differ per epoch; validation samples never do."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def rng_for(self, i: int) -> np.random.Generator:
        epoch = self.epoch % self.repeat_epochs if self.repeat_epochs else self.epoch
        return np.random.default_rng([self.seed, epoch if self.train else 0, i, 0x1A2B])

    def prefilled(self, img: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """The classical pre-fill of ``img`` (H, W, C uint8) in ``hole`` (H, W bool), read from
        :attr:`prefill_cache` when this exact sample was filled before (a file named by the SHA-1 of the
        pixels, the hole and the fill's kind), else computed and kept there. An unreadable or
        mismatched cache file is computed again and replaced; files are written atomically, so loader
        workers filling the same folder never see half a file."""
        from inpaintgan.postprocess import prefill_array

        if self.prefill_cache is None:
            return prefill_array(img, hole, self.prefill)
        h = hashlib.sha1(f"{self.prefill}:{img.shape}".encode())
        h.update(img.tobytes())
        h.update(np.packbits(hole).tobytes())
        path = self.prefill_cache / f"{h.hexdigest()}.npy"
        try:
            filled = np.load(path, allow_pickle=False)
            if filled.dtype == np.uint8 and filled.size == img.size:
                return filled.reshape(img.shape)
        except (OSError, ValueError):
            pass  # not there yet, or unreadable: compute it again
        filled = np.ascontiguousarray(prefill_array(img, hole, self.prefill), dtype=np.uint8).reshape(img.shape)
        from inpaintgan.checkpoints import atomic_write

        def write(tmp) -> None:
            with open(tmp, "wb") as f:  # a file object: np.save would append .npy to the temp name
                np.save(f, filled, allow_pickle=False)

        try:
            atomic_write(path, write)
        except OSError as e:  # the cache only saves time: a full or read-only disk must not stop training
            warnings.warn(f"pre-fill cache {self.prefill_cache}: cannot write ({e}); computing without it", stacklevel=2)
            self.prefill_cache = None
        return filled

    def __getitem__(self, i: int) -> dict:
        n = len(self.indices)
        for attempt in range(n):
            arr = self.source.load(self.indices[(i + attempt) % n])
            if arr is not None:
                break
            self.skipped += 1
        else:
            from inpaintgan.imageio import ImageReadError

            raise ImageReadError(f"no readable image in the dataset: all {n} files tried could not be read (see the warnings)")
        rng = self.rng_for(i)
        mode = self.resize if self.train else ("center" if self.resize == "crop" else self.resize)
        img = fit_to_size(arr, self.size, mode, rng, self.crop_scale if self.train else (1.0, 1.0))
        if self.train and self.flip and rng.random() < 0.5:
            img = img[:, ::-1]
        image = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)
        m = np.ascontiguousarray(self.mask_fn(rng, self.size, self.size), dtype=np.float32)  # (S, S)
        mask = torch.from_numpy(m).unsqueeze(0)
        sample = {"image": image, "mask": mask, "index": i}
        if self.prefill not in ("", "none"):
            filled = self.prefilled(np.ascontiguousarray(img), m > 0.5)
            sample["prefill"] = torch.from_numpy(np.ascontiguousarray(filled.reshape(img.shape))).permute(2, 0, 1).float().div_(255.0)
        return sample


def split_indices(n: int, val_fraction: float, test_fraction: float, seed: int) -> dict[str, list[int]]:
    """Deterministic seeded split of ``range(n)`` into train / val / test index lists."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction and test_fraction must be in [0, 1) and sum below 1")
    perm = np.random.default_rng(seed).permutation(n)
    n_val, n_test = int(round(n * val_fraction)), int(round(n * test_fraction))
    if val_fraction > 0 and n > 2:
        n_val = max(1, n_val)
    return {
        "val": sorted(perm[:n_val].tolist()),
        "test": sorted(perm[n_val : n_val + n_test].tolist()),
        "train": sorted(perm[n_val + n_test :].tolist()),
    }


def build_source(data_cfg, train: bool = True) -> ImageSource:
    """The image source named by a :class:`~inpaintgan.config.DataConfig`.

    ``folder`` needs ``data.root``. For ``cifar10`` an empty root means ``<cache_dir>/cifar10``; for
    ``fashion_mnist`` Debian's ``/usr/share/datasets/fashion-mnist`` if installed, else
    ``<cache_dir>/fashion-mnist``. Fashion-MNIST is always one channel (``data.grayscale`` is moot).
    """
    name = data_cfg.dataset
    if name == "folder":
        if not data_cfg.root:
            raise ValueError("data.root is empty: set it to a folder of images (dataset: folder)")
        return ImageFolder(data_cfg.root, grayscale=data_cfg.grayscale)
    if name == "cifar10":
        from inpaintgan.data.cifar10 import CIFAR10

        return CIFAR10(data_cfg.root or None, train=train, download=data_cfg.download, grayscale=data_cfg.grayscale)
    if name == "fashion_mnist":
        from inpaintgan.data.fashion_mnist import FashionMNIST

        return FashionMNIST(data_cfg.root or None, train=train, download=data_cfg.download)
    raise ValueError(f"unknown dataset {name!r}; known: folder, cifar10, fashion_mnist")


def build_datasets(data_cfg, mask_fn, seed: int = 0, prefill: str = "none") -> tuple[InpaintingDataset, InpaintingDataset]:
    """Train and validation datasets from a DataConfig: a separate ``val_root`` if given, else a
    seeded split (``val_fraction`` / ``test_fraction``; the test part is held out and unused here).
    ``prefill``: the training samples also carry their classical pre-fill (the method's choice)."""
    source = build_source(data_cfg, train=True)
    if data_cfg.val_root:
        val_source = ImageFolder(data_cfg.val_root, grayscale=data_cfg.grayscale)
        train_idx = list(range(len(source)))
        val_idx = list(range(len(val_source)))
    else:
        val_source = source
        parts = split_indices(len(source), data_cfg.val_fraction, data_cfg.test_fraction, data_cfg.split_seed)
        train_idx, val_idx = parts["train"], parts["val"] or parts["train"][:64]
    if data_cfg.limit:
        train_idx = train_idx[: data_cfg.limit]
    common = dict(size=data_cfg.image_size, mask_fn=mask_fn, resize=data_cfg.resize)
    train = InpaintingDataset(
        source, indices=train_idx, flip=data_cfg.flip, seed=seed, train=True, crop_scale=data_cfg.crop_scale,
        prefill=prefill, repeat_epochs=data_cfg.repeat_epochs, prefill_cache=data_cfg.prefill_cache or None, **common,
    )  # fmt: skip
    val = InpaintingDataset(val_source, indices=val_idx, flip=False, seed=seed + 1, train=False, **common)
    if len(train) < 1:
        warnings.warn("training split is empty", stacklevel=2)
    return train, val


__all__ = ["InpaintingDataset", "build_datasets", "build_source", "fit_to_size", "list_images", "split_indices"]
