"""Mask generators and hole geometry: statistics over many seeded draws, and hand-computed boxes.

GLCIC rectangles (Iizuka et al. 2017: 5-12 px holes at 32x32), two-rectangle masks, the centred
25% square (Yeh et al. 2017), free-form strokes, folder masks; ``hole_bbox``, ``local_crop_boxes``
and ``crop_patches``.
"""

from __future__ import annotations

import types

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from inpaintgan.masks import (
    FolderMasks,
    build_mask_generator,
    center_square,
    crop_patches,
    free_form_strokes,
    glcic_rect,
    hole_bbox,
    hole_ratio,
    local_crop_boxes,
    two_rect,
)


def _rect_stats(masks: list[np.ndarray]) -> np.ndarray:
    """(n, 4) bounding boxes, after checking each mask is exactly one filled rectangle."""
    boxes = []
    for m in masks:
        y0, x0, y1, x1 = hole_bbox(m)
        assert m.sum() == (y1 - y0) * (x1 - x0), "hole is not a filled rectangle"
        boxes.append((y0, x0, y1, x1))
    return np.array(boxes)


# ------------------------------------------------------------------------------------ glcic_rect


def test_glcic_rect_sizes_cover_5_to_12_at_32():
    rng = np.random.default_rng(0)
    masks = [glcic_rect(rng, 32, 32) for _ in range(2000)]
    assert all(m.dtype == np.float32 and m.shape == (32, 32) for m in masks)
    assert all(set(np.unique(m)) <= {0.0, 1.0} for m in masks[:50])
    b = _rect_stats(masks)
    hh, ww = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    assert hh.min() == 5 and hh.max() == 12 and set(hh) == set(range(5, 13))
    assert ww.min() == 5 and ww.max() == 12 and set(ww) == set(range(5, 13))
    # uniform over 8 values: 250 expected each, binomial sd ~15
    for sizes in (hh, ww):
        counts = np.bincount(sizes, minlength=13)[5:13]
        assert counts.min() > 180 and counts.max() < 320, counts
    # height and width are drawn independently, not tied together
    assert abs(np.corrcoef(hh, ww)[0, 1]) < 0.1


def test_glcic_rect_position_uniform_and_touches_every_border():
    rng = np.random.default_rng(1)
    b = _rect_stats([glcic_rect(rng, 32, 32) for _ in range(2000)])
    y0, x0, y1, x1 = b.T
    assert (y0 == 0).any() and (x0 == 0).any() and (y1 == 32).any() and (x1 == 32).any()
    assert y0.min() >= 0 and x0.min() >= 0 and y1.max() <= 32 and x1.max() <= 32
    # given the size, the offset is uniform on [0, side - size]: relative offsets average 0.5
    rel_y = y0 / (32 - (y1 - y0))
    rel_x = x0 / (32 - (x1 - x0))
    assert abs(rel_y.mean() - 0.5) < 0.03 and abs(rel_x.mean() - 0.5) < 0.03
    assert abs(rel_y.std() - np.sqrt(1 / 12)) < 0.03  # not piled up in the middle or at the edges


def test_glcic_rect_scales_with_resolution():
    rng = np.random.default_rng(2)
    b = _rect_stats([glcic_rect(rng, 128, 128) for _ in range(1000)])
    hh, ww = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    assert hh.min() == 20 and hh.max() == 48
    assert ww.min() == 20 and ww.max() == 48
    # non-square images scale each side by its own length
    b = _rect_stats([glcic_rect(rng, 64, 128) for _ in range(500)])
    assert (b[:, 2] - b[:, 0]).max() <= 24 and (b[:, 3] - b[:, 1]).min() >= 20


# ------------------------------------------------------------------------------ two_rect / centre


@pytest.mark.parametrize("side", [32, 64])
def test_two_rect_two_components_left_third_and_right_two_thirds(side):
    rng = np.random.default_rng(3)
    third = side / 3
    for _ in range(1000 if side == 32 else 300):
        m = two_rect(rng, side, side)
        n, labels = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
        assert n - 1 == 2, "the two holes must be separate"
        boxes = sorted(hole_bbox((labels == k).astype(np.float32)) for k in (1, 2))
        boxes.sort(key=lambda b: b[1])
        (ly0, lx0, ly1, lx1), (ry0, rx0, ry1, rx1) = boxes
        assert lx1 <= third, "left hole leaves the left third"
        assert rx0 >= third, "right hole reaches into the left third"
        for y0, x0, y1, x1 in boxes:
            lo, hi = round(5 / 32 * side), round(12 / 32 * side)
            assert lo <= y1 - y0 <= hi
            assert 1 <= x1 - x0 <= hi
            assert m[y0:y1, x0:x1].all(), "holes are filled rectangles"


