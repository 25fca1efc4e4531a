"""TensorFlow twins of the colour rules in :mod:`fusion_tf.core.color`, for graphs (SavedModel export).

Same coefficients (imported from ``color``); tensors (…, 3) in 0..255, in whatever float dtype the
caller chooses (export uses float64 for colour maths, like the NumPy path).
The NumPy versions stay the reference: the export tests compare the two paths end to end.
"""

from __future__ import annotations

import tensorflow as tf

from fusion_tf.core.color import SKIMAGE_GREY_COEFFS, STUDIO_CB, STUDIO_CR, STUDIO_INVERSE, STUDIO_Y


def _weighted(rgb: tf.Tensor, weights) -> tf.Tensor:
    wr, wg, wb, offset = weights
    return wr * rgb[..., 0:1] + wg * rgb[..., 1:2] + wb * rgb[..., 2:3] + offset


def rgb_to_ycbcr_studio(rgb: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(Y, Cb, Cr), each (…, 1), from RGB floats in 0..255 (no rounding, the "plain" mode)."""
    return _weighted(rgb, STUDIO_Y), _weighted(rgb, STUDIO_CB), _weighted(rgb, STUDIO_CR)


def ycbcr_studio_to_rgb(y: tf.Tensor, cb: tf.Tensor, cr: tf.Tensor) -> tf.Tensor:
    planes = (y - 16.0, cb - 128.0, cr - 128.0)
    return tf.concat([sum(w * p for w, p in zip(row, planes)) for row in STUDIO_INVERSE], axis=-1)


def fuse_chroma(c1: tf.Tensor, c2: tf.Tensor) -> tf.Tensor:
    """MFF-GAN's |C − 128|-weighted Cb/Cr rule; exactly 128 where both sources are neutral."""
    w1, w2 = tf.abs(c1 - 128.0), tf.abs(c2 - 128.0)
    den = w1 + w2
    one = tf.ones_like(den)
    return tf.where(den == 0, 128.0 * one, (c1 * w1 + c2 * w2) / tf.where(den == 0, one, den))


def rgb_to_grey_skimage(rgb01: tf.Tensor) -> tf.Tensor:
    """skimage ``rgb2gray`` on [0, 1] floats → (…, 1)."""
    return _weighted(rgb01, (*SKIMAGE_GREY_COEFFS, 0.0))


def to_uint8(x: tf.Tensor) -> tf.Tensor:
    """Saturate to 0..255 and round halves up (= MATLAB's half away from zero on this range).

    ``tf.round`` rounds halves to even, which would differ from the NumPy path on exact halves.
    """
    return tf.cast(tf.floor(tf.clip_by_value(x, 0.0, 255.0) + 0.5), tf.uint8)
