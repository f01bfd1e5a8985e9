"""Safe image / mask reading and writing, and the post-processing helpers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from inpaintgan.imageio import (
    ImageReadError,
    MaskError,
    dilate_mask,
    fit_mask,
    mask_from_array,
    read_image,
    read_mask,
    write_image,
)
from inpaintgan.postprocess import poisson_blend, prefill_telea

ORIENTATION = 0x0112

def pixels(path) -> np.ndarray:
    """Decoded pixels of an image file (the file is closed)."""
    with Image.open(path) as im:
        return np.array(im)


def file_format(path) -> str:
    with Image.open(path) as im:
        return im.format



def rand_u8(h, w, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c) if c else (h, w), dtype=np.uint8)


# ------------------------------------------------------------------------------------------ images


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "LA", "CMYK", "1", "I;16"])
def test_modes_become_rgb(tmp_path, mode):
    src = Image.fromarray(rand_u8(12, 16)).convert(mode) if mode != "I;16" else None
    if mode == "I;16":
        a = np.full((12, 16), 65535, np.uint16)
        a[:, :8] = 257 * 100
        src = Image.fromarray(a)
    path = tmp_path / ("x.tiff" if mode == "CMYK" else "x.png")
    src.save(path)
    img = read_image(path)
    assert img.mode == "RGB" and img.size == (16, 12)
    if mode == "I;16":  # 16-bit scaled to 8 bits, not clipped to white
        a = np.asarray(img)
        assert a[0, 0, 0] == 100 and a[0, -1, 0] == 255


def test_exif_orientation_applied_and_not_written_again(tmp_path):
    a = np.zeros((20, 40, 3), np.uint8)
    a[:5, :5] = 255  # white top-left corner
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # "rotate 90 CW to display"
    exif[0x010F] = "TestCam"  # Make
    Image.fromarray(a).save(tmp_path / "o.jpg", exif=exif.tobytes(), quality=95)
    img = read_image(tmp_path / "o.jpg")
    assert img.size == (20, 40)  # upright: portrait
    assert np.asarray(img)[:5, -5:].mean() > 200  # the corner moved to the top right
    write_image(img, tmp_path / "out.jpg", exif=img.info.get("exif"))
    with Image.open(tmp_path / "out.jpg") as back:
        assert back.size == (20, 40)
        assert ORIENTATION not in back.getexif() and back.getexif().get(0x010F) == "TestCam"


def test_size_limit_and_decompression_bomb(tmp_path, monkeypatch):
    Image.fromarray(rand_u8(30, 30)).save(tmp_path / "big.png")
    with pytest.raises(ImageReadError, match=r"big\.png is 30x30.*limit"):
        read_image(tmp_path / "big.png", max_pixels=100)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 900 px > 2x the limit: Pillow raises
    with pytest.raises(ImageReadError, match=r"big\.png.*decompression bomb"):
        read_image(tmp_path / "big.png", max_pixels=None)


def test_unreadable_files_are_named(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"hello")
    with pytest.raises(ImageReadError, match="junk.png"):
        read_image(tmp_path / "junk.png")
    Image.fromarray(rand_u8(64, 64)).save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.png"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(ImageReadError, match="not found.*missing.png"):
        read_mask(tmp_path / "missing.png")
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)


# ------------------------------------------------------------------------------------------ masks


def test_mask_threshold_at_half_in_every_mode(tmp_path):
    gray = np.array([[0, 127, 128, 255]], np.uint8)
    expected = np.array([[False, False, True, True]])
    assert np.array_equal(mask_from_array(gray), expected)
    assert np.array_equal(mask_from_array(gray.astype(np.float32) / 255), expected)
    assert np.array_equal(mask_from_array(np.array([[0, 1, 0, 1]], np.int64)), [[False, True, False, True]])
    for mode, ext in [("L", "png"), ("RGB", "png"), ("1", "png"), ("P", "png"), ("L", "jpg")]:
        m = np.zeros((16, 16), np.uint8)
        m[4:12, 4:12] = 255
        Image.fromarray(m).convert(mode).save(tmp_path / f"m.{ext}")
        got = read_mask(tmp_path / f"m.{ext}")
        assert got.dtype == bool and np.array_equal(got, m > 127), (mode, ext)


def test_colored_strokes_and_alpha_masks():
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[2:4, 2:4] = (255, 0, 0)  # red strokes on black count as hole
    assert mask_from_array(rgb).sum() == 4
    layer = np.zeros((8, 8, 4), np.uint8)
    layer[..., :3] = 255  # uniform colour, the brush is in the alpha
    layer[1:3, 1:5, 3] = 255
    assert np.array_equal(mask_from_array(layer), layer[..., 3] > 127)
    mixed = np.zeros((8, 8, 4), np.uint8)
    mixed[..., 3] = 255
    mixed[5:7, 5:7, :3] = 255  # opaque image: the colour decides
    mixed[0, 0] = (255, 255, 255, 0)  # white but transparent: known
    assert mask_from_array(mixed).sum() == 4 and not mask_from_array(mixed)[0, 0]


def test_dilate_is_elliptical():
    m = np.zeros((21, 21), bool)
    m[10, 10] = True
    d = dilate_mask(m, 3)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)) > 0
    assert np.array_equal(d[7:14, 7:14], kernel) and d.sum() == kernel.sum()
    assert not d[7, 7]  # the corner of the square is not in the disc
    assert dilate_mask(m, 0) is m
    with pytest.raises(ValueError):
        dilate_mask(m, -1)


def test_fit_mask_names_both_sizes():
    m = np.zeros((20, 30), bool)
    m[5:10, 5:10] = True
    with pytest.raises(MaskError, match=r"mask\.png is 30x20 but photo\.jpg is 60x40"):
        fit_mask(m, (60, 40), mask_name="mask.png", image_name="photo.jpg")
    r = fit_mask(m, (60, 40), resize=True)
    assert r.shape == (40, 60) and r.sum() == 4 * m.sum()


# ------------------------------------------------------------------------------------------ writing


@pytest.mark.parametrize("ext,fmt", [("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP"), ("bmp", "BMP"), ("tiff", "TIFF")])
def test_write_format_from_extension_atomic(tmp_path, ext, fmt):
    a = rand_u8(16, 20)
    path = write_image(a, tmp_path / "sub" / f"out.{ext}")
    with Image.open(path) as back:
        assert back.format == fmt and back.size == (20, 16)
    assert [p.name for p in path.parent.iterdir()] == [f"out.{ext}"]  # no temp file left
    if fmt in ("PNG", "BMP", "TIFF"):
        assert np.array_equal(pixels(path), a)


def test_jpeg_quality_95_and_format_override(tmp_path):
    a = rand_u8(32, 32)
    write_image(a, tmp_path / "a.jpg")
    Image.fromarray(a).save(tmp_path / "ref.jpg", quality=95)
    assert (tmp_path / "a.jpg").read_bytes() == (tmp_path / "ref.jpg").read_bytes()
    write_image(Image.fromarray(np.dstack([a, a[:, :, 0]]), "RGBA"), tmp_path / "rgba.jpg")  # alpha dropped
    p = write_image(a, tmp_path / "x.dat", format="png")
    assert file_format(p) == "PNG"
    with pytest.raises(ValueError, match="extension.*gif.*known: png"):
        write_image(a, tmp_path / "x.gif")


# ------------------------------------------------------------------------------------------ post-processing


def test_poisson_blend_keeps_known_pixels_and_removes_the_seam():
    img = np.full((60, 80, 3), 120, np.uint8) + rand_u8(60, 80, seed=2) // 16
    hole = np.zeros((60, 80), bool)
    hole[0:20, 0:30] = True  # touches two image borders
    hole[30:50, 50:80] = True
    fill = img.copy()
    fill[hole] = 250  # a flat fill far too bright: blending pulls it to the surroundings
    out = poisson_blend(img, fill, hole)
    assert np.array_equal(out[~hole], img[~hole])
    assert abs(float(out[hole].mean()) - float(img[~hole].mean())) < 10
    gray = poisson_blend(img[..., 0], fill[..., 0], hole)
    assert gray.shape == (60, 80) and np.array_equal(gray[~hole], img[..., 0][~hole])


def test_prefill_telea_fills_only_the_hole():
    img = rand_u8(30, 30)
    hole = np.zeros((30, 30), bool)
    hole[10:20, 10:20] = True
    img_holed = img.copy()
    img_holed[hole] = 0
    out = prefill_telea(img_holed, hole)
    assert np.array_equal(out[~hole], img_holed[~hole]) and out[hole].mean() > 30
