"""CIFAR-10 from the official python-pickle release (Krizhevsky, 2009, "Learning Multiple Layers of
Features from Tiny Images"; https://www.cs.toronto.edu/~kriz/cifar.html).

Layout of ``cifar-10-python.tar.gz`` (md5 ``c58f30108f718f92721af3b95e74349a``)::

    cifar-10-batches-py/data_batch_1 .. data_batch_5   50,000 training images, 10,000 per file
    cifar-10-batches-py/test_batch                     10,000 test images
    cifar-10-batches-py/batches.meta                   {b"label_names": [...], ...}

Each batch is a Python 2 pickle of a dict with bytes keys: ``b"data"`` a uint8 numpy array of shape
(N, 3072) whose rows hold the 1024 red, then 1024 green, then 1024 blue values of a 32x32 image in
row-major order; ``b"labels"`` a list of N ints in 0..9; ``b"filenames"`` and ``b"batch_label"``.

Pickles can run arbitrary code when loaded, so the files are read with a restricted unpickler that
resolves only the numpy globals an array needs (``_reconstruct``, ``ndarray``, ``dtype``); anything
else (``os.system``, ``builtins.eval``, ...) is refused before it is called.

The JPEG copy in ``shared/data/cifar10`` is a different, re-encoded version; read it with
:class:`~inpaintgan.data.folder.ImageFolder` instead.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inpaintgan.data.folder import ImageSource

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
META_FILE = "batches.meta"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SIDE = 32


def _numpy_reconstruct():
    """``_reconstruct`` from numpy 2 (``numpy._core``) or numpy 1 (``numpy.core``), without touching
    the deprecated alias module."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


# The only globals a CIFAR batch may name. The official files were written by Python 2 with numpy 1
# (``numpy.core.multiarray``); files re-pickled under numpy 2 name ``numpy._core.multiarray``.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that builds only plain containers (dict, list, tuple, bytes, str, int, float, bool,
    None) and numpy arrays; any other global is refused with ``pickle.UnpicklingError``."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name} from a dataset pickle: only numpy arrays "
                "and plain containers are allowed (the file is not an official CIFAR-10 batch)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing persistent id in a dataset pickle")


def restricted_pickle_load(data: bytes, encoding: str = "bytes") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`. ``encoding="bytes"`` keeps Python 2
    strings as bytes, as the CIFAR-10 page's own loader does."""
    return RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()


# what a corrupt or hostile pickle raises while loading (refused globals give UnpicklingError)
_PICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    AttributeError,
)


def _str_keys(d: dict) -> dict[str, Any]:
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in d.items()}


def _as_str(x: Any) -> str:
    return x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)


def read_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One batch file -> images uint8 (N, 32, 32, 3), labels int64 (N,), file names."""
    path = Path(path)
    try:
        obj = restricted_pickle_load(path.read_bytes())
    except _PICKLE_ERRORS as e:
        raise ValueError(f"{path} is not a readable CIFAR-10 batch pickle: {e}") from e
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    d = _str_keys(obj)
    missing = [k for k in ("data", "labels") if k not in d]
    if missing:
        raise ValueError(f"{path}: CIFAR-10 batch lacks key(s) {missing}; it has {sorted(d)}")
    data = d["data"]
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3 * SIDE * SIDE
    ):
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: 'data' must be a uint8 array of shape (N, 3072), got {desc}")
    labels = np.asarray(d["labels"], dtype=np.int64)
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {data.shape[0]} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise ValueError(f"{path}: labels must be in 0..9, found {labels.min()}..{labels.max()}")
    names = [_as_str(n) for n in d.get("filenames", [])]
    if len(names) != data.shape[0]:
        names = [f"{path.name}[{i}]" for i in range(data.shape[0])]
    # rows are R plane, G plane, B plane, each row-major: (N, 3072) -> (N, 3, 32, 32) -> (N, 32, 32, 3)
    images = np.ascontiguousarray(data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1))
    return images, labels, names


def read_meta(path: str | Path) -> list[str]:
    """``batches.meta`` -> the class names."""
    path = Path(path)
    try:
        obj = restricted_pickle_load(path.read_bytes())
    except _PICKLE_ERRORS as e:
        raise ValueError(f"{path} is not a readable CIFAR-10 meta pickle: {e}") from e
    if not isinstance(obj, dict) or "label_names" not in _str_keys(obj):
        raise ValueError(f"{path}: expected a dict with key 'label_names'")
    return [_as_str(n) for n in _str_keys(obj)["label_names"]]


def _batches_folder(root: Path) -> Path:
    """``ROOT/cifar-10-batches-py`` or ``ROOT`` itself when it already is that folder."""
    if (root / FOLDER).is_dir():
        return root / FOLDER
    if root.name == FOLDER or (root / META_FILE).is_file() or (root / TRAIN_FILES[0]).is_file():
        return root
    return root / FOLDER


class CIFAR10(ImageSource):
    """CIFAR-10 from the official pickles: ``load(i)`` -> uint8 (32, 32, 3) (or (32, 32, 1) with
    ``grayscale``), :attr:`labels` int64 (N,), :attr:`classes` the 10 names.

    ``root`` holds ``cifar-10-batches-py/`` (or is that folder); ``None`` means
    ``<cache_dir>/cifar10``. ``download=True`` fetches and unpacks the official archive when files
    are missing (the archive's MD5 is verified).
    """

    def __init__(
        self,
        root: str | Path | None = None,
        train: bool = True,
        download: bool = False,
        grayscale: bool = False,
    ):
        if root is None or str(root) == "":
            from inpaintgan.download import cache_dir

            root = cache_dir() / "cifar10"
        self.root = Path(root).expanduser()
        self.train, self.grayscale = train, grayscale
        names = (TRAIN_FILES if train else TEST_FILES) + (META_FILE,)
        folder = _batches_folder(self.root)
        missing = [n for n in names if not (folder / n).is_file()]
        if missing and download:
            self._download()
            folder = _batches_folder(self.root)
            missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise FileNotFoundError(
                f"CIFAR-10 file not found: {folder / missing[0]}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                + f". Pass download=True (config: data.download=true) to fetch the official archive {URL} "
                f"(md5 {MD5}), or download it by hand and unpack it into {self.root} so that {FOLDER}/ "
                f"holds {', '.join(TRAIN_FILES + TEST_FILES + (META_FILE,))}."
            )
        self.folder = folder
        parts = [read_batch(folder / n) for n in names[:-1]]
        self.images = (
            np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        )  # (N, 32, 32, 3)
        self.labels = np.concatenate([p[1] for p in parts])
        self.filenames = [f for p in parts for f in p[2]]
        self.classes = read_meta(folder / META_FILE)

    def _download(self) -> None:
        from inpaintgan.download import download_url, extract_archive

        archive = download_url(URL, self.root / ARCHIVE, md5=MD5)
        extract_archive(archive, self.root)

    def __len__(self) -> int:
        return len(self.images)

    def describe(self, index: int) -> str:
        return f"CIFAR10({'train' if self.train else 'test'})[{index}] {self.filenames[index]}"

    def load(self, index: int) -> np.ndarray:
        img = self.images[index]  # (32, 32, 3) view
        if self.grayscale:
            return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[:, :, None]
        return img.copy()


__all__ = [
    "CIFAR10",
    "CLASSES",
    "MD5",
    "URL",
    "RestrictedUnpickler",
    "read_batch",
    "read_meta",
    "restricted_pickle_load",
]
