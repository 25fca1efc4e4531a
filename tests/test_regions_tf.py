"""In-graph small-region removal (core/regions_tf) against the SciPy version MFIF-GAN's fuser uses."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from fusion_tf.core import regions_tf
from fusion_tf.inference.mfifgan import small_region_removal

_SPEC = tf.TensorSpec((None, None, None), tf.bool)
SRR = {c: tf.function(lambda m, f, c=c: regions_tf.small_region_removal(m, f, c)) for c in (4, 8)}


def _srr_tf(batch: np.ndarray, fraction: float, connectivity: int) -> np.ndarray:
    return SRR[connectivity](tf.constant(batch), fraction).numpy()


def _snake(h: int, w: int) -> np.ndarray:
    """One 1-px wide boustrophedon path: a single component whose far end is ~h·w/4 steps away."""
    m = np.zeros((h, w), bool)
    m[::2] = True
    for i, y in enumerate(range(1, h, 2)):
        m[y, w - 1 if i % 2 == 0 else 0] = True
    return m


def test_thresholds_are_strict_and_float_and_holes_follow_objects():
    # 100×100 with fraction 0.001 → N = 10.0: 9 px removed, 10 kept (strict <), 11 kept; holes alike
    m = np.zeros((100, 100), bool)
    m[2, 2:11] = m[5, 2:12] = m[8, 2:13] = True
    m[20:22, 20:23] = m[22:24, 23:26] = True  # two 6-px blobs touching diagonally
    m[40:90, 40:90] = True
    m[45, 45:54] = m[55, 45:55] = m[65, 45:56] = False
    m[75:77, 45:48] = m[77:79, 48:51] = False
    for conn in (4, 8):
        assert np.array_equal(_srr_tf(m[None], 0.001, conn)[0], small_region_removal(m, 0.001, conn))
    got = _srr_tf(m[None], 0.001, 4)[0]
    assert not got[2, 2:11].any() and got[5, 2:12].all() and got[45, 45:54].all() and not got[55, 45:55].any()
    assert not got[20:24, 20:26].any()  # 4-connected: two 6-px objects, both removed


@pytest.mark.parametrize("connectivity", [4, 8])
def test_random_maps_batched_odd_sizes_equal_scipy(connectivity):
    rng = np.random.default_rng(7)
    for (h, w), sigma, fraction in (((61, 77), 1.5, 0.01), ((96, 131), 2.5, 0.004)):
        batch = ndimage.gaussian_filter(rng.normal(size=(3, h, w)), (0, sigma, sigma)) > 0.1
        got = _srr_tf(batch, fraction, connectivity)
        expected = np.stack([small_region_removal(x, fraction, connectivity) for x in batch])
        assert (expected != batch).sum() > 20  # the filter really removes something here
        assert np.array_equal(got, expected)


def test_long_winding_region_and_trivial_maps():
    snake = _snake(41, 53)  # one component of ~1,100 px: kept at N = 0.3·H·W ≈ 652, gone at 0.6
    assert ndimage.label(snake, np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]]))[1] == 1
    for fraction in (0.3, 0.6):
        assert np.array_equal(_srr_tf(snake[None], fraction, 4)[0], small_region_removal(snake, fraction, 4))
    labels = regions_tf.label_components(tf.constant(snake[None])).numpy()[0]
    assert len(np.unique(labels[snake])) == 1 and (labels[~snake] == snake.size).all()
    for const in (np.zeros((5, 9), bool), np.ones((5, 9), bool)):
        assert np.array_equal(_srr_tf(const[None], 0.5, 4)[0], const)
