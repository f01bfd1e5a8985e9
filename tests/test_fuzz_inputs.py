"""Property tests (Hypothesis): random bytes, random image headers and random sizes / modes / formats
fed to the image and mask readers and to the server's inpaint endpoint. The only outcomes allowed
are a result, the project's own exceptions (ImageReadError, MaskError) or a 4xx JSON answer: never
another exception, a crash or a 5xx."""

from __future__ import annotations

import io
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from inpaintgan.imageio import ImageReadError, MaskError, read_image, read_mask
from inpaintgan.inpainter import Inpainter
from inpaintgan.methods.glcic import GLCIC, GLCICConfig
from inpaintgan.server.app import API, ServerLimits, create_app

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

# ------------------------------------------------------------------------------------ strategies


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@st.composite
def png_headers(draw) -> bytes:
    """A PNG signature and an IHDR with random (often absurd) fields, then random or no data."""
    w = draw(st.integers(0, 2**31 - 1) | st.integers(0, 64))
    h = draw(st.integers(0, 2**31 - 1) | st.integers(0, 64))
    depth = draw(st.sampled_from([1, 2, 4, 8, 16, 3, 0, 255]))
    ctype = draw(st.sampled_from([0, 2, 3, 4, 6, 1, 7]))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, draw(st.sampled_from([0, 1])))
    body = draw(st.binary(max_size=200))
    idat = _chunk(b"IDAT", zlib.compress(body)) if draw(st.booleans()) else _chunk(b"IDAT", body)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + idat + (_chunk(b"IEND", b"") if draw(st.booleans()) else b"")


@st.composite
def other_headers(draw) -> bytes:
    """BMP / GIF / TIFF / JPEG / WebP magic numbers with random sizes and random tails."""
    w, h = draw(st.integers(0, 70000)), draw(st.integers(-70000, 70000))
    tail = draw(st.binary(max_size=120))
    kind = draw(st.sampled_from(["bmp", "gif", "tiff", "jpeg", "webp"]))
    if kind == "bmp":
        bpp = draw(st.sampled_from([1, 4, 8, 16, 24, 32, 0, 7]))
        return b"BM" + struct.pack("<IHHI", 54 + len(tail), 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, w, h, 1, bpp, 0, 0, 0, 0, 0, 0) + tail
    if kind == "gif":
        return b"GIF89a" + struct.pack("<HHBBB", w & 0xFFFF, abs(h) & 0xFFFF, 0xF7, 0, 0) + tail
    if kind == "tiff":
        return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 2) + struct.pack("<HHII", 256, 4, 1, w) + struct.pack("<HHII", 257, 4, 1, abs(h)) + tail
    if kind == "jpeg":
        return b"\xff\xd8\xff\xc0" + struct.pack(">HBHHB", 11, 8, abs(h) & 0xFFFF, w & 0xFFFF, 1) + b"\x01\x11\x00" + tail
    return b"RIFF" + struct.pack("<I", 20 + len(tail)) + b"WEBPVP8 " + tail


MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "I;16", "I", "F", "CMYK", "YCbCr"]
FORMATS = ["PNG", "TIFF", "WEBP", "BMP", "JPEG", "GIF"]


@st.composite
def real_images(draw) -> bytes:
    """A real image of a random mode, size and format, sometimes truncated or with a flipped byte."""
    w, h = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    mode = draw(st.sampled_from(MODES))
    fmt = draw(st.sampled_from(FORMATS))
    seed = draw(st.integers(0, 2**16))
    a = np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8)
    img = Image.fromarray(a, "RGBA")
    try:
        img = img.convert(mode) if mode not in ("I;16", "PA") else (img.convert("L").convert("I;16") if mode == "I;16" else img.convert("P").convert("PA"))
        buf = io.BytesIO()
        img.save(buf, fmt)
        data = buf.getvalue()
    except (OSError, ValueError, KeyError):  # this format cannot store this mode: use PNG of RGB
        buf = io.BytesIO()
        Image.fromarray(a[:, :, :3]).save(buf, "PNG")
        data = buf.getvalue()
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip"]))
    if damage == "truncate":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif damage == "flip" and data:
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]
    return data


any_image_bytes = st.binary(max_size=300) | png_headers() | other_headers() | real_images()


# ----------------------------------------------------------------------------------------- readers


def _read_both(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        for suffix in (".png", ".jpg"):
            p = Path(d) / f"x{suffix}"
            p.write_bytes(data)
            try:
                img = read_image(p, max_pixels=1_000_000)
                assert img.size[0] >= 1 and img.size[1] >= 1
            except ImageReadError:
                pass
            try:
                m = read_mask(p, max_pixels=1_000_000)
                assert m.dtype == bool and m.ndim == 2
            except (ImageReadError, MaskError):
                pass


@FUZZ
@given(any_image_bytes)
def test_readers_raise_only_project_errors(data):
    _read_both(data)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.sampled_from(MODES), st.integers(1, 30), st.integers(1, 30))
