"""Fashion-MNIST from the official IDX files (Xiao, Rasul, Vollgraf, 2017, "Fashion-MNIST: a Novel
Image Dataset for Benchmarking Machine Learning Algorithms", arXiv:1708.07747;
https://github.com/zalandoresearch/fashion-mnist).

Files (gzip-compressed, or the same names without ``.gz``)::

    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz   60,000 training images
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz    10,000 test images

IDX format (LeCun et al.'s MNIST page): a big-endian uint32 magic number whose third byte is the
element type (0x08 = uint8) and fourth byte the number of dimensions -- 2051 = 0x00000803 for images
(count, rows, cols), 2049 = 0x00000801 for labels (count) -- then one big-endian uint32 per dimension,
then the raw uint8 values row-major. Uncompressed sizes: 47,040,016 / 60,008 / 7,840,016 / 10,008.

Checksums: the MD5s published upstream are of the ``.gz`` files and are verified only on download.
Debian's ``dataset-fashion-mnist`` package (files in :data:`DEBIAN_ROOT`) recompressed the gzip
wrappers, so its ``.gz`` files have other MD5s while the decompressed content is identical; local
files are therefore checked structurally (magic numbers, dimensions, exact size, label range), never
against the upstream ``.gz`` MD5s.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from inpaintgan.data.folder import ImageSource

BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")  # Debian/Ubuntu package dataset-fashion-mnist
IMAGES_MAGIC = 2051  # 0x00000803: uint8, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: uint8, 1 dimension
FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MD5 = {  # of the upstream .gz files
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def _read_bytes(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path} is not a valid gzip file: {e}") from e


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Read an IDX uint8 file (``.gz`` or raw) whose magic number must be ``magic`` (2051 images,
    2049 labels); checks the header and that the file holds exactly the data its header announces."""
    path = Path(path)
    raw = _read_bytes(path)
    kind = {IMAGES_MAGIC: "images (idx3)", LABELS_MAGIC: "labels (idx1)"}.get(magic, f"magic {magic}")
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX file ({len(raw)} bytes)")
    (found,) = struct.unpack(">I", raw[:4])
    if found != magic:
        hint = ""
        if found in (IMAGES_MAGIC, LABELS_MAGIC):
            hint = " (this is the other kind of IDX file: images and labels swapped?)"
        elif found == struct.unpack("<I", struct.pack(">I", magic))[0]:
            hint = " (the header was written little-endian; IDX is big-endian)"
        raise ValueError(
            f"{path} is not an IDX {kind} file: magic number {found} (0x{found:08x}), expected "
            f"{magic} (0x{magic:08x}){hint}"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if ndim == 3 and (dims[1] == 0 or dims[2] == 0):
        raise ValueError(f"{path}: images of size {dims[1]}x{dims[2]}")
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        raise ValueError(
            f"{path}: the header announces {' x '.join(map(str, dims))} uint8 values "
            f"({expected} bytes with the header) but the (decompressed) file has {len(raw)} bytes; "
            "it is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find(root: Path, stem: str) -> Path | None:
    """``stem.gz`` or ``stem`` in ``root`` (or in torchvision's ``root/FashionMNIST/raw``)."""
    for folder in (root, root / "FashionMNIST" / "raw"):
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
    return None


def _has_files(root: Path, train: bool) -> bool:
    return all(_find(root, s) is not None for s in FILES[train])


class FashionMNIST(ImageSource):
    """Fashion-MNIST from the official IDX files: ``load(i)`` -> uint8 (28, 28, 1), :attr:`labels`
    int64 (N,), :attr:`classes` the 10 names.

    ``root`` holds the four files (``.gz`` or uncompressed). ``None``/empty means :data:`DEBIAN_ROOT`
    when the Debian package is installed, else ``<cache_dir>/fashion-mnist``. ``download=True``
    fetches missing files from the official mirror and verifies their published MD5s.
    """

    grayscale = True

    def __init__(self, root: str | Path | None = None, train: bool = True, download: bool = False):
        if root is None or str(root) == "":
            from inpaintgan.download import cache_dir

            root = DEBIAN_ROOT if _has_files(DEBIAN_ROOT, train) else cache_dir() / "fashion-mnist"
        self.root = Path(root).expanduser()
        self.train = train
        stems = FILES[train]
        if download and not _has_files(self.root, train):
            self._download(stems)
        paths = [_find(self.root, s) for s in stems]
        for stem, p in zip(stems, paths):
            if p is None:
                raise FileNotFoundError(
                    f"Fashion-MNIST file not found: {self.root / (stem + '.gz')} (or without .gz). "
                    f"Pass download=True (config: data.download=true) to fetch it from {BASE_URL}{stem}.gz, "
                    f"or install Debian's dataset-fashion-mnist package and use root={DEBIAN_ROOT}."
                )
        images = read_idx(paths[0], IMAGES_MAGIC)  # (N, 28, 28)
        labels = read_idx(paths[1], LABELS_MAGIC).astype(np.int64)  # (N,)
        if len(images) != len(labels):
            raise ValueError(
                f"{paths[0]} holds {len(images)} images but {paths[1]} holds {len(labels)} labels"
            )
        if labels.size and labels.max() >= len(CLASSES):
            raise ValueError(f"{paths[1]}: labels must be in 0..9, found up to {labels.max()}")
        self.paths = paths
        self.images, self.labels = images, labels
        self.classes = list(CLASSES)

    def _download(self, stems: tuple[str, str]) -> None:
        from inpaintgan.download import download_url

        for stem in stems:
            if _find(self.root, stem) is None:
                name = stem + ".gz"
                download_url(BASE_URL + name, self.root / name, md5=MD5[name])

    def __len__(self) -> int:
        return len(self.images)

    def describe(self, index: int) -> str:
        return f"FashionMNIST({'train' if self.train else 'test'})[{index}]"

    def load(self, index: int) -> np.ndarray:
        return self.images[index][:, :, None].copy()  # (28, 28, 1), writable


__all__ = ["BASE_URL", "CLASSES", "DEBIAN_ROOT", "MD5", "FashionMNIST", "read_idx"]
