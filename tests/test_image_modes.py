"""Issue 19, item 8: ``fill`` keeps what the input file holds -- mode, bit depth, alpha, ICC profile and
DPI -- through one reader and one writer (:mod:`inpaintgan.imagefile`), with known pixels bit for bit
in lossless formats, and ``--quality keep`` for JPEG (the source's quantisation tables)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from inpaintgan.checkpoints import save_model
from inpaintgan.cli import main
from inpaintgan.imagefile import read_image_file, write_image_file
from inpaintgan.inpainter import Inpainter
from inpaintgan.methods.glcic import GLCIC, GLCICConfig

H, W = 40, 48
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_model(GLCIC(GLCICConfig(width=8, d_width=8), image_size=32), tmp_path_factory.mktemp("m") / "tiny.safetensors")


def hole() -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[10:22, 12:30] = True
    return m


def rng_u8(*shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def make(kind: str, path: Path) -> None:
    if kind == "rgba":
        Image.fromarray(rng_u8(H, W, 4)).save(path, icc_profile=SRGB, dpi=(300, 300))
    elif kind == "palette_transparent":
        p = Image.fromarray(rng_u8(H, W, 3)).quantize(16)
        p.save(path, transparency=3)
    elif kind == "gray":
        Image.fromarray(rng_u8(H, W)).save(path, dpi=(72, 72))
    elif kind == "gray16":
        Image.fromarray(np.random.default_rng(1).integers(0, 65536, (H, W), dtype=np.uint16)).save(path)
    elif kind == "rgb16":
        cv2.imwrite(str(path), np.random.default_rng(2).integers(0, 65536, (H, W, 3), dtype=np.uint16))
    elif kind == "rgba16_tiff":
        cv2.imwrite(str(path), np.random.default_rng(3).integers(0, 65536, (H, W, 4), dtype=np.uint16))
    elif kind == "cmyk_jpeg":
        Image.fromarray(rng_u8(H, W, 3)).convert("CMYK").save(path, quality=80)
    elif kind == "la":
        Image.fromarray(rng_u8(H, W, 2)).save(path)


CASES = {  # kind: (file name, expected mode, dtype, channels)
    "rgba": ("a.png", "RGBA", np.uint8, 4),
    "palette_transparent": ("p.png", "RGBA", np.uint8, 4),
    "gray": ("g.png", "L", np.uint8, 1),
    "gray16": ("g16.png", "L", np.uint16, 1),
    "rgb16": ("c16.png", "RGB", np.uint16, 3),
    "rgba16_tiff": ("c16.tif", "RGBA", np.uint16, 4),
    "la": ("la.png", "LA", np.uint8, 2),
    "cmyk_jpeg": ("k.jpg", "CMYK", np.uint8, 4),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_fill_keeps_mode_depth_alpha_and_known_pixels(kind, tmp_path, model_file):
    name, mode, dtype, channels = CASES[kind]
    src = tmp_path / name
    make(kind, src)
    Image.fromarray(hole().astype(np.uint8) * 255).save(tmp_path / "mask.png")
    out = tmp_path / "out" / name
    assert main(["fill", str(src), "--mask", str(tmp_path / "mask.png"), "-o", str(out), "--model", str(model_file),
                 "-q", "--quality", "keep"]) == 0
    a, b = read_image_file(src), read_image_file(out)
    assert (b.mode, b.pixels.dtype) == (mode, dtype), kind
    assert (1 if b.pixels.ndim == 2 else b.pixels.shape[2]) == channels
    known = ~hole()
    if kind == "cmyk_jpeg":  # JPEG re-encoding changes pixels; with the same tables only slightly
        assert np.abs(a.pixels[known].astype(int) - b.pixels[known]).mean() < 3
        assert b.info["qtables"] == a.info["qtables"]
    else:
        assert np.array_equal(a.pixels[known], b.pixels[known])  # bit for bit, alpha included
        if channels in (2, 4):
            assert np.array_equal(a.pixels[..., -1], b.pixels[..., -1])  # alpha untouched, in the hole too
        assert not np.array_equal(a.pixels[hole()], b.pixels[hole()])  # and the hole was filled
    with Image.open(src) as si, Image.open(out) as so:
        assert so.info.get("icc_profile") == si.info.get("icc_profile")
        if si.info.get("dpi"):
            assert tuple(round(float(d)) for d in so.info["dpi"]) == tuple(round(float(d)) for d in si.info["dpi"])


def test_quality_keep_reuses_jpeg_tables_and_webp_keep_is_lossless(tmp_path, model_file):
    img = rng_u8(H, W, 3)
    Image.fromarray(img).save(tmp_path / "a.jpg", quality=60)
    Image.fromarray(hole().astype(np.uint8) * 255).save(tmp_path / "mask.png")
    base = ["fill", str(tmp_path / "a.jpg"), "--mask", str(tmp_path / "mask.png"), "--model", str(model_file), "-q"]
    assert main(base + ["-o", str(tmp_path / "keep.jpg"), "--quality", "keep"]) == 0
    assert main(base + ["-o", str(tmp_path / "q95.jpg")]) == 0
    with Image.open(tmp_path / "a.jpg") as a, Image.open(tmp_path / "keep.jpg") as k, Image.open(tmp_path / "q95.jpg") as q:
        assert k.quantization == a.quantization and q.quantization != a.quantization
    assert main(base + ["-o", str(tmp_path / "k.webp"), "--quality", "keep"]) == 0
    src, out = read_image_file(tmp_path / "a.jpg"), read_image_file(tmp_path / "k.webp")
    assert np.array_equal(src.pixels[~hole()], out.pixels[~hole()])
    with pytest.raises(SystemExit) as e:  # argparse: a usage error
        main(base + ["-o", str(tmp_path / "x.jpg"), "--quality", "0"])
    assert e.value.code == 2


def test_api_path_input_keeps_the_mode(tmp_path, model_file):
    make("rgba", tmp_path / "a.png")
    make("gray16", tmp_path / "g.png")
    inp = Inpainter.from_pretrained(model_file, device="cpu")
    r = inp(tmp_path / "a.png", hole())
    assert r.mode == "RGBA" and np.array_equal(np.asarray(r)[..., 3], np.asarray(Image.open(tmp_path / "a.png"))[..., 3])
    g = inp(tmp_path / "g.png", hole())
    assert g.mode == "I;16" and np.array_equal(np.asarray(g)[~hole()], read_image_file(tmp_path / "g.png").pixels[~hole()])


def test_writer_refuses_what_it_cannot_write(tmp_path):
    with pytest.raises(ValueError, match="uint8 or uint16"):
        write_image_file(tmp_path / "a.png", np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="quality"):
        write_image_file(tmp_path / "a.jpg", np.zeros((4, 4), np.uint8), quality=0)
    with pytest.raises(ValueError, match="extension"):
        write_image_file(tmp_path / "noext", np.zeros((4, 4), np.uint8))


@pytest.mark.parametrize("kind", ["gray16", "rgb16", "rgba", "la"])
def test_server_answers_like_fill_through_the_same_reader_and_writer(kind, tmp_path, model_file):
    from fastapi.testclient import TestClient

    from inpaintgan.server.app import API, create_app

    name = CASES[kind][0]
    src = tmp_path / name
    make(kind, src)
    Image.fromarray(hole().astype(np.uint8) * 255).save(tmp_path / "mask.png")
    out = tmp_path / "out" / name
    assert main(["fill", str(src), "--mask", str(tmp_path / "mask.png"), "-o", str(out), "--model", str(model_file), "-q"]) == 0
    inp = Inpainter.from_pretrained(model_file, device="cpu")
    with TestClient(create_app(inp, zoo=False)) as c:
        r = c.post(f"{API}/inpaint", files={"image": src.read_bytes(), "mask": (tmp_path / "mask.png").read_bytes()})
    assert r.status_code == 200, r.text
    (tmp_path / "answer.png").write_bytes(r.content)
    answer, filled = read_image_file(tmp_path / "answer.png"), read_image_file(out)
    assert (answer.mode, answer.pixels.dtype) == (filled.mode, filled.pixels.dtype) == CASES[kind][1:3]
    assert np.array_equal(answer.pixels, filled.pixels)
    with Image.open(tmp_path / "answer.png") as a:
        assert a.info.get("icc_profile") == Image.open(src).info.get("icc_profile")
