"""Data: CIFAR-10 pickles, Fashion-MNIST IDX files, downloads, the image-folder reader, the training
dataset wrapper, splits and ``build_datasets``.

Fixtures are written in the real formats: CIFAR-10 batches exactly as Python 2's cPickle wrote the
official files (protocol 2, byte strings, ``numpy.core.multiarray._reconstruct``), Fashion-MNIST as
big-endian IDX inside gzip. Downloads use ``file://`` URLs; nothing touches the network.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintgan.config import DataConfig
from inpaintgan.data import ImageFolder, InpaintingDataset, build_datasets, list_images, split_indices
from inpaintgan.data import cifar10 as cifar_mod
from inpaintgan.data import fashion_mnist as fm_mod
from inpaintgan.data.cifar10 import CIFAR10, restricted_pickle_load
from inpaintgan.data.fashion_mnist import FashionMNIST, read_idx
from inpaintgan.data.folder import read_image_array
from inpaintgan.data.inpainting import build_source
from inpaintgan.download import DownloadError, cache_dir, download_url, extract_archive, verify_checksum
from inpaintgan.masks import glcic_rect

# ------------------------------------------------------------------------------ CIFAR-10 fixtures

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct


class Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for the official CIFAR-10 batches: protocol 2, every
    string as a Python 2 ``str`` (SHORT_BINSTRING/BINSTRING opcodes, read back as bytes with
    ``encoding="bytes"``), numpy's ``_reconstruct`` under its numpy-1 module name."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str

    def save_global(self, obj, name=None):
        if obj is _reconstruct:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def py2_dumps(obj) -> bytes:
    f = io.BytesIO()
    Py2Pickler(f, protocol=2).dump(obj)
    return f.getvalue()


def cifar_rows(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 32, 32, 3) -> the official (N, 3072) rows: R plane, G plane, B plane, row-major."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)


def write_cifar(root, n_per_batch: int = 2, n_test: int = 3, seed: int = 0, dumps=py2_dumps) -> dict:
    """A tiny ``cifar-10-batches-py`` folder; returns the images and labels written."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    out = {"train_images": [], "train_labels": [], "test_images": None, "test_labels": None}
    for b in range(1, 6):
        imgs = rng.integers(0, 256, (n_per_batch, 32, 32, 3), dtype=np.uint8)
        labels = [int(x) for x in rng.integers(0, 10, n_per_batch)]
        d = {
            b"batch_label": f"training batch {b} of 5".encode(),
            b"labels": labels,
            b"data": cifar_rows(imgs),
            b"filenames": [f"img_{b}_{i}.png".encode() for i in range(n_per_batch)],
        }
        (folder / f"data_batch_{b}").write_bytes(dumps(d))
        out["train_images"].append(imgs)
        out["train_labels"] += labels
    imgs = rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8)
    labels = [int(x) for x in rng.integers(0, 10, n_test)]
    d = {
        b"batch_label": b"testing batch 1 of 1",
        b"labels": labels,
        b"data": cifar_rows(imgs),
        b"filenames": [f"test_{i}.png".encode() for i in range(n_test)],
    }
    (folder / "test_batch").write_bytes(dumps(d))
    meta = {
        b"num_cases_per_batch": 10000,
        b"label_names": [c.encode() for c in cifar_mod.CLASSES],
        b"num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(dumps(meta))
    out["train_images"] = np.concatenate(out["train_images"])
    out["test_images"], out["test_labels"] = imgs, labels
    return out


def test_py2_fixture_matches_the_official_byte_layout(tmp_path):
    """The fixture writer produces the opcodes of the real files (checked against their first bytes)."""
    data = py2_dumps({b"batch_label": b"training batch 1 of 5", b"data": np.zeros((1, 3072), np.uint8)})
    assert data.startswith(b"\x80\x02}q\x00(U\x0bbatch_labelq\x01U\x15training batch 1 of 5")
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in data and b"cnumpy\ndtype\n" in data


def test_cifar10_train_and_test_exact_pixels_and_labels(tmp_path):
    ref = write_cifar(tmp_path)
    train = CIFAR10(tmp_path, train=True)
    assert len(train) == 10 and train.grayscale is False
    assert train.classes == list(cifar_mod.CLASSES)
    np.testing.assert_array_equal(train.labels, ref["train_labels"])
    for i in range(10):
        img = train.load(i)
        assert img.dtype == np.uint8 and img.shape == (32, 32, 3) and img.flags.writeable
        np.testing.assert_array_equal(img, ref["train_images"][i])
    assert "img_3_1.png" in train.describe(5)
    test = CIFAR10(tmp_path, train=False)
    assert len(test) == 3
    np.testing.assert_array_equal(test.labels, ref["test_labels"])
    for i in range(3):
        np.testing.assert_array_equal(test.load(i), ref["test_images"][i])
    # ROOT may also be the cifar-10-batches-py folder itself
    direct = CIFAR10(tmp_path / "cifar-10-batches-py", train=False)
    np.testing.assert_array_equal(direct.load(2), ref["test_images"][2])


def test_cifar10_plane_order_by_hand(tmp_path):
    """Independent of the fixture helper: the row is 1024 R, 1024 G, 1024 B values, row-major."""
    ref = write_cifar(tmp_path, n_per_batch=1)
    row = np.concatenate([np.full(1024, 10), np.full(1024, 20), np.full(1024, 30)]).astype(np.uint8)
    row[1] = 200  # red of pixel (y=0, x=1)
    row[1024 + 33] = 201  # green of pixel (y=1, x=1)
    row[2048 + 32 * 31] = 202  # blue of pixel (y=31, x=0)
    d = {b"batch_label": b"x", b"labels": [7], b"data": row[None], b"filenames": [b"hand.png"]}
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(py2_dumps(d))
    img = CIFAR10(tmp_path).load(0)
    assert img[0, 0].tolist() == [10, 20, 30]
    assert img[0, 1].tolist() == [200, 20, 30]
    assert img[1, 1].tolist() == [10, 201, 30]
    assert img[31, 0].tolist() == [10, 20, 202]
    assert CIFAR10(tmp_path).labels[0] == 7
    np.testing.assert_array_equal(CIFAR10(tmp_path).load(1), ref["train_images"][1])


def test_cifar10_python3_pickles_and_grayscale(tmp_path):
    ref = write_cifar(tmp_path, dumps=lambda o: pickle.dumps(o, protocol=4))
    src = CIFAR10(tmp_path, train=False, grayscale=True)
    g = src.load(0)
    rgb = ref["test_images"][0].astype(np.float64)
    expected = rgb @ np.array([0.299, 0.587, 0.114])
    assert g.shape == (32, 32, 1) and g.dtype == np.uint8
    assert np.abs(g[..., 0] - expected).max() <= 1.0


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_restricted_unpickler_refuses_code(tmp_path):
    ref = write_cifar(tmp_path)
    del ref
    target = tmp_path / "pwned"
    evil = {b"data": _Evil(str(target)), b"labels": [0]}
    assert not target.exists()
    (tmp_path / "cifar-10-batches-py" / "data_batch_2").write_bytes(py2_dumps(evil))
    with pytest.raises(ValueError, match=r"refusing to load global .*mkdir"):
        CIFAR10(tmp_path)
    assert not target.exists(), "the malicious pickle ran code"
    for payload in (pickle.dumps(_Evil(str(target))), b"cbuiltins\neval\n(S'1+1'\ntR."):
        with pytest.raises(pickle.UnpicklingError, match="refusing"):
            restricted_pickle_load(payload)
    assert not target.exists()
    # a plain pickle of the wrong structure is rejected with a clear message
    (tmp_path / "cifar-10-batches-py" / "data_batch_2").write_bytes(py2_dumps({b"labels": [1]}))
    with pytest.raises(ValueError, match="lacks key"):
        CIFAR10(tmp_path)
    bad = {b"data": np.zeros((2, 1000), np.uint8), b"labels": [0, 1]}
    (tmp_path / "cifar-10-batches-py" / "data_batch_2").write_bytes(py2_dumps(bad))
    with pytest.raises(ValueError, match=r"\(N, 3072\)"):
        CIFAR10(tmp_path)


def test_cifar10_missing_file_message(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3") as e:
        CIFAR10(tmp_path)
    assert cifar_mod.URL in str(e.value) and "download=True" in str(e.value)
    CIFAR10(tmp_path, train=False)  # the test split does not need it
    with pytest.raises(FileNotFoundError, match="test_batch"):
        CIFAR10(tmp_path / "elsewhere", train=False)


def test_cifar10_download_from_file_url(tmp_path, monkeypatch):
    src = tmp_path / "upstream"
    ref = write_cifar(src)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    monkeypatch.setattr(cifar_mod, "URL", archive.as_uri())
    monkeypatch.setattr(cifar_mod, "MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    root = tmp_path / "root"
    ds = CIFAR10(root, train=False, download=True)
    np.testing.assert_array_equal(ds.load(1), ref["test_images"][1])
    assert (root / "cifar-10-batches-py" / "data_batch_5").is_file()
    monkeypatch.setattr(cifar_mod, "MD5", "0" * 32)  # files present: no download, no checksum needed
    assert len(CIFAR10(root, download=True)) == 10


# ------------------------------------------------------------------------- Fashion-MNIST fixtures


def idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    return struct.pack(f">I{arr.ndim}I", magic, *arr.shape) + arr.astype(np.uint8).tobytes()


def write_fmnist(root, n_train: int = 4, n_test: int = 3, seed: int = 0, gz: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        labels[0] = 9
        for name, arr, magic in (("images-idx3-ubyte", images, 2051), ("labels-idx1-ubyte", labels, 2049)):
            data = idx_bytes(arr, magic)
            path = root / f"{split}-{name}"
            if gz:
                with gzip.open(f"{path}.gz", "wb") as f:
                    f.write(data)
            else:
                path.write_bytes(data)
        out[split] = (images, labels)
    return out


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_reads_idx_exactly(tmp_path, gz):
    ref = write_fmnist(tmp_path, gz=gz)
    train = FashionMNIST(tmp_path, train=True)
    assert len(train) == 4 and train.grayscale is True and len(train.classes) == 10
    np.testing.assert_array_equal(train.labels, ref["train"][1])
    for i in range(4):
        img = train.load(i)
        assert img.shape == (28, 28, 1) and img.dtype == np.uint8 and img.flags.writeable
        np.testing.assert_array_equal(img[..., 0], ref["train"][0][i])
    test = FashionMNIST(tmp_path, train=False)
    assert len(test) == 3
    np.testing.assert_array_equal(test.load(2)[..., 0], ref["t10k"][0][2])
    assert test.labels.tolist() == ref["t10k"][1].tolist()


def test_fashion_mnist_header_checks(tmp_path):
    write_fmnist(tmp_path)
    img_path = tmp_path / "train-images-idx3-ubyte.gz"
    lab_path = tmp_path / "train-labels-idx1-ubyte.gz"
    assert read_idx(img_path, 2051).shape == (4, 28, 28)
    with pytest.raises(ValueError, match=r"magic number 2049 .*expected 2051.*swapped"):
        read_idx(lab_path, 2051)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x").write_bytes(struct.pack(">IIII", 2052, 1, 28, 28) + bytes(784))
    with pytest.raises(ValueError, match=r"not an IDX images .*magic number 2052"):
        read_idx(bad / "x", 2051)
    (bad / "le").write_bytes(struct.pack("<IIII", 2051, 1, 28, 28) + bytes(784))
    with pytest.raises(ValueError, match="little-endian"):
        read_idx(bad / "le", 2051)
    (bad / "short").write_bytes(struct.pack(">IIII", 2051, 2, 28, 28) + bytes(784))
    with pytest.raises(ValueError, match=r"2 x 28 x 28 .*truncated"):
        read_idx(bad / "short", 2051)
    (bad / "long").write_bytes(struct.pack(">II", 2049, 2) + bytes(3))
    with pytest.raises(ValueError, match="bytes"):
        read_idx(bad / "long", 2049)
    (bad / "notgz.gz").write_bytes(b"plain bytes")
    with pytest.raises(ValueError, match="gzip"):
        read_idx(bad / "notgz.gz", 2049)
    # a wrong magic in a dataset file surfaces through the dataset class
    with gzip.open(img_path, "wb") as f:
        f.write(struct.pack(">IIII", 2049, 4, 28, 28) + bytes(4 * 784))
    with pytest.raises(ValueError, match="magic number"):
        FashionMNIST(tmp_path)


def test_fashion_mnist_count_and_label_checks(tmp_path):
    write_fmnist(tmp_path, n_train=4)
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(idx_bytes(np.zeros(3, np.uint8), 2049))
    with pytest.raises(ValueError, match="4 images but .* 3 labels"):
        FashionMNIST(tmp_path)
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(idx_bytes(np.array([0, 1, 2, 10], np.uint8), 2049))
    with pytest.raises(ValueError, match="0..9"):
        FashionMNIST(tmp_path)


def test_fashion_mnist_missing_and_debian_fallback(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte") as e:
        FashionMNIST(tmp_path)
    assert fm_mod.BASE_URL in str(e.value) and "dataset-fashion-mnist" in str(e.value)
    deb = tmp_path / "debian"
    ref = write_fmnist(deb)
    monkeypatch.setattr(fm_mod, "DEBIAN_ROOT", deb)
    for ds in (
        FashionMNIST(None, train=False),
        build_source(DataConfig(dataset="fashion_mnist", root=""), train=False),
    ):
        assert ds.root == deb
        np.testing.assert_array_equal(ds.load(0)[..., 0], ref["t10k"][0][0])


def test_fashion_mnist_download_verifies_md5(tmp_path, monkeypatch):
    up = tmp_path / "upstream"
    ref = write_fmnist(up)
    monkeypatch.setattr(fm_mod, "BASE_URL", up.as_uri() + "/")
    md5s = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in up.glob("*.gz")}
    root = tmp_path / "root"
    monkeypatch.setattr(fm_mod, "MD5", {**md5s, "t10k-images-idx3-ubyte.gz": "f" * 32})
    with pytest.raises(ValueError, match="md5 checksum mismatch .*expected f{32}, got"):
        FashionMNIST(root, train=False, download=True)
    assert not (root / "t10k-images-idx3-ubyte.gz").exists()
    assert not [p for p in root.iterdir() if p.name.endswith(".part")]
    monkeypatch.setattr(fm_mod, "MD5", md5s)
    ds = FashionMNIST(root, train=False, download=True)
    np.testing.assert_array_equal(ds.load(1)[..., 0], ref["t10k"][0][1])
    assert sorted(p.name for p in root.iterdir()) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]


# ----------------------------------------------------------------------------------------- download


def test_download_url_file_url_and_checksums(tmp_path):
    payload = os.urandom(3000)
    src = tmp_path / "src.bin"
    src.write_bytes(payload)
    sha, md5 = hashlib.sha256(payload).hexdigest(), hashlib.md5(payload).hexdigest()
    out = tmp_path / "out"
    p = download_url(src.as_uri(), out / "a.bin", sha256=sha, md5=md5, progress=False)
    assert p == out / "a.bin" and p.read_bytes() == payload
    p2 = download_url(src.as_uri(), out, md5=md5.upper(), progress=False)  # a folder: the URL's name
    assert p2 == out / "src.bin" and p2.read_bytes() == payload
    assert sorted(x.name for x in out.iterdir()) == ["a.bin", "src.bin"]  # no temp files left
    src.unlink()  # an existing verified file is not downloaded again
    assert download_url(src.as_uri(), out / "a.bin", sha256=sha, progress=False) == out / "a.bin"
    verify_checksum(p, sha256=sha, md5=md5)
    with pytest.raises(ValueError, match=f"sha256 checksum mismatch .*expected {'0' * 64}, got {sha}"):
        verify_checksum(p, sha256="0" * 64)


def test_download_url_mismatch_leaves_nothing(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello world")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"sha256 checksum mismatch .*expected 1{64}, got b94d27b9"):
        download_url(src.as_uri(), out / "x.bin", sha256="1" * 64, progress=False)
    assert list(out.iterdir()) == []
    # a stale file with the wrong content is replaced only by a verified download
    (out / "y.bin").write_bytes(b"stale")
    with pytest.raises(ValueError, match="md5 checksum mismatch"):
        download_url(src.as_uri(), out / "y.bin", md5="2" * 32, progress=False)
    assert (out / "y.bin").read_bytes() == b"stale" and len(list(out.iterdir())) == 1
    good = hashlib.md5(b"hello world").hexdigest()
    assert download_url(src.as_uri(), out / "y.bin", md5=good, progress=False).read_bytes() == b"hello world"


def test_download_url_offline_message(tmp_path):
    url = (tmp_path / "missing.tar.gz").as_uri()
    dest = tmp_path / "cache" / "missing.tar.gz"
    with pytest.raises(DownloadError, match="could not download") as e:
        download_url(url, dest, progress=False)
    assert url in str(e.value) and str(dest) in str(e.value) and "place the file" in str(e.value)
    assert isinstance(e.value, OSError)
    assert list((tmp_path / "cache").iterdir()) == []


def test_extract_archive_and_unsafe_members(tmp_path):
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (("top/x.txt", b"x"), ("top/sub/y.txt", b"yy")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    dest = extract_archive(archive, tmp_path / "out")
    assert (dest / "top" / "x.txt").read_bytes() == b"x" and (
        dest / "top" / "sub" / "y.txt"
    ).read_bytes() == b"yy"
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"!"))
    with pytest.raises(ValueError, match="unsafe"):
        extract_archive(evil, tmp_path / "out2")
    assert not (tmp_path / "escaped.txt").exists()
    (tmp_path / "plain.txt").write_text("no archive")
    with pytest.raises(ValueError, match="not a tar archive"):
        extract_archive(tmp_path / "plain.txt", tmp_path / "out3")


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("INPAINTGAN_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("INPAINTGAN_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "inpaintgan"


# ------------------------------------------------------------------------------------ folder reader


def _exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def test_folder_reader_recursive_formats(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    (tmp_path / "a" / "b").mkdir(parents=True)
    lossless = {
        "a/one.png": {},
        "a/b/two.bmp": {},
        "three.tiff": {},
        "a/four.TIF": {},
        "five.webp": {"lossless": True},
    }
    for name, kw in lossless.items():
        Image.fromarray(arr).save(tmp_path / name, **kw)
    Image.fromarray(arr).save(tmp_path / "a" / "b" / "six.jpg", quality=100, subsampling=0)
    (tmp_path / "notes.txt").write_text("skip me")
    files = list_images(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in files] == sorted(
        ["a/one.png", "a/b/two.bmp", "three.tiff", "a/four.TIF", "five.webp", "a/b/six.jpg"]
    )
    src = ImageFolder(tmp_path)
    assert len(src) == 6 and src.describe(0).endswith(files[0].name)
    for i, p in enumerate(files):
        img = src.load(i)
        assert img.shape == (6, 9, 3) and img.dtype == np.uint8
        if p.suffix != ".jpg":
            np.testing.assert_array_equal(img, arr, err_msg=p.name)
        else:
            assert np.abs(img.astype(int) - arr).mean() < 8  # lossy, but the same picture
    assert src.bad_files == set()


def test_folder_reader_applies_exif_orientation(tmp_path):
    img = np.zeros((20, 40, 3), np.uint8)  # stored 40 wide, 20 tall
    img[:, :8] = (255, 0, 0)  # red on the stored left edge
    Image.fromarray(img).save(tmp_path / "rot.jpg", quality=95, exif=_exif_orientation(6))
    with Image.open(tmp_path / "rot.jpg") as im:
        assert im.getexif()[0x0112] == 6 and im.size == (40, 20)
    arr = read_image_array(tmp_path / "rot.jpg")
    assert arr.shape == (40, 20, 3)  # orientation 6: rotate 90 degrees clockwise to display
    assert arr[:6, :, 0].mean() > 200 and arr[:6, :, 1].mean() < 60  # the stored left edge is now on top
    assert arr[-20:, :, 0].mean() < 60


def test_folder_reader_modes_to_rgb_and_gray(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)  # opaque
    rgba[0, 1] = (10, 20, 30, 0)  # transparent -> white background
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    out = read_image_array(tmp_path / "rgba.png")
    assert (
        out.shape == (2, 2, 3)
        and out[0, 0].tolist() == [10, 20, 30]
        and out[0, 1].tolist() == [255, 255, 255]
    )
    gray = read_image_array(tmp_path / "rgba.png", grayscale=True)
    assert gray.shape == (2, 2, 1) and gray[0, 1, 0] == 255  # transparency composited for gray too

    pal = Image.new("P", (3, 1))
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    pal.putdata([0, 1, 2])
    pal.save(tmp_path / "pal.png")
    assert read_image_array(tmp_path / "pal.png")[0].tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]

    Image.fromarray(np.array([[0, 100, 255]], np.uint8), "L").save(tmp_path / "l.png")
    out = read_image_array(tmp_path / "l.png")
    assert out.shape == (1, 3, 3) and out[0, :, 0].tolist() == [0, 100, 255] and (out == out[..., :1]).all()

    sixteen = np.array([[0, 32896, 65535]], np.uint16)  # 32896 = 128 * 257
    Image.fromarray(sixteen).save(tmp_path / "sixteen.png")
    with Image.open(tmp_path / "sixteen.png") as im:
        assert im.mode.startswith("I")
    out = read_image_array(tmp_path / "sixteen.png")
    assert out[0, :, 0].tolist() == [0, 128, 255] and out.shape == (1, 3, 3)
    assert read_image_array(tmp_path / "sixteen.png", grayscale=True)[0, :, 0].tolist() == [0, 128, 255]

    Image.fromarray(np.array([[[255, 0, 0]]], np.uint8)).save(tmp_path / "red.png")
    g = ImageFolder(tmp_path, grayscale=True).load(list_images(tmp_path).index(tmp_path / "red.png"))
    assert g.shape == (1, 1, 1) and g[0, 0, 0] == 76  # ITU-R 601 luma: 0.299 * 255


def _good_png(path, seed=0, size=16):
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)


def test_unreadable_files_are_skipped_and_counted(tmp_path):
    _good_png(tmp_path / "a_good.png")
    (tmp_path / "b_garbage.jpg").write_bytes(os.urandom(300))
    _good_png(tmp_path / "full.png", seed=1)
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "c_truncated.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "full.png").unlink()
    src = ImageFolder(tmp_path)
    assert len(src) == 3
    with pytest.warns(UserWarning, match="skipping unreadable image .*b_garbage.jpg"):
        assert src.load(1) is None
    with pytest.warns(UserWarning, match="c_truncated.png"):
        assert src.load(2) is None
    assert src.bad_files == {str(tmp_path / "b_garbage.jpg"), str(tmp_path / "c_truncated.png")}
    ds = InpaintingDataset(src, size=8, mask_fn=glcic_rect, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples = [ds[i] for i in range(3)]
    good = torch.from_numpy(read_image_array(tmp_path / "a_good.png")).permute(2, 0, 1).float() / 255
    for s in samples:
        assert s["image"].shape == (3, 8, 8)
        # every sample comes from the one good image (some crop of it, maybe flipped)
        wins = good.unfold(1, 8, 1).unfold(2, 8, 1).permute(1, 2, 0, 3, 4).reshape(-1, 3, 8, 8)
        assert any(torch.equal(s["image"], w) or torch.equal(s["image"], w.flip(-1)) for w in wins)
    assert ds.skipped == 3  # index 1 skips one file, index 2 skips two
    assert len(src.bad_files) == 2


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="data folder not found"):
        ImageFolder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="holds no images"):
        ImageFolder(tmp_path / "empty")
    with pytest.raises(NotADirectoryError):
        ImageFolder(tmp_path / "empty" / "readme.txt")
    with pytest.raises(ValueError, match="data.root is empty"):
        build_source(DataConfig(dataset="folder", root=""))
    with pytest.raises(ValueError, match="known: folder, cifar10, fashion_mnist"):
        build_source(DataConfig(dataset="imagenet", root=str(tmp_path)))


# ------------------------------------------------------------------------------ InpaintingDataset


@pytest.fixture
def photo_folder(tmp_path):
    for i in range(4):
        _good_png(tmp_path / f"p{i}.png", seed=i, size=24)
    return tmp_path


def _stack(ds: InpaintingDataset) -> tuple[torch.Tensor, torch.Tensor]:
    samples = [ds[i] for i in range(len(ds))]
    return torch.stack([s["image"] for s in samples]), torch.stack([s["mask"] for s in samples])


def test_inpainting_dataset_shapes_and_ranges(photo_folder):
    ds = InpaintingDataset(ImageFolder(photo_folder), size=16, mask_fn=glcic_rect, seed=0)
    s = ds[2]
    assert s["index"] == 2
    assert s["image"].shape == (3, 16, 16) and s["image"].dtype == torch.float32
    assert s["mask"].shape == (1, 16, 16) and s["mask"].dtype == torch.float32
    assert 0 <= s["image"].min() and s["image"].max() <= 1 and s["image"].max() > 0.9
    assert set(s["mask"].unique().tolist()) == {0.0, 1.0}
    gray = InpaintingDataset(ImageFolder(photo_folder, grayscale=True), size=16, mask_fn=glcic_rect)
    assert gray[0]["image"].shape == (1, 16, 16)
    up = InpaintingDataset(
        ImageFolder(photo_folder), size=40, mask_fn=glcic_rect
    )  # smaller images are resized up
    assert up[0]["image"].shape == (3, 40, 40)
    rs = InpaintingDataset(ImageFolder(photo_folder), size=12, mask_fn=glcic_rect, resize="resize")
    assert rs[0]["image"].shape == (3, 12, 12)


def test_inpainting_dataset_determinism(photo_folder):
    def make(seed=0, train=True):
        return InpaintingDataset(
            ImageFolder(photo_folder), size=16, mask_fn=glcic_rect, seed=seed, train=train
        )

    a, b = make(), make()
    ia, ma = _stack(a)
    ib, mb = _stack(b)
    assert torch.equal(ia, ib) and torch.equal(ma, mb)
    assert torch.equal(a[3]["image"], ia[3])  # re-reading an index gives the same sample
    a.set_epoch(1)
    ia1, ma1 = _stack(a)
    assert not torch.equal(ia1, ia) and not torch.equal(ma1, ma)
    b.set_epoch(1)
    assert torch.equal(_stack(b)[1], ma1)  # same (seed, epoch): same again
    assert not torch.equal(_stack(make(seed=1))[1], ma)
    val = make(train=False)
    iv, mv = _stack(val)
    val.set_epoch(5)
    iv5, mv5 = _stack(val)
    assert torch.equal(iv, iv5) and torch.equal(mv, mv5)
    # validation uses the centre crop, unflipped
    centre = torch.from_numpy(read_image_array(photo_folder / "p0.png")[4:20, 4:20]).permute(2, 0, 1) / 255
    assert torch.equal(iv[0], centre.float())


# ------------------------------------------------------------------------------ splits and configs


def test_split_indices():
    parts = split_indices(100, 0.1, 0.2, seed=3)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [70, 10, 20]
    allidx = parts["train"] + parts["val"] + parts["test"]
    assert sorted(allidx) == list(range(100)) and len(set(allidx)) == 100
    assert all(parts[k] == sorted(parts[k]) for k in parts)
    assert split_indices(100, 0.1, 0.2, seed=3) == parts
    assert split_indices(100, 0.1, 0.2, seed=4)["val"] != parts["val"]
    assert len(split_indices(3, 0.05, 0.0, seed=0)["val"]) == 1  # at least one validation image
    assert split_indices(10, 0.0, 0.0, seed=0) == {"val": [], "test": [], "train": list(range(10))}
    for bad in ((1.0, 0.0), (0.5, 0.5), (-0.1, 0.0)):
        with pytest.raises(ValueError, match="fraction"):
            split_indices(10, *bad, seed=0)


def _mask_fn(rng, h, w):
    return glcic_rect(rng, h, w)


def test_build_datasets_cifar10(tmp_path):
    ref = write_cifar(tmp_path, n_per_batch=4)
    cfg = DataConfig(
        dataset="cifar10", root=str(tmp_path), image_size=32, val_fraction=0.25, test_fraction=0.0
    )
    train, val = build_datasets(cfg, _mask_fn, seed=0)
    assert len(train) == 15 and len(val) == 5
    assert not set(train.indices) & set(val.indices)
    s = val[0]
    assert s["image"].shape == (3, 32, 32) and s["mask"].shape == (1, 32, 32)
    expected = torch.from_numpy(ref["train_images"][val.indices[0]]).permute(2, 0, 1).float() / 255
    assert torch.equal(s["image"], expected)  # 32 -> 32, centre mode: the pixels themselves
    assert train[0]["image"].shape == (3, 32, 32)
    limited, _ = build_datasets(DataConfig(**{**cfg.__dict__, "limit": 4}), _mask_fn)
    assert len(limited) == 4


def test_build_datasets_fashion_mnist(tmp_path):
    ref = write_fmnist(tmp_path, n_train=10)
    cfg = DataConfig(
        dataset="fashion_mnist", root=str(tmp_path), image_size=28, val_fraction=0.2, test_fraction=0.1
    )
    train, val = build_datasets(cfg, _mask_fn, seed=0)
    assert len(train) == 7 and len(val) == 2
    s = val[1]
    assert s["image"].shape == (1, 28, 28) and s["mask"].shape == (1, 28, 28)
    expected = torch.from_numpy(ref["train"][0][val.indices[1]]).float()[None] / 255
    assert torch.equal(s["image"], expected)


# --------------------------------------------------- repeated samples and the pre-fill cache


def _prefill_dataset(tmp_path, **kw):
    from conftest import write_image_folder
    from inpaintgan.masks import lama_wide

    root = write_image_folder(tmp_path / "imgs", n=3, size=24)
    return InpaintingDataset(ImageFolder(root), 16, lama_wide, prefill="telea", **kw)


def test_repeat_epochs_repeats_crops_flips_and_masks(tmp_path):
    """data.repeat_epochs = k: epoch e draws the samples of epoch e mod k; 0 draws new ones every epoch."""
    def draw(ds, epoch):
        ds.set_epoch(epoch)
        return [ds[i] for i in range(3)]

    def same(a, b):
        return all(torch.equal(x["image"], y["image"]) and torch.equal(x["mask"], y["mask"]) for x, y in zip(a, b))

    ds = _prefill_dataset(tmp_path, repeat_epochs=2)
    e0, e1, e2, e3 = (draw(ds, e) for e in range(4))
    assert same(e0, e2) and same(e1, e3) and not same(e0, e1)
    fresh = _prefill_dataset(tmp_path / "b")
    assert not same(draw(fresh, 0), draw(fresh, 2))
    with pytest.raises(ValueError, match="repeat_epochs"):
        _prefill_dataset(tmp_path / "c", repeat_epochs=-1)


def test_prefill_cache_computes_each_sample_once_and_survives_a_bad_file(tmp_path, monkeypatch):
    """With data.prefill_cache the pre-fill of a sample seen before is read back (identical), not
    recomputed; a corrupt cache file is recomputed and replaced; without the cache it is always computed."""
    import inpaintgan.postprocess as post

    calls = []
    real = post.prefill_array
    monkeypatch.setattr(post, "prefill_array", lambda *a: calls.append(1) or real(*a))
    cache = tmp_path / "cache"
    ds = _prefill_dataset(tmp_path, repeat_epochs=1, prefill_cache=cache)
    first = [ds[i]["prefill"] for i in range(3)]
    assert len(calls) == 3 and len(list(cache.glob("*.npy"))) == 3
    ds.set_epoch(5)  # the same samples again (repeat_epochs 1): read back
    again = [ds[i]["prefill"] for i in range(3)]
    assert len(calls) == 3 and all(torch.equal(a, b) for a, b in zip(first, again))
    bad = sorted(cache.glob("*.npy"))[0]
    bad.write_bytes(b"not an array")
    assert all(torch.equal(a, b) for a, b in zip(first, [ds[i]["prefill"] for i in range(3)]))
    assert len(calls) == 4 and np.load(bad).dtype == np.uint8  # recomputed once, file replaced
    img = (np.arange(16 * 16 * 3) % 251).astype(np.uint8).reshape(16, 16, 3)
    hole_a, hole_b = np.zeros((16, 16), bool), np.zeros((16, 16), bool)
    hole_a[2:6, 2:6], hole_b[8:12, 8:12] = True, True
    n_files = len(list(cache.glob("*.npy")))
    fa, fb = ds.prefilled(img, hole_a), ds.prefilled(img, hole_b)  # same pixels, other hole: another entry
    assert len(list(cache.glob("*.npy"))) == n_files + 2 and not np.array_equal(fa, fb)
    assert np.array_equal(fa, ds.prefilled(img, hole_a)) and len(calls) == 6
    plain = _prefill_dataset(tmp_path / "p", repeat_epochs=1)
    for _ in range(2):
        plain[0]
    assert len(calls) == 8  # no cache: computed every time


def test_prefill_cache_that_cannot_be_written_warns_and_training_data_still_comes(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    ds = _prefill_dataset(tmp_path, prefill_cache=blocker / "cache")
    with pytest.warns(UserWarning, match="cannot write"):
        first = ds[0]["prefill"]
    assert ds.prefill_cache is None and torch.equal(first, ds[0]["prefill"])


def test_build_datasets_passes_repeat_and_cache_to_the_training_set(tmp_path):
    from conftest import write_image_folder

    root = write_image_folder(tmp_path / "imgs", n=6, size=24)
    cfg = DataConfig(root=str(root), image_size=16, repeat_epochs=3, prefill_cache=str(tmp_path / "c"))
    train, val = build_datasets(cfg, glcic_rect, prefill="telea")
    assert train.repeat_epochs == 3 and train.prefill_cache == tmp_path / "c"
    assert val.prefill_cache is None
