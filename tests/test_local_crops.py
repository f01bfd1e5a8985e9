"""The local crops that GLCIC's and DeepFill's local discriminators see (masks.local_crop_boxes,
hole_bbox): centred on the hole's box with floor division, clamped, integer corners, the 0.5 threshold
of the composite, and non-square images. Expected corners worked out by hand."""

from __future__ import annotations

import pytest
import torch

from inpaintgan.masks import crop_patches, hole_bbox, local_crop_boxes


def test_crop_centre_uses_the_end_exclusive_box_and_floor_division():
    m = torch.zeros(2, 1, 16, 16)
    m[0, 0, 5:8, 3:10] = 1  # rows 5..7, cols 3..9: centre (13 // 2, 13 // 2) = (6, 6) -> corner (2, 2)
    m[1, 0, 9:12, 10:13] = 1  # centre (21 // 2, 23 // 2) = (10, 11) -> (6, 7)
    m[1, 0, 0, 0] = 0.5  # exactly 0.5 is a known pixel (the composite's mask > 0.5)
    boxes = local_crop_boxes(m, 8)
    assert boxes.dtype == torch.int64
    assert boxes.tolist() == [[2, 2], [6, 7]]
    assert hole_bbox(m[1, 0]) == (9, 10, 12, 13)
    patches = crop_patches(torch.arange(2 * 16 * 16, dtype=torch.float32).view(2, 1, 16, 16), boxes, 8)
    assert patches[1, 0, 0, 0].item() == 256 + 6 * 16 + 7


def test_non_square_images_and_crops_as_large_as_a_side():
    assert local_crop_boxes(torch.zeros(1, 1, 8, 16), 8).tolist() == [[0, 4]]  # empty: the centre
    assert local_crop_boxes(torch.zeros(1, 1, 16, 8), 8).tolist() == [[4, 0]]
    for shape in ((1, 1, 8, 16), (1, 1, 16, 8)):
        with pytest.raises(ValueError, match="larger than the image"):
            local_crop_boxes(torch.zeros(shape), 9)
    m = torch.zeros(1, 1, 8, 16)
    m[0, 0, 2:4, 13:15] = 1  # centre (3, 14) -> left clamped to 16 - 8
    assert local_crop_boxes(m, 8).tolist() == [[0, 8]]
    assert hole_bbox(m[0]) == (2, 13, 4, 15)  # a (1, H, W) tensor of a non-square image