@pytest.mark.parametrize("side", [32, 64, 128])
def test_center_square_is_a_quarter_and_centred(side):
    m = center_square(side, side)
    assert m.sum() == side * side / 4
    assert hole_bbox(m) == (side // 4, side // 4, 3 * side // 4, 3 * side // 4)
    assert hole_ratio(m) == 0.25
    np.testing.assert_array_equal(m, m[::-1, ::-1])  # symmetric about the centre


# ----------------------------------------------------------------------------------------- strokes


def test_free_form_strokes_area_fraction_distribution():
    rng = np.random.default_rng(4)
    fr = np.array([free_form_strokes(rng, 64, 64).mean() for _ in range(500)])
    assert fr.min() > 0, "a stroke mask must never be empty"
    assert fr.max() < 0.6
    assert 0.03 < fr.mean() < 0.25
    assert np.percentile(fr, 95) > 2 * np.percentile(fr, 5), "areas should vary from draw to draw"
    m = free_form_strokes(rng, 48, 80)
    assert m.shape == (48, 80) and m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0}


def test_free_form_strokes_are_thin_and_connected_per_stroke():
    rng = np.random.default_rng(5)
    for _ in range(100):
        m = free_form_strokes(rng, 64, 64, max_strokes=1, min_strokes=1)
        n, _ = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
        assert n - 1 == 1, "one stroke (with round joints) is one connected component"


# ------------------------------------------------------------------------------------ FolderMasks


def _asym_mask(h: int = 30, w: int = 40) -> np.ndarray:
    """An L shape in the top-left corner: every flip and rotation changes it."""
    m = np.zeros((h, w), np.uint8)
    m[2:20, 3:9] = 255
    m[14:20, 3:25] = 255
    return m


def _flips(m: np.ndarray) -> list[np.ndarray]:
    return [m, m[:, ::-1], m[::-1, :], m[::-1, ::-1]]


@pytest.fixture
def mask_folder(tmp_path):
    root = tmp_path / "masks"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(_asym_mask()).save(root / "a.png")
    (root / "notes.txt").write_text("not a mask")
    return root


