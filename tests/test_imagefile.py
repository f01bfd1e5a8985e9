"""The one reader and writer (imagefile): the CLI / Python API (paths) and the server (bytes) decode
the same file to the same pixels, mode, alpha and metadata, and apply the same mask rules."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from inpaintgan.imagefile import ImageReadError, ReadRules, read_image_file, write_image_file
from inpaintgan.imageio import mask_from_image, read_mask, write_image
from inpaintgan.server.app import ApiError, decode_image_file, decode_mask, read_rules

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _rgba16(h=12, w=10) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 65536, (h, w, 4), dtype=np.uint16)


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(1)
    out = {}
    rgba = Image.fromarray(rng.integers(0, 256, (12, 10, 4), dtype=np.uint8), "RGBA")
    rgba.save(tmp_path / "rgba.png", icc_profile=ICC, dpi=(150, 150))
    out["rgba"] = tmp_path / "rgba.png"
    jpg = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    ex = Image.Exif()
    ex[0x0112] = 6  # rotated: both readers must turn it upright
    ex[0x010F] = "camera"
    jpg.save(tmp_path / "rot.jpg", exif=ex.tobytes(), icc_profile=ICC)
    out["rot"] = tmp_path / "rot.jpg"
    write_image_file(tmp_path / "c16.png", _rgba16(), like=None)
    out["c16"] = tmp_path / "c16.png"
    Image.fromarray(rng.integers(0, 65536, (12, 10), dtype=np.uint16)).save(tmp_path / "g16.png")
    out["g16"] = tmp_path / "g16.png"
    return out


@pytest.mark.parametrize("name", ["rgba", "rot", "c16", "g16"])
def test_server_and_cli_decode_a_file_alike(files, name):
    path = files[name]
    cli = read_image_file(path)
    server = decode_image_file(path.read_bytes(), "image", 1_000_000)
    assert cli.mode == server.mode and cli.pixels.dtype == server.pixels.dtype
    assert np.array_equal(cli.pixels, server.pixels)
    for key in ("icc_profile", "dpi", "exif"):
        assert cli.info.get(key) == server.info.get(key), key
    assert read_image_file(path.read_bytes()).info == cli.info  # the bytes form of the CLI reader too


def test_kept_things(files):
    f = read_image_file(files["rgba"])
    assert f.mode == "RGBA" and f.info["icc_profile"] == ICC and round(f.info["dpi"][0]) == 150
    r = read_image_file(files["rot"])
    assert r.size == (12, 10) and r.info["icc_profile"] == ICC  # upright: 10x12 stored, rotated
    c = read_image_file(files["c16"])
    assert c.mode == "RGBA" and c.pixels.dtype == np.uint16 and np.array_equal(c.pixels, _rgba16())


def test_masks_decode_alike_from_files_uploads_and_pil(tmp_path):
    brush = np.zeros((9, 11, 4), np.uint8)
    brush[..., :3] = 200
    brush[2:6, 3:8, 3] = 255  # uniform colour, varying alpha: the alpha is the mask
    red = np.zeros((9, 11, 3), np.uint8)
    red[1:4, 1:4, 0] = 255
    pal = Image.fromarray(red).convert("P")
    for i, img in enumerate([Image.fromarray(brush, "RGBA"), Image.fromarray(red), pal]):
        path = tmp_path / f"m{i}.png"
        img.save(path)
        want = read_mask(path)
        assert want.any()
        assert np.array_equal(decode_mask(path.read_bytes(), "mask", 10_000), want)
        assert np.array_equal(mask_from_image(Image.open(path)), want)
        assert np.array_equal(read_mask(path.read_bytes()), want)


def test_same_checks_with_each_callers_limits(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (30, 30)).save(path)
    with pytest.raises(ImageReadError, match=r"big\.png is 30x30 = 0\.0 MP, above the limit") as e:
        read_image_file(path, 100)
    assert e.value.kind == "too_many_pixels"
    with pytest.raises(ApiError) as api:
        decode_image_file(path.read_bytes(), "image", 100)
    assert api.value.status == 413 and api.value.code == "too_many_pixels" and "the image is 30x30" in api.value.message
    noisy = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)).save(noisy, "PNG")
    cut = noisy.getvalue()[: len(noisy.getvalue()) // 2]
    for data, kind in ((b"", "not_an_image"), (b"junk", "not_an_image"), (cut, "corrupt_image")):
        with pytest.raises(ImageReadError) as e:
            read_image_file(data, rules=read_rules(10_000))
        assert e.value.kind == kind and "\n" not in str(e.value)
    pcx = io.BytesIO()
    Image.new("L", (4, 4)).save(pcx, "PCX")
    assert read_image_file(pcx.getvalue()).size == (4, 4)  # the CLI opens any Pillow format
    with pytest.raises(ImageReadError, match="supported: PNG"):
        read_image_file(pcx.getvalue(), rules=read_rules(10_000))  # the server only its list
    with pytest.raises(ValueError, match="max_pixels must be an integer"):
        ReadRules(max_pixels=-1)


def test_write_image_keeps_a_pil_images_icc_and_dpi(tmp_path):
    img = Image.fromarray(np.full((5, 6, 3), 77, np.uint8))
    img.info.update(icc_profile=ICC, dpi=(300, 300))
    for ext in ("png", "jpg", "tif"):
        out = write_image(img, tmp_path / f"o.{ext}")
        back = read_image_file(out)
        assert back.info.get("icc_profile") == ICC and round(back.info["dpi"][0]) == 300, ext