def test_readers_accept_every_mode(mode, w, h):
    """Well-formed images of every mode (written as TIFF, which stores them all, or PNG) read back."""
    img = Image.new("RGBA", (w, h), (200, 100, 50, 255))
    img = img.convert(mode) if mode not in ("I;16", "PA") else img.convert("L").convert(mode) if mode == "I;16" else img.convert("PA")
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.tif"
        try:
            img.save(p)
        except (OSError, ValueError, KeyError):
            p = Path(d) / "x.png"
            img.convert("RGBA").save(p)
        assert read_image(p).size == (w, h)
        assert read_mask(p).shape == (h, w)


# ------------------------------------------------------------------------------------------ server


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    torch.manual_seed(0)
    inp = Inpainter(GLCIC(GLCICConfig(width=8, d_width=8), image_size=32).eval(), {"model": "tiny"})
    with TestClient(create_app(inp, zoo=False, limits=ServerLimits(max_pixels=1_000_000, max_upload_bytes=200_000)),
                    raise_server_exceptions=False) as c:
        yield c


def _assert_client_error_or_ok(r) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code != 200:
        body = r.json()
        assert body["status"] == r.status_code and body["error"] and body["message"]


@FUZZ
@given(image=any_image_bytes, mask=any_image_bytes)
def test_endpoint_answers_only_200_or_4xx_for_random_files(client, image, mask):
    _assert_client_error_or_ok(client.post(f"{API}/inpaint", files={"image": image, "mask": mask}))


@FUZZ
@given(
    body=st.binary(max_size=400) | st.text(max_size=200).map(str.encode),
    ctype=st.sampled_from(["application/json", "multipart/form-data", "multipart/form-data; boundary=x", "text/plain",
                           "application/x+json", "", "multipart/form-data; boundary=" + "a" * 300]),
    extra=st.dictionaries(st.sampled_from(["accept", "content-length", "transfer-encoding", "x-forwarded-for"]),
                          st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20), max_size=2),
)
def test_endpoint_answers_only_4xx_for_random_bodies_and_headers(client, body, ctype, extra):
    headers = {"content-type": ctype, **extra} if ctype else dict(extra)
    headers.pop("content-length", None)  # a lying Content-Length makes the test client itself fail
    headers.pop("transfer-encoding", None)
    _assert_client_error_or_ok(client.post(f"{API}/inpaint", content=body, headers=headers))


@FUZZ
@given(
    fields=st.dictionaries(
        st.sampled_from(["model", "strategy", "dilate", "blend", "resize_mask", "format", "quality", "other"]),
        st.text(max_size=12) | st.integers(-5, 200).map(str), max_size=4),
    mask_size=st.tuples(st.integers(1, 60), st.integers(1, 60)),
)
def test_endpoint_answers_only_200_or_4xx_for_random_options_and_sizes(client, fields, mask_size):
    img = np.random.default_rng(0).integers(0, 256, (36, 44, 3), dtype=np.uint8)
    m = np.zeros(mask_size[::-1], np.uint8)
    m[: max(1, mask_size[1] // 2), : max(1, mask_size[0] // 2)] = 255
    bi, bm = io.BytesIO(), io.BytesIO()
    Image.fromarray(img).save(bi, "PNG")
    Image.fromarray(m).save(bm, "PNG")
    _assert_client_error_or_ok(client.post(f"{API}/inpaint", files={"image": bi.getvalue(), "mask": bm.getvalue()},
                                           data={k: str(v) for k, v in fields.items()}))


# ------------------------------------------------------------------------------------------ config


def _config_keys() -> list[str]:
    import dataclasses

    from inpaintgan.config import DataConfig, MaskConfig, TrainConfig
    from inpaintgan.methods.glcic import GLCICConfig

    keys = []
    for section, cls in (("data", DataConfig), ("masks", MaskConfig), ("train", TrainConfig), ("model", GLCICConfig)):
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(cls)]
    return keys


@FUZZ
@given(
    key=st.sampled_from(_config_keys()),
    value=st.text(max_size=20) | st.sampled_from(["1e-4", "-1", "0", "nan", "inf", "no", "[1, 2]", "{a: 1}", "[", "~", "1_000"]),
)
def test_config_overrides_raise_only_config_errors(key, value):
    """Any text for any key: a config, or a ConfigError naming the key (never another exception)."""
    from inpaintgan.config import ConfigError, load_config

    try:
        load_config(None, ["method=glcic", f"{key}={value}"])
    except ConfigError as e:
        assert key.split(".")[-1] in str(e) or "override" in str(e), str(e)