def test_folder_masks_reads_white_as_hole_and_thresholds(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    img = np.zeros((10, 10), np.uint8)
    img[0, 0], img[0, 1], img[0, 2] = 255, 200, 100
    Image.fromarray(img).save(root / "x.png")
    fm = FolderMasks(root)
    raw = fm.load(0)
    assert raw.dtype == np.float32 and raw[0, 0] == 1 and raw[0, 1] == 1 and raw[0, 2] == 0 and raw.sum() == 2
    np.testing.assert_array_equal(FolderMasks(root, invert=True).load(0), 1 - raw)


def test_folder_masks_flips_only(mask_folder):
    fm = FolderMasks(mask_folder, max_rotate=0, max_dilate=0)
    assert len(fm) == 1
    raw = fm.load(0)
    options = _flips(raw)
    rng = np.random.default_rng(6)
    seen = set()
    for _ in range(60):
        m = fm(rng, 30, 40)
        assert m.shape == (30, 40) and m.dtype == np.float32
        hits = [k for k, o in enumerate(options) if np.array_equal(m, o)]
        assert hits, "without rotation/dilation the output must be a flip of the file"
        seen.add(hits[0])
    assert seen == {0, 1, 2, 3}


def test_folder_masks_rotation_and_dilation_change_the_mask(mask_folder):
    raw = FolderMasks(mask_folder).load(0)
    options = _flips(raw)
    rng = np.random.default_rng(7)
    rot = FolderMasks(mask_folder, max_rotate=45, max_dilate=0)
    rotated = [rot(rng, 30, 40) for _ in range(30)]
    assert sum(not any(np.array_equal(m, o) for o in options) for m in rotated) >= 20

    dil = FolderMasks(mask_folder, max_rotate=0, max_dilate=3)
    grown = 0
    for _ in range(40):
        m = dil(rng, 30, 40)
        base = [o for o in options if np.array_equal(np.minimum(m, o), o)]
        assert base, "dilation only adds hole pixels to a flipped mask"
        grown += m.sum() > raw.sum()
    assert 20 <= grown < 40  # dilation 0 (no change) is drawn too


def test_folder_masks_output_binary_at_requested_size(mask_folder):
    fm = FolderMasks(mask_folder)
    rng = np.random.default_rng(8)
    for h, w in [(16, 16), (64, 48), (7, 33)]:
        m = fm(rng, h, w)
        assert m.shape == (h, w) and m.dtype == np.float32
        assert set(np.unique(m)) <= {0.0, 1.0} and m.sum() > 0


def test_folder_masks_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        FolderMasks(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no mask images"):
        FolderMasks(tmp_path / "empty")
    with pytest.raises(ValueError, match="masks.folder"):
        FolderMasks("")
    with pytest.raises(ValueError, match="masks.folder"):
        build_mask_generator(types.SimpleNamespace(kind="folder", folder=""))


# ------------------------------------------------------------------------------------ determinism


def _cfg(kind: str, folder: str = "") -> types.SimpleNamespace:
    from inpaintgan.config import MaskConfig

    c = MaskConfig(kind=kind, folder=folder)
    return types.SimpleNamespace(**c.__dict__)


@pytest.mark.parametrize("kind", ["glcic_rect", "two_rect", "strokes", "mixed", "folder"])
def test_same_seed_same_masks_other_seed_different(kind, mask_folder):
    fn = build_mask_generator(_cfg(kind, str(mask_folder)))

    def draw(seed):
        rng = np.random.default_rng(seed)
        return np.stack([fn(rng, 32, 32) for _ in range(10)])

    a, b, c = draw(0), draw(0), draw(1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and a.shape == (10, 32, 32)


def test_build_mask_generator_center_and_unknown():
    fn = build_mask_generator(_cfg("center"))
    m = fn(np.random.default_rng(0), 64, 64)
    assert m.sum() == 64 * 64 / 4
    with pytest.raises(ValueError, match="known: glcic_rect"):
        build_mask_generator(_cfg("blob"))


# ---------------------------------------------------------------------------------- hole geometry


def test_hole_bbox_hand_examples():
    m = np.zeros((10, 12), np.float32)
    assert hole_bbox(m) == (0, 0, 0, 0)
    m[2:5, 3:8] = 1
    assert hole_bbox(m) == (2, 3, 5, 8)
    m[9, 0] = 1  # a second, disjoint hole widens the box
    assert hole_bbox(m) == (2, 0, 10, 8)
    t = torch.zeros(1, 6, 6)
    t[0, 0, 0] = 1
    assert hole_bbox(t) == (0, 0, 1, 1)
    t[0, 5, 5] = 0.4  # below the 0.5 threshold: not a hole
    assert hole_bbox(t) == (0, 0, 1, 1)


def test_local_crop_boxes_hand_examples():
    masks = torch.zeros(5, 1, 16, 16)
    masks[0, 0, 6:10, 6:10] = 1  # centre (8, 8) -> top-left (4, 4)
    masks[1, 0, 0:2, 0:2] = 1  # top-left corner: clamped to (0, 0)
    masks[2, 0, 14:16, 14:16] = 1  # bottom-right corner: clamped to (8, 8)
    masks[3, 0, 0:2, 13:16] = 1  # top-right: (0, 8)
    # masks[4] is empty: the image centre
    masks[4] = 0
    boxes = local_crop_boxes(masks, 8)
    assert boxes.tolist() == [[4, 4], [0, 0], [8, 8], [0, 8], [4, 4]]
    m = torch.zeros(1, 1, 20, 30)
    m[0, 0, 3:9, 17:27] = 1  # centre (6, 22), crop 10 -> (1, 17)
    assert local_crop_boxes(m, 10).tolist() == [[1, 17]]
    with pytest.raises(ValueError, match="larger than the image"):
        local_crop_boxes(torch.zeros(1, 1, 8, 8), 9)


def test_local_crop_contains_every_hole_that_fits():
    rng = np.random.default_rng(9)
    masks = torch.from_numpy(np.stack([glcic_rect(rng, 32, 32) for _ in range(300)]))[:, None]
    boxes = local_crop_boxes(masks, 16)
    for m, (top, left) in zip(masks, boxes.tolist()):
        assert 0 <= top <= 16 and 0 <= left <= 16
        y0, x0, y1, x1 = hole_bbox(m)
        assert top <= y0 and y1 <= top + 16 and left <= x0 and x1 <= left + 16


def test_crop_patches_equals_slicing_and_is_differentiable():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 16, 20, generator=g, requires_grad=True)
    corners = torch.tensor([[0, 0], [8, 12], [3, 5], [8, 0]])
    patches = crop_patches(images, corners, 8)
    assert patches.shape == (4, 3, 8, 8)
    for i, (y, x) in enumerate(corners.tolist()):
        torch.testing.assert_close(patches[i], images[i, :, y : y + 8, x : x + 8], rtol=0, atol=0)
    patches.sum().backward()
    expected = torch.zeros_like(images)
    for i, (y, x) in enumerate(corners.tolist()):
        expected[i, :, y : y + 8, x : x + 8] = 1
    torch.testing.assert_close(images.grad, expected)


def test_hole_bboxes_batched_matches_hole_bbox():
    from inpaintgan.masks import hole_bboxes

    m = torch.zeros(3, 1, 6, 9)
    m[0, 0, 1:3, 4:8] = 1
    m[2, 0, 5, 0] = 0.7
    boxes, nonempty = hole_bboxes(m)
    assert boxes.tolist() == [[1, 4, 3, 8], [0, 0, 0, 0], [5, 0, 6, 1]]
    assert nonempty.tolist() == [True, False, True]
    assert [hole_bbox(m[i, 0]) for i in range(3)] == [tuple(b) for b in boxes.tolist()]
