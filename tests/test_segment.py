"""Object selection with GrabCut (``inpaintgan.segment``): IoU on synthetic scenes, strokes as hints,
large images through the working resolution, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inpaintgan.segment import SCENES, SegmentError, iou, select_object, synthetic_scene


@pytest.mark.parametrize("kind", SCENES)
def test_box_selection_reaches_iou_09_on_synthetic_scenes(kind):
    for seed in range(3):
        img, obj, box = synthetic_scene(kind, size=160, seed=seed)
        sel = select_object(img, box)
        assert sel.shape == obj.shape and sel.dtype == bool
        assert iou(sel, obj) >= 0.9, (kind, seed, iou(sel, obj))


def test_the_box_alone_is_not_the_answer():
    """The selection follows the object, not the box: the box's own IoU is far lower."""
    img, obj, box = synthetic_scene("triangle", size=160, seed=1)
    x0, y0, x1, y1 = box
    as_box = np.zeros_like(obj)
    as_box[y0:y1, x0:x1] = True
    assert iou(as_box, obj) < 0.6
    assert iou(select_object(img, box), obj) >= 0.9


def test_a_large_image_is_cut_at_the_working_resolution_and_snapped_back():
    img, obj, box = synthetic_scene("blob", size=900, seed=2)
    sel = select_object(img, box, max_side=256)
    assert iou(sel, obj) >= 0.95


def test_strokes_override_the_box():
    """Two objects of one colour in one box: without strokes the larger is taken; an object stroke
    on the smaller one and a background stroke on the larger pick the smaller one instead."""
    img, obj, _ = synthetic_scene("disc", size=160, seed=0)
    other = np.zeros_like(obj)
    other[70:90, 8:26] = True
    img = img.copy()
    img[other] = img[obj].mean(0).astype(np.uint8)
    ys, xs = np.nonzero(obj | other)
    box = (int(xs.min()) - 4, int(ys.min()) - 4, int(xs.max()) + 5, int(ys.max()) + 5)
    assert iou(select_object(img, box), obj) >= 0.9
    fg = np.zeros_like(obj)
    fg[76:84, 13:21] = True
    bg = np.zeros_like(obj)
    cy, cx = np.argwhere(obj).mean(0).astype(int)
    bg[cy - 20 : cy + 20, cx - 3 : cx + 3] = True
    sel = select_object(img, box, object_strokes=fg, background_strokes=bg)
    assert iou(sel, other) >= 0.9, iou(sel, other)
    assert not sel[bg].any() and sel[fg].all()


def test_inputs_pil_path_and_float(tmp_path):
    img, obj, box = synthetic_scene("square", size=96, seed=0)
    path = tmp_path / "scene.png"
    Image.fromarray(img).save(path)
    a = select_object(path, box)
    b = select_object(Image.fromarray(img).convert("RGBA"), box)
    c = select_object(img.astype(np.float32) / 255, box)
    assert np.array_equal(a, b) and iou(a, c) > 0.98 and iou(a, obj) >= 0.9


def test_bad_boxes_are_one_line_errors():
    img, _, _ = synthetic_scene("disc", size=64)
    for box, text in [((200, 200, 300, 300), "no area"), ((1, 2, 3), "four numbers"), (("a", 0, 5, 5), "four numbers"),
                      ((0, 0, 64, 64), "nothing is marked as background")]:
        with pytest.raises(SegmentError, match=text) as e:
            select_object(img, box)
        assert "\n" not in str(e.value)
    with pytest.raises(SegmentError, match="give a box"):
        select_object(img, None)
    with pytest.raises(SegmentError, match="is 10x10 but the image is 64x64"):
        select_object(img, (5, 5, 40, 40), object_strokes=np.zeros((10, 10), bool))


def test_strokes_outside_the_box_are_ignored():
    """An object stroke left from another selection does not pull this one toward it."""
    img, obj, box = synthetic_scene("square", size=160, seed=2)
    stray = np.zeros_like(obj)
    stray[2:6, 2:6] = True  # outside the box, inside GrabCut's margin
    sel = select_object(img, box, object_strokes=stray)
    assert not sel[stray].any() and iou(sel, obj) >= 0.9
