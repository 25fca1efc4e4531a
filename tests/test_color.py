"""Colour rules of the originals (MFF-GAN's studio-swing YCbCr and Cb/Cr rule, grey rules)."""

import numpy as np
import pytest

from fusion_tf.core import color
from fusion_tf.core.imageio import read_image


def test_round_half_away_differs_from_numpy_round():
    np.testing.assert_array_equal(color.round_half_away([0.5, 1.5, 2.5, -0.5]), [1, 2, 3, -1])


def test_fuse_chroma_rule():
    c1 = np.array([128.0, 100.0, 150.0, 128.0])
    c2 = np.array([128.0, 128.0, 110.0, 140.0])
    out = color.fuse_chroma(c1, c2)
    assert out[0] == 128.0  # both neutral: the 0/0 guard
    assert out[1] == 100.0  # only source 1 saturated
    assert out[2] == pytest.approx((150 * 22 + 110 * 18) / 40)
    assert out[3] == 140.0


def test_studio_round_trip_within_one_grey_level(rng):
    rgb = rng.integers(20, 236, (64, 64, 3)).astype(np.uint8)
    y = color.rgb_to_y_studio(rgb)
    cb, cr = color.rgb_to_cbcr_studio(rgb)
    back = color.ycbcr_studio_to_rgb(y, cb, cr)
    assert 16 <= y.min() and y.max() <= 235
    assert np.abs(back - rgb).max() <= 1.0


def test_matlab_uint8_luma_rounds_each_product():
    rgb = np.array([[[1, 0, 5]]], np.uint8)  # products 0.257→0, 0, 0.49→0: 16; the float sum is 16.747
    assert color.rgb_to_y_studio_matlab(rgb)[0, 0] == 16
    assert color.rgb_to_y_studio(rgb)[0, 0] == pytest.approx(16.747, abs=1e-9)


def test_studio_luma_reproduces_original_test_inputs(shared):
    """The repo's grey test inputs are MATLAB studio Y of Lytro 01 saved as JPEG q75 (≈0.6 levels apart)."""
    rgb = read_image(shared / "data/lytro/pairs/lytro-01-A.jpg")
    original = read_image(shared / "reference/mff_gan/inputs/near/1.jpg", "grey").astype(np.float64)
    ours = color.rgb_to_y_studio_matlab(rgb).astype(np.float64)
    full_range = np.asarray(color.rgb_to_grey_matlab(rgb))
    assert np.abs(ours - original).mean() < 1.0
    assert np.abs(full_range - original).mean() > 5.0  # a full-range grey rule is clearly not it


def test_matlab_grey_rule():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], np.uint8)
    np.testing.assert_array_equal(color.rgb_to_grey_matlab(rgb)[0], [76, 150, 29, 18])
