"""The object-removal routes of ``inpaintgan serve`` (in-process TestClient): ``POST /api/v1/segment``
(GrabCut selection; its mask feeds ``/api/v1/inpaint``), the classical fills as request models, and
the API docs page served with local assets."""

from __future__ import annotations

import base64
import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintgan.inpainter import Inpainter
from inpaintgan.methods.glcic import GLCIC, GLCICConfig
from inpaintgan.segment import iou, synthetic_scene
from inpaintgan.server.app import ServerLimits, create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

API = "/api/v1"


def png(a) -> bytes:
    buf = io.BytesIO()
    (a if isinstance(a, Image.Image) else Image.fromarray(a)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def client():
    torch.manual_seed(0)
    tiny = Inpainter(GLCIC(GLCICConfig(width=8, d_width=8), image_size=32).eval(), {"model": "tiny"})
    with TestClient(create_app(tiny, limits=ServerLimits(max_upload_bytes=400_000, max_pixels=300 * 300))) as c:
        yield c


@pytest.fixture(scope="module")
def scene():
    return synthetic_scene("blob", size=128, seed=1)


def test_segment_multipart_returns_the_object_mask(client, scene):
    img, obj, box = scene
    r = client.post(f"{API}/segment", files={"image": ("s.png", png(img))}, data={"box": ",".join(map(str, box))})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    mask = np.asarray(Image.open(io.BytesIO(r.content)))
    assert mask.shape == obj.shape and set(np.unique(mask)) <= {0, 255}
    assert iou(mask == 255, obj) >= 0.9
    assert int(r.headers["x-segment-pixels"]) == int((mask == 255).sum())


def test_segment_json_with_strokes_and_then_inpaint(client, scene):
    img, obj, box = scene
    x0, y0, x1, y1 = box
    bg = np.zeros(obj.shape, np.uint8)
    bg[y0 : y0 + 6, x0:x1] = 255  # a stroke along the box's top edge, on the background
    bg[obj] = 0
    fg = np.zeros(obj.shape, np.uint8)
    cy, cx = np.argwhere(obj).mean(0).astype(int)
    fg[cy - 2 : cy + 3, cx - 2 : cx + 3] = 255
    body = {"image": base64.b64encode(png(img)).decode(), "box": list(box),
            "background": "data:image/png;base64," + base64.b64encode(png(bg)).decode(),
            "object": base64.b64encode(png(fg)).decode()}
    r = client.post(f"{API}/segment", json=body)
    assert r.status_code == 200, r.text
    half = np.asarray(Image.open(io.BytesIO(r.content))) == 255
    assert not half[bg > 0].any() and half[fg > 0].all() and iou(half, obj) >= 0.9

    # the selection is a mask /inpaint takes as it is; a classical fill removes the object
    r2 = client.post(f"{API}/inpaint", files={"image": ("s.png", png(img)), "mask": ("m.png", r.content)},
                     data={"model": "telea", "dilate": "2"})
    assert r2.status_code == 200, r2.text
    assert r2.headers["x-inpaint-model"] == "telea"
    out = np.asarray(Image.open(io.BytesIO(r2.content)))
    assert (out[half] != img[half]).any(axis=1).mean() > 0.5
    far = np.ones(obj.shape, bool)
    ys, xs = np.nonzero(half)
    far[max(0, ys.min() - 8) : ys.max() + 9, max(0, xs.min() - 8) : xs.max() + 9] = False
    assert np.array_equal(out[far], img[far])


def test_classical_fills_are_listed_and_match_the_python_api(client):
    rows = {m["name"]: m for m in client.get(f"{API}/models").json()["models"]}
    assert {"telea", "ns", "patchmatch"} <= set(rows)
    assert "classical" in rows["patchmatch"]["description"]
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    m = np.zeros((40, 56), np.uint8)
    m[10:24, 20:36] = 255
    r = client.post(f"{API}/inpaint", files={"image": ("a.png", png(img)), "mask": ("m.png", png(m))},
                    data={"model": "patchmatch"})
    assert r.status_code == 200, r.text
    expected = Inpainter.from_pretrained("patchmatch", device="cpu")(Image.fromarray(img), Image.fromarray(m))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))), np.asarray(expected))


@pytest.mark.parametrize("kwargs, status, code, text", [
    (dict(json={"box": [1, 2, 3, 4]}), 400, "missing_field", "missing 'image'"),
    (dict(files={"image": ("s.png", b"")}), 400, "missing_field", "missing 'box'"),
    (dict(files={"image": ("s.png", b"x")}, data={"box": "1,2,3"}), 400, "bad_option", "four numbers"),
    (dict(files={"image": ("s.png", b"x")}, data={"box": "1,2,3,4", "colour": "red"}), 400, "unknown_field", "colour"),
    (dict(files={"image": ("s.png", b"not an image")}, data={"box": "1,2,30,40"}), 422, "not_an_image", "not a readable image"),
    (dict(content=b"box=1", headers={"content-type": "text/plain"}), 415, "unsupported_media_type", "multipart"),
])
def test_segment_errors_are_json_one_liners(client, kwargs, status, code, text):
    r = client.post(f"{API}/segment", **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == code and text in body["message"] and "\n" not in body["message"]


def test_segment_box_outside_and_stroke_size(client, scene):
    img, obj, box = scene
    r = client.post(f"{API}/segment", files={"image": ("s.png", png(img))}, data={"box": "500,500,600,600"})
    assert r.status_code == 422 and r.json()["error"] == "cannot_segment" and "no area" in r.json()["message"]
    r = client.post(f"{API}/segment", files={"image": ("s.png", png(img)), "object": ("o.png", png(np.zeros((5, 5), np.uint8)))},
                    data={"box": ",".join(map(str, box))})
    assert r.status_code == 422 and r.json()["error"] == "mask_size_mismatch"


def test_docs_page_uses_local_assets(client):
    r = client.get(f"{API}/docs")
    assert r.status_code == 200
    html = r.text
    assert f"{API}/docs-assets/swagger-ui-bundle.js" in html and f"{API}/docs-assets/swagger-ui.css" in html
    assert "cdn" not in html.lower() and "https://" not in html
    js = client.get(f"{API}/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert client.get(f"{API}/docs-assets/swagger-ui.css").status_code == 200
    paths = client.get(f"{API}/openapi.json").json()["paths"]
    assert f"{API}/segment" in paths and f"{API}/inpaint" in paths
