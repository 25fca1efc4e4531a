"""Fixed operators against independent NumPy/SciPy references."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import tensorflow as tf

from fusion_tf.core import ops

SCIPY_MODE = {"zero": "constant", "symmetric": "reflect", "reflect": "mirror", "replicate": "nearest"}


def _nhwc(x):
    return tf.constant(x[None, ..., None], tf.float32)


def _np(t):
    return t.numpy()[0, ..., 0]


def test_mffgan_lowpass_kernel_matches_spec():
    k = ops.MFFGAN_LOWPASS_KERNEL
    assert k[0, 0] == pytest.approx(0.0947) and k[0, 1] == pytest.approx(0.1183) and k[1, 1] == pytest.approx(0.1478)
    assert k.sum() == pytest.approx(0.9998, abs=1e-6)


def test_matlab_gaussian_is_normalised_and_symmetric():
    k = ops.matlab_gaussian_kernel(5, 1.0)
    assert k.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(k, k.T)
    assert ops.imgaussfilt_kernel(1.0).shape == (5, 5)
    assert ops.imgaussfilt_kernel(8.0).shape == (33, 33)


@pytest.mark.parametrize("mode", ["zero", "symmetric", "reflect", "replicate"])
def test_filter2d_padding_modes_match_scipy(mode, rng):
    x = rng.uniform(0, 1, (13, 17)).astype(np.float32)
    k = rng.normal(size=(5, 3)).astype(np.float32)
    got = _np(ops.filter2d(_nhwc(x), k, mode))
    ref = ndi.correlate(x.astype(np.float64), k.astype(np.float64), mode=SCIPY_MODE[mode], cval=0.0)
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_laplacian_keeps_zero_padding_border_effect():
    lap = _np(ops.laplacian(_nhwc(np.ones((8, 8), np.float32))))
    assert np.all(lap[1:-1, 1:-1] == 0)
    assert lap[0, 3] == -1 and lap[0, 0] == -2  # missing neighbours count as 0


def test_window_sum_equals_full_ones_kernel(rng):
    x = rng.uniform(0, 1, (2, 23, 19, 3)).astype(np.float32)
    got = ops.window_sum(tf.constant(x), 5).numpy()
    ref = np.stack([np.stack([ndi.correlate(x[b, ..., c], np.ones((11, 11)), mode="constant")
                              for c in range(3)], -1) for b in range(2)])
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)


def test_box_mean_uses_only_valid_cells(rng):
    x = rng.uniform(0, 1, (9, 9)).astype(np.float32)
    got = _np(ops.box_mean(_nhwc(x), 3))
    counts = ndi.correlate(np.ones_like(x), np.ones((7, 7)), mode="constant")
    ref = ndi.correlate(x, np.ones((7, 7)), mode="constant") / counts
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_guided_filter_preserves_constant_input(rng):
    guide = _nhwc(rng.uniform(0, 1, (20, 20)).astype(np.float32))
    q = ops.guided_filter(guide, tf.fill(tf.shape(guide), 0.3), radius=3, eps=0.1)
    np.testing.assert_allclose(q.numpy(), 0.3, atol=1e-6)


def test_shift_zero_fill():
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    got = _np(ops.shift_zero_fill(_nhwc(x), 1, -2))
    ref = np.zeros_like(x)
    ref[1:, :2] = x[:3, 2:]
    np.testing.assert_array_equal(got, ref)


def test_repeated_blur_residual_applies_blur_twice(rng):
    x = rng.uniform(-1, 1, (12, 12)).astype(np.float64)
    k = ops.MFFGAN_LOWPASS_KERNEL.astype(np.float64)
    twice = ndi.correlate(ndi.correlate(x, k, mode="constant"), k, mode="constant")
    np.testing.assert_allclose(_np(ops.repeated_blur_residual(_nhwc(x))), np.abs(x - twice), atol=1e-5)
